# CMake toolchain for libaom (the AVIF encoder) natively: cargo's [env] in
# .cargo/config.toml points libaom-sys's cmake build here. The system's
# compilers, and the same configuration as the edge builds, so every runtime
# writes the same bytes (libaom's x86 code would also need nasm, which is
# not on PyPI).
include("${CMAKE_CURRENT_LIST_DIR}/libaom-config.cmake")
