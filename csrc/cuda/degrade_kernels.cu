// CUDA kernels of the degradation ops. Every thread evaluates the shared per-element
// formulas of common/degrade_math.h (the CPU tests run the same functions), accumulating
// in float for float/half/bfloat16 storage and in double for double.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/degrade_math.h"
#include "launchers.h"

namespace kf {

template <> struct AccType<__half> { using type = float; };
template <> struct AccType<__nv_bfloat16> { using type = float; };
template <>
__host__ __device__ inline float to_acc<float, __half>(const __half& v) {
  return __half2float(v);
}
template <>
__host__ __device__ inline float to_acc<float, __nv_bfloat16>(const __nv_bfloat16& v) {
  return __bfloat162float(v);
}
template <>
__host__ __device__ inline __half from_acc<__half, float>(const float& v) {
  return __float2half(v);
}
template <>
__host__ __device__ inline __nv_bfloat16 from_acc<__nv_bfloat16, float>(const float& v) {
  return __float2bfloat16(v);
}

namespace cuda {
namespace {

constexpr int kThreads = 256;

struct Geo {
  AxisGeom gy, gx;
};

Geo make_geo(const Problem& p) {
  Geo g;
  g.gy.n = p.H;
  g.gy.n_out = p.Ho;
  g.gy.origin = p.origin_y;
  g.gy.K = p.Kh;
  g.gy.s = p.s;
  g.gx.n = p.W;
  g.gx.n_out = p.Wo;
  g.gx.origin = p.origin_x;
  g.gx.K = p.Kw;
  g.gx.s = p.s;
  return g;
}

__device__ __forceinline__ int64_t kernel_plane(const Problem& p, int64_t b, int64_t c) {
  return (p.Bk == 1 ? 0 : b) * p.Ck + (p.Ck == 1 ? 0 : c);
}

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, const T* __restrict__ k,
                               T* __restrict__ y, Problem p, Geo g) {
  using Acc = typename AccType<T>::type;
  const int64_t n = p.B * p.C * p.Ho * p.Wo;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int j = int(e % p.Wo);
    const int i = int((e / p.Wo) % p.Ho);
    const int64_t plane = e / (int64_t(p.Ho) * p.Wo);
    const int64_t kp = kernel_plane(p, plane / p.C, plane % p.C);
    const Acc v = degrade_point<T, Acc>(x + plane * p.H * p.W, k + kp * p.Kh * p.Kw, g.gy,
                                        g.gx, p.mode, i, j);
    y[e] = from_acc<T>(v);
  }
}

template <typename T>
__global__ void adjoint_kernel(const T* __restrict__ y, const T* __restrict__ k,
                               T* __restrict__ x, Problem p, Geo g) {
  using Acc = typename AccType<T>::type;
  const int64_t n = p.B * p.C * p.H * p.W;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int q = int(e % p.W);
    const int r = int((e / p.W) % p.H);
    const int64_t plane = e / (int64_t(p.H) * p.W);
    const int64_t kp = kernel_plane(p, plane / p.C, plane % p.C);
    const Acc v = adjoint_point<T, Acc>(y + plane * p.Ho * p.Wo, k + kp * p.Kh * p.Kw, g.gy,
                                        g.gx, p.mode, r, q);
    x[e] = from_acc<T>(v);
  }
}

// One block per kernel tap (kplane, u, v): the threads split the (plane, i, j) terms of the
// planes that use this kernel plane, then reduce in shared memory.
template <typename T>
__global__ void kernel_grad_kernel(const T* __restrict__ x, const T* __restrict__ gy,
                                   T* __restrict__ gk, Problem p, Geo g) {
  using Acc = typename AccType<T>::type;
  __shared__ Acc red[kThreads];
  const int64_t tap = blockIdx.x;
  const int v = int(tap % p.Kw);
  const int u = int((tap / p.Kw) % p.Kh);
  const int64_t kp = tap / (int64_t(p.Kh) * p.Kw);
  const int64_t terms = int64_t(p.Ho) * p.Wo;
  const int64_t planes = p.B * p.C;
  Acc acc = Acc(0);
  for (int64_t plane = 0; plane < planes; ++plane) {
    if (kernel_plane(p, plane / p.C, plane % p.C) != kp) continue;
    const T* xp = x + plane * p.H * p.W;
    const T* gp = gy + plane * terms;
    for (int64_t t = threadIdx.x; t < terms; t += blockDim.x) {
      const int i = int(t / p.Wo), j = int(t % p.Wo);
      const int rr = pad_index(g.gy.origin + g.gy.s * i + u, p.H, p.mode);
      const int cc = pad_index(g.gx.origin + g.gx.s * j + v, p.W, p.mode);
      if (rr >= 0 && cc >= 0) acc += to_acc<Acc>(gp[t]) * to_acc<Acc>(xp[int64_t(rr) * p.W + cc]);
    }
  }
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) gk[tap] = from_acc<T>(red[0]);
}

int grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

template <typename T>
cudaError_t launch_forward(const void* x, const void* k, void* y, const Problem& p,
                           cudaStream_t st) {
  const int64_t n = p.B * p.C * p.Ho * p.Wo;
  forward_kernel<T><<<grid_for(n), kThreads, 0, st>>>(
      static_cast<const T*>(x), static_cast<const T*>(k), static_cast<T*>(y), p, make_geo(p));
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_adjoint(const void* y, const void* k, void* x, const Problem& p,
                           cudaStream_t st) {
  const int64_t n = p.B * p.C * p.H * p.W;
  adjoint_kernel<T><<<grid_for(n), kThreads, 0, st>>>(
      static_cast<const T*>(y), static_cast<const T*>(k), static_cast<T*>(x), p, make_geo(p));
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_kernel_grad(const void* x, const void* gy, void* gk, const Problem& p,
                               cudaStream_t st) {
  const int64_t taps = p.Bk * p.Ck * p.Kh * p.Kw;
  kernel_grad_kernel<T><<<int(taps), kThreads, 0, st>>>(
      static_cast<const T*>(x), static_cast<const T*>(gy), static_cast<T*>(gk), p,
      make_geo(p));
  return cudaGetLastError();
}

}  // namespace

#define KF_DISPATCH(dt, fn, ...)                                             \
  switch (dt) {                                                              \
    case DType::kFloat32: return fn<float>(__VA_ARGS__);                     \
    case DType::kFloat64: return fn<double>(__VA_ARGS__);                    \
    case DType::kFloat16: return fn<__half>(__VA_ARGS__);                    \
    case DType::kBFloat16: return fn<__nv_bfloat16>(__VA_ARGS__);            \
  }                                                                          \
  return cudaErrorInvalidValue

cudaError_t degrade_forward(DType dt, const void* x, const void* k, void* y, const Problem& p,
                            cudaStream_t stream) {
  KF_DISPATCH(dt, launch_forward, x, k, y, p, stream);
}

cudaError_t degrade_adjoint(DType dt, const void* y, const void* k, void* x, const Problem& p,
                            cudaStream_t stream) {
  KF_DISPATCH(dt, launch_adjoint, y, k, x, p, stream);
}

cudaError_t degrade_kernel_grad(DType dt, const void* x, const void* gy, void* gk,
                                const Problem& p, cudaStream_t stream) {
  KF_DISPATCH(dt, launch_kernel_grad, x, gy, gk, p, stream);
}

}  // namespace cuda
}  // namespace kf
