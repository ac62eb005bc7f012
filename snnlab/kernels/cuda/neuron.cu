// Fused IF / LIF neuron kernels: one thread per neuron, time as the inner loop,
// the membrane potential kept in a register. Loaded at run time with
// cupy.RawModule (NVRTC) and compiled by nvcc in the test suite.
//
// Equations (x = X[t], v = V[t-1], all arithmetic in acc_t = float, or double
// for double tensors; every product and sum is rounded separately, with no
// fused multiply-add, so float32 results match the torch reference exactly):
//   charge 0 (IF):                          H = v + x
//   charge 1 (LIF, input scaled by 1/tau):  H = v + (x - (v - v_reset)) * rtau
//   charge 2 (LIF, input not scaled):       H = (v + x) + (v_reset - v) * rtau
//   S = [H >= v_th]
//   hard reset: V = S ? v_reset : H;   soft reset: V = S ? H - v_th : H
//   (the LIF charge uses v_reset = 0 for the soft reset)
// Gradients:
//   dS/dH = g'(H - v_th; alpha)  (surrogate chosen by index, see snn_surrogate_grad)
//   dV/dH = hard: 1 - S + (v_reset - H) dS/dH  (1 - S with detach_reset)
//           soft: 1 - v_th dS/dH               (1 with detach_reset)
//   dH/dX = rtau for charge 1, else 1;  dH/dV = 1 - rtau for charges 1 and 2, else 1
//   dL/dH[t] = dL/dS[t] dS/dH[t] + dL/dV[t] dV/dH[t]
//   dL/dX[t] = dL/dH[t] dH/dX,  dL/dV[t-1] = dL/dH[t] dH/dV (+ dL/dv_seq[t-1])
// Layout: sequences are [T, N] contiguous (element (t, i) at t * N + i, 64-bit
// index), states [N]. Optional outputs/inputs are null pointers when unused.
// Scalars are passed as double / long long.

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
__device__ __forceinline__ unsigned short __half_as_ushort(const __half h) { return h.x; }
__device__ __forceinline__ __half __ushort_as_half(const unsigned short u) { __half h; h.x = u; return h; }
__device__ __forceinline__ unsigned short __bfloat16_as_ushort(const __nv_bfloat16 b) { return b.x; }
__device__ __forceinline__ __nv_bfloat16 __ushort_as_bfloat16(const unsigned short u) {
    __nv_bfloat16 b;
    b.x = u;
    return b;
}
#endif

// ------------------------------------------------------------------ numeric helpers

template <typename scalar_t> struct snn_acc { typedef float type; };
template <> struct snn_acc<double> { typedef double type; };

__device__ __forceinline__ float snn_load(const float* p) { return *p; }
__device__ __forceinline__ double snn_load(const double* p) { return *p; }
__device__ __forceinline__ float snn_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float snn_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void snn_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void snn_store(double* p, double v) { *p = v; }
__device__ __forceinline__ void snn_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void snn_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// H as the backward kernel reads it back, which recomputes S = [H >= v_th] from it: a 16-bit H
// that rounding carried across the threshold is moved back by one unit in the last place, to the
// side the forward's spike was decided on (the nearest 16-bit value there), so both see the same
// spikes. float / double H are stored as they are.
__device__ __forceinline__ unsigned short snn_step16(unsigned short bits, bool up) {
    if ((bits & 0x7fffu) == 0) return up ? 0x0001u : 0x8001u;  // from +-0 to the smallest subnormal
    const bool negative = (bits & 0x8000u) != 0;
    return (unsigned short)(up != negative ? bits + 1u : bits - 1u);  // sign-magnitude: one step
}
__device__ __forceinline__ void snn_store_h(float* p, float h, bool, float) { *p = h; }
__device__ __forceinline__ void snn_store_h(double* p, double h, bool, double) { *p = h; }
__device__ __forceinline__ void snn_store_h(__half* p, float h, bool fired, float v_th) {
    __half r = __float2half_rn(h);
    if ((__half2float(r) >= v_th) != fired) r = __ushort_as_half(snn_step16(__half_as_ushort(r), fired));
    *p = r;
}
__device__ __forceinline__ void snn_store_h(__nv_bfloat16* p, float h, bool fired, float v_th) {
    __nv_bfloat16 r = __float2bfloat16_rn(h);
    if ((__bfloat162float(r) >= v_th) != fired) {
        r = __ushort_as_bfloat16(snn_step16(__bfloat16_as_ushort(r), fired));
    }
    *p = r;
}

