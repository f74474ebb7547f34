// Channels-last float32 convolution, the loop nests of conv/conv2d_nhwc_loops.h compiled
// for each instruction set (nhwc_loops): every case and padding mode; depthwise layers
// vectorise over channels.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the registry
// lines name both (registry/registry.cpp, the channels-last lists).
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Every case and padding mode.
bool nhwc_loops_forward_supports(const Conv2dGeometry&, int) { return true; }
bool nhwc_loops_grad_input_supports(const Conv2dGeometry&, int) { return true; }
bool nhwc_loops_grad_weight_supports(const Conv2dGeometry&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include "conv/conv2d_nhwc_loops.h"

namespace convpool::CONVPOOL_ISA {

void nhwc_loops_forward(const Conv2dGeometry& g, const float* x, const float* w,
                        const float* bias, float* y) {
  nhwc_loops_forward_impl(g, x, w, bias, y);
}

void nhwc_loops_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                           float* grad_x) {
  nhwc_loops_grad_input_impl(g, grad_y, w, grad_x);
}

void nhwc_loops_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                            float* grad_w) {
  nhwc_loops_grad_weight_impl(g, x, grad_y, grad_w);
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
