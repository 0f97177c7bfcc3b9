// CUDA kernel of kfops::tv_grad: one thread per pixel, the per-pixel formula of
// common/tv_math.h (the same code the CPU backend runs). float32 and float64.
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/tv_math.h"
#include "launchers.h"

namespace kf {
namespace cuda {
namespace {

constexpr int kTvThreads = 256;

template <typename T>
__global__ void tv_grad_kernel(const T* __restrict__ x, T* __restrict__ g, int64_t planes,
                               int H, int W, T delta2) {
  const int64_t plane_size = static_cast<int64_t>(H) * W;
  const int64_t n = planes * plane_size;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t plane = idx / plane_size;
    const int64_t rem = idx - plane * plane_size;
    const int i = static_cast<int>(rem / W), j = static_cast<int>(rem % W);
    g[idx] = tv_grad_at<T>(x + plane * plane_size, H, W, i, j, delta2);
  }
}

template <typename T>
cudaError_t launch_tv_grad(const void* x, void* g, int64_t planes, int H, int W, double smooth,
                           cudaStream_t st) {
  const int64_t n = planes * H * W;
  const int64_t blocks64 = (n + kTvThreads - 1) / kTvThreads;
  const int blocks = static_cast<int>(blocks64 < 65535 * 32 ? blocks64 : 65535 * 32);
  tv_grad_kernel<T><<<blocks, kTvThreads, 0, st>>>(static_cast<const T*>(x), static_cast<T*>(g),
                                                   planes, H, W, static_cast<T>(smooth * smooth));
  return cudaGetLastError();
}

}  // namespace

cudaError_t tv_grad(DType dt, const void* x, void* g, int64_t planes, int H, int W,
                    double smooth, cudaStream_t stream) {
  if (planes * H * W == 0) return cudaSuccess;
  switch (dt) {
    case DType::kFloat32: return launch_tv_grad<float>(x, g, planes, H, W, smooth, stream);
    case DType::kFloat64: return launch_tv_grad<double>(x, g, planes, H, W, smooth, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace kf
