// CPU backend of the degradation ops: at::parallel_for over independent output rows or
// kernel rows, 32-byte SIMD inner loops (AVX2+FMA clone on x86-64), and the shared
// per-element formulas of common/degrade_math.h for every sample that touches padding.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../degrade_common.h"
#include "simd.h"

namespace kf {
namespace {

// Range [lo, hi] of LR samples j whose Kw taps starting at origin + s*j all lie in [0, n).
inline void interior_range(const AxisGeom& g, int* lo, int* hi) {
  *lo = imax(0, ceil_div(-g.origin, g.s));
  *hi = imin(g.n_out - 1, floor_div(g.n - g.K - g.origin, g.s));
}

// ---------------------------------------------------------------------------------------
// Forward: one LR row of one plane.
template <typename T>
KF_ALWAYS_INLINE void forward_row_impl(const T* x, const T* k, T* yrow, const Geometry& g,
                                       int i, const T** rows) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::L;
  const AxisGeom &gy = g.gy, &gx = g.gx;
  const int W = gx.n, Kw = gx.K, s = gx.s, Wo = gx.n_out;
  for (int u = 0; u < gy.K; ++u) {
    const int r = pad_index(gy.origin + gy.s * i + u, gy.n, g.mode);
    rows[u] = r < 0 ? nullptr : x + static_cast<int64_t>(r) * W;
  }
  int jlo, jhi;
  interior_range(gx, &jlo, &jhi);
  if (jhi < jlo) {  // no interior: every sample goes through the border path
    jlo = Wo;
    jhi = Wo - 1;
  }
  const int kfull = Kw - Kw % L;
  int j = jlo;
  for (; j + 3 <= jhi; j += 4) {
    V a0 = {}, a1 = {}, a2 = {}, a3 = {};
    T t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (int u = 0; u < gy.K; ++u) {
      const T* xr = rows[u];
      if (!xr) continue;
      xr += gx.origin + s * j;
      const T* kr = k + u * Kw;
      for (int c = 0; c < kfull; c += L) {
        const V kv = vload<T>(kr + c);
        a0 += kv * vload<T>(xr + c);
        a1 += kv * vload<T>(xr + s + c);
        a2 += kv * vload<T>(xr + 2 * s + c);
        a3 += kv * vload<T>(xr + 3 * s + c);
      }
      for (int v = kfull; v < Kw; ++v) {
        const T kv = kr[v];
        t0 += kv * xr[v];
        t1 += kv * xr[s + v];
        t2 += kv * xr[2 * s + v];
        t3 += kv * xr[3 * s + v];
      }
    }
    yrow[j] = vsum<T>(a0) + t0;
    yrow[j + 1] = vsum<T>(a1) + t1;
    yrow[j + 2] = vsum<T>(a2) + t2;
    yrow[j + 3] = vsum<T>(a3) + t3;
  }
  for (; j <= jhi; ++j) {
    V a0 = {};
    T t0 = 0;
    for (int u = 0; u < gy.K; ++u) {
      const T* xr = rows[u];
      if (!xr) continue;
      xr += gx.origin + s * j;
      const T* kr = k + u * Kw;
      for (int c = 0; c < kfull; c += L) a0 += vload<T>(kr + c) * vload<T>(xr + c);
      for (int v = kfull; v < Kw; ++v) t0 += kr[v] * xr[v];
    }
    yrow[j] = vsum<T>(a0) + t0;
  }
  using Acc = typename AccType<T>::type;
  for (int jb = 0; jb < Wo; ++jb) {
    if (jb == jlo) jb = std::max(jhi + 1, jlo);
    if (jb >= Wo) break;
    yrow[jb] = T(degrade_point<T, Acc>(x, k, gy, gx, g.mode, i, jb));
  }
}

KF_CLONES void forward_row(const float* x, const float* k, float* y, const Geometry& g, int i,
                           const float** rows) {
  forward_row_impl<float>(x, k, y, g, i, rows);
}
KF_CLONES void forward_row(const double* x, const double* k, double* y, const Geometry& g,
                           int i, const double** rows) {
  forward_row_impl<double>(x, k, y, g, i, rows);
}

// ---------------------------------------------------------------------------------------
// Adjoint: one HR row p of one plane. The transposed strided correlation is accumulated in
// s phase buffers zph[phi][t] = z[origin + s*t + phi] (contiguous axpys, no overlapping
// stores), then interleaved and folded onto the image row through the padding map.
template <typename T>
KF_ALWAYS_INLINE void adjoint_row_impl(const T* y, const T* k, T* xrow, const Geometry& g,
                                       int p, T* zph, int Tz) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::L;
  const AxisGeom &gy = g.gy, &gx = g.gx;
  const int s = gx.s, Kw = gx.K, Wo = gx.n_out, W = gx.n;
  std::fill(zph, zph + static_cast<int64_t>(s) * Tz, T(0));
  bool any = false;
  for_each_preimage(p, gy, g.mode, [&](int r) {
    int ilo, ihi;
    taps_reaching(r, gy, &ilo, &ihi);
    for (int i = ilo; i <= ihi; ++i) {
      any = true;
      const int u = r - gy.origin - gy.s * i;
      const T* kr = k + u * Kw;
      const T* yr = y + static_cast<int64_t>(i) * Wo;
      for (int v = 0; v < Kw; ++v) {
        const T kv = kr[v];
        T* zp = zph + (v % s) * Tz + v / s;
        const V kb = vbroadcast<T>(kv);
        int t = 0;
        for (; t + L <= Wo; t += L) vstore<T>(zp + t, vload<T>(zp + t) + kb * vload<T>(yr + t));
        for (; t < Wo; ++t) zp[t] += kv * yr[t];
      }
    }
  });
  std::fill(xrow, xrow + W, T(0));
  if (!any) return;
  const int lo = gx.lo(), hi = gx.hi();
  // Interior: padded index q == image column q.
  const int qa = imax(lo, 0), qb = imin(hi, W - 1);
  for (int q = qa; q <= qb; ++q) {
    const int d = q - lo;
    xrow[q] = zph[(d % s) * Tz + d / s];
  }
  if (g.mode == kZeros || g.mode == kValid) return;
  for (int q = lo; q <= hi; ++q) {
    if (q == qa && qa <= qb) q = qb + 1;
    if (q > hi) break;
    const int src = pad_index(q, W, g.mode);
    const int d = q - lo;
    if (src >= 0) xrow[src] += zph[(d % s) * Tz + d / s];
  }
}

