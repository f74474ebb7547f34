// Gradient of the convolution with respect to its input.
#include "conv/conv2d.h"
#include "conv/conv2d_dispatch.h"
#include "common/threading.h"
#include "common/workspace.h"

namespace convpool {

namespace {

// One input-gradient plane (n, p) at a time, so that each thread owns what it writes
// (no atomics, deterministic): every output channel q that reads channel p scatters
// w[q, p, s, t] * grad_y[n, q] back along the rows it read.
template <typename T>
void grad_input_direct(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t planes = g.batch * g.in_channels;
#pragma omp parallel for num_threads(threads_for(planes * g.out_plane() * cout_g * g.kernel_plane())) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const int64_t n = plane / g.in_channels, p = plane % g.in_channels;
    const int64_t group = p / cin_g, p_in_group = p % cin_g;
    T* gx = grad_x + plane * g.in_plane();
    for (int64_t k = 0; k < g.in_plane(); ++k) gx[k] = T(0);
    for (int64_t qq = 0; qq < cout_g; ++qq) {
      const int64_t q = group * cout_g + qq;
      const T* gy = grad_y + (n * g.out_channels + q) * g.out_plane();
      const T* wk = w + (q * cin_g + p_in_group) * g.kernel_plane();
      for (int64_t s = 0; s < R.kernel; ++s) {
        const int64_t i0 = R.first_inside(s), i1 = R.last_inside(s);
        for (int64_t t = 0; t < C.kernel; ++t) {
          const T weight = wk[s * C.kernel + t];
          const int64_t j0 = C.first_inside(t), j1 = C.last_inside(t);
          const int64_t col0 = C.input_index(0, t);
          for (int64_t i = i0; i < i1; ++i) {
            T* gx_row = gx + R.input_index(i, s) * C.in_size + col0;
            const T* gy_row = gy + i * C.out_size;
            for (int64_t j = j0; j < j1; ++j) gx_row[j * C.stride] += weight * gy_row[j];
          }
        }
      }
    }
  }
}

}  // namespace

template <>
void conv2d_grad_input<double>(const Conv2dGeometry& g, const double* grad_y, const double* w,
                               double* grad_x) {
  grad_input_direct(g, grad_y, w, grad_x);
}

template <>
void conv2d_grad_input<float>(const Conv2dGeometry& g, const float* grad_y, const float* w,
                              float* grad_x) {
  const WorkspaceCall call;  // large scratch of the fast paths is released on return
  if (run_fast_grad_input(g, grad_y, w, grad_x)) return;
  grad_input_direct(g, grad_y, w, grad_x);
}

}  // namespace convpool
