// What padded pixels hold. Zero padding is never materialised: the kernels skip the taps
// that fall in it. The other modes map each padded coordinate to the input pixel it
// repeats, and the kernels read (or, for the input gradient, add to) that pixel.
#pragma once

#include <cstdint>

namespace convpool {

enum class PaddingMode { zeros, replicate, reflect, symmetric, circular };

// The mode's name in Python (padding_mode="reflect").
inline const char* padding_mode_name(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::zeros: return "zeros";
    case PaddingMode::replicate: return "replicate";
    case PaddingMode::reflect: return "reflect";
    case PaddingMode::symmetric: return "symmetric";
    case PaddingMode::circular: return "circular";
  }
  return "?";
}

// Index of the input pixel that padded coordinate `i` (in [-before, size + after)) repeats,
// or -1 for zero padding. Preconditions (validate_padding): size >= 1; reflect:
// pad < size; symmetric, circular: pad <= size.
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

// As padding_source_index for any `i`, -1 where no input pixel is repeated (zero padding,
// or a coordinate beyond what the mode's padding reaches: the slack that vector kernels
// read past the last window, which no output uses).
inline int64_t padding_source_or_none(int64_t i, int64_t size, PaddingMode mode) {
  const int64_t source = padding_source_index(i, size, mode);
  return source >= 0 && source < size ? source : -1;
}

// Throws std::invalid_argument unless `mode` can pad an axis of `size` by `before` and
// `after`: what keeps padding_source_index inside the input.
void validate_padding(PaddingMode mode, int64_t before, int64_t after, int64_t size,
                      const char* axis_name);

}  // namespace convpool
