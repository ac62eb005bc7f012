/*
 * Ceiling of the batch STDP pre term on this CPU, without Python, numba or any bookkeeping.
 *
 * The fused CPU kernel (snnlab/kernels/plasticity_cpu.py) adds, for a batch of B = 16 binary pre
 * spike rows, d[i, j] = sum_{b: pre[b, j] = 1} u[b, i] to every weight of an N x N float32 matrix
 * (N = 1000, spike rate 0.05), in blocks of 16 columns. This program times the same loops written
 * with AVX-512 intrinsics over the whole matrix, so the kernel's time can be compared with what
 * its lookups cost at best:
 *
 *   floor    t[i, j] -= c                  (read and write every weight once: the memory part)
 *   nibble   four 16-entry subset tables per row, looked up with vpermps by the column's 16-bit
 *            sample mask shifted by 0, 4, 8, 12 (what the kernel does)
 *   codes    the same, with the four nibble codes stored per column (loads in place of shifts)
 *   layers3  three layers of per-column sample indices, each looked up with a two-table permute
 *            (vpermt2ps; index 16 selects zero); exact only for columns with at most 3 spikes
 *   rows     the whole row work of the kernel's batch pass: nibble lookups with each row's four
 *            tables built in registers from its 16 values u[b, i], plus the post term (batch 16
 *            post spikes at rate 0.05: the first two samples of a row ride along with its pass,
 *            t += v0 * x_pre[b0] + v1 * x_pre[b1], any others get a pass of their own first)
 *
 * Build and run (x86-64 with AVX-512F, gcc; T threads):
 *
 *   gcc -O3 -march=native -fopenmp benchmarks/ceiling/stdp_batch_lookup.c -o /tmp/lookup
 *   OMP_NUM_THREADS=2 /tmp/lookup
 *
 * It prints, per variant, the median of 9 medians of 100 timed passes (microseconds).
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N 1000
#define BLOCKS (N / 16) /* 62 full blocks; the kernel's shifted last block is left out here */
#define LAYERS 3

static float *t;          /* [N, N] target (weight.grad) */
static float *u;          /* [N, 16] per-row values u[b, i], stored row-major per row */
static float *groups;     /* [N, 4, 16] per-row subset tables */
static int32_t *mask;     /* [N] 16-bit sample mask per column */
static int32_t *code[4];  /* [N] the mask's nibbles */
static int32_t *layer[LAYERS]; /* [N] per-column sample indices (16: none) */
static float *x_pre;      /* [16, N] pre traces */
static int n_post[N];     /* post samples of each row */
static int post_b[N][16]; /* their sample indices */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void floor_pass(void) {
    const __m512 c = _mm512_set1_ps(1e-3f);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = t + (size_t)i * N;
        for (int q = 0; q < BLOCKS; q++)
            _mm512_storeu_ps(row + 16 * q, _mm512_sub_ps(_mm512_loadu_ps(row + 16 * q), c));
    }
}

/* The four group tables of every row, looked up by the nibbles of each column's sample mask:
 * shifted out of the mask (stored = 0, what the kernel does) or loaded from code[] (stored = 1).
 * Always inlined with a constant `stored`, so each caller compiles to its own loop. */
static inline __attribute__((always_inline)) void table_pass(const int stored) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = t + (size_t)i * N;
        const float *g = groups + (size_t)i * 64;
        const __m512 t0 = _mm512_loadu_ps(g), t1 = _mm512_loadu_ps(g + 16);
        const __m512 t2 = _mm512_loadu_ps(g + 32), t3 = _mm512_loadu_ps(g + 48);
        for (int q = 0; q < BLOCKS; q++) {
            const int o = 16 * q;
            __m512i c[4];
            if (stored) {
                for (int k = 0; k < 4; k++) c[k] = _mm512_loadu_si512(code[k] + o);
            } else {
                const __m512i m = _mm512_loadu_si512(mask + o);
                c[0] = m;
                c[1] = _mm512_srli_epi32(m, 4);
                c[2] = _mm512_srli_epi32(m, 8);
                c[3] = _mm512_srli_epi32(m, 12);
            }
            const __m512 a = _mm512_add_ps(_mm512_permutexvar_ps(c[0], t0), _mm512_permutexvar_ps(c[1], t1));
            const __m512 b = _mm512_add_ps(_mm512_permutexvar_ps(c[2], t2), _mm512_permutexvar_ps(c[3], t3));
            _mm512_storeu_ps(row + o, _mm512_sub_ps(_mm512_loadu_ps(row + o), _mm512_add_ps(a, b)));
        }
    }
}

