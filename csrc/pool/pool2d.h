// Pooling on contiguous NCHW arrays, or NHWC ones (channels last, `channels_last` set in
// the geometry: kernels/pool_nhwc.cpp). Every (n, c) plane is pooled on its own, so the kernels
// see `planes = N * C` planes of `rows.in_size x cols.in_size` pixels; in NHWC the pixels
// of a plane lie `channels` elements apart, and the channels of a pixel are contiguous.
// Max-pooling indices are flat positions in an H*W plane in either layout.
//
// Window of output (i, j): rows i*sy - top + s*dy (s < kh), columns j*sx - left + t*dx
// (t < kw). Taps outside the input are padding: they never win a max, and count towards an
// average's divisor only as AvgPoolDivisor says. Every function writes its whole output.
#pragma once

#include <cstdint>

#include "common/geometry.h"

namespace convpool {

struct PoolGeometry {
  int64_t planes = 0;  // N * C
  WindowAxis rows;
  WindowAxis cols;
  bool channels_last = false;  // NHWC arrays (x, y, indices and gradients alike)
  int64_t channels = 1;        // C: needed to walk NHWC arrays (planes = N * channels)

  int64_t in_plane() const { return rows.in_size * cols.in_size; }
  int64_t out_plane() const { return rows.out_size * cols.out_size; }
};

// Throws std::invalid_argument naming the broken rule: what protects memory (values in
// range, element counts, every window starting inside the input or the padding before
// it). That every window holds an input pixel is the Python layer's rule.
void validate(const PoolGeometry& g);

// What an average divides by. With `override_value` != 0 that value; otherwise, per output
// position, the number of taps inside the input (count_include_pad false) or inside
// input + padding (true; a ceil_mode window hanging past the padding counts only the part
// inside, PyTorch's rule). Both counts factor into a row count times a column count.
struct AvgPoolDivisor {
  bool count_include_pad = true;
  int64_t override_value = 0;
};

// The per-axis factor of the divisor for every output position of `axis`, into
// counts[0, axis.out_size).
void window_counts(const WindowAxis& axis, bool include_pad, int64_t* counts);

// x (planes, H, W) -> y (planes, OH, OW); `indices` (same shape as y, flat positions in
// each H*W plane, first occurrence on ties, a NaN wins over numbers: the first NaN) or null.
template <typename T>
void max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices);

// grad_x[p, indices[p, k]] += grad_y[p, k]. Returns false (grad_x then undefined) if an
// index lies outside [0, H*W).
template <typename T>
bool max_pool2d_grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices,
                           T* grad_x);

template <typename T>
void avg_pool2d_forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y);

template <typename T>
void avg_pool2d_grad_input(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y,
                           T* grad_x);

// Global pooling's problem: `planes` planes of `plane_size` pixels each; channels last,
// x is (planes / channels, plane_size, channels).
struct GlobalPoolShape {
  int64_t planes = 0;
  int64_t plane_size = 0;
  bool channels_last = false;
  int64_t channels = 1;
};

// One number per plane: x (planes, plane_size) -> y (planes).
template <typename T>
void global_avg_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y);

template <typename T>
void global_avg_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, T* grad_x);

// `indices` (planes) or null: the flat position of the maximum (ties and NaN as above).
template <typename T>
void global_max_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y, int64_t* indices);

// The gradient goes to the maximum of each plane of x, found again as the forward finds it.
template <typename T>
void global_max_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, const T* x,
                                  T* grad_x);

// Pooling across channels: x (batch, channels, plane_size) ->
// y (batch, channels / group, plane_size) (channels last: (batch, plane_size, channels) ->
// (batch, plane_size, channels / group)), each output channel the max or mean of `group`
// consecutive input channels. Ties and NaN in max mode as above (first channel).
enum class ChannelPoolMode { max, avg };

struct ChannelPoolShape {
  int64_t batch = 0;
  int64_t channels = 0;  // input channels, a multiple of group
  int64_t group = 1;
  int64_t plane_size = 0;
  bool channels_last = false;

  int64_t out_channels() const { return channels / group; }
};

template <typename T>
void channel_pool_forward(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x, T* y);

// Max mode sends each gradient to the winning channel of x; avg mode spreads it evenly
// (x unused, may be null).
template <typename T>
void channel_pool_grad_input(const ChannelPoolShape& s, ChannelPoolMode mode, const T* grad_y,
                             const T* x, T* grad_x);

}  // namespace convpool