__device__ __forceinline__ float snn_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double snn_add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float snn_sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double snn_sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float snn_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double snn_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float snn_exp(float a) { return expf(a); }
__device__ __forceinline__ double snn_exp(double a) { return exp(a); }
__device__ __forceinline__ float snn_abs(float a) { return fabsf(a); }
__device__ __forceinline__ double snn_abs(double a) { return fabs(a); }

#define SNN_PI 3.14159265358979323846

// g'(x; alpha) of snnlab.surrogate, by index:
// 0 ATan, 1 Sigmoid, 2 PiecewiseQuadratic, 3 PiecewiseExp, 4 SoftSign,
// 5 SuperSpike, 6 Erf, 7 Rect, 8 STCARect, 9 STBPGaussian.
template <typename acc_t>
__device__ __forceinline__ acc_t snn_surrogate_grad(int index, acc_t x, double alpha_d) {
    const acc_t alpha = (acc_t)alpha_d;
    const acc_t one = (acc_t)1.0;
    switch (index) {
    case 0: {  // alpha / 2 / (1 + (pi / 2 * alpha * x)^2)
        const acc_t u = snn_mul((acc_t)(SNN_PI / 2.0 * alpha_d), x);
        return (acc_t)(alpha_d / 2.0) / snn_add(one, snn_mul(u, u));
    }
    case 1: {  // alpha * sg * (1 - sg), sg = sigmoid(alpha * x)
        const acc_t sg = one / (one + snn_exp(-snn_mul(alpha, x)));
        return snn_mul(snn_mul(alpha, sg), snn_sub(one, sg));
    }
    case 2: {  // alpha - alpha^2 |x| inside |x| <= 1 / alpha, else 0
        const acc_t ax = snn_abs(x);
        if (ax > (acc_t)(1.0 / alpha_d)) return (acc_t)0.0;
        return snn_sub(alpha, snn_mul((acc_t)(alpha_d * alpha_d), ax));
    }
    case 3:  // alpha / 2 * exp(-alpha |x|)
        return snn_mul((acc_t)(alpha_d / 2.0), snn_exp(snn_mul(-alpha, snn_abs(x))));
    case 4: {  // 1 / (2 alpha (1 / alpha + |x|)^2)
        const acc_t d = snn_add((acc_t)(1.0 / alpha_d), snn_abs(x));
        return one / snn_mul((acc_t)(2.0 * alpha_d), snn_mul(d, d));
    }
    case 5: {  // alpha / (|x| + 1)^2
        const acc_t d = snn_add(snn_abs(x), one);
        return alpha / snn_mul(d, d);
    }
    case 6: {  // alpha / sqrt(pi) * exp(-(alpha x)^2)
        const acc_t u = snn_mul(alpha, x);
        return snn_mul((acc_t)(alpha_d / 1.77245385090551602730), snn_exp(-snn_mul(u, u)));
    }
    case 7:  // alpha * [|x| < 1 / (2 alpha)]
        return snn_abs(x) < (acc_t)(0.5 / alpha_d) ? alpha : (acc_t)0.0;
    case 8:  // [|x| < alpha]
        return snn_abs(x) < alpha ? one : (acc_t)0.0;
    case 9:  // exp(-x^2 / (2 alpha)) / (2 pi alpha)
        return snn_exp(-snn_mul(x, x) / (acc_t)(2.0 * alpha_d)) / (acc_t)(2.0 * SNN_PI * alpha_d);
    default:
        return (acc_t)0.0;
    }
}

template <typename acc_t>
__device__ __forceinline__ acc_t snn_charge(int charge, acc_t x, acc_t v, acc_t v_reset, acc_t rtau) {
    if (charge == 0) return snn_add(v, x);
    if (charge == 1) return snn_add(v, snn_mul(snn_sub(x, snn_sub(v, v_reset)), rtau));
    return snn_add(snn_add(v, x), snn_mul(snn_sub(v_reset, v), rtau));
}

// dV/dH for a step that charged to h and fired spike (0 or 1).
template <typename acc_t>
__device__ __forceinline__ acc_t snn_grad_v_to_h(
    acc_t h, acc_t spike, acc_t grad_s_to_h, acc_t v_th, acc_t v_reset, int soft_reset, int detach_reset) {
    const acc_t one = (acc_t)1.0;
    if (soft_reset) return detach_reset ? one : snn_sub(one, snn_mul(v_th, grad_s_to_h));
    const acc_t keep = snn_sub(one, spike);
    return detach_reset ? keep : snn_add(keep, snn_mul(snn_sub(v_reset, h), grad_s_to_h));
}

