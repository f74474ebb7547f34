// Pooling on channels-last (NHWC) arrays: windowed max and average pooling, global pooling
// and pooling across channels, forward and gradients, with the semantics of pool2d.h.
//
// A pixel's channels are contiguous, so every loop here runs across channels: each window
// tap is one contiguous load of C values combined into C running results (vectorised by
// the compiler at the build's width), and no plane is ever gathered or transposed.
// Windows are scanned tap by tap in row-major order, so the `replaces` rule gives the
// first maximum (or the first NaN) exactly as the NCHW kernels do, and indices are the
// same flat positions in each H*W plane.
//
// Work is divided by output rows (forward passes, which write disjoint rows) or by slices
// of channels of one image (gradients that scatter into a whole plane, and the global
// reductions): each item owns what it writes, so results never depend on the threads.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the registry
// lines name both (registry/registry.cpp), in each operation's channels-last list.
#include <cstdint>

#include "common/geometry.h"
#include "pool/pool2d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Every channels-last case (the registry offers these kernels channels-last cases only).
bool max_pool2d_forward_nhwc_supports(const PoolGeometry&, int) { return true; }
bool max_pool2d_grad_input_nhwc_supports(const PoolGeometry&, int) { return true; }
bool avg_pool2d_forward_nhwc_supports(const PoolGeometry&, int) { return true; }
bool avg_pool2d_grad_input_nhwc_supports(const PoolGeometry&, int) { return true; }
bool global_avg_pool2d_forward_nhwc_supports(const GlobalPoolShape&, int) { return true; }
bool global_avg_pool2d_grad_input_nhwc_supports(const GlobalPoolShape&, int) { return true; }
bool global_max_pool2d_forward_nhwc_supports(const GlobalPoolShape&, int) { return true; }
bool global_max_pool2d_grad_input_nhwc_supports(const GlobalPoolShape&, int) { return true; }
bool channel_pool_forward_nhwc_supports(const ChannelPoolShape&, int) { return true; }
bool channel_pool_grad_input_nhwc_supports(const ChannelPoolShape&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "common/threading.h"
#include "pool/pool_common.h"

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::Divisors;
using pool::max_propagating_nan;
using pool::replaces;
using pool::TapRange;

// Most channels per work item of the passes that own whole planes: a slice's running
// results (and a pixel's slice of the input) fit in L1 and on the stack.
constexpr int64_t kChannelBlock = 256;
// Fewest: a 64-byte cache line of float32, so that neighbouring slices rarely share one.
constexpr int64_t kMinChannelBlock = 16;

// Work items (image n, channels [c0, c1)): slices of kChannelBlock channels, narrowed
// (down to kMinChannelBlock) until there are a few items per thread, so that a batch of
// one image still keeps every thread busy.
class ChannelSlices {
 public:
  ChannelSlices(int64_t batch, int64_t channels) : batch_(batch), channels_(channels) {
    const int64_t wanted = 4 * static_cast<int64_t>(num_threads());
    while (width_ > kMinChannelBlock && batch * slices(width_) < wanted) width_ /= 2;
    per_image_ = slices(width_);
  }
  int64_t items() const { return batch_ * per_image_; }
  void get(int64_t item, int64_t* n, int64_t* c0, int64_t* c1) const {
    *n = item / per_image_;
    *c0 = (item % per_image_) * width_;
    *c1 = std::min(channels_, *c0 + width_);
  }

 private:
  int64_t slices(int64_t width) const { return (channels_ + width - 1) / width; }

  int64_t batch_;
  int64_t channels_;
  int64_t width_ = kChannelBlock;
  int64_t per_image_ = 0;
};

// Runs body(n, c0, c1) once per work item of ChannelSlices(batch, channels), the items
// spread over the threads `work` element visits are worth, one at a time. Returns whether
// every body returned true (a body returning nothing counts as true).
template <typename Body>
bool for_each_channel_slice(int64_t batch, int64_t channels, int64_t work, Body&& body) {
  const ChannelSlices slices(batch, channels);
  bool all = true;
#pragma omp parallel for num_threads(pool::threads_for(work)) schedule(dynamic, 1) reduction(&& : all)
  for (int64_t item = 0; item < slices.items(); ++item) {
    int64_t n, c0, c1;
    slices.get(item, &n, &c0, &c1);
    if constexpr (std::is_same_v<decltype(body(n, c0, c1)), bool>) {
      all = body(n, c0, c1) && all;
    } else {
      body(n, c0, c1);
    }
  }
  return all;
}

// Runs body(n, i) once per output row i of each image n (forward passes, which write
// disjoint rows), spread over the threads `work` element visits are worth, in chunks of
// rows that read about pool::chunk_for(row_elements) elements.
template <typename Body>
void for_each_output_row(int64_t batch, int64_t out_rows, int64_t work, int64_t row_elements,
                         Body&& body) {
  const int64_t items = batch * out_rows;
#pragma omp parallel for num_threads(pool::threads_for(work)) \
    schedule(dynamic, pool::chunk_for(row_elements))
  for (int64_t item = 0; item < items; ++item) body(item / out_rows, item % out_rows);
}

int64_t batch_of(const PoolGeometry& g) { return g.channels > 0 ? g.planes / g.channels : 0; }

// Output pixel (i, j) of one image `in` (H, W, C): y[c] (and idx[c]) for every channel.
// A window without an input pixel (the Python layer refuses those) gives -inf and -1, as
// in NCHW.
template <typename T, bool WithIndices>
void max_window(const PoolGeometry& g, const T* in, int64_t i, int64_t j, T* __restrict y,
                int64_t* __restrict idx) {
  const WindowAxis& R = g.rows;
  const WindowAxis& Q = g.cols;
  const int64_t C = g.channels, w = Q.in_size;
  const TapRange rs = pool::taps_inside(R, i), ts = pool::taps_inside(Q, j);
  if (rs.begin == rs.end || ts.begin == ts.end) {
    for (int64_t c = 0; c < C; ++c) y[c] = -std::numeric_limits<T>::infinity();
    if constexpr (WithIndices)
      for (int64_t c = 0; c < C; ++c) idx[c] = -1;
    return;
  }
  bool first = true;
  for (int64_t s = rs.begin; s < rs.end; ++s) {
    const int64_t r = R.input_index(i, s);
    for (int64_t t = ts.begin; t < ts.end; ++t) {
      const int64_t k = r * w + Q.input_index(j, t);
      const T* __restrict px = in + k * C;
      if (first) {  // the first tap inside the input holds every channel's maximum so far
        for (int64_t c = 0; c < C; ++c) y[c] = px[c];
        if constexpr (WithIndices)
          for (int64_t c = 0; c < C; ++c) idx[c] = k;
        first = false;
        continue;
      }
      if constexpr (WithIndices) {
        for (int64_t c = 0; c < C; ++c) {
          const T v = px[c], m = y[c];
          const bool take = replaces(v, m);
          y[c] = take ? v : m;
          idx[c] = take ? k : idx[c];
        }
      } else {
        for (int64_t c = 0; c < C; ++c) y[c] = max_propagating_nan(px[c], y[c]);
      }
    }
  }
}

template <typename T>
void max_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  const int64_t batch = batch_of(g), C = g.channels;
  const int64_t oh = g.rows.out_size, ow = g.cols.out_size;
  const int64_t row_elements = g.cols.in_size * C * g.rows.kernel;  // read per output row
  for_each_output_row(batch, oh, g.planes * g.in_plane(), row_elements, [&](int64_t n, int64_t i) {
    const T* in = x + n * g.in_plane() * C;
    const int64_t row = (n * oh + i) * ow * C;  // output pixel (n, i, 0)
    for (int64_t j = 0; j < ow; ++j) {
      if (indices)
        max_window<T, true>(g, in, i, j, y + row + j * C, indices + row + j * C);
      else
        max_window<T, false>(g, in, i, j, y + row + j * C, nullptr);
    }
  });
}

