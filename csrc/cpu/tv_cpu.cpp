// CPU backend of kfops::tv_grad (gradient of the Charbonnier TV): at::parallel_for over
// blocks of rows; within a block every TV term is computed once (tv_term of
// common/tv_math.h, the formula the CUDA kernel uses) into two row buffers, then combined
// per pixel (tv_combine). The block's first row recomputes the terms of the row above it.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/tv_math.h"
#include "../degrade_common.h"
#include "simd.h"

namespace kf {
namespace {

// Terms of row i (i < H-1) of one plane: gx[j], gy[j] for j < W-1, zero at j = W-1.
template <typename T>
KF_ALWAYS_INLINE void row_terms_impl(const T* x, int W, int i, T delta2, T* gx, T* gy) {
  const T* a = x + static_cast<int64_t>(i) * W;
  const T* b = a + W;
  for (int j = 0; j < W - 1; ++j) tv_term(a[j], a[j + 1], b[j], delta2, gx + j, gy + j);
  gx[W - 1] = 0;
  gy[W - 1] = 0;
}

KF_CLONES void row_terms(const float* x, int W, int i, float d2, float* gx, float* gy) {
  row_terms_impl<float>(x, W, i, d2, gx, gy);
}
KF_CLONES void row_terms(const double* x, int W, int i, double d2, double* gx, double* gy) {
  row_terms_impl<double>(x, W, i, d2, gx, gy);
}

template <typename T>
void tv_grad_rows(const T* x, T* g, int H, int W, int64_t begin, int64_t end, T delta2) {
  std::vector<T> buf(3 * static_cast<size_t>(W), T(0));
  T* gx = buf.data();
  T* gy = gx + W;
  T* gy_up = gy + W;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t plane = r / H;
    const int i = static_cast<int>(r % H);
    const T* xs = x + plane * H * W;
    if (i == 0) {
      std::fill(gy_up, gy_up + W, T(0));
    } else if (r == begin) {  // the row above belongs to another block: recompute it
      row_terms(xs, W, i - 1, delta2, gx, gy_up);
    }
    if (i < H - 1) {
      row_terms(xs, W, i, delta2, gx, gy);
    } else {
      std::fill(gx, gx + W, T(0));
      std::fill(gy, gy + W, T(0));
    }
    T* out = g + plane * H * W + static_cast<int64_t>(i) * W;
    out[0] = tv_combine(T(0), gy_up[0], gx[0], gy[0]);
    for (int j = 1; j < W; ++j) out[j] = tv_combine(gx[j - 1], gy_up[j], gx[j], gy[j]);
    std::swap(gy, gy_up);
  }
}

at::Tensor tv_grad_cpu(const at::Tensor& x_, double smooth) {
  check_image(x_, "x");
  TORCH_CHECK(x_.scalar_type() == at::kFloat || x_.scalar_type() == at::kDouble,
              "kfops: CPU tv_grad supports float32 and float64, got ", x_.scalar_type());
  const auto x = x_.contiguous();
  auto g = at::empty_like(x);
  const int64_t planes = x.size(0) * x.size(1);
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  if (g.numel() == 0) return g;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tv_grad_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* gp = g.mutable_data_ptr<scalar_t>();
    const auto delta2 = static_cast<scalar_t>(smooth * smooth);
    const int64_t grain = std::max<int64_t>(1, 32768 / W);  // ~32k pixels per task
    at::parallel_for(0, planes * H, grain, [&](int64_t begin, int64_t end) {
      tv_grad_rows<scalar_t>(xp, gp, H, W, begin, end, delta2);
    });
  });
  return g;
}

}  // namespace
}  // namespace kf

TORCH_LIBRARY_IMPL(kfops, CPU, m) { m.impl("tv_grad", &kf::tv_grad_cpu); }
