// The pooling kernels are compiled once per instruction set (CONVPOOL_ISA_SOURCES in
// CMakeLists.txt): each build defines the functions of pool2d.h in its own namespace
// (convpool::avx512, ::avx2, ::baseline), and the registry (registry/registry.cpp) calls
// the one for the SIMD level in force. Semantics are those documented in pool2d.h.
#pragma once

#include <cstdint>

#include "pool/pool2d.h"

#define CONVPOOL_DECLARE_POOL_KERNELS                                                       \
  template <typename T>                                                                     \
  void max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices);       \
  template <typename T>                                                                     \
  bool max_pool2d_grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices, \
                             T* grad_x);                                                    \
  template <typename T>                                                                     \
  void avg_pool2d_forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y); \
  template <typename T>                                                                     \
  void avg_pool2d_grad_input(const PoolGeometry& g, const AvgPoolDivisor& d,                \
                             const T* grad_y, T* grad_x);                                   \
  template <typename T>                                                                     \
  void global_avg_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y);               \
  template <typename T>                                                                     \
  void global_avg_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, T* grad_x);  \
  template <typename T>                                                                     \
  void global_max_pool2d_forward(const GlobalPoolShape& s, const T* x, T* y,                \
                                 int64_t* indices);                                         \
  template <typename T>                                                                     \
  void global_max_pool2d_grad_input(const GlobalPoolShape& s, const T* grad_y, const T* x,  \
                                    T* grad_x);                                             \
  template <typename T>                                                                     \
  void channel_pool_forward(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x,    \
                            T* y);                                                          \
  template <typename T>                                                                     \
  void channel_pool_grad_input(const ChannelPoolShape& s, ChannelPoolMode mode,             \
                               const T* grad_y, const T* x, T* grad_x);                    \
  /* Channels last (pool_nhwc.cpp): the same operations on NHWC arrays. */                  \
  template <typename T>                                                                     \
  void max_pool2d_forward_nhwc(const PoolGeometry& g, const T* x, T* y, int64_t* indices);  \
  template <typename T>                                                                     \
  bool max_pool2d_grad_input_nhwc(const PoolGeometry& g, const T* grad_y,                   \
                                  const int64_t* indices, T* grad_x);                       \
  template <typename T>                                                                     \
  void avg_pool2d_forward_nhwc(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x,  \
                               T* y);                                                       \
  template <typename T>                                                                     \
  void avg_pool2d_grad_input_nhwc(const PoolGeometry& g, const AvgPoolDivisor& d,           \
                                  const T* grad_y, T* grad_x);                              \
  template <typename T>                                                                     \
  void global_avg_pool2d_forward_nhwc(const GlobalPoolShape& s, const T* x, T* y);          \
  template <typename T>                                                                     \
  void global_avg_pool2d_grad_input_nhwc(const GlobalPoolShape& s, const T* grad_y,         \
                                         T* grad_x);                                        \
  template <typename T>                                                                     \
  void global_max_pool2d_forward_nhwc(const GlobalPoolShape& s, const T* x, T* y,           \
                                      int64_t* indices);                                    \
  template <typename T>                                                                     \
  void global_max_pool2d_grad_input_nhwc(const GlobalPoolShape& s, const T* grad_y,         \
                                         const T* x, T* grad_x);                            \
  template <typename T>                                                                     \
  void channel_pool_forward_nhwc(const ChannelPoolShape& s, ChannelPoolMode mode,           \
                                 const T* x, T* y);                                         \
  template <typename T>                                                                     \
  void channel_pool_grad_input_nhwc(const ChannelPoolShape& s, ChannelPoolMode mode,        \
                                    const T* grad_y, const T* x, T* grad_x);

namespace convpool::avx512 {
CONVPOOL_DECLARE_POOL_KERNELS
}
namespace convpool::avx2 {
CONVPOOL_DECLARE_POOL_KERNELS
}
namespace convpool::baseline {
CONVPOOL_DECLARE_POOL_KERNELS
}

#undef CONVPOOL_DECLARE_POOL_KERNELS