// The buffered max-pool gradient (below) cuts each image's input rows into bands: a band
// of input rows [r0, r1) is gathered in a buffer of about this many bytes, in L2.
constexpr int64_t kBandBytes = int64_t(256) << 10;
// Images of more gradient than this run by bands; smaller ones stay in L2 as they are.
constexpr int64_t kBandImageBytes = int64_t(1) << 20;

// One output pixel's share of a band: for each of its `width` channels c, its index
// t = idx[c] (a flat position in the H*W plane) names the input pixel that receives gy[c];
// targets in the band's pixels [lo, hi) are added to buffer[(t - lo) * C + c], the others
// belong to other bands. Returns whether every target was in the band. The lanes of a
// vector name distinct channels, so a vector scatter never writes a slot twice.
template <typename T>
bool add_to_band(const int64_t* __restrict idx, const T* __restrict gy, int64_t width, int64_t C,
                 int64_t lo, int64_t hi, T* __restrict buffer) {
  int64_t c = 0;
  bool all_in = true;
#if defined(CONVPOOL_ISA_avx512)
  const __m512i band_lo = _mm512_set1_epi64(lo), band_size = _mm512_set1_epi64(hi - lo);
  const __m512i channels = _mm512_set1_epi64(C);
  const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  // Channels c .. c + n - 1 (n <= 8): their offsets in the buffer, and which of them the
  // band owns.
  auto eight = [&](int64_t c, int n, __m512i* at) {
    const __mmask8 valid = __mmask8((1u << n) - 1);
    const __m512i rel = _mm512_sub_epi64(_mm512_maskz_loadu_epi64(valid, idx + c), band_lo);
    *at = _mm512_add_epi64(_mm512_mullo_epi64(rel, channels),
                           _mm512_add_epi64(_mm512_set1_epi64(c), lanes));
    const __mmask8 own = _mm512_mask_cmplt_epu64_mask(valid, rel, band_size);
    all_in = all_in && own == valid;
    return own;
  };
  // Eight channels at a time, their 64-bit offsets indexing the gather and the scatter.
  for (; c < width; c += 8) {
    __m512i at;
    const __mmask8 own = eight(c, int(std::min<int64_t>(8, width - c)), &at);
    if (!own) continue;
    if constexpr (std::is_same_v<T, float>) {
      const __m256 sum = _mm256_add_ps(_mm512_mask_i64gather_ps(_mm256_setzero_ps(), own, at, buffer, 4),
                                       _mm256_maskz_loadu_ps(own, gy + c));
      _mm512_mask_i64scatter_ps(buffer, own, at, sum, 4);
    } else {
      const __m512d sum = _mm512_add_pd(_mm512_mask_i64gather_pd(_mm512_setzero_pd(), own, at, buffer, 8),
                                        _mm512_maskz_loadu_pd(own, gy + c));
      _mm512_mask_i64scatter_pd(buffer, own, at, sum, 8);
    }
  }
#endif
  for (; c < width; ++c) {
    const int64_t t = idx[c];
    if (t >= lo && t < hi)
      buffer[(t - lo) * C + c] += gy[c];
    else
      all_in = false;
  }
  return all_in;
}

