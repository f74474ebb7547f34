// Gradient of the convolution with respect to its bias: grad_y summed over batch and plane.
#include "conv/conv2d.h"
#include "common/threading.h"

namespace convpool {

template <typename T>
void conv2d_grad_bias(int64_t batch, int64_t channels, int64_t plane, const T* grad_y, T* grad_b) {
  // One channel per thread, in a fixed order: deterministic. A memory-bound reduction: the
  // values are added in T over short blocks (8 independent lanes, which the compiler
  // keeps in vector registers; at most 8 values per lane and block, so float32 loses
  // nothing measurable) and each block's lanes join double sums.
  constexpr int kLanes = 8;
  constexpr int64_t kBlock = 8 * kLanes;  // short: small planes (7x7 .. 14x14) use it too
#pragma omp parallel for num_threads(threads_for(batch * channels * plane)) schedule(static)
  for (int64_t q = 0; q < channels; ++q) {
    double lanes[kLanes] = {};
    double tail = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const T* gy = grad_y + (n * channels + q) * plane;
      int64_t k = 0;
      for (; k + kBlock <= plane; k += kBlock) {
        T block[kLanes] = {};
        for (int64_t b = 0; b < kBlock; b += kLanes)
          for (int l = 0; l < kLanes; ++l) block[l] += gy[k + b + l];
        for (int l = 0; l < kLanes; ++l) lanes[l] += static_cast<double>(block[l]);
      }
      for (; k < plane; ++k) tail += static_cast<double>(gy[k]);
    }
    double total = tail;
    for (double lane : lanes) total += lane;
    grad_b[q] = static_cast<T>(total);
  }
}

template void conv2d_grad_bias<float>(int64_t, int64_t, int64_t, const float*, float*);
template void conv2d_grad_bias<double>(int64_t, int64_t, int64_t, const double*, double*);

}  // namespace convpool
