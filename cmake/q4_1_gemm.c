// A tiled Q4_1 x Q8_1 matrix product for llama.cpp's x86 CPU backends, compiled into each of them
// by llama-cpp.cmake, which routes ggml-cpu.c's calls of `llamafile_sgemm` here. llama.cpp has no
// batched kernel for Q4_1 (no repack, no tinyBLAS case): it calls `ggml_vec_dot_q4_1_q8_1` once per
// row and column, unpacking every weight block again for every token of the batch. A tile of 2
// weight rows by up to 4 tokens unpacks each block once per tile and keeps the tile's sums in
// registers (2 x 4 was among the fastest shapes timed: benches/RESULTS.md, "Our Q4_1 kernel").
//
// Every output is bit for bit what `ggml_vec_dot_q4_1_q8_1` (arch/x86/quants.c) gives for its row
// and column: the same operations on the same values, in the same order. So a token's logits do
// not depend on the batch it was decoded in (one token alone still takes the stock kernel), and
// greedy answers stay identical whether a prompt was computed, reused or copied. The scalar
// products (d0 * d1, m * s) are of two halves, exact in a float, so whether the compiler fuses
// `summs += m * s` (it does in quants.c, not here) changes nothing; the vector sum is an explicit
// FMA on both sides.

#define GGML_COMMON_DECL_C
#include "ggml-common.h"

#include "ggml-cpu-impl.h"
#include "llamafile/sgemm.h"
#include "simd-mappings.h"

#include <stdbool.h>
#include <stdint.h>

bool modelservice_sgemm(const struct ggml_compute_params * params, int64_t m, int64_t n, int64_t k,
                        const void * A, int64_t lda, const void * B, int64_t ldb, void * C,
                        int64_t ldc, int Atype, int Btype, int Ctype);

#if defined(__AVX2__)
#include <immintrin.h>

// Looked up by the library (core/src/cpu_backend.rs), which lists the kernel among the CPU
// backend's features: defined where the kernel runs, i.e. in the modules built with AVX2.
const char modelservice_q4_1_gemm[] = "Q4_1_GEMM";

enum {
    // Rows of one job: a few tiles, so that two threads share a 576-row matrix in ~18 jobs each.
    JOB_ROWS = 16,
    // Tokens of one job: 64 Q8_1 columns of a 1,536-wide row are 108 KiB, read again by each tile.
    JOB_COLS = 64,
};

// The helpers of arch/x86/quants.c, as they are there (static in that file).
static inline float hsum_float_8(const __m256 x) {
    __m128 res = _mm256_extractf128_ps(x, 1);
    res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    res = _mm_add_ss(res, _mm_movehdup_ps(res));
    return _mm_cvtss_f32(res);
}

static inline __m256i bytes_from_nibbles_32(const uint8_t * rsi) {
    const __m128i tmp = _mm_loadu_si128((const __m128i *) rsi);
    const __m256i bytes = _mm256_insertf128_si256(_mm256_castsi128_si256(tmp), _mm_srli_epi16(tmp, 4), 1);
    return _mm256_and_si256(_mm256_set1_epi8(0xF), bytes);
}

// Exact integer sums: VNNI and maddubs+madd give the same int32 lanes (no saturation for 4-bit x 8-bit).
static inline __m256 mul_sum_us8_pairs_float(const __m256i ax, const __m256i sy) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy));
#elif defined(__AVXVNNI__)
    return _mm256_cvtepi32_ps(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ax, sy));
#else
    const __m256i dot = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot));
#endif
}