KF_CLONES void adjoint_row(const float* y, const float* k, float* x, const Geometry& g, int p,
                           float* zph, int Tz) {
  adjoint_row_impl<float>(y, k, x, g, p, zph, Tz);
}
KF_CLONES void adjoint_row(const double* y, const double* k, double* x, const Geometry& g,
                           int p, double* zph, int Tz) {
  adjoint_row_impl<double>(y, k, x, g, p, zph, Tz);
}

// ---------------------------------------------------------------------------------------
// Kernel gradient: row u of one kernel plane, summed over the image planes using it.
// acc[v] += sum_{i,j} gy[i, j] * xpad[origin_y + s*i + u, origin_x + s*j + v].
template <typename T>
KF_ALWAYS_INLINE void kernel_grad_row_impl(const T* x, const T* gy, T* acc, const Geometry& g,
                                           int u) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::L;
  const AxisGeom &ay = g.gy, &ax = g.gx;
  const int W = ax.n, Kw = ax.K, s = ax.s, Wo = ax.n_out;
  int jlo, jhi;
  interior_range(ax, &jlo, &jhi);
  if (jhi < jlo) {
    jlo = Wo;
    jhi = Wo - 1;
  }
  const int kfull = Kw - Kw % L;
  for (int i = 0; i < ay.n_out; ++i) {
    const int r = pad_index(ay.origin + ay.s * i + u, ay.n, g.mode);
    if (r < 0) continue;
    const T* xr = x + static_cast<int64_t>(r) * W;
    const T* gr = gy + static_cast<int64_t>(i) * Wo;
    const T* xb = xr + ax.origin;
    for (int c = 0; c < kfull; c += L) {
      V a0 = {}, a1 = {}, a2 = {}, a3 = {};
      int j = jlo;
      for (; j + 3 <= jhi; j += 4) {
        a0 += vbroadcast<T>(gr[j]) * vload<T>(xb + s * j + c);
        a1 += vbroadcast<T>(gr[j + 1]) * vload<T>(xb + s * (j + 1) + c);
        a2 += vbroadcast<T>(gr[j + 2]) * vload<T>(xb + s * (j + 2) + c);
        a3 += vbroadcast<T>(gr[j + 3]) * vload<T>(xb + s * (j + 3) + c);
      }
      for (; j <= jhi; ++j) a0 += vbroadcast<T>(gr[j]) * vload<T>(xb + s * j + c);
      vstore<T>(acc + c, vload<T>(acc + c) + ((a0 + a1) + (a2 + a3)));
    }
    for (int v = kfull; v < Kw; ++v) {
      T a = 0;
      for (int j = jlo; j <= jhi; ++j) a += gr[j] * xb[s * j + v];
      acc[v] += a;
    }
    for (int j = 0; j < Wo; ++j) {
      if (j == jlo) j = std::max(jhi + 1, jlo);
      if (j >= Wo) break;
      const T gv = gr[j];
      for (int v = 0; v < Kw; ++v) {
        const int c = pad_index(ax.origin + s * j + v, W, g.mode);
        if (c >= 0) acc[v] += gv * xr[c];
      }
    }
  }
}

