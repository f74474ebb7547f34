// Global pooling: one number per (n, c) plane, the mean or the maximum, and the gradients.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"
#include "pool/pool2d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Every case: the kernels take any window, padding and plane.
bool global_avg_pool2d_forward_supports(const GlobalPoolShape&, int) { return true; }
bool global_avg_pool2d_grad_input_supports(const GlobalPoolShape&, int) { return true; }
bool global_max_pool2d_forward_supports(const GlobalPoolShape&, int) { return true; }
bool global_max_pool2d_grad_input_supports(const GlobalPoolShape&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "common/threading.h"
#include "pool/pool_common.h"

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::kVectorBytes;  // GCC vector extensions of the native width

template <typename T>
struct Vector {
  typedef T type __attribute__((vector_size(kVectorBytes)));
  static constexpr int64_t lanes = kVectorBytes / static_cast<int64_t>(sizeof(T));
  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof v);  // an unaligned load
    return v;
  }
};

// Sum of a plane: blocks summed in T by four vector accumulators (independent chains, no
// reassociation of one), the block sums added in double, so that float32 planes of
// millions of pixels keep about 1e-6 relative accuracy.
template <typename T>
double plane_sum(const T* x, int64_t n) {
  using V = Vector<T>;
  using vec = typename V::type;
  constexpr int64_t step = 4 * V::lanes, block = 1024;
  static_assert(block % step == 0, "a block is whole steps");
  double total = 0.0;
  int64_t k = 0;
  for (; k + block <= n; k += block) {
    vec s0 = vec{}, s1 = vec{}, s2 = vec{}, s3 = vec{};
    for (int64_t b = k; b < k + block; b += step) {
      s0 += V::load(x + b);
      s1 += V::load(x + b + V::lanes);
      s2 += V::load(x + b + 2 * V::lanes);
      s3 += V::load(x + b + 3 * V::lanes);
    }
    const vec sum = (s0 + s1) + (s2 + s3);
    for (int64_t l = 0; l < V::lanes; ++l) total += static_cast<double>(sum[l]);
  }
  for (; k < n; ++k) total += static_cast<double>(x[k]);
  return total;
}

// Flat index of the first maximum of a plane (the first NaN if there is one). One pass
// finds the maximum and whether a NaN occurs (four independent vector accumulators, so the
// compare-select chains overlap); a second finds the first position holding it.
template <typename T>
int64_t plane_argmax(const T* x, int64_t n) {
  using V = Vector<T>;
  using vec = typename V::type;
  constexpr int64_t step = 4 * V::lanes;
  const T lowest = -std::numeric_limits<T>::infinity();
  vec m0 = vec{} + lowest, m1 = m0, m2 = m0, m3 = m0;
  vec nan = vec{} * T(0);  // lanes become NaN once a NaN is seen: max drops NaN, this keeps it
  int64_t k = 0;
  for (; k + step <= n; k += step) {
    const vec v0 = V::load(x + k), v1 = V::load(x + k + V::lanes);
    const vec v2 = V::load(x + k + 2 * V::lanes), v3 = V::load(x + k + 3 * V::lanes);
    m0 = v0 > m0 ? v0 : m0;
    m1 = v1 > m1 ? v1 : m1;
    m2 = v2 > m2 ? v2 : m2;
    m3 = v3 > m3 ? v3 : m3;
    nan += (v0 - v0) + (v1 - v1) + (v2 - v2) + (v3 - v3);  // 0, or NaN from NaN or +-inf
  }
  T m = lowest;
  bool maybe_nan = false;
  for (int64_t l = 0; l < V::lanes; ++l) {
    for (const T candidate : {m0[l], m1[l], m2[l], m3[l]}) m = candidate > m ? candidate : m;
    maybe_nan = maybe_nan || nan[l] != nan[l];
  }
  for (; k < n; ++k) {
    m = x[k] > m ? x[k] : m;
    maybe_nan = maybe_nan || x[k] != x[k];
  }
  // (v - v) is NaN for infinities too: then look for an actual NaN.
  if (maybe_nan) {
    for (k = 0; k < n; ++k)
      if (x[k] != x[k]) return k;
  }
  constexpr int64_t block = 256;  // a vectorised test per block, then the position in it
  for (k = 0; k + block <= n; k += block) {
    int found = 0;
    for (int64_t l = 0; l < block; ++l) found |= x[k + l] == m;
    if (found) break;
  }
  for (; k < n; ++k)
    if (x[k] == m) return k;
  return 0;  // not reached for n >= 1: m is one of the values
}

}  // namespace

template <typename T>
void global_avg_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y) {
  const int64_t planes = s.planes, plane_size = s.plane_size;
#pragma omp parallel for num_threads(pool::threads_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p)
    y[p] = static_cast<T>(plane_sum(x + p * plane_size, plane_size) / static_cast<double>(plane_size));
}

template <typename T>
void global_avg_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, T* grad_x) {
  const int64_t planes = s.planes, plane_size = s.plane_size;
#pragma omp parallel for num_threads(pool::threads_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p) {
    const T share = grad_y[p] / static_cast<T>(plane_size);
    T* gx = grad_x + p * plane_size;
    for (int64_t k = 0; k < plane_size; ++k) gx[k] = share;
  }
}

template <typename T>
void global_max_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y, int64_t* indices) {
  const int64_t planes = s.planes, plane_size = s.plane_size;
#pragma omp parallel for num_threads(pool::threads_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = x + p * plane_size;
    const int64_t at = plane_argmax(in, plane_size);
    y[p] = in[at];
    if (indices) indices[p] = at;
  }
}

template <typename T>
void global_max_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, const T* x,
                                  T* grad_x) {
  const int64_t planes = s.planes, plane_size = s.plane_size;
#pragma omp parallel for num_threads(pool::threads_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t at = plane_argmax(x + p * plane_size, plane_size);
    T* gx = grad_x + p * plane_size;
    for (int64_t k = 0; k < plane_size; ++k) gx[k] = T(0);
    gx[at] = grad_y[p];
  }
}

#define CONVPOOL_INSTANTIATE(T)                                                              \
  template void global_avg_pool2d_forward<T>(const GlobalPoolShape&, const T*, T*);          \
  template void global_avg_pool2d_grad_input<T>(const GlobalPoolShape&, const T*, T*);       \
  template void global_max_pool2d_forward<T>(const GlobalPoolShape&, const T*, T*, int64_t*); \
  template void global_max_pool2d_grad_input<T>(const GlobalPoolShape&, const T*, const T*, T*);
CONVPOOL_INSTANTIATE(float)
CONVPOOL_INSTANTIATE(double)
#undef CONVPOOL_INSTANTIATE

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
