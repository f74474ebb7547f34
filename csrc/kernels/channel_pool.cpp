// Pooling across channels ("maxout"): each output channel is the max or the mean of a
// group of consecutive input channels, pixel by pixel. Work is split into (n, output
// channel, piece of the plane) items, each a set of contiguous, vectorised loops.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"
#include "pool/pool2d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Every case: the kernels take any window, padding and plane.
bool channel_pool_forward_supports(const ChannelPoolShape&, int) { return true; }
bool channel_pool_grad_input_supports(const ChannelPoolShape&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>

#include "common/threading.h"
#include "pool/pool_common.h"

namespace convpool::CONVPOOL_ISA {

namespace {

constexpr int64_t piece = 2048;  // pixels per work item: a few group planes' worth fit in L1

struct Piece {
  int64_t b, q, begin, end;
};

Piece piece_of(const ChannelPoolShape& s, int64_t item) {
  const int64_t pieces = (s.plane_size + piece - 1) / piece;
  const int64_t bq = item / pieces;
  const int64_t begin = (item % pieces) * piece;
  return {bq / s.out_channels(), bq % s.out_channels(), begin,
          std::min(s.plane_size, begin + piece)};
}

int64_t items_of(const ChannelPoolShape& s) {
  return s.batch * s.out_channels() * ((s.plane_size + piece - 1) / piece);
}

// Pointer to pixel 0 of input channel k of the group of output channel q.
template <typename T>
T* group_channel(T* base, const ChannelPoolShape& s, const Piece& w, int64_t k) {
  return base + ((w.b * s.channels) + w.q * s.group + k) * s.plane_size;
}

template <typename T>
void forward(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x, T* y) {
#pragma omp parallel for num_threads(pool::threads_for(s.batch * s.channels * s.plane_size)) \
    schedule(dynamic, pool::chunk_for(piece * s.group))
  for (int64_t item = 0; item < items_of(s); ++item) {
    const Piece w = piece_of(s, item);
    T* out = y + (w.b * s.out_channels() + w.q) * s.plane_size;
    const T* first = group_channel(x, s, w, 0);
    for (int64_t e = w.begin; e < w.end; ++e) out[e] = first[e];
    for (int64_t k = 1; k < s.group; ++k) {
      const T* in = group_channel(x, s, w, k);
      if (mode == ChannelPoolMode::max) {
        for (int64_t e = w.begin; e < w.end; ++e) {
          out[e] = pool::max_propagating_nan(in[e], out[e]);
        }
      } else {
        for (int64_t e = w.begin; e < w.end; ++e) out[e] += in[e];
      }
    }
    if (mode == ChannelPoolMode::avg) {
      const T group = static_cast<T>(s.group);
      for (int64_t e = w.begin; e < w.end; ++e) out[e] /= group;
    }
  }
}

template <typename T>
void grad_input(const ChannelPoolShape& s, ChannelPoolMode mode, const T* grad_y, const T* x,
                T* grad_x) {
#pragma omp parallel num_threads(pool::threads_for(s.batch * s.channels * s.plane_size))
  {
    T best[piece];
    int32_t winner[piece];
#pragma omp for schedule(dynamic, pool::chunk_for(piece * s.group))
    for (int64_t item = 0; item < items_of(s); ++item) {
      const Piece w = piece_of(s, item);
      const T* gy = grad_y + (w.b * s.out_channels() + w.q) * s.plane_size + w.begin;
      const int64_t n = w.end - w.begin;
      if (mode == ChannelPoolMode::avg) {
        const T group = static_cast<T>(s.group);
        for (int64_t k = 0; k < s.group; ++k) {
          T* gx = group_channel(grad_x, s, w, k) + w.begin;
          for (int64_t e = 0; e < n; ++e) gx[e] = gy[e] / group;
        }
        continue;
      }
      // The winning channel of every pixel: the first maximum, or the first NaN.
      const T* first = group_channel(x, s, w, 0) + w.begin;
      for (int64_t e = 0; e < n; ++e) {
        best[e] = first[e];
        winner[e] = 0;
      }
      for (int64_t k = 1; k < s.group; ++k) {
        const T* in = group_channel(x, s, w, k) + w.begin;
        const int32_t channel = static_cast<int32_t>(k);
        for (int64_t e = 0; e < n; ++e) {
          const T v = in[e], m = best[e];
          const bool take = pool::replaces(v, m);
          best[e] = take ? v : m;
          winner[e] = take ? channel : winner[e];
        }
      }
      for (int64_t k = 0; k < s.group; ++k) {
        T* gx = group_channel(grad_x, s, w, k) + w.begin;
        const int32_t channel = static_cast<int32_t>(k);
        for (int64_t e = 0; e < n; ++e) {
          const T g = gy[e];
          gx[e] = winner[e] == channel ? g : T(0);
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void channel_pool_forward(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x, T* y) {
  forward(s, mode, x, y);
}

template <typename T>
void channel_pool_grad_input(const ChannelPoolShape& s, ChannelPoolMode mode, const T* grad_y,
                             const T* x, T* grad_x) {
  grad_input(s, mode, grad_y, x, grad_x);
}

template void channel_pool_forward<float>(const ChannelPoolShape&, ChannelPoolMode, const float*,
                                          float*);
template void channel_pool_forward<double>(const ChannelPoolShape&, ChannelPoolMode,
                                           const double*, double*);
template void channel_pool_grad_input<float>(const ChannelPoolShape&, ChannelPoolMode,
                                             const float*, const float*, float*);
template void channel_pool_grad_input<double>(const ChannelPoolShape&, ChannelPoolMode,
                                              const double*, const double*, double*);

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