// Input rows per band: about kBandBytes of gradient, at least one row, and few enough for
// a few bands per thread.
int64_t band_rows(const PoolGeometry& g, int64_t batch, int64_t sizeof_t) {
  const int64_t row_bytes = std::max<int64_t>(g.cols.in_size * g.channels * sizeof_t, 1);
  int64_t rows = std::clamp<int64_t>(kBandBytes / row_bytes, 1, g.rows.in_size);
  const int64_t wanted = 4 * int64_t(num_threads());
  while (rows > 1 && batch * ((g.rows.in_size + rows - 1) / rows) < wanted) rows = (rows + 1) / 2;
  return rows;
}

// The smallest and largest index of each output row (all pixels and channels of the row),
// as reach[2 * (n * OH + i)], reach[2 * (n * OH + i) + 1]; false if an index lies outside
// the plane.
bool index_reach(const PoolGeometry& g, const int64_t* indices, int64_t* reach) {
  const int64_t rows = batch_of(g) * g.rows.out_size, row_size = g.cols.out_size * g.channels;
  const int64_t in_plane = g.in_plane();
  bool in_range = true;
#pragma omp parallel for num_threads(pool::threads_for(rows * row_size)) \
    schedule(dynamic, pool::chunk_for(row_size)) reduction(&& : in_range)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t* __restrict idx = indices + r * row_size;
    int64_t low = in_plane, high = -1;
    for (int64_t k = 0; k < row_size; ++k) {
      low = std::min(low, idx[k]);
      high = std::max(high, idx[k]);
    }
    reach[2 * r] = low;
    reach[2 * r + 1] = high;
    in_range = in_range && (row_size == 0 || (low >= 0 && high < in_plane));
  }
  return in_range;
}

