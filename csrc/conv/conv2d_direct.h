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

}  // namespace convpool
