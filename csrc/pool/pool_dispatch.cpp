// The public pooling functions: each calls the build of the kernel for the SIMD level in
// force (pool_kernels.h), so that tests can run every build on one machine.
#include "common/cpu_features.h"
#include "pool/pool2d.h"
#include "pool/pool_kernels.h"

namespace convpool {

// Calls `name<T>(args...)` from the namespace of the active SIMD level.
#define CONVPOOL_DISPATCH(name, T, ...)                                  \
  switch (simd_level()) {                                                \
    case SimdLevel::avx512: return avx512::name<T>(__VA_ARGS__);         \
    case SimdLevel::avx2: return avx2::name<T>(__VA_ARGS__);             \
    default: return baseline::name<T>(__VA_ARGS__);                      \
  }

template <typename T>
void max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  CONVPOOL_DISPATCH(max_pool2d_forward, T, g, x, y, indices)
}

template <typename T>
bool max_pool2d_grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices,
                           T* grad_x) {
  CONVPOOL_DISPATCH(max_pool2d_grad_input, T, g, grad_y, indices, grad_x)
}

template <typename T>
void avg_pool2d_forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y) {
  CONVPOOL_DISPATCH(avg_pool2d_forward, T, g, d, x, y)
}

template <typename T>
void avg_pool2d_grad_input(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y,
                           T* grad_x) {
  CONVPOOL_DISPATCH(avg_pool2d_grad_input, T, g, d, grad_y, grad_x)
}

template <typename T>
void global_avg_pool2d_forward(int64_t planes, int64_t plane_size, const T* x, T* y) {
  CONVPOOL_DISPATCH(global_avg_pool2d_forward, T, planes, plane_size, x, y)
}

template <typename T>
void global_avg_pool2d_grad_input(int64_t planes, int64_t plane_size, const T* grad_y, T* grad_x) {
  CONVPOOL_DISPATCH(global_avg_pool2d_grad_input, T, planes, plane_size, grad_y, grad_x)
}

template <typename T>
void global_max_pool2d_forward(int64_t planes, int64_t plane_size, const T* x, T* y,
                               int64_t* indices) {
  CONVPOOL_DISPATCH(global_max_pool2d_forward, T, planes, plane_size, x, y, indices)
}

template <typename T>
void global_max_pool2d_grad_input(int64_t planes, int64_t plane_size, const T* grad_y, const T* x,
                                  T* grad_x) {
  CONVPOOL_DISPATCH(global_max_pool2d_grad_input, T, planes, plane_size, grad_y, x, grad_x)
}

template <typename T>
void channel_pool_forward(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x, T* y) {
  CONVPOOL_DISPATCH(channel_pool_forward, T, s, mode, x, y)
}

template <typename T>
void channel_pool_grad_input(const ChannelPoolShape& s, ChannelPoolMode mode, const T* grad_y,
                             const T* x, T* grad_x) {
  CONVPOOL_DISPATCH(channel_pool_grad_input, T, s, mode, grad_y, x, grad_x)
}

#undef CONVPOOL_DISPATCH

#define CONVPOOL_INSTANTIATE(T)                                                                \
  template void max_pool2d_forward<T>(const PoolGeometry&, const T*, T*, int64_t*);            \
  template bool max_pool2d_grad_input<T>(const PoolGeometry&, const T*, const int64_t*, T*);   \
  template void avg_pool2d_forward<T>(const PoolGeometry&, const AvgPoolDivisor&, const T*,    \
                                      T*);                                                     \
  template void avg_pool2d_grad_input<T>(const PoolGeometry&, const AvgPoolDivisor&, const T*, \
                                         T*);                                                  \
  template void global_avg_pool2d_forward<T>(int64_t, int64_t, const T*, T*);                  \
  template void global_avg_pool2d_grad_input<T>(int64_t, int64_t, const T*, T*);               \
  template void global_max_pool2d_forward<T>(int64_t, int64_t, const T*, T*, int64_t*);        \
  template void global_max_pool2d_grad_input<T>(int64_t, int64_t, const T*, const T*, T*);     \
  template void channel_pool_forward<T>(const ChannelPoolShape&, ChannelPoolMode, const T*,    \
                                        T*);                                                   \
  template void channel_pool_grad_input<T>(const ChannelPoolShape&, ChannelPoolMode,           \
                                           const T*, const T*, T*);
CONVPOOL_INSTANTIATE(float)
CONVPOOL_INSTANTIATE(double)
#undef CONVPOOL_INSTANTIATE

}  // namespace convpool