// ------------------------------------------------------------------ multi-step forward

template <typename scalar_t>
__device__ __forceinline__ void snn_neuron_forward(
    const scalar_t* __restrict__ x_seq, const scalar_t* __restrict__ v_init,
    scalar_t* __restrict__ spike_seq, scalar_t* __restrict__ v_last,
    scalar_t* __restrict__ h_seq, scalar_t* __restrict__ v_seq,
    scalar_t* __restrict__ grad_s_to_h, scalar_t* __restrict__ grad_v_to_h,
    long long n, long long steps, double v_th_d, double v_reset_d, double rtau_d, long long charge,
    long long soft_reset, double alpha, long long surrogate, long long detach_reset) {
    typedef typename snn_acc<scalar_t>::type acc_t;
    const acc_t v_th = (acc_t)v_th_d;
    const acc_t v_reset = soft_reset ? (acc_t)0.0 : (acc_t)v_reset_d;
    const acc_t rtau = (acc_t)rtau_d;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        acc_t v = snn_load(v_init + i);
        long long k = i;
        acc_t x_next = snn_load(x_seq + k);
        for (long long t = 0; t < steps; ++t, k += n) {
            const acc_t x = x_next;
            if (t + 1 < steps) x_next = snn_load(x_seq + k + n);
            const acc_t h = snn_charge((int)charge, x, v, v_reset, rtau);
            const bool fired = h >= v_th;
            const acc_t spike = fired ? (acc_t)1.0 : (acc_t)0.0;
            v = fired ? (soft_reset ? snn_sub(h, v_th) : v_reset) : h;
            snn_store(spike_seq + k, spike);
            if (h_seq) snn_store_h(h_seq + k, h, fired, v_th);
            if (v_seq) snn_store(v_seq + k, v);
            if (grad_s_to_h) {
                const acc_t gs = snn_surrogate_grad<acc_t>((int)surrogate, snn_sub(h, v_th), alpha);
                snn_store(grad_s_to_h + k, gs);
                snn_store(grad_v_to_h + k,
                          snn_grad_v_to_h(h, spike, gs, v_th, v_reset, (int)soft_reset, (int)detach_reset));
            }
        }
        snn_store(v_last + i, v);
    }
}

// ------------------------------------------------------------------ multi-step backward from H

template <typename scalar_t>
__device__ __forceinline__ void snn_neuron_backward(
    const scalar_t* __restrict__ grad_spike_seq, const scalar_t* __restrict__ grad_v_last,
    const scalar_t* __restrict__ grad_v_seq, const scalar_t* __restrict__ h_seq,
    scalar_t* __restrict__ grad_x_seq, scalar_t* __restrict__ grad_v_init,
    long long n, long long steps, double v_th_d, double v_reset_d, double rtau_d, long long charge,
    long long soft_reset, double alpha, long long surrogate, long long detach_reset) {
    typedef typename snn_acc<scalar_t>::type acc_t;
    const acc_t v_th = (acc_t)v_th_d;
    const acc_t v_reset = soft_reset ? (acc_t)0.0 : (acc_t)v_reset_d;
    const acc_t rtau = (acc_t)rtau_d;
    const acc_t one = (acc_t)1.0;
    const acc_t h_to_x = charge == 1 ? rtau : one;
    const acc_t h_to_v = charge == 0 ? one : snn_sub(one, rtau);
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        acc_t grad_v = grad_v_last ? snn_load(grad_v_last + i) : (acc_t)0.0;
        for (long long t = steps - 1; t >= 0; --t) {
            const long long k = t * n + i;
            if (grad_v_seq) grad_v = snn_add(grad_v, snn_load(grad_v_seq + k));
            const acc_t h = snn_load(h_seq + k);
            const acc_t spike = h >= v_th ? one : (acc_t)0.0;
            const acc_t gs = snn_surrogate_grad<acc_t>((int)surrogate, snn_sub(h, v_th), alpha);
            const acc_t gv = snn_grad_v_to_h(h, spike, gs, v_th, v_reset, (int)soft_reset, (int)detach_reset);
            acc_t grad_h = snn_mul(grad_v, gv);
            if (grad_spike_seq) grad_h = snn_add(snn_mul(snn_load(grad_spike_seq + k), gs), grad_h);
            snn_store(grad_x_seq + k, snn_mul(grad_h, h_to_x));
            grad_v = snn_mul(grad_h, h_to_v);
        }
        snn_store(grad_v_init + i, grad_v);
    }
}