// The max-pool gradient by bands of input rows: an item owns input rows [r0, r1) of one
// image, every channel, in a buffer in L2. It zeroes the buffer, walks (in output order,
// all channels contiguous) the output rows whose indices reach into its rows, adds the
// gradients whose indices land there, and streams the buffer out to grad_x: deterministic
// (each sum in output order, as in NCHW), without atomics, grad_x written once and never
// read. The gradient takes no window, so the rows an output row reaches are read off its
// indices (index_reach): with max_pool2d's indices, an output row reaches the rows of its
// windows. False (nothing written) where that does not pay: an index outside the plane,
// or indices so scattered that the bands would read the output rows many times over.
template <typename T>
bool max_grad_input_bands(const PoolGeometry& g, const T* grad_y, const int64_t* indices,
                          T* grad_x) {
  const int64_t C = g.channels, W = g.cols.in_size, in_plane = g.in_plane();
  const int64_t oh = g.rows.out_size, ow = g.cols.out_size, out_plane = g.out_plane();
  const int64_t batch = batch_of(g);
  const int64_t rows = band_rows(g, batch, sizeof(T));
  const int64_t bands = (g.rows.in_size + rows - 1) / rows, items = batch * bands;
  pool::Scratch<int64_t> reach(2 * batch * oh);
  if (!index_reach(g, indices, reach.get())) return false;
  auto meets = [&](int64_t n, int64_t i, int64_t r0, int64_t r1) {
    const int64_t* span = reach.get() + 2 * (n * oh + i);
    return span[0] < r1 * W && span[1] >= r0 * W;
  };
  int64_t visits = 0;  // (band, output row) pairs to walk
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t b = 0; b < bands; ++b)
      for (int64_t i = 0; i < oh; ++i) visits += meets(n, i, b * rows, std::min(g.rows.in_size, (b + 1) * rows));
  if (visits > 4 * batch * oh + items) return false;
  const int team = pool::threads_for(g.planes * in_plane);
  pool::TeamScratch<T> buffers(team, rows * W * C);
#pragma omp parallel num_threads(team)
  {
    T* const buffer = buffers.get();
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t n = item / bands, r0 = (item % bands) * rows;
      const int64_t r1 = std::min(g.rows.in_size, r0 + rows);
      std::fill(buffer, buffer + (r1 - r0) * W * C, T(0));
      for (int64_t i = 0; i < oh; ++i) {
        if (!meets(n, i, r0, r1)) continue;
        const int64_t k0 = (n * out_plane + i * ow) * C;
        for (int64_t j = 0; j < ow; ++j)
          add_to_band(indices + k0 + j * C, grad_y + k0 + j * C, C, C, r0 * W, r1 * W, buffer);
      }
      pool::stream_copy(buffer, (r1 - r0) * W * C, grad_x + (n * in_plane + r0 * W) * C);
    }
    _mm_sfence();
  }
  return true;
}

