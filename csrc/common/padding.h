// Explicit padding for the non-zero padding modes. Zero padding never materialises:
// the kernels skip taps that fall outside the input. The other modes copy input pixels
// into a padded buffer, and their gradient adds each padded pixel's gradient back to
// the pixel it was copied from.
#pragma once

#include <cstdint>

namespace convpool {

enum class PaddingMode { zeros, replicate, reflect, symmetric, circular };

struct PlanePadding {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};

// Index of the input pixel that padded coordinate `i` (in [-before, size + after)) copies.
// Preconditions (checked by the caller): size >= 1; reflect: pad < size;
// symmetric, circular: pad <= size.
inline int64_t padding_source_index(int64_t i, int64_t size, PaddingMode mode) {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case PaddingMode::replicate: return i < 0 ? 0 : size - 1;
    case PaddingMode::reflect: return i < 0 ? -i : 2 * (size - 1) - i;
    case PaddingMode::symmetric: return i < 0 ? -i - 1 : 2 * size - 1 - i;
    case PaddingMode::circular: return i < 0 ? i + size : i - size;
    case PaddingMode::zeros: break;
  }
  return -1;  // zeros: no source pixel
}

// Throws std::invalid_argument if `mode` cannot produce padding `pad` for an axis of `size`.
void validate_padding(PaddingMode mode, const PlanePadding& pad, int64_t height, int64_t width);

// src: `planes` planes of height x width; dst: planes of the padded size.
template <typename T>
void pad_planes(const T* src, int64_t planes, int64_t height, int64_t width, const PlanePadding& pad,
                PaddingMode mode, T* dst);

// grad_padded: planes of the padded size; grad_src (written, not accumulated): original size.
template <typename T>
void pad_planes_backward(const T* grad_padded, int64_t planes, int64_t height, int64_t width,
                         const PlanePadding& pad, PaddingMode mode, T* grad_src);

}  // namespace convpool
