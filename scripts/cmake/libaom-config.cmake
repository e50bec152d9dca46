# libaom's configuration on every target, included by the toolchain files:
# plain C (no asm, no runtime CPU detection), no threads, 8-bit only, and
# none of the parts a still image does not use. Each one left out is code
# the Worker would otherwise ship (its compressed size limit is 3 MB on
# the free plan).
set(AOM_TARGET_CPU generic CACHE STRING "")
set(CONFIG_RUNTIME_CPU_DETECT 0 CACHE STRING "")
set(CONFIG_MULTITHREAD 0 CACHE STRING "")
set(CONFIG_AV1_HIGHBITDEPTH 0 CACHE STRING "")
# Film-grain denoising, libyuv's scalers, WebM output (tools only).
set(CONFIG_DENOISE 0 CACHE STRING "")
set(CONFIG_LIBYUV 0 CACHE STRING "")
set(CONFIG_WEBM_IO 0 CACHE STRING "")
