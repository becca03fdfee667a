/* Forced into llama.cpp's AMX kernels (ggml-cpu/amx/mmq.cpp) by cmake/llama-cpp.cmake.
 *
 * GCC 12's `_tile_loadconfig` declares that `ldtilecfg` reads 8 bytes of its 64-byte operand. At
 * -O3 GCC then drops, as dead, the stores that fill in the tile rows and columns, `ldtilecfg` loads
 * a configuration with no tiles, and the first tile instruction faults ("Illegal instruction").
 * This definition says that all 64 bytes are read. */
#ifndef MODELSERVICE_AMX_TILE_LOADCONFIG_H
#define MODELSERVICE_AMX_TILE_LOADCONFIG_H

#include <immintrin.h>

struct modelservice_tile_config_bytes {
    unsigned char bytes[64];
};

static inline __attribute__((always_inline)) void modelservice_tile_loadconfig(const void *config) {
    __asm__ volatile("ldtilecfg %0" ::"m"(*(const struct modelservice_tile_config_bytes *)config));
}

#define _tile_loadconfig modelservice_tile_loadconfig

#endif
