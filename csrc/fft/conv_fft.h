// Convolution through the FFT (pocketfft): overlap-save tiles for the
// large kernels of conv2d and its gradients at stride 1 and dilation 1. Compiled once, not
// per instruction set: pocketfft picks its own vector width when compiled, and the
// transforms, not the instruction set, bound this path.
#pragma once

#include <cstdint>

namespace convpool::fft {

// Element strides of a 4-D array read as (N, C, H, W): a channels-last array is the same
// numbers in another order, so it is served without a copy.
struct Strides {
  int64_t n, c, h, w;
};

// The sizes of one correlation
//   out[n, q, i, j] = bias[q] + sum_{p, a, b} k[q, p, a, b] x[n, g(q) * C_in/groups + p,
//                                                              i + a - top, j + b - left]
// with x zero outside its extent (top and left may be negative: a crop). k is C-contiguous
// (C_out, C_in / groups, kh, kw).
struct Correlation {
  int64_t batch, in_channels, height, width;
  int64_t out_channels, groups, kh, kw;
  int64_t out_height, out_width;
  int64_t top, left;
};

// How the output is cut: transforms of fh x fw points, output tiles of th x tw
// (fh >= th + kh - 1 and fw >= tw + kw - 1, so the circular correlation never wraps into
// the kept outputs).
struct Tiling {
  int64_t fh, fw, th, tw;
};

// Throws std::invalid_argument unless c and t are consistent and positive.
void validate(const Correlation& c, const Tiling& t);

// out = the correlation above (+ bias when not null), tile by tile, the tiles shared out
// among num_threads() threads in contiguous runs. The transforms are T, or double when
// float64_transforms (float32 operands, results within float32 rounding element by element).
template <typename T>
void correlate(const T* x, Strides x_strides, const T* k, const T* bias, T* out,
               Strides out_strides, const Correlation& c, const Tiling& t,
               bool float64_transforms);

// The weight gradient of the correlation: grad_k[q, p, a, b] = sum_{n, i, j}
// grad_out[n, q, i, j] x[n, g(q) * C_in/groups + p, i + a - top, j + b - left], the products
// of every tile summed in the frequency domain (per thread, then in thread order), one
// inverse transform at the end. grad_k is C-contiguous (C_out, C_in / groups, kh, kw).
template <typename T>
void correlate_weight(const T* x, Strides x_strides, const T* grad_out, Strides grad_out_strides,
                      T* grad_k, const Correlation& c, const Tiling& t, bool float64_transforms);

}  // namespace convpool::fft
