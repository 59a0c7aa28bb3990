#include "model/memory_limit.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace engine::model {
namespace {

// A cgroup limit file holds a byte count or "max"; 0 means no (readable) limit.
uint64_t ReadLimitFile(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return 0;
  uint64_t value = 0;
  return absl::SimpleAtoi(text, &value) ? value : 0;
}

}  // namespace

uint64_t AvailableMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  uint64_t bytes = pages > 0 && page_size > 0
                       ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)
                       : UINT64_MAX;
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const uint64_t limit = ReadLimitFile(path);
    if (limit > 0) bytes = std::min(bytes, limit);
  }
  return bytes;
}

absl::Status CheckMemory(uint64_t bytes, const std::string& what, const std::string& source,
                         uint64_t limit) {
  if (bytes <= limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(source, ": ", what, " needs ", bytes >> 20,
                                                   " MiB, more than the ", limit >> 20,
                                                   " MiB of memory available"));
}

}  // namespace engine::model
