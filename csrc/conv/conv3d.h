// Direct 3-D convolution (float32, NCDHW): its problem description and the entry points
// that run the kernel of the SIMD level in force (csrc/kernels/conv3d_direct.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convpool {

// One 3-D convolution with zero padding: axes in the order depth, height, width. The
// kernels read x (batch, in_channels, in[0], in[1], in[2]) as if `pad_before` /
// `pad_after` zeros surrounded it; y is (batch, out_channels, out[0], out[1], out[2]).
struct Conv3dShape {
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  int64_t in[3] = {0, 0, 0};
  int64_t out[3] = {0, 0, 0};
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t dilation[3] = {1, 1, 1};
  int64_t pad_before[3] = {0, 0, 0};
  int64_t pad_after[3] = {0, 0, 0};
  bool channels_last = false;  // the registry asks every problem its layout

  int64_t in_channels_per_group() const { return in_channels / groups; }
  int64_t out_channels_per_group() const { return out_channels / groups; }
};

// std::invalid_argument unless every size is positive, the channels divide into the
// groups, and `out` is the size the other numbers give (what the kernels index with).
void validate(const Conv3dShape& s);
std::string describe(const Conv3dShape& s);

// The names of the 3-D implementations that support `s` at the SIMD level in force.
std::vector<std::string> conv3d_supporting(const std::string& op, const Conv3dShape& s);

// y = conv3d(x, w) + bias (bias may be null).
void conv3d_forward(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                    float* y);
// y = conv(x, w) + bias in float32 from bfloat16 operands packed as channel pairs (two
// bfloat16 in each uint32; csrc/kernels/conv_bf16_dot.cpp): `s` counts pairs as input
// channels and has no padding (the operands come padded).
void conv_bf16_forward(const Conv3dShape& s, const uint32_t* x_pairs, const uint32_t* w_pairs,
                       const float* bias, float* y);
// grad_w = the gradient of conv3d_forward with respect to w.
void conv3d_grad_weight(const Conv3dShape& s, const float* x, const float* grad_y,
                        float* grad_w);

}  // namespace convpool
