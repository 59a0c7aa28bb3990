# Installation of libengine for other programs: `cmake --install` puts
#   lib/libfp4lm_engine.so*                  the library (engine/CMakeLists.txt: engine_shared)
#   include/fp4lm/engine/{engine,options}.h  the public API
#   lib/cmake/fp4lm/                         find_package(fp4lm) -> fp4lm::engine
#   lib/pkgconfig/fp4lm.pc                   pkg-config fp4lm
#   bin/fp4lm                                the command-line tool (component "cli")
# Component "engine" is the library part alone (`cmake --install . --component engine`).
include(CMakePackageConfigHelpers)

set(FP4LM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/fp4lm)
install(EXPORT fp4lmTargets NAMESPACE fp4lm:: DESTINATION ${FP4LM_INSTALL_CMAKEDIR}
  COMPONENT engine)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fp4lmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/fp4lmConfig.cmake
  INSTALL_DESTINATION ${FP4LM_INSTALL_CMAKEDIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/fp4lmConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/fp4lmConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/fp4lmConfigVersion.cmake
  DESTINATION ${FP4LM_INSTALL_CMAKEDIR} COMPONENT engine)

# pkg-config: the prefix is found relative to the .pc file, so `cmake --install --prefix`
# anywhere gives a working file.
file(RELATIVE_PATH FP4LM_PC_PREFIX_FROM_PCDIR
  /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" FP4LM_PC_PREFIX_FROM_PCDIR "${FP4LM_PC_PREFIX_FROM_PCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/fp4lm.pc.in ${PROJECT_BINARY_DIR}/cmake/fp4lm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/fp4lm.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT engine)

install(TARGETS fp4lm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
