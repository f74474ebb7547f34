#include "common/padding.h"

#include <stdexcept>
#include <string>

#include "common/threading.h"

namespace convpool {

void validate_padding(PaddingMode mode, const PlanePadding& pad, int64_t height, int64_t width) {
  if (pad.top < 0 || pad.bottom < 0 || pad.left < 0 || pad.right < 0)
    throw std::invalid_argument("padding must be >= 0");
  if (mode == PaddingMode::zeros || mode == PaddingMode::replicate) {
    if (mode == PaddingMode::replicate && (height == 0 || width == 0) &&
        (pad.top + pad.bottom + pad.left + pad.right) > 0)
      throw std::invalid_argument("replicate padding needs a non-empty input plane");
    return;
  }
  const bool strict = mode == PaddingMode::reflect;  // reflect: pad < size; others pad <= size
  const char* name = mode == PaddingMode::reflect     ? "reflect"
                     : mode == PaddingMode::symmetric ? "symmetric"
                                                      : "circular";
  auto check = [&](int64_t p, int64_t size, const char* axis) {
    if (p == 0) return;
    if (strict ? p >= size : p > size)
      throw std::invalid_argument(std::string(name) + " padding of " + std::to_string(p) +
                                  " on the " + axis + " axis needs padding " +
                                  (strict ? "< " : "<= ") + "input size " + std::to_string(size));
  };
  check(pad.top, height, "height");
  check(pad.bottom, height, "height");
  check(pad.left, width, "width");
  check(pad.right, width, "width");
}

template <typename T>
void pad_planes(const T* src, int64_t planes, int64_t height, int64_t width, const PlanePadding& pad,
                PaddingMode mode, T* dst) {
  const int64_t out_h = height + pad.top + pad.bottom;
  const int64_t out_w = width + pad.left + pad.right;
#pragma omp parallel for num_threads(threads_for(planes * out_h * out_w)) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = src + p * height * width;
    T* out = dst + p * out_h * out_w;
    for (int64_t i = 0; i < out_h; ++i) {
      const int64_t si = padding_source_index(i - pad.top, height, mode);
      T* row = out + i * out_w;
      if (si < 0) {
        for (int64_t j = 0; j < out_w; ++j) row[j] = T(0);
        continue;
      }
      const T* in_row = in + si * width;
      for (int64_t j = 0; j < out_w; ++j) {
        const int64_t sj = padding_source_index(j - pad.left, width, mode);
        row[j] = sj < 0 ? T(0) : in_row[sj];
      }
    }
  }
}

template <typename T>
void pad_planes_backward(const T* grad_padded, int64_t planes, int64_t height, int64_t width,
                         const PlanePadding& pad, PaddingMode mode, T* grad_src) {
  const int64_t pad_h = height + pad.top + pad.bottom;
  const int64_t pad_w = width + pad.left + pad.right;
#pragma omp parallel for num_threads(threads_for(planes * pad_h * pad_w)) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = grad_padded + p * pad_h * pad_w;
    T* out = grad_src + p * height * width;
    for (int64_t k = 0; k < height * width; ++k) out[k] = T(0);
    // Serial within a plane, in a fixed order: the sum is deterministic.
    for (int64_t i = 0; i < pad_h; ++i) {
      const int64_t si = padding_source_index(i - pad.top, height, mode);
      if (si < 0) continue;
      for (int64_t j = 0; j < pad_w; ++j) {
        const int64_t sj = padding_source_index(j - pad.left, width, mode);
        if (sj >= 0) out[si * width + sj] += in[i * pad_w + j];
      }
    }
  }
}

template void pad_planes<float>(const float*, int64_t, int64_t, int64_t, const PlanePadding&,
                                PaddingMode, float*);
template void pad_planes<double>(const double*, int64_t, int64_t, int64_t, const PlanePadding&,
                                 PaddingMode, double*);
template void pad_planes_backward<float>(const float*, int64_t, int64_t, int64_t,
                                         const PlanePadding&, PaddingMode, float*);
template void pad_planes_backward<double>(const double*, int64_t, int64_t, int64_t,
                                          const PlanePadding&, PaddingMode, double*);

}  // namespace convpool
