// Channels-last convolution compiled once (conv2d_nhwc.h): the loop nests for every case
// (nhwc_direct: float64, and float32 where forced), the bias gradient, and the predicates
// of the per-ISA channels-last kernels (asked on every CPU, so compiled without ISA flags).
#include "conv/conv2d_nhwc.h"

#include "common/threading.h"
#include "conv/conv2d_nhwc_loops.h"

namespace convpool {

template <typename T>
void conv2d_forward_nhwc_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias,
                                T* y) {
  nhwc_loops_forward_impl(g, x, w, bias, y);
}

template <typename T>
void conv2d_grad_input_nhwc_direct(const Conv2dGeometry& g, const T* grad_y, const T* w,
                                   T* grad_x) {
  nhwc_loops_grad_input_impl(g, grad_y, w, grad_x);
}

template <typename T>
void conv2d_grad_weight_nhwc_direct(const Conv2dGeometry& g, const T* x, const T* grad_y,
                                    T* grad_w) {
  nhwc_loops_grad_weight_impl(g, x, grad_y, grad_w);
}

template <typename T>
void conv2d_grad_bias_nhwc(int64_t rows, int64_t channels, const T* grad_y, T* grad_b) {
  // Blocks of channels per thread, each summed over the rows in double in row order.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (channels + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads_for(rows * channels)) schedule(static)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t q0 = block * kBlock, count = std::min(kBlock, channels - q0);
    double sums[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* gy = grad_y + r * channels + q0;
      for (int64_t q = 0; q < count; ++q) sums[q] += static_cast<double>(gy[q]);
    }
    for (int64_t q = 0; q < count; ++q) grad_b[q0 + q] = static_cast<T>(sums[q]);
  }
}

template void conv2d_forward_nhwc_direct<float>(const Conv2dGeometry&, const float*, const float*,
                                                const float*, float*);
template void conv2d_forward_nhwc_direct<double>(const Conv2dGeometry&, const double*,
                                                 const double*, const double*, double*);
template void conv2d_grad_input_nhwc_direct<float>(const Conv2dGeometry&, const float*,
                                                   const float*, float*);
template void conv2d_grad_input_nhwc_direct<double>(const Conv2dGeometry&, const double*,
                                                    const double*, double*);
template void conv2d_grad_weight_nhwc_direct<float>(const Conv2dGeometry&, const float*,
                                                    const float*, float*);
template void conv2d_grad_weight_nhwc_direct<double>(const Conv2dGeometry&, const double*,
                                                     const double*, double*);
template void conv2d_grad_bias_nhwc<float>(int64_t, int64_t, const float*, float*);
template void conv2d_grad_bias_nhwc<double>(int64_t, int64_t, const double*, double*);

namespace {

bool one_channel_per_group(const Conv2dGeometry& g) { return g.in_channels_per_group() == 1; }

// The packed weights (the kernel's size, output channels padded to whole tiles of at most
// four vectors) stay
// within what the operands hold.
bool packed_weights_fit(const Conv2dGeometry& g, int64_t padded_channels, int64_t other_channels) {
  return scratch_within_operands(
      g, double(g.groups) * double(g.kernel_plane()) * double(padded_channels) * double(other_channels));
}

int64_t padded(int64_t n, int vector_floats) { return (n + vector_floats - 1) / vector_floats * vector_floats; }

}  // namespace

// Register tiles of output-channel vectors: worth it from half a vector of output channels
// per group and with more than one input channel per group (depthwise layers vectorise
// over channels in nhwc_loops instead).
bool nhwc_blocked_supports(const Conv2dGeometry& g, int vector_floats) {
  const int64_t cout_g = g.out_channels_per_group();
  return !one_channel_per_group(g) && 2 * cout_g >= vector_floats &&
         packed_weights_fit(g, padded(cout_g, 4 * vector_floats), g.in_channels_per_group());
}

// The input gradient runs the forward engine on grad_y: stride 1, with the input channels
// of a group as its vectors.
bool nhwc_blocked_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  return g.rows.stride == 1 && g.cols.stride == 1 && cout_g > 1 && 2 * cin_g >= vector_floats &&
         packed_weights_fit(g, padded(cin_g, 4 * vector_floats), cout_g);
}

// Partial sums per task: the weights' size with output channels padded to whole blocks
// of (at most) four vectors.
bool nhwc_blocked_grad_weight_supports(const Conv2dGeometry& g, int vector_floats) {
  const int64_t cout_g = g.out_channels_per_group();
  return !one_channel_per_group(g) && 2 * cout_g >= vector_floats &&
         packed_weights_fit(g, padded(cout_g, 4 * vector_floats), g.in_channels_per_group());
}

bool nhwc_loops_supports(const Conv2dGeometry&, int) { return true; }

}  // namespace convpool
