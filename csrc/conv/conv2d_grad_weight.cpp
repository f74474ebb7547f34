// Gradient of the convolution with respect to its weights.
#include "conv/conv2d_direct.h"
#include "common/threading.h"

namespace convpool {

// One (q, p) kernel at a time, owned by one thread: its kh * kw taps are sums over the
// batch and the output plane, accumulated row by row in T and added in double, in a
// fixed order (deterministic whatever the thread count).
template <typename T>
void conv2d_grad_weight_direct(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t kernels = g.out_channels * cin_g;
#pragma omp parallel for num_threads(threads_for(kernels * g.batch * g.out_plane() * g.kernel_plane())) schedule(static)
  for (int64_t kernel = 0; kernel < kernels; ++kernel) {
    const int64_t q = kernel / cin_g, p = (q / cout_g) * cin_g + kernel % cin_g;
    T* gw = grad_w + kernel * g.kernel_plane();
    for (int64_t s = 0; s < R.kernel; ++s) {
      const int64_t i0 = R.first_inside(s), i1 = R.last_inside(s);
      for (int64_t t = 0; t < C.kernel; ++t) {
        const int64_t j0 = C.first_inside(t), j1 = C.last_inside(t);
        const int64_t col0 = C.input_index(0, t);
        double total = 0.0;
        for (int64_t n = 0; n < g.batch; ++n) {
          const T* in = x + (n * g.in_channels + p) * g.in_plane();
          const T* gy = grad_y + (n * g.out_channels + q) * g.out_plane();
          for (int64_t i = i0; i < i1; ++i) {
            const T* in_row = in + R.input_index(i, s) * C.in_size + col0;
            const T* gy_row = gy + i * C.out_size;
            T row_sum = T(0);
            for (int64_t j = j0; j < j1; ++j) row_sum += gy_row[j] * in_row[j * C.stride];
            total += static_cast<double>(row_sum);
          }
        }
        gw[s * C.kernel + t] = static_cast<T>(total);
      }
    }
  }
}


template void conv2d_grad_weight_direct<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_grad_weight_direct<double>(const Conv2dGeometry&, const double*, const double*, double*);

}  // namespace convpool
