// Fused STDP / mSTDP kernels for a linear synapse W [n_out, n_in]: one pass over
// W per time step, the trace decay done on the fly.
//
// Per sample b (spikes s_pre [B, n_in], s_post [B, n_out]; traces likewise):
//   x_pre[b, i]  <- euler ? x_pre - x_pre / tau_pre + s_pre : x_pre * decay_pre + s_pre
//   x_post[b, j] <- euler ? x_post - x_post / tau_post + s_post : x_post * decay_post + s_post
//   e[b, j, i]    = c_b * (G_post[j, i] s_post[b, j] x_pre[b, i] - G_pre[j, i] x_post[b, j] s_pre[b, i])
// with c_b = scale * (sample_coeff ? sample_coeff[b] : 1) and
// G = (g ? g[j, i] : 1) * c (g a modulation tensor, e.g. W itself, c a constant).
// per_sample = 0: out[j, i] = (accumulate ? out[j, i] : 0) + sum_b e[b, j, i]   (STDP)
// per_sample = 1: out[b, j, i] = e[b, j, i]                                    (mSTDP eligibility)
// The new traces go to x_pre_out / x_post_out (never in place: other blocks
// still read the old ones); a null x_*_in means a zero trace.
// Block: blockDim.x threads along i, SNN_ROWS rows of W per tile, samples in
// chunks of SNN_BCHUNK held in registers (pre side) and shared memory (post side).

#ifndef SNN_NO_CUDA_FP16_HEADERS
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#else
// Where the CUDA headers cannot be found at run time (NVRTC without a CUDA
// include path), the 16-bit types and the four conversions used here are
// defined from their bit layouts: IEEE binary16 through the PTX cvt
// instructions, bfloat16 as the top half of a float (round to nearest even).
struct __align__(2) __half { unsigned short x; };
struct __align__(2) __nv_bfloat16 { unsigned short x; };
__device__ __forceinline__ float __half2float(const __half h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.x));
    return f;
}
__device__ __forceinline__ __half __float2half_rn(const float f) {
    __half h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.x) : "f"(f));
    return h;
}
__device__ __forceinline__ float __bfloat162float(const __nv_bfloat16 b) {
    return __uint_as_float(((unsigned int)b.x) << 16);
}
__device__ __forceinline__ __nv_bfloat16 __float2bfloat16_rn(const float f) {
    unsigned int u = __float_as_uint(f);
    __nv_bfloat16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        b.x = (unsigned short)((u >> 16) | 0x0040u);  // NaN stays a (quiet) NaN
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
        b.x = (unsigned short)(u >> 16);
    }
    return b;
}
#endif

#define SNN_ROWS 8
#define SNN_BCHUNK 16

template <typename scalar_t> struct snn_pacc { typedef float type; };
template <> struct snn_pacc<double> { typedef double type; };

