// Host-side launchers of the CUDA degradation kernels. Plain C++ (no ATen), so the .cu
// files compile with nvcc alone and the bindings include only this header.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kf {
namespace cuda {

enum class DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

// Sizes of one call. Axis geometry fields mirror kf::AxisGeom (common/degrade_math.h).
struct Problem {
  int64_t B, C;        // image batch and channels
  int64_t Bk, Ck;      // kernel batch and channels (1 = broadcast)
  int H, W, Ho, Wo;    // HR and LR sizes
  int Kh, Kw, s;       // kernel size and stride
  int origin_y, origin_x;
  int mode;            // kf::PadMode
};

cudaError_t degrade_forward(DType dt, const void* x, const void* k, void* y, const Problem& p,
                            cudaStream_t stream);
cudaError_t degrade_adjoint(DType dt, const void* y, const void* k, void* x, const Problem& p,
                            cudaStream_t stream);
// gk must hold Bk*Ck*Kh*Kw elements; it is overwritten (no need to zero it).
cudaError_t degrade_kernel_grad(DType dt, const void* x, const void* gy, void* gk,
                                const Problem& p, cudaStream_t stream);
// Gradient of the Charbonnier TV (tv_kernels.cu) of planes contiguous H x W planes;
// float32 and float64 only (cudaErrorInvalidValue otherwise).
cudaError_t tv_grad(DType dt, const void* x, void* g, int64_t planes, int H, int W,
                    double smooth, cudaStream_t stream);

}  // namespace cuda
}  // namespace kf