// Any indices: each item zeroes its slice of channels of one image's gradient in place and
// adds the slice's output gradients in output order (add_to_band with the whole plane as
// its band, where the offsets fit its 32-bit lanes).
template <typename T>
bool max_grad_input_in_place(const PoolGeometry& g, const T* grad_y, const int64_t* indices,
                             T* grad_x) {
  const int64_t C = g.channels, in_plane = g.in_plane(), out_plane = g.out_plane();
  const bool lanes_fit = in_plane * C < (int64_t(1) << 31);
  return for_each_channel_slice(batch_of(g), C, g.planes * in_plane, [&](int64_t n, int64_t c0, int64_t c1) {
    bool in_range = true;
    T* gx = grad_x + n * in_plane * C;
    for (int64_t k = 0; k < in_plane; ++k)
      for (int64_t c = c0; c < c1; ++c) gx[k * C + c] = T(0);
    const int64_t* idx = indices + n * out_plane * C;
    const T* gy = grad_y + n * out_plane * C;
    if (lanes_fit) {
      for (int64_t k = 0; k < out_plane; ++k)
        in_range = add_to_band(idx + k * C + c0, gy + k * C + c0, c1 - c0, C, 0, in_plane, gx + c0) &&
                   in_range;
      return in_range;
    }
    for (int64_t k = 0; k < out_plane; ++k) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t target = idx[k * C + c];
        if (target < 0 || target >= in_plane) {
          in_range = false;
          continue;
        }
        gx[target * C + c] += gy[k * C + c];
      }
    }
    return in_range;
  });
}

template <typename T>
bool max_grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices, T* grad_x) {
  if (g.planes == 0) return true;
  // An image's gradient that fits in L2 stays there while the general path scatters into
  // it (measured faster than the bands there). Offsets into a band's buffer are 32-bit
  // lanes; a row that alone exceeds them (never in practice) takes the general path, and
  // so do indices the bands refuse.
  const int64_t image_bytes = g.in_plane() * g.channels * int64_t(sizeof(T));
  const bool bands_fit = g.cols.in_size * g.channels < (int64_t(1) << 30);
  if (bands_fit && image_bytes > kBandImageBytes && max_grad_input_bands(g, grad_y, indices, grad_x)) return true;
  return max_grad_input_in_place(g, grad_y, indices, grad_x);
}

template <typename T>
void avg_forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y) {
  if (g.planes == 0) return;  // the divisors alone would cost O(H + W)
  const Divisors<T> divisors(g, d);
  const WindowAxis& R = g.rows;
  const WindowAxis& Q = g.cols;
  const int64_t batch = batch_of(g), C = g.channels, w = Q.in_size;
  const int64_t oh = R.out_size, ow = Q.out_size;
  for_each_output_row(batch, oh, g.planes * g.in_plane(), w * C * R.kernel, [&](int64_t n, int64_t i) {
    const T* in = x + n * g.in_plane() * C;
    const TapRange rs = pool::taps_inside(R, i);
    const T row_div = divisors.row(i);
    for (int64_t j = 0; j < ow; ++j) {
      T* __restrict out = y + ((n * oh + i) * ow + j) * C;
      for (int64_t c = 0; c < C; ++c) out[c] = T(0);
      const TapRange ts = pool::taps_inside(Q, j);
      for (int64_t s = rs.begin; s < rs.end; ++s) {
        const int64_t r = R.input_index(i, s);
        for (int64_t t = ts.begin; t < ts.end; ++t) {
          const T* __restrict px = in + (r * w + Q.input_index(j, t)) * C;
          for (int64_t c = 0; c < C; ++c) out[c] += px[c];
        }
      }
      const T divisor = row_div * divisors.cols()[j];
      for (int64_t c = 0; c < C; ++c) out[c] /= divisor;
    }
  });
}

