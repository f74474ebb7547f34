// Forward convolution: the direct loop nest every case can use, and the dispatch to the
// non-finite repair of the fast paths (the registry runs both: registry/registry.cpp).
#include <cmath>

#include "conv/conv2d.h"
#include "conv/conv2d_direct.h"
#include "conv/direct_taps.h"
#include "common/threading.h"
#include "common/workspace.h"

namespace convpool {

namespace {

// One output plane (n, q) at a time: the plane stays in cache while every input channel
// and kernel tap adds its contribution along whole output rows, which the compiler
// vectorises. Taps falling in zero padding are skipped by clipping the row range; the
// other modes read the pixel their padding repeats (direct_taps.h).
template <typename T>
void forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const PaddingMode mode = g.padding_mode;
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
        const TapOutputs rows = tap_outputs(R, s, mode);
        for (int64_t t = 0; t < C.kernel; ++t) {
          const T weight = wk[s * C.kernel + t];
          for (int64_t i = rows.first; i < rows.last; ++i) {
            const T* in_row = in + tap_source(R, i, s, mode) * C.in_size;
            T* out_row = out + i * C.out_size;
            for_each_tap_column(C, t, mode,
                                [&](int64_t j, int64_t c) { out_row[j] += weight * in_row[c]; });
          }
        }
      }
    }
  }
}

// Output (n, q, i, j) as forward_direct computes it: the bias, then each input channel's
// taps that read a pixel (all of them, but for taps in zero padding).
float direct_output(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                    int64_t n, int64_t q, int64_t i, int64_t j) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), first_p = (q / g.out_channels_per_group()) * cin_g;
  float sum = bias ? bias[q] : 0.0f;
  for (int64_t p = 0; p < cin_g; ++p) {
    const float* in = x + (n * g.in_channels + first_p + p) * g.in_plane();
    const float* wk = w + (q * cin_g + p) * g.kernel_plane();
    for (int64_t s = 0; s < R.kernel; ++s) {
      const int64_t r = tap_source(R, i, s, g.padding_mode);
      if (r < 0) continue;
      for (int64_t t = 0; t < C.kernel; ++t) {
        const int64_t c = tap_source(C, j, t, g.padding_mode);
        if (c >= 0) sum += wk[s * C.kernel + t] * in[r * C.in_size + c];
      }
    }
  }
  return sum;
}

// The blocked and plane paths multiply their zero-padded copies by every weight, where the
// direct sum skips the taps in the padding: a NaN or inf weight (or bias) then reaches
// border outputs whose windows put it in the padding (inf x 0 = NaN). With finite weights
// the extra products are exact zeros, and the Winograd path checks its own outputs, so only
// then are the outputs scanned and the non-finite ones recomputed (docs/winograd-numerics.md).
void recompute_non_finite_outputs(const Conv2dGeometry& g, const float* x, const float* w,
                                  const float* bias, float* y) {
  // Only non-finite outputs are recomputed, so all-finite outputs need nothing either:
  // the smaller of the two is scanned first (the weights of a deep layer, 2.4M floats for
  // 512 channels 3x3, are no longer in cache after the kernel; its outputs are).
  const int64_t weights = g.out_channels * g.in_channels_per_group() * g.kernel_plane();
  const int64_t outputs = g.batch * g.out_channels * g.out_plane();
  if (outputs <= weights && all_finite(y, outputs)) return;
  if (all_finite(w, weights) && (bias == nullptr || all_finite(bias, g.out_channels))) return;
  const int64_t planes = g.batch * g.out_channels;
#pragma omp parallel for num_threads(threads_for(planes * g.out_plane())) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* out = y + plane * g.out_plane();
    for (int64_t k = 0; k < g.out_plane(); ++k)
      if (!std::isfinite(out[k]))
        out[k] = direct_output(g, x, w, bias, plane / g.out_channels, plane % g.out_channels,
                               k / g.cols.out_size, k % g.cols.out_size);
  }
}

}  // namespace

template <typename T>
void conv2d_forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  forward_direct(g, x, w, bias, y);
}

template void conv2d_forward_direct<float>(const Conv2dGeometry&, const float*, const float*,
                                           const float*, float*);
template void conv2d_forward_direct<double>(const Conv2dGeometry&, const double*, const double*,
                                            const double*, double*);

void conv2d_forward_repair_non_finite(const Conv2dGeometry& g, const float* x, const float* w,
                                      const float* bias, float* y) {
  recompute_non_finite_outputs(g, x, w, bias, y);
}

}  // namespace convpool
