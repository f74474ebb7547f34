// Channels-last convolution compiled once (conv2d_nhwc.h): the loop nests for every case
// and padding mode (nhwc_direct: float64, and float32 where forced) and the bias gradient.
// The per-ISA channels-last kernels are in csrc/kernels/conv2d_nhwc_blocked.cpp and
// csrc/kernels/conv2d_nhwc_loops.cpp.
#include "conv/conv2d_nhwc.h"

#include <algorithm>

#include "common/threading.h"
#include "conv/conv2d_nhwc_loops.h"

namespace convpool {

template <typename T>
void conv2d_forward_nhwc_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias,
                                T* y) {
  nhwc_loops_forward_impl(g, x, w, bias, y);
}

template <typename T>
void conv2d_grad_input_nhwc_direct(const Conv2dGeometry& g, const T* grad_y, const T* w,
                                   T* grad_x) {
  nhwc_loops_grad_input_impl(g, grad_y, w, grad_x);
}

template <typename T>
void conv2d_grad_weight_nhwc_direct(const Conv2dGeometry& g, const T* x, const T* grad_y,
                                    T* grad_w) {
  nhwc_loops_grad_weight_impl(g, x, grad_y, grad_w);
}

template <typename T>
void conv2d_grad_bias_nhwc(int64_t rows, int64_t channels, const T* grad_y, T* grad_b) {
  // Blocks of channels per thread, each summed over the rows in double in row order.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (channels + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads_for(rows * channels)) schedule(static)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t q0 = block * kBlock, count = std::min(kBlock, channels - q0);
    double sums[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* gy = grad_y + r * channels + q0;
      for (int64_t q = 0; q < count; ++q) sums[q] += static_cast<double>(gy[q]);
    }
    for (int64_t q = 0; q < count; ++q) grad_b[q0 + q] = static_cast<T>(sums[q]);
  }
}

template void conv2d_forward_nhwc_direct<float>(const Conv2dGeometry&, const float*, const float*,
                                                const float*, float*);
template void conv2d_forward_nhwc_direct<double>(const Conv2dGeometry&, const double*,
                                                 const double*, const double*, double*);
template void conv2d_grad_input_nhwc_direct<float>(const Conv2dGeometry&, const float*,
                                                   const float*, float*);
template void conv2d_grad_input_nhwc_direct<double>(const Conv2dGeometry&, const double*,
                                                    const double*, double*);
template void conv2d_grad_weight_nhwc_direct<float>(const Conv2dGeometry&, const float*,
                                                    const float*, float*);
template void conv2d_grad_weight_nhwc_direct<double>(const Conv2dGeometry&, const double*,
                                                     const double*, double*);
template void conv2d_grad_bias_nhwc<float>(int64_t, int64_t, const float*, float*);
template void conv2d_grad_bias_nhwc<double>(int64_t, int64_t, const double*, double*);

}  // namespace convpool
