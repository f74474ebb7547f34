// The direct loop nests of the convolution: every case, float32 and float64, on every
// CPU (the compiler vectorises along output rows). The last entry of each convolution
// list in the registry (registry/registry.cpp).
#pragma once

#include "common/geometry.h"

namespace convpool {

template <typename T>
void conv2d_forward_direct(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);

template <typename T>
void conv2d_grad_input_direct(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x);

template <typename T>
void conv2d_grad_weight_direct(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w);

// The fast float32 paths compute what the direct sum computes plus, at most, extra terms
// (products with padding zeros or zero-filled tails, Winograd's mixed tiles), which can turn
// a finite result non-finite but never the reverse. Each repair recomputes the non-finite
// results of a fast path by the direct sum (docs/winograd-numerics.md); the registry runs
// it after every float32 pass.
void conv2d_forward_repair_non_finite(const Conv2dGeometry& g, const float* x, const float* w,
                                      const float* bias, float* y);
void conv2d_grad_input_repair_non_finite(const Conv2dGeometry& g, const float* grad_y,
                                         const float* w, float* grad_x);
void conv2d_grad_weight_repair_non_finite(const Conv2dGeometry& g, const float* x,
                                          const float* grad_y, float* grad_w);

}  // namespace convpool
