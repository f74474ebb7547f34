// 3-D max pooling with indices (float32, float64; NCDHW): its problem description and
// the entry point that runs the kernel of the SIMD level in force
// (csrc/kernels/max_pool3d.cpp). The Python layer (pool_nd.py) resolves the geometry
// and checks that every window holds an input voxel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/geometry.h"

namespace convpool {

// `planes` = N * C volumes of in_size (depth, height, width) voxels each; axes[0] depth,
// axes[1] height, axes[2] width. Indices are flat positions d * H * W + h * W + w in each
// volume, as PyTorch's.
struct Pool3dShape {
  int64_t planes = 0;
  WindowAxis axes[3];
  bool channels_last = false;  // the registry asks every problem its layout

  int64_t in_volume() const { return axes[0].in_size * axes[1].in_size * axes[2].in_size; }
  int64_t out_volume() const { return axes[0].out_size * axes[1].out_size * axes[2].out_size; }
};

// std::invalid_argument naming the broken rule: what protects memory (positive sizes,
// output sizes the axes give, every window starting inside the input or the padding
// before it).
void validate(const Pool3dShape& s);

// The names of the 3-D max-pooling implementations that support `s` at the SIMD level in
// force.
std::vector<std::string> max_pool3d_supporting(const Pool3dShape& s);

// x (planes, D, H, W) -> y (planes, OD, OH, OW) and indices (the same shape): each the
// first maximum of its window in row-major (d, h, w) order, or its first NaN. Taps in the
// padding never win; a window without an input voxel is the caller's error.
template <typename T>
void max_pool3d_forward(const Pool3dShape& s, const T* x, T* y, int64_t* indices);

}  // namespace convpool