// Each item zeroes its slice of one image's gradient, then spreads every output gradient
// (divided by its window's divisor) over the window's input pixels, in output order.
template <typename T>
void avg_grad_input(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y, T* grad_x) {
  if (g.planes == 0) return;
  const Divisors<T> divisors(g, d);
  const WindowAxis& R = g.rows;
  const WindowAxis& Q = g.cols;
  const int64_t C = g.channels, w = Q.in_size, in_plane = g.in_plane();
  const int64_t oh = R.out_size, ow = Q.out_size;
  for_each_channel_slice(batch_of(g), C, g.planes * in_plane, [&](int64_t n, int64_t c0, int64_t c1) {
    const int64_t width = c1 - c0;
    T* gx = grad_x + n * in_plane * C + c0;
    for (int64_t k = 0; k < in_plane; ++k)
      for (int64_t c = 0; c < width; ++c) gx[k * C + c] = T(0);
    T scaled[kChannelBlock];
    for (int64_t i = 0; i < oh; ++i) {
      const TapRange rs = pool::taps_inside(R, i);
      const T row_div = divisors.row(i);
      for (int64_t j = 0; j < ow; ++j) {
        const T* gy = grad_y + ((n * oh + i) * ow + j) * C + c0;
        const T divisor = row_div * divisors.cols()[j];
        for (int64_t c = 0; c < width; ++c) scaled[c] = gy[c] / divisor;
        const TapRange ts = pool::taps_inside(Q, j);
        for (int64_t s = rs.begin; s < rs.end; ++s) {
          const int64_t r = R.input_index(i, s);
          for (int64_t t = ts.begin; t < ts.end; ++t) {
            T* __restrict px = gx + (r * w + Q.input_index(j, t)) * C;
            for (int64_t c = 0; c < width; ++c) px[c] += scaled[c];
          }
        }
      }
    }
  });
}

int64_t batch_of(const GlobalPoolShape& s) { return s.channels > 0 ? s.planes / s.channels : 0; }

// Channel sums in double (float32 planes of millions of pixels keep their accuracy).
template <typename T>
void global_avg_forward(const GlobalPoolShape& s, const T* x, T* y) {
  const int64_t C = s.channels, plane = s.plane_size;
  for_each_channel_slice(batch_of(s), C, s.planes * plane, [&](int64_t n, int64_t c0, int64_t c1) {
    const int64_t width = c1 - c0;
    double sum[kChannelBlock];
    for (int64_t c = 0; c < width; ++c) sum[c] = 0.0;
    const T* in = x + n * plane * C + c0;
    for (int64_t p = 0; p < plane; ++p) {
      const T* __restrict px = in + p * C;
      for (int64_t c = 0; c < width; ++c) sum[c] += static_cast<double>(px[c]);
    }
    for (int64_t c = 0; c < width; ++c)
      y[n * C + c0 + c] = static_cast<T>(sum[c] / static_cast<double>(plane));
  });
}

template <typename T>
void global_avg_grad_input(const GlobalPoolShape& s, const T* grad_y, T* grad_x) {
  const int64_t C = s.channels, plane = s.plane_size, batch = batch_of(s);
  constexpr int64_t pixels = 1024;  // per work item
  const int64_t pieces = (plane + pixels - 1) / pixels;
#pragma omp parallel for num_threads(pool::threads_for(s.planes * plane)) \
    schedule(dynamic, pool::chunk_for(pixels * C))
  for (int64_t item = 0; item < batch * pieces; ++item) {
    const int64_t n = item / pieces, p0 = (item % pieces) * pixels;
    const int64_t p1 = std::min(plane, p0 + pixels);
    T share[kChannelBlock];
    for (int64_t c0 = 0; c0 < C; c0 += kChannelBlock) {
      const int64_t width = std::min(kChannelBlock, C - c0);
      for (int64_t c = 0; c < width; ++c) share[c] = grad_y[n * C + c0 + c] / static_cast<T>(plane);
      for (int64_t p = p0; p < p1; ++p) {
        T* __restrict gx = grad_x + (n * plane + p) * C + c0;
        for (int64_t c = 0; c < width; ++c) gx[c] = share[c];
      }
    }
  }
}

// The position of each channel's first maximum (first NaN) in one image's slice.
template <typename T>
void slice_argmax(const T* in, int64_t plane, int64_t C, int64_t width, T* __restrict best,
                  int64_t* __restrict at) {
  for (int64_t c = 0; c < width; ++c) {
    best[c] = in[c];
    at[c] = 0;
  }
  for (int64_t p = 1; p < plane; ++p) {
    const T* __restrict px = in + p * C;
    for (int64_t c = 0; c < width; ++c) {
      const T v = px[c], m = best[c];
      const bool take = replaces(v, m);
      best[c] = take ? v : m;
      at[c] = take ? p : at[c];
    }
  }
}

