// Per-pixel gradient of the Charbonnier total variation
//   R(x) = sum_{i < H-1, j < W-1} sqrt(dx(i,j)^2 + dy(i,j)^2 + delta^2),
//   dx(i,j) = x(i,j+1) - x(i,j),  dy(i,j) = x(i+1,j) - x(i,j)   (forward differences)
// shared by the C++ CPU loop and the CUDA kernel (`__host__ __device__` under nvcc).
// Pixel (i,j) appears in at most three terms: its own (i,j), its left neighbour's
// (i,j-1) through dx and its upper neighbour's (i-1,j) through dy, so
//   dR/dx(i,j) = gx(i,j-1) + gy(i-1,j) - gx(i,j) - gy(i,j),  g = d / sqrt(dx^2+dy^2+delta^2),
// with the terms outside the (H-1)x(W-1) difference grid taken as zero. The CUDA kernel
// gathers the three terms per pixel (tv_grad_at); the CPU loop computes each term once
// per row (tv_term) and combines them with tv_combine.
#pragma once

#include <cmath>

#include "degrade_math.h"  // KF_HD

namespace kf {

// Normalised differences (gx, gy) of the term whose top-left pixel is c, with right
// neighbour r and lower neighbour d.
template <typename T>
KF_HD void tv_term(T c, T r, T d, T delta2, T* gx, T* gy) {
  const T dx = r - c, dy = d - c;
  const T inv = T(1) / sqrt(dx * dx + dy * dy + delta2);
  *gx = dx * inv;
  *gy = dy * inv;
}

// dR/dx(i,j) from the pixel's own term (gx, gy), its left neighbour's gx and its upper
// neighbour's gy (zero where a term does not exist).
template <typename T>
KF_HD T tv_combine(T gx_left, T gy_up, T gx, T gy) {
  return gx_left + gy_up - gx - gy;
}

// dR/dx at pixel (i, j) of one row-major H x W plane (all three terms recomputed).
template <typename T>
KF_HD T tv_grad_at(const T* x, int H, int W, int i, int j, T delta2) {
  T gx = 0, gy = 0, gx_left = 0, gy_up = 0, unused;
  const T* p = x + static_cast<long long>(i) * W + j;
  if (i < H - 1 && j < W - 1) tv_term(p[0], p[1], p[W], delta2, &gx, &gy);
  if (i < H - 1 && j >= 1) tv_term(p[-1], p[0], p[W - 1], delta2, &gx_left, &unused);
  if (i >= 1 && j < W - 1) tv_term(p[-W], p[-W + 1], p[0], delta2, &unused, &gy_up);
  return tv_combine(gx_left, gy_up, gx, gy);
}

}  // namespace kf
