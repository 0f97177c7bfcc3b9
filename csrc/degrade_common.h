// Argument checking and shape logic of the degradation ops, shared by the CPU and CUDA
// backends (ATen level; the per-element math is in common/degrade_math.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <array>
#include <string>
#include <vector>

#include "common/degrade_math.h"

namespace kf {

inline int parse_padding(const std::string& padding) {
  if (padding == "reflect") return kReflect;
  if (padding == "replicate") return kReplicate;
  if (padding == "circular") return kCircular;
  if (padding == "zeros") return kZeros;
  if (padding == "valid") return kValid;
  TORCH_CHECK(false, "kfops: unknown padding '", padding,
              "'; expected one of reflect, replicate, circular, zeros, valid");
  return -1;
}

// Kernel layout seen as (Bk, Ck, Kh, Kw) with Bk in {1, B}, Ck in {1, C}.
struct KernelLayout {
  int64_t Bk, Ck, Kh, Kw;
  // Index of the kernel plane used by image plane (b, c).
  int64_t plane(int64_t b, int64_t c) const { return (Bk == 1 ? 0 : b) * Ck + (Ck == 1 ? 0 : c); }
};

inline KernelLayout kernel_layout(c10::IntArrayRef ks, int64_t B, int64_t C) {
  const auto d = ks.size();
  TORCH_CHECK(d >= 2 && d <= 4, "kfops: kernel must have shape (K, K), (C, K, K) or "
              "(B, C, K, K), got ", d, " dimensions");
  KernelLayout L{1, 1, ks[d - 2], ks[d - 1]};
  if (d >= 3) L.Ck = ks[d - 3];
  if (d == 4) L.Bk = ks[0];
  TORCH_CHECK(L.Kh >= 1 && L.Kw >= 1, "kfops: kernel must not be empty");
  TORCH_CHECK(L.Ck == 1 || L.Ck == C, "kfops: kernel has ", L.Ck,
              " channels but the image has ", C);
  TORCH_CHECK(L.Bk == 1 || L.Bk == B, "kfops: kernel batch ", L.Bk,
              " does not match the image batch ", B);
  return L;
}

struct Geometry {
  AxisGeom gy, gx;
  int mode;
};

inline Geometry make_geometry(int64_t H, int64_t W, int64_t Kh, int64_t Kw, int64_t s,
                              int mode) {
  TORCH_CHECK(s >= 1, "kfops: scale factor must be a positive integer, got ", s);
  TORCH_CHECK(H < (1 << 30) && W < (1 << 30) && Kh < (1 << 20) && Kw < (1 << 20),
              "kfops: sizes too large");
  Geometry g{axis_geom(int(H), int(Kh), int(s), mode), axis_geom(int(W), int(Kw), int(s), mode),
             mode};
  if (mode == kValid) {
    TORCH_CHECK(g.gy.n_out >= 1 && g.gx.n_out >= 1, "kfops: kernel (", Kh, "x", Kw,
                ") is larger than the image (", H, "x", W, ") for padding 'valid'");
  } else {
    TORCH_CHECK(g.gy.n_out >= 1 && g.gx.n_out >= 1, "kfops: image (", H, "x", W,
                ") is smaller than the scale factor ", s);
  }
  return g;
}

inline void check_same(const at::Tensor& a, const at::Tensor& b, const char* na,
                       const char* nb) {
  TORCH_CHECK(a.device() == b.device(), "kfops: ", na, " is on ", a.device(), " but ", nb,
              " is on ", b.device());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "kfops: ", na, " has dtype ",
              a.scalar_type(), " but ", nb, " has dtype ", b.scalar_type());
}

inline void check_image(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.dim() == 4, "kfops: ", name, " must be a 4-D tensor (B, C, H, W), got ",
              x.dim(), " dimensions");
}

}  // namespace kf