static void nibble_pass(void) { table_pass(0); }

static void codes_pass(void) { table_pass(1); }

static void layers_pass(void) {
    const __m512 zero = _mm512_setzero_ps();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = t + (size_t)i * N;
        const __m512 v = _mm512_loadu_ps(u + (size_t)i * 16);
        for (int q = 0; q < BLOCKS; q++) {
            const int o = 16 * q;
            __m512 d = _mm512_permutex2var_ps(v, _mm512_loadu_si512(layer[0] + o), zero);
            for (int l = 1; l < LAYERS; l++)
                d = _mm512_add_ps(d, _mm512_permutex2var_ps(v, _mm512_loadu_si512(layer[l] + o), zero));
            _mm512_storeu_ps(row + o, _mm512_sub_ps(_mm512_loadu_ps(row + o), d));
        }
    }
}

/* T_k[code] = sum of u[4k + m] over the set bits m of code, from the row's values in one register */
static inline void row_tables(const __m512 v, __m512 *tables) {
    for (int k = 0; k < 4; k++) {
        __m512 acc = _mm512_setzero_ps();
        for (int m = 0; m < 4; m++) {
            __mmask16 bits = 0;
            for (int c = 0; c < 16; c++)
                if (c >> m & 1) bits |= (__mmask16)(1 << c);
            const __m512 lane = _mm512_permutexvar_ps(_mm512_set1_epi32(4 * k + m), v);
            acc = _mm512_mask_add_ps(acc, bits, acc, lane);
        }
        tables[k] = acc;
    }
}

static inline __m512 lookup(const __m512 *tables, const int o) {
    const __m512i m = _mm512_loadu_si512(mask + o);
    const __m512 a = _mm512_add_ps(_mm512_permutexvar_ps(m, tables[0]),
                                   _mm512_permutexvar_ps(_mm512_srli_epi32(m, 4), tables[1]));
    const __m512 b = _mm512_add_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(m, 8), tables[2]),
                                   _mm512_permutexvar_ps(_mm512_srli_epi32(m, 12), tables[3]));
    return _mm512_add_ps(a, b);
}