__device__ __forceinline__ float snn_pload(const float* p) { return *p; }
__device__ __forceinline__ double snn_pload(const double* p) { return *p; }
__device__ __forceinline__ float snn_pload(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float snn_pload(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void snn_pstore(float* p, float v) { *p = v; }
__device__ __forceinline__ void snn_pstore(double* p, double v) { *p = v; }
__device__ __forceinline__ void snn_pstore(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void snn_pstore(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

template <typename acc_t>
__device__ __forceinline__ acc_t snn_trace_step(acc_t x, acc_t s, int euler, acc_t tau, acc_t decay) {
    return euler ? (x - x / tau) + s : x * decay + s;
}

template <typename scalar_t>
__device__ __forceinline__ void snn_stdp_linear(
    const scalar_t* __restrict__ s_pre, const scalar_t* __restrict__ s_post,
    const scalar_t* __restrict__ x_pre_in, const scalar_t* __restrict__ x_post_in,
    scalar_t* __restrict__ x_pre_out, scalar_t* __restrict__ x_post_out,
    const scalar_t* g_post, const scalar_t* g_pre, const scalar_t* __restrict__ sample_coeff,
    scalar_t* out, long long batch, long long n_out, long long n_in,
    long long euler, double tau_pre_d, double tau_post_d, double decay_pre_d, double decay_post_d,
    double c_post_d, double c_pre_d, double scale_d, long long per_sample, long long accumulate) {
    typedef typename snn_pacc<scalar_t>::type acc_t;
    __shared__ acc_t sh_s_post[SNN_ROWS][SNN_BCHUNK];
    __shared__ acc_t sh_x_post[SNN_ROWS][SNN_BCHUNK];
    const acc_t tau_pre = (acc_t)tau_pre_d, tau_post = (acc_t)tau_post_d;
    const acc_t decay_pre = (acc_t)decay_pre_d, decay_post = (acc_t)decay_post_d;
    const acc_t c_post = (acc_t)c_post_d, c_pre = (acc_t)c_pre_d, scale = (acc_t)scale_d;
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const bool col_ok = i < n_in;
    const long long plane = n_out * n_in;
    for (long long j0 = (long long)blockIdx.y * SNN_ROWS; j0 < n_out; j0 += (long long)gridDim.y * SNN_ROWS) {
        const bool first_tile = j0 == (long long)blockIdx.y * SNN_ROWS;
        for (long long b0 = 0; b0 < batch; b0 += SNN_BCHUNK) {
            const int nb = (int)(batch - b0 < SNN_BCHUNK ? batch - b0 : SNN_BCHUNK);
            __syncthreads();
            for (int idx = threadIdx.x; idx < SNN_ROWS * SNN_BCHUNK; idx += blockDim.x) {
                const int r = idx / SNN_BCHUNK, bb = idx % SNN_BCHUNK;
                const long long j = j0 + r;
                acc_t sp = (acc_t)0.0, xp = (acc_t)0.0;
                if (j < n_out && bb < nb) {
                    const long long q = (b0 + bb) * n_out + j;
                    sp = snn_pload(s_post + q);
                    const acc_t old = x_post_in ? snn_pload(x_post_in + q) : (acc_t)0.0;
                    xp = snn_trace_step(old, sp, (int)euler, tau_post, decay_post);
                    if (blockIdx.x == 0) snn_pstore(x_post_out + q, xp);
                    const acc_t cb = sample_coeff ? scale * snn_pload(sample_coeff + b0 + bb) : scale;
                    sp *= cb;
                    xp *= cb;
                }
                sh_s_post[r][bb] = sp;
                sh_x_post[r][bb] = xp;
            }
            __syncthreads();
            if (!col_ok) continue;
            acc_t s_pre_r[SNN_BCHUNK], x_pre_r[SNN_BCHUNK];
#pragma unroll
            for (int bb = 0; bb < SNN_BCHUNK; ++bb) {
                s_pre_r[bb] = (acc_t)0.0;
                x_pre_r[bb] = (acc_t)0.0;
                if (bb < nb) {
                    const long long q = (b0 + bb) * n_in + i;
                    const acc_t s = snn_pload(s_pre + q);
                    const acc_t old = x_pre_in ? snn_pload(x_pre_in + q) : (acc_t)0.0;
                    const acc_t x = snn_trace_step(old, s, (int)euler, tau_pre, decay_pre);
                    if (blockIdx.y == 0 && first_tile) snn_pstore(x_pre_out + q, x);
                    s_pre_r[bb] = s;
                    x_pre_r[bb] = x;
                }
            }
            for (int r = 0; r < SNN_ROWS; ++r) {
                const long long j = j0 + r;
                if (j >= n_out) break;
                const long long k = j * n_in + i;
                const acc_t raw_post = g_post ? snn_pload(g_post + k) : (acc_t)1.0;
                const acc_t raw_pre = g_pre == g_post ? raw_post : (g_pre ? snn_pload(g_pre + k) : (acc_t)1.0);
                const acc_t gp = raw_post * c_post;
                const acc_t gq = raw_pre * c_pre;
                if (per_sample) {
#pragma unroll
                    for (int bb = 0; bb < SNN_BCHUNK; ++bb) {
                        if (bb < nb) {
                            const acc_t e = gp * (sh_s_post[r][bb] * x_pre_r[bb])
                                            - gq * (sh_x_post[r][bb] * s_pre_r[bb]);
                            snn_pstore(out + (b0 + bb) * plane + k, e);
                        }
                    }
                } else {
                    acc_t a = (acc_t)0.0, c = (acc_t)0.0;
#pragma unroll
                    for (int bb = 0; bb < SNN_BCHUNK; ++bb) {
                        a += sh_s_post[r][bb] * x_pre_r[bb];
                        c += sh_x_post[r][bb] * s_pre_r[bb];
                    }
                    acc_t total = gp * a - gq * c;
                    if (accumulate || b0 > 0) total += snn_pload(out + k);
                    snn_pstore(out + k, total);
                }
            }
        }
    }
}

#define SNN_PLASTICITY_KERNELS(suffix, scalar_t)                                                      \
    extern "C" __global__ void snn_stdp_linear_##suffix(                                             \
        const scalar_t* __restrict__ s_pre, const scalar_t* __restrict__ s_post,                     \
        const scalar_t* __restrict__ x_pre_in, const scalar_t* __restrict__ x_post_in,               \
        scalar_t* __restrict__ x_pre_out, scalar_t* __restrict__ x_post_out, const scalar_t* g_post, \
        const scalar_t* g_pre, const scalar_t* __restrict__ sample_coeff, scalar_t* out,             \
        long long batch, long long n_out, long long n_in, long long euler, double tau_pre,           \
        double tau_post, double decay_pre, double decay_post, double c_post, double c_pre,          \
        double scale, long long per_sample, long long accumulate) {                                  \
        snn_stdp_linear<scalar_t>(s_pre, s_post, x_pre_in, x_post_in, x_pre_out, x_post_out, g_post, \
                                  g_pre, sample_coeff, out, batch, n_out, n_in, euler, tau_pre,      \
                                  tau_post, decay_pre, decay_post, c_post, c_pre, scale, per_sample, \
                                  accumulate);                                                        \
    }

SNN_PLASTICITY_KERNELS(f32, float)
SNN_PLASTICITY_KERNELS(f64, double)
SNN_PLASTICITY_KERNELS(f16, __half)
SNN_PLASTICITY_KERNELS(bf16, __nv_bfloat16)