// One tile: ROWS x COLS outputs over `nb` blocks. Per output this is the stock kernel's loop:
// `summs += m * s` and `acc = fma(d0 * d1, xy, acc)` block by block, then hsum(acc) + summs.
#define Q4_1_TILE(ROWS, COLS)                                                                       \
    static void tile_##ROWS##x##COLS(int64_t nb, const block_q4_1 * x, int64_t lda,                 \
                                     const block_q8_1 * y, int64_t ldb, float * c, int64_t ldc) {   \
        __m256 acc[ROWS][COLS];                                                                     \
        float summs[ROWS][COLS];                                                                    \
        for (int r = 0; r < ROWS; ++r) {                                                            \
            for (int j = 0; j < COLS; ++j) {                                                        \
                acc[r][j] = _mm256_setzero_ps();                                                    \
                summs[r][j] = 0;                                                                    \
            }                                                                                       \
        }                                                                                           \
        for (int64_t ib = 0; ib < nb; ++ib) {                                                       \
            __m256i qy[COLS];                                                                       \
            float d1[COLS], s1[COLS];                                                               \
            for (int j = 0; j < COLS; ++j) {                                                        \
                const block_q8_1 * yb = y + j * ldb + ib;                                           \
                qy[j] = _mm256_loadu_si256((const __m256i *) yb->qs);                               \
                d1[j] = GGML_CPU_FP16_TO_FP32(yb->d);                                               \
                s1[j] = GGML_CPU_FP16_TO_FP32(yb->s);                                               \
            }                                                                                       \
            for (int r = 0; r < ROWS; ++r) {                                                        \
                const block_q4_1 * xb = x + r * lda + ib;                                           \
                const __m256i qx = bytes_from_nibbles_32(xb->qs);                                   \
                const float d0 = GGML_CPU_FP16_TO_FP32(xb->d);                                      \
                const float m0 = GGML_CPU_FP16_TO_FP32(xb->m);                                      \
                for (int j = 0; j < COLS; ++j) {                                                    \
                    summs[r][j] += m0 * s1[j];                                                      \
                    const __m256 d0d1 = _mm256_set1_ps(d0 * d1[j]);                                 \
                    acc[r][j] = _mm256_fmadd_ps(d0d1, mul_sum_us8_pairs_float(qx, qy[j]), acc[r][j]); \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        for (int r = 0; r < ROWS; ++r) {                                                            \
            for (int j = 0; j < COLS; ++j) {                                                        \
                c[j * ldc + r] = hsum_float_8(acc[r][j]) + summs[r][j];                             \
            }                                                                                       \
        }                                                                                           \
    }

Q4_1_TILE(2, 4)
Q4_1_TILE(2, 3)
Q4_1_TILE(2, 2)
Q4_1_TILE(2, 1)
Q4_1_TILE(1, 4)
Q4_1_TILE(1, 3)
Q4_1_TILE(1, 2)
Q4_1_TILE(1, 1)

typedef void (*q4_1_tile)(int64_t nb, const block_q4_1 * x, int64_t lda, const block_q8_1 * y,
                          int64_t ldb, float * c, int64_t ldc);

// By rows - 1 and tokens - 1: tiles of 2 x 4, then narrower ones for the last rows and tokens.
static const q4_1_tile TILES[2][4] = {
    { tile_1x1, tile_1x2, tile_1x3, tile_1x4 },
    { tile_2x1, tile_2x2, tile_2x3, tile_2x4 },
};

// `rows` rows (from x, into c) by columns [j0, j1).
static void q4_1_block(int64_t nb, const block_q4_1 * x, int64_t lda, const block_q8_1 * y,
                       int64_t ldb, float * c, int64_t ldc, int64_t rows, int64_t j0, int64_t j1) {
    for (int64_t r = 0; r < rows; r += 2) {
        const int64_t tile_rows = rows - r < 2 ? rows - r : 2;
        for (int64_t j = j0; j < j1; j += 4) {
            const int64_t tile_cols = j1 - j < 4 ? j1 - j : 4;
            TILES[tile_rows - 1][tile_cols - 1](nb, x + r * lda, lda, y + j * ldb, ldb, c + j * ldc + r, ldc);
        }
    }
}

// C (m x n, column j at C + j * ldc) = A (m rows of k blocks) times B (n columns of k blocks),
// shared by the threads in jobs handed out as ggml's own matrix product hands out its chunks.
static void q4_1_gemm(const struct ggml_compute_params * params, int64_t m, int64_t n, int64_t nb,
                      const block_q4_1 * A, int64_t lda, const block_q8_1 * B, int64_t ldb, float * C,
                      int64_t ldc) {
    const int64_t row_jobs = (m + JOB_ROWS - 1) / JOB_ROWS;
    const int64_t col_jobs = (n + JOB_COLS - 1) / JOB_COLS;
    const int64_t jobs = row_jobs * col_jobs;

    if (params->ith == 0) {
        // Every thread starts at its own index, so the first job left is the thread count.
        ggml_threadpool_chunk_set(params->threadpool, params->nth);
    }
    ggml_barrier(params->threadpool);

    for (int64_t job = params->ith; job < jobs; job = ggml_threadpool_chunk_add(params->threadpool, 1)) {
        // Consecutive jobs share their columns: those stay in cache while the rows stream past.
        const int64_t i = (job % row_jobs) * JOB_ROWS;
        const int64_t j0 = (job / row_jobs) * JOB_COLS;
        const int64_t rows = m - i < JOB_ROWS ? m - i : JOB_ROWS;
        const int64_t j1 = n - j0 < JOB_COLS ? n : j0 + JOB_COLS;
        q4_1_block(nb, A + i * lda, lda, B, ldb, C + i, ldc, rows, j0, j1);
    }
    ggml_barrier(params->threadpool);
}
#endif // __AVX2__

// ggml-cpu.c's matrix product asks `llamafile_sgemm` first, and once more after converting the
// tokens to the weights' `vec_dot_type`; false lets it fall back to its row-by-column kernel.
bool modelservice_sgemm(const struct ggml_compute_params * params, int64_t m, int64_t n, int64_t k,
                        const void * A, int64_t lda, const void * B, int64_t ldb, void * C,
                        int64_t ldc, int Atype, int Btype, int Ctype) {
#if defined(__AVX2__)
    // One token is the stock kernel's job (nothing to share across columns).
    if (Atype == GGML_TYPE_Q4_1 && Btype == GGML_TYPE_Q8_1 && Ctype == GGML_TYPE_F32 && n >= 2) {
        q4_1_gemm(params, m, n, k, (const block_q4_1 *) A, lda, (const block_q8_1 *) B, ldb,
                  (float *) C, ldc);
        return true;
    }
#endif
    return llamafile_sgemm(params, m, n, k, A, lda, B, ldb, C, ldc, Atype, Btype, Ctype);
}