static void rows_pass(void) {
    const __m512 v0 = _mm512_set1_ps(0.5f), v1 = _mm512_set1_ps(0.25f);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = t + (size_t)i * N;
        const int n = n_post[i];
        for (int s = 2; s < n; s++) { /* samples beyond the first two: a pass each */
            const float *x = x_pre + (size_t)post_b[i][s] * N;
            for (int q = 0; q < BLOCKS; q++)
                _mm512_storeu_ps(row + 16 * q, _mm512_fmadd_ps(v0, _mm512_loadu_ps(x + 16 * q),
                                                               _mm512_loadu_ps(row + 16 * q)));
        }
        __m512 tables[4];
        row_tables(_mm512_loadu_ps(u + (size_t)i * 16), tables);
        const float *x0 = x_pre + (size_t)post_b[i][0] * N, *x1 = x_pre + (size_t)post_b[i][1] * N;
        if (n == 0) {
            for (int q = 0; q < BLOCKS; q++) {
                const int o = 16 * q;
                _mm512_storeu_ps(row + o, _mm512_sub_ps(_mm512_loadu_ps(row + o), lookup(tables, o)));
            }
        } else if (n == 1) {
            for (int q = 0; q < BLOCKS; q++) {
                const int o = 16 * q;
                const __m512 cur = _mm512_add_ps(_mm512_loadu_ps(row + o), _mm512_mul_ps(v0, _mm512_loadu_ps(x0 + o)));
                _mm512_storeu_ps(row + o, _mm512_sub_ps(cur, lookup(tables, o)));
            }
        } else {
            for (int q = 0; q < BLOCKS; q++) {
                const int o = 16 * q;
                const __m512 p = _mm512_add_ps(_mm512_mul_ps(v0, _mm512_loadu_ps(x0 + o)),
                                               _mm512_mul_ps(v1, _mm512_loadu_ps(x1 + o)));
                const __m512 cur = _mm512_add_ps(_mm512_loadu_ps(row + o), p);
                _mm512_storeu_ps(row + o, _mm512_sub_ps(cur, lookup(tables, o)));
            }
        }
    }
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_us(void (*pass)(void)) {
    double medians[9], times[100];
    for (int k = 0; k < 5; k++) pass();
    for (int r = 0; r < 9; r++) {
        for (int k = 0; k < 100; k++) {
            const double t0 = now();
            pass();
            times[k] = now() - t0;
        }
        qsort(times, 100, sizeof(double), by_value);
        medians[r] = times[50];
    }
    qsort(medians, 9, sizeof(double), by_value);
    return medians[4] * 1e6;
}

int main(void) {
    srand(1);
    t = aligned_alloc(64, sizeof(float) * N * N);
    u = aligned_alloc(64, sizeof(float) * N * 16);
    groups = aligned_alloc(64, sizeof(float) * N * 64);
    mask = aligned_alloc(64, sizeof(int32_t) * 1024);
    for (int k = 0; k < 4; k++) code[k] = aligned_alloc(64, sizeof(int32_t) * 1024);
    for (int l = 0; l < LAYERS; l++) layer[l] = aligned_alloc(64, sizeof(int32_t) * 1024);
    x_pre = aligned_alloc(64, sizeof(float) * 16 * N);
    for (int k = 0; k < 16 * N; k++) x_pre[k] = rand() / (float)RAND_MAX;
    for (int i = 0; i < N; i++) {
        n_post[i] = 0;
        for (int b = 0; b < 16; b++)
            if (rand() % 20 == 0) post_b[i][n_post[i]++] = b;
        for (int s = n_post[i]; s < 16; s++) post_b[i][s] = 0;
    }
    for (size_t k = 0; k < (size_t)N * N; k++) t[k] = 0.0f;
    for (int k = 0; k < N * 16; k++) u[k] = rand() / (float)RAND_MAX;
    for (int i = 0; i < N; i++)
        for (int g = 0; g < 4; g++)
            for (int c = 0; c < 16; c++) {
                float s = 0.0f;
                for (int m = 0; m < 4; m++)
                    if (c >> m & 1) s += u[i * 16 + 4 * g + m];
                groups[i * 64 + g * 16 + c] = s;
            }
    for (int j = 0; j < 1024; j++) {
        int m = 0;
        for (int b = 0; b < 16; b++)
            if (rand() % 20 == 0) m |= 1 << b;
        mask[j] = m;
        for (int k = 0; k < 4; k++) code[k][j] = (m >> (4 * k)) & 15;
        for (int l = 0; l < LAYERS; l++) {
            layer[l][j] = m ? __builtin_ctz(m) : 16;
            m &= m - 1;
        }
    }
    const double bound_bytes = 8.0 * N * N;
    printf("threads %d, %d x %d float32, batch 16, spike rate 0.05\n", omp_get_max_threads(), N, N);
    const char *names[] = {"floor", "nibble", "codes", "layers3", "rows"};
    void (*passes[])(void) = {floor_pass, nibble_pass, codes_pass, layers_pass, rows_pass};
    for (int v = 0; v < 5; v++) {
        const double us = median_us(passes[v]);
        printf("%-8s %7.1f us  (%.1f GB/s of weight read + write)\n", names[v], us, bound_bytes / us * 1e-3);
    }
    return 0;
}