template <typename T>
void global_max_forward(const GlobalPoolShape& s, const T* x, T* y, int64_t* indices) {
  const int64_t C = s.channels, plane = s.plane_size;
  for_each_channel_slice(batch_of(s), C, s.planes * plane, [&](int64_t n, int64_t c0, int64_t c1) {
    T best[kChannelBlock];
    int64_t at[kChannelBlock];
    slice_argmax(x + n * plane * C + c0, plane, C, c1 - c0, best, at);
    for (int64_t c = 0; c < c1 - c0; ++c) {
      y[n * C + c0 + c] = best[c];
      if (indices) indices[n * C + c0 + c] = at[c];
    }
  });
}

template <typename T>
void global_max_grad_input(const GlobalPoolShape& s, const T* grad_y, const T* x, T* grad_x) {
  const int64_t C = s.channels, plane = s.plane_size;
  for_each_channel_slice(batch_of(s), C, s.planes * plane, [&](int64_t n, int64_t c0, int64_t c1) {
    const int64_t width = c1 - c0;
    T best[kChannelBlock];
    int64_t at[kChannelBlock];
    slice_argmax(x + n * plane * C + c0, plane, C, width, best, at);
    T* gx = grad_x + n * plane * C + c0;
    for (int64_t p = 0; p < plane; ++p)
      for (int64_t c = 0; c < width; ++c) gx[p * C + c] = T(0);
    for (int64_t c = 0; c < width; ++c) gx[at[c] * C + c] = grad_y[n * C + c0 + c];
  });
}

// Pooling across channels, pixel by pixel: x (batch * plane_size, channels) ->
// y (batch * plane_size, channels / group).
constexpr int64_t kPixels = 256;  // pixels per work item

template <typename T>
void channel_forward(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x, T* y) {
  const int64_t pixels = s.batch * s.plane_size, C = s.channels, G = s.group;
  const int64_t Q = s.out_channels();
  const int64_t items = (pixels + kPixels - 1) / kPixels;
#pragma omp parallel for num_threads(pool::threads_for(pixels * C)) \
    schedule(dynamic, pool::chunk_for(kPixels * C))
  for (int64_t item = 0; item < items; ++item) {
    const int64_t p1 = std::min(pixels, (item + 1) * kPixels);
    for (int64_t p = item * kPixels; p < p1; ++p) {
      const T* __restrict in = x + p * C;
      T* __restrict out = y + p * Q;
      for (int64_t q = 0; q < Q; ++q) out[q] = in[q * G];
      for (int64_t k = 1; k < G; ++k) {
        if (mode == ChannelPoolMode::max) {
          for (int64_t q = 0; q < Q; ++q) out[q] = max_propagating_nan(in[q * G + k], out[q]);
        } else {
          for (int64_t q = 0; q < Q; ++q) out[q] += in[q * G + k];
        }
      }
      if (mode == ChannelPoolMode::avg) {
        const T group = static_cast<T>(G);
        for (int64_t q = 0; q < Q; ++q) out[q] /= group;
      }
    }
  }
}

template <typename T>
void channel_grad_input(const ChannelPoolShape& s, ChannelPoolMode mode, const T* grad_y,
                        const T* x, T* grad_x) {
  const int64_t pixels = s.batch * s.plane_size, C = s.channels, G = s.group;
  const int64_t Q = s.out_channels();
  const int64_t items = (pixels + kPixels - 1) / kPixels;
#pragma omp parallel for num_threads(pool::threads_for(pixels * C)) \
    schedule(dynamic, pool::chunk_for(kPixels * C))
  for (int64_t item = 0; item < items; ++item) {
    const int64_t p1 = std::min(pixels, (item + 1) * kPixels);
    for (int64_t p = item * kPixels; p < p1; ++p) {
      const T* __restrict gy = grad_y + p * Q;
      T* __restrict gx = grad_x + p * C;
      if (mode == ChannelPoolMode::avg) {
        const T group = static_cast<T>(G);
        for (int64_t q = 0; q < Q; ++q)
          for (int64_t k = 0; k < G; ++k) gx[q * G + k] = gy[q] / group;
        continue;
      }
      const T* __restrict in = x + p * C;
      for (int64_t q = 0; q < Q; ++q) {
        // The winning channel of the group: the first maximum, or the first NaN.
        T best = in[q * G];
        int64_t winner = 0;
        for (int64_t k = 1; k < G; ++k) {
          if (replaces(in[q * G + k], best)) {
            best = in[q * G + k];
            winner = k;
          }
        }
        for (int64_t k = 0; k < G; ++k) gx[q * G + k] = k == winner ? gy[q] : T(0);
      }
    }
  }
}

}  // namespace