KF_CLONES void kernel_grad_row(const float* x, const float* gy, float* acc, const Geometry& g,
                               int u) {
  kernel_grad_row_impl<float>(x, gy, acc, g, u);
}
KF_CLONES void kernel_grad_row(const double* x, const double* gy, double* acc,
                               const Geometry& g, int u) {
  kernel_grad_row_impl<double>(x, gy, acc, g, u);
}

// ---------------------------------------------------------------------------------------
// Op entry points.

int64_t grain_for(int64_t work_per_item) {
  // Aim for >= ~32k multiply-adds per task so scheduling overhead stays negligible.
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_item));
}

at::Tensor degrade_cpu(const at::Tensor& x_, const at::Tensor& k_, int64_t s,
                       c10::string_view padding) {
  check_image(x_, "x");
  check_same(x_, k_, "x", "kernel");
  TORCH_CHECK(x_.is_floating_point() && (x_.scalar_type() == at::kFloat ||
                                         x_.scalar_type() == at::kDouble),
              "kfops: CPU degrade supports float32 and float64, got ", x_.scalar_type());
  const int mode = parse_padding(std::string(padding));
  const auto x = x_.contiguous();
  const auto k = k_.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const KernelLayout kl = kernel_layout(k.sizes(), B, C);
  const Geometry g = make_geometry(H, W, kl.Kh, kl.Kw, s, mode);
  auto y = at::empty({B, C, g.gy.n_out, g.gx.n_out}, x.options());
  const int64_t Ho = g.gy.n_out, Wo = g.gx.n_out;
  if (y.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kfops_degrade_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, B * C * Ho, grain_for(Wo * kl.Kh * kl.Kw), [&](int64_t a, int64_t b) {
      std::vector<const scalar_t*> rows(kl.Kh);
      for (int64_t it = a; it < b; ++it) {
        const int64_t plane = it / Ho, i = it % Ho;
        const int64_t kplane = kl.plane(plane / C, plane % C);
        forward_row(xp + plane * H * W, kp + kplane * kl.Kh * kl.Kw, yp + it * Wo, g, int(i),
                    rows.data());
      }
    });
  });
  return y;
}

