// Minimal fixed-width SIMD helpers (GCC/Clang vector extensions, 32-byte vectors) and the
// function-multiversioning attribute used by the CPU hot loops: on x86-64 each marked
// function is compiled twice (x86-64-v3 = AVX2+FMA, and the baseline) and the loader picks
// the best for the running CPU. Elsewhere the baseline build is used.
#pragma once

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__) && \
    !defined(KF_NO_CLONES)
#define KF_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KF_CLONES
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KF_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define KF_ALWAYS_INLINE inline
#endif

namespace kf {

template <typename T> struct Simd;

template <> struct Simd<float> {
  typedef float V __attribute__((vector_size(32)));
  static constexpr int L = 8;
};

template <> struct Simd<double> {
  typedef double V __attribute__((vector_size(32)));
  static constexpr int L = 4;
};

template <typename T>
KF_ALWAYS_INLINE typename Simd<T>::V vload(const T* p) {
  typename Simd<T>::V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
KF_ALWAYS_INLINE void vstore(T* p, typename Simd<T>::V v) {
  std::memcpy(p, &v, sizeof(v));
}

KF_ALWAYS_INLINE Simd<float>::V vbroadcast(float a) { return Simd<float>::V{a, a, a, a, a, a, a, a}; }
KF_ALWAYS_INLINE Simd<double>::V vbroadcast(double a) { return Simd<double>::V{a, a, a, a}; }

template <typename T>
KF_ALWAYS_INLINE T vsum(typename Simd<T>::V v) {
  T s = T(0);
  for (int l = 0; l < Simd<T>::L; ++l) s += v[l];
  return s;
}

}  // namespace kf
