// Global pooling: one number per (n, c) plane, the mean or the maximum, and the gradients.
//
// Compiled once per instruction set (see pool_kernels.h).
#include <cstdint>
#include <limits>

#include "common/threading.h"
#include "pool/pool_common.h"
#include "pool/pool_kernels.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// Sum of a plane: blocks summed in T across independent lanes (which vectorises without
// reassociating a single chain), the block sums added in double, so that float32 planes of
// millions of pixels keep about 1e-6 relative accuracy.
template <typename T>
double plane_sum(const T* x, int64_t n) {
  constexpr int64_t lanes = 16, block = 1024;
  double total = 0.0;
  int64_t k = 0;
  for (; k + block <= n; k += block) {
    T partial[lanes] = {};
    for (int64_t b = 0; b < block; b += lanes)
      for (int64_t l = 0; l < lanes; ++l) partial[l] += x[k + b + l];
    for (int64_t l = 0; l < lanes; ++l) total += static_cast<double>(partial[l]);
  }
  for (; k < n; ++k) total += static_cast<double>(x[k]);
  return total;
}

// Flat index of the first maximum of a plane (the first NaN if there is one): the maximum
// in one vectorised pass (running maxima of `block` columns, a NaN sticks), then the
// first block holding it (a vectorised test per block) and its position there.
template <typename T>
int64_t plane_argmax(const T* x, int64_t n) {
  constexpr int64_t block = 256;  // long enough that GCC vectorises rather than unrolls
  T best[block];
  for (int64_t l = 0; l < block; ++l) best[l] = -std::numeric_limits<T>::infinity();
  int64_t k = 0;
  for (; k + block <= n; k += block)
    for (int64_t l = 0; l < block; ++l) best[l] = pool::max_propagating_nan(x[k + l], best[l]);
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t l = 0; l < block; ++l) m = pool::max_propagating_nan(best[l], m);
  for (; k < n; ++k) m = pool::max_propagating_nan(x[k], m);
  const bool nan = m != m;
  for (k = 0; k + block <= n; k += block) {
    int found = 0;
    if (nan) {
      for (int64_t l = 0; l < block; ++l) found |= x[k + l] != x[k + l];
    } else {
      for (int64_t l = 0; l < block; ++l) found |= x[k + l] == m;
    }
    if (found) break;
  }
  for (; k < n; ++k)
    if (nan ? x[k] != x[k] : x[k] == m) return k;
  return 0;  // not reached for n >= 1: m is one of the values
}

}  // namespace

template <typename T>
void global_avg_pool2d_forward(int64_t planes, int64_t plane_size, const T* x, T* y) {
#pragma omp parallel for num_threads(pool::threads_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p)
    y[p] = static_cast<T>(plane_sum(x + p * plane_size, plane_size) / static_cast<double>(plane_size));
}

template <typename T>
void global_avg_pool2d_grad_input(int64_t planes, int64_t plane_size, const T* grad_y, T* grad_x) {
#pragma omp parallel for num_threads(pool::threads_for(planes * plane_size)) \
    schedule(dynamic, pool::chunk_for(plane_size))
  for (int64_t p = 0; p < planes; ++p) {
    const T share = grad_y[p] / static_cast<T>(plane_size);
    T* gx = grad_x + p * plane_size;
    for (int64_t k = 0; k < plane_size; ++k) gx[k] = share;
  }
}

template <typename T>
void global_max_pool2d_forward(int64_t planes, int64_t plane_size, const T* x, T* y,
                               int64_t* indices) {
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
void global_max_pool2d_grad_input(int64_t planes, int64_t plane_size, const T* grad_y, const T* x,
                                  T* grad_x) {
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
  template void global_avg_pool2d_forward<T>(int64_t, int64_t, const T*, T*);                \
  template void global_avg_pool2d_grad_input<T>(int64_t, int64_t, const T*, T*);             \
  template void global_max_pool2d_forward<T>(int64_t, int64_t, const T*, T*, int64_t*);      \
  template void global_max_pool2d_grad_input<T>(int64_t, int64_t, const T*, const T*, T*);
CONVPOOL_INSTANTIATE(float)
CONVPOOL_INSTANTIATE(double)
#undef CONVPOOL_INSTANTIATE

}  // namespace convpool::CONVPOOL_ISA