template <typename T>
void max_pool2d_forward_nhwc(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  max_forward(g, x, y, indices);
}

template <typename T>
bool max_pool2d_grad_input_nhwc(const PoolGeometry& g, const T* grad_y, const int64_t* indices,
                                T* grad_x) {
  return max_grad_input(g, grad_y, indices, grad_x);
}

template <typename T>
void avg_pool2d_forward_nhwc(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y) {
  avg_forward(g, d, x, y);
}

template <typename T>
void avg_pool2d_grad_input_nhwc(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y,
                                T* grad_x) {
  avg_grad_input(g, d, grad_y, grad_x);
}

template <typename T>
void global_avg_pool2d_forward_nhwc(const GlobalPoolShape& s, const T* x, T* y) {
  global_avg_forward(s, x, y);
}

template <typename T>
void global_avg_pool2d_grad_input_nhwc(const GlobalPoolShape& s, const T* grad_y, T* grad_x) {
  global_avg_grad_input(s, grad_y, grad_x);
}

template <typename T>
void global_max_pool2d_forward_nhwc(const GlobalPoolShape& s, const T* x, T* y,
                                    int64_t* indices) {
  global_max_forward(s, x, y, indices);
}

template <typename T>
void global_max_pool2d_grad_input_nhwc(const GlobalPoolShape& s, const T* grad_y, const T* x,
                                       T* grad_x) {
  global_max_grad_input(s, grad_y, x, grad_x);
}

template <typename T>
void channel_pool_forward_nhwc(const ChannelPoolShape& s, ChannelPoolMode mode, const T* x,
                               T* y) {
  channel_forward(s, mode, x, y);
}

template <typename T>
void channel_pool_grad_input_nhwc(const ChannelPoolShape& s, ChannelPoolMode mode,
                                  const T* grad_y, const T* x, T* grad_x) {
  channel_grad_input(s, mode, grad_y, x, grad_x);
}

#define CONVPOOL_INSTANTIATE(T)                                                                   \
  template void max_pool2d_forward_nhwc<T>(const PoolGeometry&, const T*, T*, int64_t*);          \
  template bool max_pool2d_grad_input_nhwc<T>(const PoolGeometry&, const T*, const int64_t*, T*); \
  template void avg_pool2d_forward_nhwc<T>(const PoolGeometry&, const AvgPoolDivisor&, const T*,  \
                                           T*);                                                   \
  template void avg_pool2d_grad_input_nhwc<T>(const PoolGeometry&, const AvgPoolDivisor&,         \
                                              const T*, T*);                                      \
  template void global_avg_pool2d_forward_nhwc<T>(const GlobalPoolShape&, const T*, T*);          \
  template void global_avg_pool2d_grad_input_nhwc<T>(const GlobalPoolShape&, const T*, T*);       \
  template void global_max_pool2d_forward_nhwc<T>(const GlobalPoolShape&, const T*, T*,           \
                                                  int64_t*);                                      \
  template void global_max_pool2d_grad_input_nhwc<T>(const GlobalPoolShape&, const T*, const T*,  \
                                                     T*);                                         \
  template void channel_pool_forward_nhwc<T>(const ChannelPoolShape&, ChannelPoolMode, const T*,  \
                                             T*);                                                 \
  template void channel_pool_grad_input_nhwc<T>(const ChannelPoolShape&, ChannelPoolMode,         \
                                                const T*, const T*, T*);
CONVPOOL_INSTANTIATE(float)
CONVPOOL_INSTANTIATE(double)
#undef CONVPOOL_INSTANTIATE

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
