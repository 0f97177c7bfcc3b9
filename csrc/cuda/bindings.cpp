// CUDA backend registration of the kfops ops: argument checks (shared with the CPU backend),
// device guard and current stream, then the launchers of degrade_kernels.cu and tv_kernels.cu.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../degrade_common.h"
#include "launchers.h"

namespace kf {
namespace {

cuda::DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return cuda::DType::kFloat32;
    case at::kDouble: return cuda::DType::kFloat64;
    case at::kHalf: return cuda::DType::kFloat16;
    case at::kBFloat16: return cuda::DType::kBFloat16;
    default:
      TORCH_CHECK(false, "kfops: CUDA degradation ops support float32, float64, float16 and "
                  "bfloat16, got ", t.scalar_type());
  }
  return cuda::DType::kFloat32;
}

cuda::Problem problem(int64_t B, int64_t C, const KernelLayout& kl, const Geometry& g) {
  cuda::Problem p;
  p.B = B;
  p.C = C;
  p.Bk = kl.Bk;
  p.Ck = kl.Ck;
  p.H = g.gy.n;
  p.W = g.gx.n;
  p.Ho = g.gy.n_out;
  p.Wo = g.gx.n_out;
  p.Kh = int(kl.Kh);
  p.Kw = int(kl.Kw);
  p.s = g.gx.s;
  p.origin_y = g.gy.origin;
  p.origin_x = g.gx.origin;
  p.mode = g.mode;
  return p;
}

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "kfops: CUDA launch of ", what, " failed: ",
              cudaGetErrorString(err));
}

at::Tensor degrade_cuda(const at::Tensor& x_, const at::Tensor& k_, int64_t s,
                        c10::string_view padding) {
  check_image(x_, "x");
  check_same(x_, k_, "x", "kernel");
  const int mode = parse_padding(std::string(padding));
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto x = x_.contiguous();
  const auto k = k_.contiguous();
  const int64_t B = x.size(0), C = x.size(1);
  const KernelLayout kl = kernel_layout(k.sizes(), B, C);
  const Geometry g = make_geometry(x.size(2), x.size(3), kl.Kh, kl.Kw, s, mode);
  auto y = at::empty({B, C, g.gy.n_out, g.gx.n_out}, x.options());
  if (y.numel() == 0) return y;
  check_launch(cuda::degrade_forward(dtype_of(x), x.data_ptr(), k.data_ptr(), y.data_ptr(),
                                     problem(B, C, kl, g),
                                     c10::cuda::getCurrentCUDAStream().stream()),
               "degrade");
  return y;
}

at::Tensor degrade_adjoint_cuda(const at::Tensor& y_, const at::Tensor& k_, int64_t s,
                                c10::string_view padding, c10::IntArrayRef hr_size) {
  check_image(y_, "y");
  check_same(y_, k_, "y", "kernel");
  TORCH_CHECK(hr_size.size() == 2, "kfops: hr_size must be [H, W]");
  const int mode = parse_padding(std::string(padding));
  const c10::cuda::CUDAGuard guard(y_.device());
  const auto y = y_.contiguous();
  const auto k = k_.contiguous();
  const int64_t B = y.size(0), C = y.size(1);
  const KernelLayout kl = kernel_layout(k.sizes(), B, C);
  const Geometry g = make_geometry(hr_size[0], hr_size[1], kl.Kh, kl.Kw, s, mode);
  TORCH_CHECK(y.size(2) == g.gy.n_out && y.size(3) == g.gx.n_out,
              "kfops: LR size does not match hr_size for this scale and kernel");
  auto x = at::empty({B, C, hr_size[0], hr_size[1]}, y.options());
  if (x.numel() == 0) return x;
  check_launch(cuda::degrade_adjoint(dtype_of(y), y.data_ptr(), k.data_ptr(), x.data_ptr(),
                                     problem(B, C, kl, g),
                                     c10::cuda::getCurrentCUDAStream().stream()),
               "degrade_adjoint");
  return x;
}

at::Tensor degrade_kernel_grad_cuda(const at::Tensor& x_, const at::Tensor& gy_, int64_t s,
                                    c10::string_view padding, c10::IntArrayRef kshape) {
  check_image(x_, "x");
  check_image(gy_, "grad_y");
  check_same(x_, gy_, "x", "grad_y");
  const int mode = parse_padding(std::string(padding));
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto x = x_.contiguous();
  const auto gy = gy_.contiguous();
  const int64_t B = x.size(0), C = x.size(1);
  TORCH_CHECK(gy.size(0) == B && gy.size(1) == C, "kfops: grad_y batch/channels mismatch");
  const KernelLayout kl = kernel_layout(kshape, B, C);
  const Geometry g = make_geometry(x.size(2), x.size(3), kl.Kh, kl.Kw, s, mode);
  TORCH_CHECK(gy.size(2) == g.gy.n_out && gy.size(3) == g.gx.n_out,
              "kfops: grad_y size does not match the degraded size");
  auto gk = at::empty(kshape, x.options());
  check_launch(cuda::degrade_kernel_grad(dtype_of(x), x.data_ptr(), gy.data_ptr(),
                                         gk.data_ptr(), problem(B, C, kl, g),
                                         c10::cuda::getCurrentCUDAStream().stream()),
               "degrade_kernel_grad");
  return gk;
}

at::Tensor tv_grad_cuda(const at::Tensor& x_, double smooth) {
  check_image(x_, "x");
  TORCH_CHECK(x_.scalar_type() == at::kFloat || x_.scalar_type() == at::kDouble,
              "kfops: CUDA tv_grad supports float32 and float64, got ", x_.scalar_type());
  const c10::cuda::CUDAGuard guard(x_.device());
  const auto x = x_.contiguous();
  auto g = at::empty_like(x);
  check_launch(cuda::tv_grad(dtype_of(x), x.const_data_ptr(), g.mutable_data_ptr(),
                             x.size(0) * x.size(1), int(x.size(2)), int(x.size(3)), smooth,
                             c10::cuda::getCurrentCUDAStream()),
               "tv_grad");
  return g;
}

}  // namespace
}  // namespace kf

TORCH_LIBRARY_IMPL(kfops, CUDA, m) {
  m.impl("degrade", &kf::degrade_cuda);
  m.impl("degrade_adjoint", &kf::degrade_adjoint_cuda);
  m.impl("degrade_kernel_grad", &kf::degrade_kernel_grad_cuda);
  m.impl("tv_grad", &kf::tv_grad_cuda);
}
