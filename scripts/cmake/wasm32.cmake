# CMake toolchain for libaom (the AVIF encoder) on every wasm target:
# cargo's [env] in .cargo/config.toml points libaom-sys's cmake build here.
# zig's clang through scripts/wasm-cc, as for libwebp; libaom's options are
# the native build's (libaom-config.cmake).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(CMAKE_C_COMPILER "${CMAKE_CURRENT_LIST_DIR}/../wasm-cc")
# libaom's cmake also builds a C++ library edgethumb does not link.
set(CMAKE_CXX_COMPILER "${CMAKE_CURRENT_LIST_DIR}/../wasm-cxx")
set(CMAKE_AR "${CMAKE_CURRENT_LIST_DIR}/../wasm-ar")
# llvm-ar writes the symbol index itself.
set(CMAKE_RANLIB true)
include("${CMAKE_CURRENT_LIST_DIR}/libaom-config.cmake")
