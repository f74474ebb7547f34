// The kernel registry by operation name (the name of the Python function: "conv2d",
// "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d", ..., "channel_pool_grad_input"):
// what the bindings use to list, force and query implementations. The kernels themselves
// are called through the public functions of conv/conv2d.h and pool/pool2d.h, which run
// the registry's choice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/geometry.h"
#include "pool/pool2d.h"

namespace convpool::registry {

// Every operation the registry holds.
std::vector<std::string> operations();

// The implementations of `op` in the order they are tried (float32's list; float64's and
// float16's, where there is one, are subsets). std::invalid_argument for an unknown operation.
std::vector<std::string> implementation_names(const std::string& op);

// Forces implementation `name` of `op` in all its lists ("" restores the default order). std::invalid_argument
// for an unknown operation or implementation.
void force_implementation(const std::string& op, const std::string& name);

// The implementation forced for `op`, or "" when none is (for layers in front of the
// registry, which must step aside while a compiled implementation is forced).
std::string forced_implementation(const std::string& op);

// How many calls of `op` ran implementation `name` since the module loaded, in every
// thread: calls on element type `dtype` ("float32", "float64", "float16"), or on any if
// `dtype` is "".
int64_t runs(const std::string& op, const std::string& name, const std::string& dtype = "");

// The implementations of `op` that support a case at the SIMD level in force, in order:
// the first is the one a call runs (unless another is forced). `dtype` names the list:
// "float32", "float64" or "float16" (std::invalid_argument if `op` has no such list).
std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const Conv2dGeometry& g);
std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const PoolGeometry& g);
std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const GlobalPoolShape& s);
std::vector<std::string> supporting(const std::string& op, const std::string& dtype, const ChannelPoolShape& s);

// The implementation a call of `op` on this case runs now: the first that supports it, or
// the forced one (std::invalid_argument if that does not support it).
std::string chosen(const std::string& op, const std::string& dtype, const Conv2dGeometry& g);
std::string chosen(const std::string& op, const std::string& dtype, const PoolGeometry& g);
std::string chosen(const std::string& op, const std::string& dtype, const GlobalPoolShape& s);
std::string chosen(const std::string& op, const std::string& dtype, const ChannelPoolShape& s);

}  // namespace convpool::registry
