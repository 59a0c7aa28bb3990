# Included by the top-level CMakeLists.txt (so the imported targets are visible everywhere).
# Finds the Debian packages fp4lm uses and exposes one imported target each. Nothing is vendored
# and nothing is downloaded: scripts/setup installs the packages.
#
#   absl::*                 libabsl-dev (20220623; see DESIGN.md "Dependency facts")
#   fp4lm::sentencepiece    libsentencepiece-dev (pkg-config; only tokenizer/spm_processor.cc sees it)
#   fp4lm::pcre2            libpcre2-dev: Unicode-class regexes with look-ahead for BPE
#                           pre-tokenization (std::regex has neither \p{L} nor UTF-8)
#   nlohmann_json::nlohmann_json  nlohmann-json3-dev: config.json, tokenizer.json, safetensors
#                           headers; used with exceptions disabled behind model/json_util.h
#   fmt::fmt, GTest::*, benchmark::benchmark
find_package(absl REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET GLOBAL sentencepiece)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET GLOBAL libpcre2-8)
add_library(fp4lm::sentencepiece ALIAS PkgConfig::SENTENCEPIECE)
add_library(fp4lm::pcre2 ALIAS PkgConfig::PCRE2)
if(FP4LM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(FP4LM_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
if(FP4LM_WITH_CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()
