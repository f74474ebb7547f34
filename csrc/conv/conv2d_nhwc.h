// Channels-last (NHWC) convolution: the kernels for a Conv2dGeometry with channels_last set.
//
//   y[n, i, j, q] = b[q] + sum_{p in group(q), s, t} w[q, p, s, t] * x[n, i*sy - top + s*dy, j*sx - left + t*dx, p]
//
// Shapes: x (N, H, W, C_in), w (C_out, C_in / groups, kh, kw) as in NCHW, b (C_out) or null,
// y (N, OH, OW, C_out). Channels are the contiguous axis, so the kernels vectorise over
// channels: the weights are packed once per call with the output channels (forward) or
// the input channels (input gradient) innermost, and every tap of every pixel is a row of
// that packed matrix. Taps in the zero padding are skipped, never multiplied: the results
// are the direct sum's terms, so no non-finite repair is needed (except in nhwc_winograd,
// whose transforms mix whole patches: it recomputes non-finite outputs by the direct sum,
// as the NCHW winograd does). The other padding modes are read by the kernels
// (padding_source_index): a padded pixel's tap reads, or for the input gradient adds to,
// the input pixel the mode repeats; no padded copy is made.
//
// Implementations (registry.cpp, the channels-last lists):
//   nhwc_winograd   float32, per ISA (kernels/conv2d_nhwc_winograd.cpp): Winograd for 3x3
//                   ungrouped layers with 16+ channels each way, zero padding only:
//                   F(2x2, 3x3) forward and input gradient at stride 1, the tap-parity
//                   split forward at stride 2; transforms vectorised over the contiguous
//                   channels, one (tiles x C_in) x (C_in x C_out) product per point.
//   The others take every padding mode.
//   nhwc_blocked    float32, per ISA (kernels/conv2d_nhwc_blocked.cpp): register tiles of output pixels x output-channel
//                   vectors over (tap, input channel); the input gradient is the same
//                   engine on grad_y once per stride phase, with that phase's taps of the
//                   kernel flipped and transposed; the weight gradient keeps (input
//                   channels x output-channel vectors) tiles in registers over the pixels
//                   of a few slices of the batch, every tap per pass over a chunk of
//                   pixels. Not for one channel per group.
//   nhwc_loops      float32, per ISA (kernels/conv2d_nhwc_loops.cpp): the loop nests of conv2d_nhwc_loops.h compiled for
//                   each instruction set; every case (depthwise layers vectorise over
//                   channels).
//   nhwc_direct     float64 (float32 where forced), portable: the same loop nests.
#pragma once

#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// The loop nests (conv2d_nhwc_loops.h), portable builds.
template <typename T>
void conv2d_forward_nhwc_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv2d_grad_input_nhwc_direct(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x);
template <typename T>
void conv2d_grad_weight_nhwc_direct(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w);

// Bias gradient of a channels-last grad_y seen as (rows, channels): every row summed, per
// channel, in double, in a fixed order.
template <typename T>
void conv2d_grad_bias_nhwc(int64_t rows, int64_t channels, const T* grad_y, T* grad_b);

}  // namespace convpool
