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
#include <memory>
#include <vector>

#include "../degrade_common.h"
#include "simd.h"

namespace kf {
namespace {

// ---------------------------------------------------------------------------------------
// Forward: one LR row of one plane. xp is the padded plane (rows lo_y..hi_y, columns
// lo_x..hi_x of the infinitely padded image), so every sample takes the SIMD path.
template <typename T>
KF_ALWAYS_INLINE void forward_row_impl(const T* xp, int Wp, const T* k, T* yrow,
                                       const Geometry& g, int i) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::L;
  const int Kh = g.gy.K, Kw = g.gx.K, s = g.gx.s, Wo = g.gx.n_out;
  const T* x0 = xp + static_cast<int64_t>(g.gy.s) * i * Wp;
  const int kfull = Kw - Kw % L;
  int j = 0;
  for (; j + 8 <= Wo; j += 8) {
    V a[8] = {};
    T t[8] = {};
    for (int u = 0; u < Kh; ++u) {
      const T* xr = x0 + static_cast<int64_t>(u) * Wp + s * j;
      const T* kr = k + u * Kw;
      for (int c = 0; c < kfull; c += L) {
        const V kv = vload<T>(kr + c);
#pragma GCC unroll 8
        for (int b = 0; b < 8; ++b) a[b] += kv * vload<T>(xr + b * s + c);
      }
      for (int v = kfull; v < Kw; ++v) {
        const T kv = kr[v];
#pragma GCC unroll 8
        for (int b = 0; b < 8; ++b) t[b] += kv * xr[b * s + v];
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < 8; ++b) yrow[j + b] = vsum<T>(a[b]) + t[b];
  }
  for (; j < Wo; ++j) {
    V a0 = {};
    T t0 = 0;
    for (int u = 0; u < Kh; ++u) {
      const T* xr = x0 + static_cast<int64_t>(u) * Wp + s * j;
      const T* kr = k + u * Kw;
      for (int c = 0; c < kfull; c += L) a0 += vload<T>(kr + c) * vload<T>(xr + c);
      for (int v = kfull; v < Kw; ++v) t0 += kr[v] * xr[v];
    }
    yrow[j] = vsum<T>(a0) + t0;
  }
}

KF_CLONES void forward_row(const float* xp, int Wp, const float* k, float* y,
                           const Geometry& g, int i) {
  forward_row_impl<float>(xp, Wp, k, y, g, i);
}
KF_CLONES void forward_row(const double* xp, int Wp, const double* k, double* y,
                           const Geometry& g, int i) {
  forward_row_impl<double>(xp, Wp, k, y, g, i);
}

// Padded copy of every plane: out[plane][r - lo_y][q - lo_x] = xpad[r][q] (zero where the
// padding is zero). Interior columns are copied, border columns go through pad_index.
template <typename T>
void pad_planes(const T* x, T* out, int64_t planes, const Geometry& g) {
  const int H = g.gy.n, W = g.gx.n;
  const int Hp = g.gy.hi() - g.gy.lo() + 1, Wp = g.gx.hi() - g.gx.lo() + 1;
  std::vector<int> cmap(Wp);
  for (int q = 0; q < Wp; ++q) cmap[q] = pad_index(g.gx.lo() + q, W, g.mode);
  const int qa = imax(g.gx.lo(), 0), qb = imin(g.gx.hi(), W - 1);
  at::parallel_for(0, planes * Hp, std::max<int64_t>(1, 16384 / Wp), [&](int64_t a, int64_t b) {
    for (int64_t it = a; it < b; ++it) {
      const int64_t plane = it / Hp;
      const int r = pad_index(g.gy.lo() + int(it % Hp), H, g.mode);
      T* dst = out + it * Wp;
      if (r < 0) {
        std::fill(dst, dst + Wp, T(0));
        continue;
      }
      const T* src = x + (plane * H + r) * W;
      for (int q = 0; q < Wp; ++q) {
        if (q == qa - g.gx.lo() && qa <= qb) {
          std::copy(src + qa, src + qb + 1, dst + q);
          q += qb - qa;
          continue;
        }
        dst[q] = cmap[q] < 0 ? T(0) : src[cmap[q]];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Adjoint: one HR row p of one plane. For each phase phi of the padded columns
// q = lo_x + s*t + phi, z_phi[t] = sum_{(i,u)} sum_m k[u, phi + s*m] * y[i, t - m], summed
// over the LR rows i and kernel rows u that reach the padded rows folding onto p. The
// t-loop is register-blocked (8 vectors); yp rows carry M zeros on the left and enough on
// the right, so no bounds tests are needed. z is then interleaved and folded onto row p.
struct AdjointScratch {
  int Tz;   // phase-buffer length (multiple of 8 * L)
  int M;    // left zero margin of the padded LR rows
  int Wyp;  // padded LR row length
};

template <typename T>
KF_ALWAYS_INLINE void adjoint_row_impl(const T* yp, const T* k, T* xrow, const Geometry& g,
                                       int p, const AdjointScratch& sc, T* zph, int* pairs) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::L;
  const AxisGeom &gy = g.gy, &gx = g.gx;
  const int s = gx.s, Kw = gx.K, W = gx.n, Tz = sc.Tz;
  int np = 0;
  for_each_preimage(p, gy, g.mode, [&](int r) {
    int ilo, ihi;
    taps_reaching(r, gy, &ilo, &ihi);
    for (int i = ilo; i <= ihi; ++i) {
      pairs[2 * np] = i;
      pairs[2 * np + 1] = r - gy.origin - gy.s * i;
      ++np;
    }
  });
  std::fill(xrow, xrow + W, T(0));
  if (np == 0) return;
  for (int phi = 0; phi < s && phi < Kw; ++phi) {
    T* z = zph + phi * Tz;
    for (int t = 0; t < Tz; t += 8 * L) {
      V a0 = {}, a1 = {}, a2 = {}, a3 = {}, a4 = {}, a5 = {}, a6 = {}, a7 = {};
      for (int n = 0; n < np; ++n) {
        const T* yr = yp + static_cast<int64_t>(pairs[2 * n]) * sc.Wyp + sc.M + t;
        const T* kr = k + pairs[2 * n + 1] * Kw;
        for (int v = phi, m = 0; v < Kw; v += s, ++m) {
          const V kb = vbroadcast(kr[v]);
          const T* ym = yr - m;
          a0 += kb * vload<T>(ym);
          a1 += kb * vload<T>(ym + L);
          a2 += kb * vload<T>(ym + 2 * L);
          a3 += kb * vload<T>(ym + 3 * L);
          a4 += kb * vload<T>(ym + 4 * L);
          a5 += kb * vload<T>(ym + 5 * L);
          a6 += kb * vload<T>(ym + 6 * L);
          a7 += kb * vload<T>(ym + 7 * L);
        }
      }
      vstore<T>(z + t, a0);
      vstore<T>(z + t + L, a1);
      vstore<T>(z + t + 2 * L, a2);
      vstore<T>(z + t + 3 * L, a3);
      vstore<T>(z + t + 4 * L, a4);
      vstore<T>(z + t + 5 * L, a5);
      vstore<T>(z + t + 6 * L, a6);
      vstore<T>(z + t + 7 * L, a7);
    }
  }
  const int lo = gx.lo(), hi = gx.hi();
  const int qa = imax(lo, 0), qb = imin(hi, W - 1);
  // Interleave the phases onto the interior columns (q = lo + s*t + phi), no divisions.
  for (int phi = 0; phi < s; ++phi) {
    const int t0 = imax(0, ceil_div(qa - lo - phi, s));
    const int t1 = floor_div(qb - lo - phi, s);
    T* dst = xrow + lo + phi;
    if (phi < Kw) {
      const T* z = zph + phi * Tz;
      for (int t = t0; t <= t1; ++t) dst[s * t] = z[t];
    } else {
      for (int t = t0; t <= t1; ++t) dst[s * t] = T(0);
    }
  }
  if (g.mode == kZeros || g.mode == kValid) return;
  for (int q = lo; q <= hi; ++q) {
    if (q == qa && qa <= qb) q = qb + 1;
    if (q > hi) break;
    const int src = pad_index(q, W, g.mode);
    const int d = q - lo;
    if (src >= 0 && d % s < Kw) xrow[src] += zph[(d % s) * Tz + d / s];
  }
}

KF_CLONES void adjoint_row(const float* yp, const float* k, float* x, const Geometry& g, int p,
                           const AdjointScratch& sc, float* zph, int* pairs) {
  adjoint_row_impl<float>(yp, k, x, g, p, sc, zph, pairs);
}
KF_CLONES void adjoint_row(const double* yp, const double* k, double* x, const Geometry& g,
                           int p, const AdjointScratch& sc, double* zph, int* pairs) {
  adjoint_row_impl<double>(yp, k, x, g, p, sc, zph, pairs);
}

// ---------------------------------------------------------------------------------------
// Kernel gradient: contribution of LR row i to row u of one kernel plane, from the padded
// image plane xp: acc[v] += sum_j gy[i, j] * xp[s*i + u, s*j + v].
template <typename T>
KF_ALWAYS_INLINE void kernel_grad_row_impl(const T* xp, int Wp, const T* gy, T* acc,
                                           const Geometry& g, int i, int u) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::L;
  const int Kw = g.gx.K, s = g.gx.s, Wo = g.gx.n_out;
  const int kfull = Kw - Kw % L;
  {
    const T* xb = xp + (static_cast<int64_t>(g.gy.s) * i + u) * Wp;
    const T* gr = gy + static_cast<int64_t>(i) * Wo;
    for (int c = 0; c < kfull; c += L) {
      V a0 = {}, a1 = {}, a2 = {}, a3 = {};
      int j = 0;
      for (; j + 4 <= Wo; j += 4) {
        a0 += vbroadcast(gr[j]) * vload<T>(xb + s * j + c);
        a1 += vbroadcast(gr[j + 1]) * vload<T>(xb + s * (j + 1) + c);
        a2 += vbroadcast(gr[j + 2]) * vload<T>(xb + s * (j + 2) + c);
        a3 += vbroadcast(gr[j + 3]) * vload<T>(xb + s * (j + 3) + c);
      }
      for (; j < Wo; ++j) a0 += vbroadcast(gr[j]) * vload<T>(xb + s * j + c);
      vstore<T>(acc + c, vload<T>(acc + c) + ((a0 + a1) + (a2 + a3)));
    }
    for (int v = kfull; v < Kw; ++v) {
      T a = 0;
      for (int j = 0; j < Wo; ++j) a += gr[j] * xb[s * j + v];
      acc[v] += a;
    }
  }
}

KF_CLONES void kernel_grad_row(const float* xp, int Wp, const float* gy, float* acc,
                               const Geometry& g, int i, int u) {
  kernel_grad_row_impl<float>(xp, Wp, gy, acc, g, i, u);
}
KF_CLONES void kernel_grad_row(const double* xp, int Wp, const double* gy, double* acc,
                               const Geometry& g, int i, int u) {
  kernel_grad_row_impl<double>(xp, Wp, gy, acc, g, i, u);
}

// ---------------------------------------------------------------------------------------
// Reduced-precision path (float16 / bfloat16 storage, float accumulation): every element
// through the per-element formulas of common/degrade_math.h, the same functions the CUDA
// kernels run, so the CPU tests cover the GPU arithmetic.
template <typename T>
void forward_pointwise(const T* x, const T* k, T* y, int64_t B, int64_t C,
                       const KernelLayout& kl, const Geometry& g) {
  const int64_t Ho = g.gy.n_out, Wo = g.gx.n_out, H = g.gy.n, W = g.gx.n;
  at::parallel_for(0, B * C * Ho * Wo, 256, [&](int64_t a, int64_t b) {
    for (int64_t e = a; e < b; ++e) {
      const int64_t plane = e / (Ho * Wo), rem = e % (Ho * Wo);
      const T* kp = k + kl.plane(plane / C, plane % C) * kl.Kh * kl.Kw;
      y[e] = T(degrade_point<T, float>(x + plane * H * W, kp, g.gy, g.gx, g.mode,
                                       int(rem / Wo), int(rem % Wo)));
    }
  });
}

template <typename T>
void adjoint_pointwise(const T* y, const T* k, T* x, int64_t B, int64_t C,
                       const KernelLayout& kl, const Geometry& g) {
  const int64_t Ho = g.gy.n_out, Wo = g.gx.n_out, H = g.gy.n, W = g.gx.n;
  at::parallel_for(0, B * C * H * W, 256, [&](int64_t a, int64_t b) {
    for (int64_t e = a; e < b; ++e) {
      const int64_t plane = e / (H * W), rem = e % (H * W);
      const T* kp = k + kl.plane(plane / C, plane % C) * kl.Kh * kl.Kw;
      x[e] = T(adjoint_point<T, float>(y + plane * Ho * Wo, kp, g.gy, g.gx, g.mode,
                                       int(rem / W), int(rem % W)));
    }
  });
}

template <typename T>
void kernel_grad_pointwise(const T* x, const T* gy, T* gk, int64_t B, int64_t C,
                           const KernelLayout& kl, const Geometry& g) {
  const int64_t Ho = g.gy.n_out, Wo = g.gx.n_out, H = g.gy.n, W = g.gx.n;
  const int64_t KK = kl.Kh * kl.Kw;
  at::parallel_for(0, kl.Bk * kl.Ck * KK, 1, [&](int64_t a, int64_t b) {
    for (int64_t tap = a; tap < b; ++tap) {
      const int64_t kplane = tap / KK, u = (tap % KK) / kl.Kw, v = tap % kl.Kw;
      float acc = 0.f;
      for (int64_t plane = 0; plane < B * C; ++plane) {
        if (kl.plane(plane / C, plane % C) != kplane) continue;
        acc += kernel_grad_point<T, float>(x + plane * H * W, gy + plane * Ho * Wo, g.gy,
                                           g.gx, g.mode, int(u), int(v));
      }
      gk[tap] = T(acc);
    }
  });
}

bool is_reduced(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

void check_cpu_dtype(const at::Tensor& t, const char* op) {
  const auto st = t.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
              "kfops: ", op, " supports float32, float64, float16 and bfloat16, got ", st);
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
  check_cpu_dtype(x_, "degrade");
  const int mode = parse_padding(std::string(padding));
  const auto x = x_.contiguous();
  const auto k = k_.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const KernelLayout kl = kernel_layout(k.sizes(), B, C);
  const Geometry g = make_geometry(H, W, kl.Kh, kl.Kw, s, mode);
  auto y = at::empty({B, C, g.gy.n_out, g.gx.n_out}, x.options());
  const int64_t Ho = g.gy.n_out, Wo = g.gx.n_out;
  if (y.numel() == 0) return y;
  if (is_reduced(x)) {
    AT_DISPATCH_REDUCED_FLOATING_TYPES(x.scalar_type(), "kfops_degrade_cpu_reduced", [&] {
      forward_pointwise(x.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                        B, C, kl, g);
    });
    return y;
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kfops_degrade_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    const int64_t Hp = g.gy.hi() - g.gy.lo() + 1, Wp = g.gx.hi() - g.gx.lo() + 1;
    std::unique_ptr<scalar_t[]> padded(new scalar_t[static_cast<size_t>(B * C * Hp * Wp)]);
    pad_planes(xp, padded.get(), B * C, g);
    const scalar_t* pp = padded.get();
    at::parallel_for(0, B * C * Ho, grain_for(Wo * kl.Kh * kl.Kw), [&](int64_t a, int64_t b) {
      for (int64_t it = a; it < b; ++it) {
        const int64_t plane = it / Ho, i = it % Ho;
        const int64_t kplane = kl.plane(plane / C, plane % C);
        forward_row(pp + plane * Hp * Wp, int(Wp), kp + kplane * kl.Kh * kl.Kw, yp + it * Wo, g,
                    int(i));
      }
    });
  });
  return y;
}

at::Tensor degrade_adjoint_cpu(const at::Tensor& y_, const at::Tensor& k_, int64_t s,
                               c10::string_view padding, c10::IntArrayRef hr_size) {
  check_image(y_, "y");
  check_same(y_, k_, "y", "kernel");
  check_cpu_dtype(y_, "degrade_adjoint");
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
  if (is_reduced(y)) {
    AT_DISPATCH_REDUCED_FLOATING_TYPES(y.scalar_type(), "kfops_adjoint_cpu_reduced", [&] {
      adjoint_pointwise(y.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                        B, C, kl, g);
    });
    return x;
  }
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "kfops_degrade_adjoint_cpu", [&] {
    constexpr int L = Simd<scalar_t>::L;
    AdjointScratch sc;
    const int tcount = int(Wo) + (int(kl.Kw) - 1) / int(s);  // t = 0 .. Wo - 1 + (Kw-1)/s
    sc.Tz = (tcount + 8 * L - 1) / (8 * L) * (8 * L);
    sc.M = (int(kl.Kw) + int(s) - 1) / int(s);
    sc.Wyp = sc.M + sc.Tz;
    // LR rows with zero margins: ypad[plane*Ho + i][M + j] = y[plane][i][j].
    std::vector<scalar_t> ypad(static_cast<size_t>(B * C * Ho) * sc.Wyp, scalar_t(0));
    const scalar_t* ysrc = y.data_ptr<scalar_t>();
    for (int64_t r = 0; r < B * C * Ho; ++r)
      std::copy(ysrc + r * Wo, ysrc + (r + 1) * Wo, ypad.data() + r * sc.Wyp + sc.M);
    const scalar_t* kp = k.data_ptr<scalar_t>();
    scalar_t* xp = x.data_ptr<scalar_t>();
    const int64_t work = (kl.Kh + s - 1) / s * kl.Kw * Wo;
    // Upper bound on (i, u) pairs per HR row: preimages (<= padded extent) x taps per row.
    const int64_t max_pairs = (g.gy.hi() - g.gy.lo() + 1) * ((kl.Kh + s - 1) / s + 1);
    at::parallel_for(0, B * C * H, grain_for(work), [&](int64_t a, int64_t b) {
      std::vector<scalar_t> zph(static_cast<size_t>(s) * sc.Tz);
      std::vector<int> pairs(static_cast<size_t>(2 * max_pairs));
      for (int64_t it = a; it < b; ++it) {
        const int64_t plane = it / H, p = it % H;
        const int64_t kplane = kl.plane(plane / C, plane % C);
        adjoint_row(ypad.data() + plane * Ho * sc.Wyp, kp + kplane * kl.Kh * kl.Kw, xp + it * W,
                    g, int(p), sc, zph.data(), pairs.data());
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
  check_cpu_dtype(x_, "degrade_kernel_grad");
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
  if (is_reduced(x)) {
    AT_DISPATCH_REDUCED_FLOATING_TYPES(x.scalar_type(), "kfops_kgrad_cpu_reduced", [&] {
      kernel_grad_pointwise(x.data_ptr<scalar_t>(), gy.data_ptr<scalar_t>(),
                            gk.data_ptr<scalar_t>(), B, C, kl, g);
    });
    return gk;
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kfops_degrade_kernel_grad_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* gp = gy.data_ptr<scalar_t>();
    scalar_t* kp = gk.data_ptr<scalar_t>();
    const int64_t Hp = g.gy.hi() - g.gy.lo() + 1, Wp = g.gx.hi() - g.gx.lo() + 1;
    std::unique_ptr<scalar_t[]> padded(new scalar_t[static_cast<size_t>(B * C * Hp * Wp)]);
    pad_planes(xp, padded.get(), B * C, g);
    const scalar_t* pp = padded.get();
    // Chunks of (plane, LR row) pairs, each with a private accumulator of the whole kernel
    // (so the Kh padded rows read for one LR row stay in cache), then a serial reduction.
    const int64_t rows_total = B * C * Ho;
    const int64_t nchunks = std::min<int64_t>(rows_total, 4 * at::get_num_threads());
    const int64_t kn = gk.numel();
    std::vector<scalar_t> partial(static_cast<size_t>(nchunks * kn), scalar_t(0));
    at::parallel_for(0, nchunks, 1, [&](int64_t a, int64_t b) {
      for (int64_t ch = a; ch < b; ++ch) {
        scalar_t* part = partial.data() + ch * kn;
        const int64_t r0 = rows_total * ch / nchunks, r1 = rows_total * (ch + 1) / nchunks;
        for (int64_t it = r0; it < r1; ++it) {
          const int64_t plane = it / Ho, i = it % Ho;
          const int64_t kplane = kl.plane(plane / C, plane % C);
          for (int64_t u = 0; u < kl.Kh; ++u)
            kernel_grad_row(pp + plane * Hp * Wp, int(Wp), gp + plane * Ho * Wo,
                            part + kplane * KK + u * kl.Kw, g, int(i), int(u));
        }
      }
    });
    for (int64_t ch = 0; ch < nchunks; ++ch)
      for (int64_t e = 0; e < kn; ++e) kp[e] += partial[ch * kn + e];
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