// ------------------------------------------------------------------ BPTT from saved partials
// Reference-003 form: dL/dH[t] = gS[t] dS/dH[t] + dL/dV[t] dV/dH[t]; T = 1 is one step.

template <typename scalar_t>
__device__ __forceinline__ void snn_bptt(
    const scalar_t* __restrict__ grad_spike_seq, const scalar_t* __restrict__ grad_v_next,
    const scalar_t* __restrict__ grad_s_to_h, const scalar_t* __restrict__ grad_v_to_h,
    scalar_t* __restrict__ grad_x_seq, scalar_t* __restrict__ grad_v_out,
    long long n, long long steps, double h_to_x_d, double h_to_v_d) {
    typedef typename snn_acc<scalar_t>::type acc_t;
    const acc_t h_to_x = (acc_t)h_to_x_d;
    const acc_t h_to_v = (acc_t)h_to_v_d;
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        acc_t grad_v = snn_load(grad_v_next + i);
        for (long long t = steps - 1; t >= 0; --t) {
            const long long k = t * n + i;
            const acc_t grad_h = snn_add(snn_mul(snn_load(grad_spike_seq + k), snn_load(grad_s_to_h + k)),
                                         snn_mul(grad_v, snn_load(grad_v_to_h + k)));
            snn_store(grad_x_seq + k, snn_mul(grad_h, h_to_x));
            grad_v = snn_mul(grad_h, h_to_v);
        }
        snn_store(grad_v_out + i, grad_v);
    }
}

// ------------------------------------------------------------------ entry points, one per dtype

#define SNN_NEURON_KERNELS(suffix, scalar_t)                                                          \
    extern "C" __global__ void snn_neuron_forward_##suffix(                                          \
        const scalar_t* __restrict__ x_seq, const scalar_t* __restrict__ v_init,                     \
        scalar_t* __restrict__ spike_seq, scalar_t* __restrict__ v_last, scalar_t* __restrict__ h_seq, \
        scalar_t* __restrict__ v_seq, scalar_t* __restrict__ grad_s_to_h,                             \
        scalar_t* __restrict__ grad_v_to_h, long long n, long long steps, double v_th,                \
        double v_reset, double rtau, long long charge, long long soft_reset, double alpha,           \
        long long surrogate, long long detach_reset) {                                                \
        snn_neuron_forward<scalar_t>(x_seq, v_init, spike_seq, v_last, h_seq, v_seq, grad_s_to_h,     \
                                     grad_v_to_h, n, steps, v_th, v_reset, rtau, charge, soft_reset,  \
                                     alpha, surrogate, detach_reset);                                 \
    }                                                                                                 \
    extern "C" __global__ void snn_neuron_backward_##suffix(                                         \
        const scalar_t* __restrict__ grad_spike_seq, const scalar_t* __restrict__ grad_v_last,       \
        const scalar_t* __restrict__ grad_v_seq, const scalar_t* __restrict__ h_seq,                 \
        scalar_t* __restrict__ grad_x_seq, scalar_t* __restrict__ grad_v_init, long long n,          \
        long long steps, double v_th, double v_reset, double rtau, long long charge,                  \
        long long soft_reset, double alpha, long long surrogate, long long detach_reset) {            \
        snn_neuron_backward<scalar_t>(grad_spike_seq, grad_v_last, grad_v_seq, h_seq, grad_x_seq,     \
                                      grad_v_init, n, steps, v_th, v_reset, rtau, charge, soft_reset, \
                                      alpha, surrogate, detach_reset);                                \
    }                                                                                                 \
    extern "C" __global__ void snn_bptt_##suffix(                                                    \
        const scalar_t* __restrict__ grad_spike_seq, const scalar_t* __restrict__ grad_v_next,       \
        const scalar_t* __restrict__ grad_s_to_h, const scalar_t* __restrict__ grad_v_to_h,          \
        scalar_t* __restrict__ grad_x_seq, scalar_t* __restrict__ grad_v_out, long long n,           \
        long long steps, double h_to_x, double h_to_v) {                                              \
        snn_bptt<scalar_t>(grad_spike_seq, grad_v_next, grad_s_to_h, grad_v_to_h, grad_x_seq,         \
                           grad_v_out, n, steps, h_to_x, h_to_v);                                     \
    }

SNN_NEURON_KERNELS(f32, float)
SNN_NEURON_KERNELS(f64, double)
SNN_NEURON_KERNELS(f16, __half)
SNN_NEURON_KERNELS(bf16, __nv_bfloat16)
