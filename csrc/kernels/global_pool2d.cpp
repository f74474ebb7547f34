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
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "common/threading.h"
#include "pool/pool_common.h"

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::kVectorBytes;  // GCC vector extensions of the native width

// The integer type of T's width: what a comparison of two vectors of T yields per lane.
template <typename T>
using same_width_int = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

// GCC vector extensions of `Bytes` bytes: the native width, and the halves a reduction
// across lanes folds it into.
template <typename T, int Bytes>
struct Lanes {
  typedef T type __attribute__((vector_size(Bytes)));
};

template <typename T>
struct Vector {
  using type = typename Lanes<T, kVectorBytes>::type;
  // lane indices, as integers of T's width (what a vector comparison yields)
  using index_type = typename Lanes<same_width_int<T>, kVectorBytes>::type;
  static constexpr int64_t lanes = kVectorBytes / static_cast<int64_t>(sizeof(T));
  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof v);  // an unaligned load
    return v;
  }
  static index_type lane_index() {
    index_type v;
    for (int64_t l = 0; l < lanes; ++l) v[l] = static_cast<same_width_int<T>>(l);
    return v;
  }
};

// `v` folded in halves down to one lane with `combine` (a tree: log2(lanes) steps of
// vector operations, where a loop over the lanes was a chain of `lanes` scalar steps,
// most of a small plane's time).
template <typename T, int Bytes, typename Combine>
T fold_lanes(typename Lanes<T, Bytes>::type v, Combine combine) {
  if constexpr (Bytes == 2 * static_cast<int>(sizeof(T))) {
    return combine(v[0], v[1]);
  } else {
    using Half = typename Lanes<T, Bytes / 2>::type;
    Half low, high;
    std::memcpy(&low, &v, sizeof low);
    std::memcpy(&high, reinterpret_cast<const char*>(&v) + sizeof low, sizeof high);
    return fold_lanes<T, Bytes / 2>(combine(low, high), combine);
  }
}

template <typename T>
T lane_sum(typename Vector<T>::type v) {
  return fold_lanes<T, kVectorBytes>(v, [](auto a, auto b) { return a + b; });
}

// The largest lane (of accumulators that hold no NaN: `v > m ? v : m` never takes one).
template <typename T>
T lane_max(typename Vector<T>::type v) {
  return fold_lanes<T, kVectorBytes>(v, [](auto a, auto b) { return a > b ? a : b; });
}

// Sum of a plane: blocks summed in T by four vector accumulators (independent chains, no
// reassociation of one), the block sums added in double, so that float32 planes of
// millions of pixels keep about 1e-6 relative accuracy. The rest (all of a small plane:
// 7x7 and 14x14 planes are the common global pools) runs whole vectors and one last vector
// ending at the plane's end, its lanes already counted masked out, so that no element is
// added one at a time unless the plane is narrower than a vector.
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
  if (n - k < V::lanes) {
    for (; k < n; ++k) total += static_cast<double>(x[k]);
    return total;
  }
  vec s0 = vec{}, s1 = vec{};
  for (; k + 2 * V::lanes <= n; k += 2 * V::lanes) {
    s0 += V::load(x + k);
    s1 += V::load(x + k + V::lanes);
  }
  if (k + V::lanes <= n) {
    s0 += V::load(x + k);
    k += V::lanes;
  }
  if (k < n) {  // the vector ending at n: its first lanes - (n - k) lanes were added above
    const auto counted = static_cast<same_width_int<T>>(V::lanes - (n - k));
    const vec tail = V::load(x + n - V::lanes);
    s1 += V::lane_index() >= counted ? tail : vec{};
  }
  return total + static_cast<double>(lane_sum<T>(s0 + s1));
}

// Maximum of a plane, or NaN if it holds one (the forward without indices needs no
// position). Four vector accumulators (independent compare-select chains), then whole
// vectors and one last vector ending at the plane's end (a maximum may see an element
// twice); planes narrower than a vector one element at a time.
template <typename T>
T plane_max(const T* x, int64_t n) {
  using V = Vector<T>;
  using vec = typename V::type;
  constexpr int64_t step = 4 * V::lanes;
  T m = -std::numeric_limits<T>::infinity();
  if (n < V::lanes) {
    for (int64_t k = 0; k < n; ++k) m = pool::max_propagating_nan(x[k], m);
    return m;
  }
  vec m0 = vec{} + m, m1 = m0, m2 = m0, m3 = m0;
  vec nan = vec{};  // lanes become NaN once a NaN is seen: max drops NaN, this keeps it
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
  for (; k + V::lanes <= n; k += V::lanes) {
    const vec v = V::load(x + k);
    m0 = v > m0 ? v : m0;
    nan += v - v;
  }
  if (k < n) {
    const vec v = V::load(x + n - V::lanes);
    m1 = v > m1 ? v : m1;
    nan += v - v;
  }
  m0 = m1 > m0 ? m1 : m0;
  m2 = m3 > m2 ? m3 : m2;
  m = lane_max<T>(m2 > m0 ? m2 : m0);
  const T any_nan = lane_sum<T>(nan);  // NaN if a lane is
  if (any_nan != any_nan) {  // (v - v) is NaN for infinities too: look for an actual NaN
    for (k = 0; k < n; ++k)
      if (x[k] != x[k]) return x[k];
  }
  return m;
}

// Flat index of the first maximum of a plane (the first NaN if there is one): the maximum
// (plane_max), then the first position holding it.
template <typename T>
int64_t plane_argmax(const T* x, int64_t n) {
  const T m = plane_max(x, n);
  int64_t k = 0;
  if (m != m) {
    for (; k < n; ++k)
      if (x[k] != x[k]) return k;
  }
  constexpr int64_t block = 256;  // a vectorised test per block, then the position in it
  for (; k + block <= n; k += block) {
    int found = 0;
    for (int64_t l = 0; l < block; ++l) found |= x[k + l] == m;
    if (found) break;
  }
  for (; k < n; ++k)
    if (x[k] == m) return k;
  return 0;  // not reached for n >= 1: m is one of the values
}

// Threads for `elements` input elements: one per 256K (1 MiB of float32). A plane is one
// pass in vectors (the small planes of the last stages too), so a team pays off only for
// more elements than the other pooling kernels' grain (pool::threads_for, 64K).
inline int team_for(int64_t elements) {
  return static_cast<int>(std::min<int64_t>(num_threads(), elements / (int64_t(1) << 18) + 1));
}

}  // namespace

template <typename T>
void global_avg_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y) {
  const int64_t planes = s.planes, plane_size = s.plane_size;
#pragma omp parallel for num_threads(team_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p)
    y[p] = static_cast<T>(plane_sum(x + p * plane_size, plane_size) / static_cast<double>(plane_size));
}

template <typename T>
void global_avg_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, T* grad_x) {
  const int64_t planes = s.planes, plane_size = s.plane_size;
#pragma omp parallel for num_threads(team_for(planes * plane_size)) \
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
#pragma omp parallel for num_threads(team_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = x + p * plane_size;
    if (indices == nullptr) {
      y[p] = plane_max(in, plane_size);
      continue;
    }
    const int64_t at = plane_argmax(in, plane_size);
    y[p] = in[at];
    indices[p] = at;
  }
}

template <typename T>
void global_max_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, const T* x,
                                  T* grad_x) {
  const int64_t planes = s.planes, plane_size = s.plane_size;
#pragma omp parallel for num_threads(team_for(planes * plane_size)) \
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
