// Index arithmetic and per-element formulas of the degradation operator
//   y = (x ⊛ k)↓s
// shared by the C++ CPU loops and the CUDA kernels. Plain C++17, no ATen: every function
// is `inline` on the host and `__host__ __device__` under nvcc, so the CPU tests exercise
// exactly the arithmetic the GPU runs.
//
// Conventions (one axis; rows and columns are independent):
//   * correlation: y[i] = sum_u k[u] * xpad[origin + s*i + u],  u = 0..K-1
//   * bicubic alignment: tap offset o = floor((s - K) / 2). When K and s have the same
//     parity, a kernel centred on its array centre (K-1)/2 maps LR pixel i to the HR point
//     s*i + (s-1)/2. When the parities differ, the result equals zero-padding the kernel by
//     one row at the bottom (one column at the right) and using that (K+1)-sized kernel.
//   * padded modes produce n_out = floor(n / s) samples with origin = o; `valid` keeps the
//     samples of that same grid whose taps all fall inside the image (a crop of the padded
//     output), so origin = o + s*i0 with i0 = ceil(-o / s).
//   * padding maps an out-of-range index to a source index (reflect: mirror without
//     repeating the edge, periodic for any overhang; replicate: clamp; circular: wrap) or to
//     "zero" (-1).
#pragma once

#if defined(__CUDACC__)
#define KF_HD __host__ __device__ __forceinline__
#else
#define KF_HD inline
#endif

