// The fast float32 paths, tried in order before the direct loop nest. Each returns false
// when it does not support the case (or another implementation is forced), and the
// caller falls back.
#pragma once

#include "common/geometry.h"

namespace convpool {

bool run_fast_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                      float* y);
bool run_fast_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                         float* grad_x);
bool run_fast_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                          float* grad_w);

}  // namespace convpool
