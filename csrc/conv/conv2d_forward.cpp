// Forward convolution: the direct loop nest every case can use, and the dispatch to the
// fast paths (conv2d_dispatch.cpp).
#include "conv/conv2d.h"
#include "conv/conv2d_dispatch.h"
#include "common/threading.h"
#include "common/workspace.h"

namespace convpool {

namespace {

// One output plane (n, q) at a time: the plane stays in cache while every input channel
// and kernel tap adds its contribution along whole output rows, which the compiler
// vectorises. Taps falling in the zero padding are skipped by clipping the row range.
template <typename T>
void forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t planes = g.batch * g.out_channels;
#pragma omp parallel for num_threads(threads_for(planes * g.out_plane() * cin_g * g.kernel_plane())) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const int64_t n = plane / g.out_channels, q = plane % g.out_channels;
    const int64_t first_p = (q / cout_g) * cin_g;
    T* out = y + plane * g.out_plane();
    const T b = bias ? bias[q] : T(0);
    for (int64_t k = 0; k < g.out_plane(); ++k) out[k] = b;
    for (int64_t p = 0; p < cin_g; ++p) {
      const T* in = x + (n * g.in_channels + first_p + p) * g.in_plane();
      const T* wk = w + (q * cin_g + p) * g.kernel_plane();
      for (int64_t s = 0; s < R.kernel; ++s) {
        const int64_t i0 = R.first_inside(s), i1 = R.last_inside(s);
        for (int64_t t = 0; t < C.kernel; ++t) {
          const T weight = wk[s * C.kernel + t];
          const int64_t j0 = C.first_inside(t), j1 = C.last_inside(t);
          const int64_t col0 = C.input_index(0, t);
          for (int64_t i = i0; i < i1; ++i) {
            const T* in_row = in + R.input_index(i, s) * C.in_size + col0;
            T* out_row = out + i * C.out_size;
            for (int64_t j = j0; j < j1; ++j) out_row[j] += weight * in_row[j * C.stride];
          }
        }
      }
    }
  }
}

}  // namespace

template <>
void conv2d_forward<double>(const Conv2dGeometry& g, const double* x, const double* w,
                            const double* bias, double* y) {
  forward_direct(g, x, w, bias, y);
}

template <>
void conv2d_forward<float>(const Conv2dGeometry& g, const float* x, const float* w,
                           const float* bias, float* y) {
  const WorkspaceCall call;  // large scratch of the fast paths is released on return
  if (run_fast_forward(g, x, w, bias, y)) return;
  forward_direct(g, x, w, bias, y);
}

}  // namespace convpool