namespace kf {

enum PadMode : int { kZeros = 0, kReflect = 1, kReplicate = 2, kCircular = 3, kValid = 4 };

KF_HD int imin(int a, int b) { return a < b ? a : b; }
KF_HD int imax(int a, int b) { return a > b ? a : b; }

// Floor division for any signs of a and b (b != 0).
KF_HD int floor_div(int a, int b) {
  int q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

KF_HD int ceil_div(int a, int b) { return -floor_div(-a, b); }

KF_HD int pos_mod(int a, int n) {
  int m = a % n;
  return m < 0 ? m + n : m;
}

// Source index in [0, n) of padded index i, or -1 when the padded value is zero.
KF_HD int pad_index(int i, int n, int mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case kReflect: {
      if (n == 1) return 0;
      const int period = 2 * (n - 1);
      const int m = pos_mod(i, period);
      return m < n ? m : period - m;
    }
    case kReplicate:
      return i < 0 ? 0 : n - 1;
    case kCircular:
      return pos_mod(i, n);
    default:
      return -1;
  }
}

KF_HD int tap_offset(int s, int K) { return floor_div(s - K, 2); }

// Geometry of one axis: LR sample i, tap u reads padded index origin + s*i + u.
// n_out <= 0 means the configuration yields no output sample (caller reports it).
struct AxisGeom {
  int n;       // HR length
  int n_out;   // LR length
  int origin;  // padded index read by i = 0, u = 0
  int K;       // taps
  int s;       // stride
  KF_HD int lo() const { return origin; }
  KF_HD int hi() const { return origin + s * (n_out - 1) + K - 1; }
};

KF_HD AxisGeom axis_geom(int n, int K, int s, int mode) {
  AxisGeom g;
  g.n = n;
  g.K = K;
  g.s = s;
  const int o = tap_offset(s, K);
  if (mode == kValid) {
    const int i0 = ceil_div(-o, s) > 0 ? ceil_div(-o, s) : 0;
    g.origin = o + s * i0;
    g.n_out = n - K - g.origin >= 0 ? floor_div(n - K - g.origin, s) + 1 : 0;
  } else {
    g.origin = o;
    g.n_out = n / s;
  }
  return g;
}

// LR samples i in [*lo, *hi] whose tap u = q - origin - s*i lies in [0, K) for padded index q.
KF_HD void taps_reaching(int q, const AxisGeom& g, int* lo, int* hi) {
  const int d = q - g.origin;
  *lo = imax(ceil_div(d - g.K + 1, g.s), 0);
  *hi = imin(floor_div(d, g.s), g.n_out - 1);
}

// Calls f(q) for every padded index q in [g.lo(), g.hi()] whose source is p (the adjoint
// of padding: the values read at all such q fold back onto p).
template <typename F>
KF_HD void for_each_preimage(int p, const AxisGeom& g, int mode, F&& f) {
  const int lo = g.lo(), hi = g.hi();
  if (p >= lo && p <= hi) f(p);
  if (mode == kZeros || mode == kValid) return;
  const int top_end = imin(hi, -1);
  for (int q = lo; q <= top_end; ++q)
    if (pad_index(q, g.n, mode) == p) f(q);
  for (int q = imax(lo, g.n); q <= hi; ++q)
    if (pad_index(q, g.n, mode) == p) f(q);
}

// Accumulator type: float for float/half/bfloat16 storage, double for double.
template <typename T> struct AccType { using type = float; };
template <> struct AccType<double> { using type = double; };

// Storage <-> accumulator conversions. A plain cast for float, double and c10's half types;
// degrade_kernels.cu specialises them for CUDA's __half and __nv_bfloat16, whose implicit
// conversions torch's CUDA builds switch off (__CUDA_NO_HALF_CONVERSIONS__).
template <typename Acc, typename T>
KF_HD Acc to_acc(const T& v) {
  return static_cast<Acc>(v);
}
template <typename T, typename Acc>
KF_HD T from_acc(const Acc& v) {
  return static_cast<T>(v);
}

// y[i, j] for one plane, every tap through pad_index (used for border samples on the CPU
// and for every sample on the GPU). x: (H, W) row-major, k: (Kh, Kw) row-major.
template <typename T, typename Acc>
KF_HD Acc degrade_point(const T* x, const T* k, const AxisGeom& gy, const AxisGeom& gx,
                        int mode, int i, int j) {
  Acc acc = Acc(0);
  for (int u = 0; u < gy.K; ++u) {
    const int r = pad_index(gy.origin + gy.s * i + u, gy.n, mode);
    if (r < 0) continue;
    for (int v = 0; v < gx.K; ++v) {
      const int c = pad_index(gx.origin + gx.s * j + v, gx.n, mode);
      if (c < 0) continue;
      acc += to_acc<Acc>(k[u * gx.K + v]) * to_acc<Acc>(x[r * gx.n + c]);
    }
  }
  return acc;
}

// (A^T y)[p, q] for one plane: sum over the padded preimages (r, c) of (p, q) and the LR
// samples (i, j) whose taps reach them. y: (Ho, Wo), k: (Kh, Kw).
template <typename T, typename Acc>
KF_HD Acc adjoint_point(const T* y, const T* k, const AxisGeom& gy, const AxisGeom& gx,
                        int mode, int p, int q) {
  Acc acc = Acc(0);
  for_each_preimage(p, gy, mode, [&](int r) {
    int i_lo, i_hi;
    taps_reaching(r, gy, &i_lo, &i_hi);
    for_each_preimage(q, gx, mode, [&](int c) {
      int j_lo, j_hi;
      taps_reaching(c, gx, &j_lo, &j_hi);
      for (int i = i_lo; i <= i_hi; ++i) {
        const int u = r - gy.origin - gy.s * i;
        for (int j = j_lo; j <= j_hi; ++j) {
          const int v = c - gx.origin - gx.s * j;
          acc += to_acc<Acc>(k[u * gx.K + v]) * to_acc<Acc>(y[i * gx.n_out + j]);
        }
      }
    });
  });
  return acc;
}

// dL/dk[u, v] for one plane: sum_ij gy[i, j] * xpad[origin + s*i + u, origin + s*j + v].
template <typename T, typename Acc>
KF_HD Acc kernel_grad_point(const T* x, const T* gyv, const AxisGeom& gy, const AxisGeom& gx,
                            int mode, int u, int v) {
  Acc acc = Acc(0);
  for (int i = 0; i < gy.n_out; ++i) {
    const int r = pad_index(gy.origin + gy.s * i + u, gy.n, mode);
    if (r < 0) continue;
    for (int j = 0; j < gx.n_out; ++j) {
      const int c = pad_index(gx.origin + gx.s * j + v, gx.n, mode);
      if (c < 0) continue;
      acc += to_acc<Acc>(gyv[i * gx.n_out + j]) * to_acc<Acc>(x[r * gx.n + c]);
    }
  }
  return acc;
}

}  // namespace kf
