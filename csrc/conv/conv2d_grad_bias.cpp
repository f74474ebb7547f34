// Gradient of the convolution with respect to its bias: grad_y summed over batch and plane.
#include "conv/conv2d.h"
#include "common/threading.h"

namespace convpool {

template <typename T>
void conv2d_grad_bias(int64_t batch, int64_t channels, int64_t plane, const T* grad_y, T* grad_b) {
  // One channel per thread, summed in double in a fixed order: deterministic.
#pragma omp parallel for num_threads(threads_for(batch * channels * plane)) schedule(static)
  for (int64_t q = 0; q < channels; ++q) {
    // Eight independent partial sums: one running sum would wait on each add's latency.
    double lanes[8] = {};
    for (int64_t n = 0; n < batch; ++n) {
      const T* gy = grad_y + (n * channels + q) * plane;
      int64_t k = 0;
      for (; k + 8 <= plane; k += 8)
        for (int l = 0; l < 8; ++l) lanes[l] += static_cast<double>(gy[k + l]);
      for (; k < plane; ++k) lanes[k % 8] += static_cast<double>(gy[k]);
    }
    double total = 0.0;
    for (double lane : lanes) total += lane;
    grad_b[q] = static_cast<T>(total);
  }
}

template void conv2d_grad_bias<float>(int64_t, int64_t, int64_t, const float*, float*);
template void conv2d_grad_bias<double>(int64_t, int64_t, int64_t, const double*, double*);

}  // namespace convpool