at::Tensor degrade_adjoint_cpu(const at::Tensor& y_, const at::Tensor& k_, int64_t s,
                               c10::string_view padding, c10::IntArrayRef hr_size) {
  check_image(y_, "y");
  check_same(y_, k_, "y", "kernel");
  TORCH_CHECK(y_.scalar_type() == at::kFloat || y_.scalar_type() == at::kDouble,
              "kfops: CPU degrade_adjoint supports float32 and float64, got ",
              y_.scalar_type());
  TORCH_CHECK(hr_size.size() == 2, "kfops: hr_size must be [H, W]");
  const int mode = parse_padding(std::string(padding));
  const auto y = y_.contiguous();
  const auto k = k_.contiguous();
  const int64_t B = y.size(0), C = y.size(1), H = hr_size[0], W = hr_size[1];
  const KernelLayout kl = kernel_layout(k.sizes(), B, C);
  const Geometry g = make_geometry(H, W, kl.Kh, kl.Kw, s, mode);
  TORCH_CHECK(y.size(2) == g.gy.n_out && y.size(3) == g.gx.n_out, "kfops: LR size (",
              y.size(2), "x", y.size(3), ") does not match HR size (", H, "x", W,
              ") for scale ", s, " and this kernel; expected (", g.gy.n_out, "x", g.gx.n_out,
              ")");
  auto x = at::empty({B, C, H, W}, y.options());
  if (x.numel() == 0) return x;
  const int64_t Ho = g.gy.n_out, Wo = g.gx.n_out;
  const int Tz = int(Wo + (kl.Kw + s - 1) / s + 1);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "kfops_degrade_adjoint_cpu", [&] {
    const scalar_t* yp = y.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    scalar_t* xp = x.data_ptr<scalar_t>();
    const int64_t work = (kl.Kh + s - 1) / s * kl.Kw * Wo;
    at::parallel_for(0, B * C * H, grain_for(work), [&](int64_t a, int64_t b) {
      std::vector<scalar_t> zph(static_cast<size_t>(s) * Tz);
      for (int64_t it = a; it < b; ++it) {
        const int64_t plane = it / H, p = it % H;
        const int64_t kplane = kl.plane(plane / C, plane % C);
        adjoint_row(yp + plane * Ho * Wo, kp + kplane * kl.Kh * kl.Kw, xp + it * W, g, int(p),
                    zph.data(), Tz);
      }
    });
  });
  return x;
}

at::Tensor degrade_kernel_grad_cpu(const at::Tensor& x_, const at::Tensor& gy_, int64_t s,
                                   c10::string_view padding, c10::IntArrayRef kshape) {
  check_image(x_, "x");
  check_image(gy_, "grad_y");
  check_same(x_, gy_, "x", "grad_y");
  TORCH_CHECK(x_.scalar_type() == at::kFloat || x_.scalar_type() == at::kDouble,
              "kfops: CPU degrade_kernel_grad supports float32 and float64, got ",
              x_.scalar_type());
  const int mode = parse_padding(std::string(padding));
  const auto x = x_.contiguous();
  const auto gy = gy_.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(gy.size(0) == B && gy.size(1) == C, "kfops: grad_y batch/channels ",
              gy.sizes(), " do not match x ", x.sizes());
  const KernelLayout kl = kernel_layout(kshape, B, C);
  const Geometry g = make_geometry(H, W, kl.Kh, kl.Kw, s, mode);
  TORCH_CHECK(gy.size(2) == g.gy.n_out && gy.size(3) == g.gx.n_out,
              "kfops: grad_y size does not match the degraded size");
  auto gk = at::zeros(kshape, x.options());
  const int64_t Ho = g.gy.n_out, Wo = g.gx.n_out, KK = kl.Kh * kl.Kw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kfops_degrade_kernel_grad_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* gp = gy.data_ptr<scalar_t>();
    scalar_t* kp = gk.data_ptr<scalar_t>();
    const int64_t ntasks = kl.Bk * kl.Ck * kl.Kh;
    at::parallel_for(0, ntasks, 1, [&](int64_t a, int64_t b) {
      for (int64_t t = a; t < b; ++t) {
        const int64_t kplane = t / kl.Kh, u = t % kl.Kh;
        scalar_t* acc = kp + kplane * KK + u * kl.Kw;
        for (int64_t bb = 0; bb < B; ++bb)
          for (int64_t cc = 0; cc < C; ++cc) {
            if (kl.plane(bb, cc) != kplane) continue;
            const int64_t plane = bb * C + cc;
            kernel_grad_row(xp + plane * H * W, gp + plane * Ho * Wo, acc, g, int(u));
          }
      }
    });
  });
  return gk;
}

}  // namespace
}  // namespace kf

TORCH_LIBRARY_IMPL(kfops, CPU, m) {
  m.impl("degrade", &kf::degrade_cpu);
  m.impl("degrade_adjoint", &kf::degrade_adjoint_cpu);
  m.impl("degrade_kernel_grad", &kf::degrade_kernel_grad_cpu);
}
