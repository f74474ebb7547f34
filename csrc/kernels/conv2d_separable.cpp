// Low-rank (separable) convolution in one sweep, compiled once per instruction set: for
// convolutions where each output plane reads one input plane (C_in / groups == 1: a
// picture filter, a depthwise layer) and whose kernels are sums of `rank` outer products,
//
//   w[q][s][t] = sum_r columns[q][r][s] * rows[q][r][t],
//
// (convpool.conv_separable finds the factors). Each output row is made in two steps
// that stay in L1: the column pass sums the kh input rows its windows read into one
// row per term (the intermediate, as wide as the columns the output row's windows
// reach), then the row pass sums kw taps of that row per output. The picture is read
// once from memory (the kh rows a column pass reads are the previous output rows' rows,
// still in cache) and the output written once; nothing else is.
//
// Column pass first, rather than the row pass into a ring of kh intermediate rows: the
// same multiply-adds at column stride 1, a one-row intermediate instead of kh rows,
// no ring to rotate, and a row stride costs nothing.
//
// One file, two sections: the `supports` predicate (compiled once) and the kernels
// (compiled once per instruction set); csrc/conv/conv2d_separable.cpp picks the build.
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: compiled once, outside the per-ISA builds ----------------
#include "common/threading.h"

namespace convpool {

// Zero padding, one input plane per output plane, and an intermediate (one row per term
// and thread) within the operands' size.
bool separable_forward_supports(const Conv2dGeometry& g, int64_t rank) {
  if (!(g.zero_padded() && !g.channels_last && g.in_channels_per_group() == 1 && rank >= 1))
    return false;
  const double width = double(g.cols.out_size - 1) * double(g.cols.stride) +
                       double(g.cols.kernel - 1) * double(g.cols.dilation) + 1 + 64;
  return scratch_within_operands(g, double(num_threads()) * double(rank) * width);
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>

#include <omp.h>

#include "common/simd_vec.h"
#include "common/threading.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// The native vector of T (float: V lanes; double: V / 2).
template <typename T>
struct Lanes {
  typedef T type __attribute__((vector_size(V * sizeof(float))));
  typedef T unaligned __attribute__((vector_size(V * sizeof(float)), aligned(sizeof(T)), may_alias));
  static constexpr int count = int(V * sizeof(float) / sizeof(T));
};

template <typename T>
inline typename Lanes<T>::type load_lanes(const T* p) {
  return *reinterpret_cast<const typename Lanes<T>::unaligned*>(p);
}
template <typename T>
inline void store_lanes(T* p, typename Lanes<T>::type v) {
  *reinterpret_cast<typename Lanes<T>::unaligned*>(p) = v;
}
// Independent sums per loop (vectors along the row): each pass's sums are chains of
// dependent FMAs, so twice the FMA latency's worth keeps both FMA units busy. 8 chains
// were 1.5-2x faster than 4 on the AVX-512 Xeon.
constexpr int kChains = kVectorRegisters >= 32 ? 8 : 4;

// One broadcast instruction (a loop over the lanes compiles to one masked broadcast per
// lane).
inline Lanes<float>::type splat(float s) { return broadcast(s); }
inline Lanes<double>::type splat(double s) {
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_set1_pd(s);
#elif defined(CONVPOOL_ISA_avx2)
  return _mm256_set1_pd(s);
#else
  return _mm_set1_pd(s);
#endif
}

// Output columns per task: about 1024, so that the intermediate row stays in L1 next to
// the input rows' segments, or 16 times the columns a window spans (each chunk's column
// pass also covers that halo), within ~512 KiB of input rows for the L2. `asked` > 0
// overrides it (the tests' small chunks). Measured on the RGB 2000 x 3000 picture (one
// 2000 x 9000 plane): 1024 columns were 10-20% faster than whole rows.
template <typename T>
int64_t chunk_columns(const Conv2dGeometry& g, int64_t asked) {
  if (asked > 0) return std::min(asked, g.cols.out_size);
  const int64_t halo = (g.cols.kernel - 1) * g.cols.dilation / std::max<int64_t>(g.cols.stride, 1);
  const int64_t l2 = (int64_t(512) << 10) / int64_t(sizeof(T)) / std::max<int64_t>(g.rows.kernel, 1) /
                     std::max<int64_t>(g.cols.stride, 1);
  const int64_t columns = std::max<int64_t>(std::min(std::max<int64_t>(1024, 16 * halo), l2), 256);
  return std::min(g.cols.out_size, columns / 64 * 64);
}

// The column pass of one term over intermediate columns [a, b) (input columns u0 + a
// to u0 + b, all inside the plane): mid[u] = sum_s col[s] * x_row(s)[u], over the taps s whose rows
// are inside the plane (`first`..`last`).
template <typename T>
void column_pass(const T* plane, int64_t width, int64_t u0, const WindowAxis& R, int64_t top_row,
                 int64_t first, int64_t last, const T* col, int64_t a, int64_t b, T* mid) {
  using vt = typename Lanes<T>::type;
  constexpr int L = Lanes<T>::count, NV = kChains;
  int64_t u = a;
  for (; u + NV * L <= b; u += NV * L) {
    vt acc[NV] = {};
    for (int64_t s = first; s < last; ++s) {
      const T* r = plane + ((top_row + s * R.dilation) * width + u0 + u);
      const vt c = splat(col[s]);
      for (int v = 0; v < NV; ++v) acc[v] += c * load_lanes<T>(r + v * L);
    }
    for (int v = 0; v < NV; ++v) store_lanes<T>(mid + u + v * L, acc[v]);
  }
  for (; u + L <= b; u += L) {
    vt acc = {};
    for (int64_t s = first; s < last; ++s)
      acc += splat(col[s]) * load_lanes<T>(plane + ((top_row + s * R.dilation) * width + u0 + u));
    store_lanes<T>(mid + u, acc);
  }
  if (u < b) {  // the row's last columns: the input has no slack to load past. The same
                // vector arithmetic on a partial vector, so that every column's sum is
                // rounded alike, however the row is cut into chunks.
    vt acc = {};
    for (int64_t s = first; s < last; ++s) {
      const T* r = plane + ((top_row + s * R.dilation) * width + u0 + u);
      vt in = {};
      for (int64_t l = 0; l < b - u; ++l) in[l] = r[l];
      acc += splat(col[s]) * in;
    }
    for (int64_t l = 0; l < b - u; ++l) mid[u + l] = acc[l];
  }
}

// The row pass at column stride 1 over output columns [0, n): out[j] (+)= sum_t
// row[t] * mid[j + t * dx]; `mid` has a vector of slack past its last column.
template <typename T>
void row_pass(const T* mid, const T* row, int64_t kw, int64_t dx, int64_t n, bool add,
              T bias, T* out) {
  using vt = typename Lanes<T>::type;
  constexpr int L = Lanes<T>::count, NV = kChains;
  int64_t j = 0;
  for (; j + NV * L <= n; j += NV * L) {
    vt acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = add ? load_lanes<T>(out + j + v * L) : splat(bias);
    for (int64_t t = 0; t < kw; ++t) {
      const vt w = splat(row[t]);
      const T* p = mid + j + t * dx;
      for (int v = 0; v < NV; ++v) acc[v] += w * load_lanes<T>(p + v * L);
    }
    for (int v = 0; v < NV; ++v) store_lanes<T>(out + j + v * L, acc[v]);
  }
  for (; j < n; j += L) {  // the last vector may hang past the row: only its lanes inside are kept
    const int64_t lanes = std::min<int64_t>(L, n - j);
    vt acc = splat(bias);
    if (add)
      for (int64_t l = 0; l < lanes; ++l) acc[l] = out[j + l];
    for (int64_t t = 0; t < kw; ++t) acc += splat(row[t]) * load_lanes<T>(mid + j + t * dx);
    for (int64_t l = 0; l < lanes; ++l) out[j + l] = acc[l];
  }
}

// The row pass at a column stride: scalar (a rare case; the sums are those above).
template <typename T>
void row_pass_strided(const T* mid, const T* row, int64_t kw, int64_t dx, int64_t sx,
                      int64_t n, bool add, T bias, T* out) {
  for (int64_t j = 0; j < n; ++j) {
    T acc = add ? out[j] : bias;
    for (int64_t t = 0; t < kw; ++t) acc += row[t] * mid[j * sx + t * dx];
    out[j] = acc;
  }
}

template <typename T>
void separable_forward_typed(const Conv2dGeometry& g, int64_t rank, const T* x, const T* columns,
                             const T* rows, const T* bias, T* y, int64_t chunk_asked) {
  const WindowAxis &R = g.rows, &C = g.cols;
  constexpr int L = Lanes<T>::count;
  const int64_t m = g.out_channels_per_group();
  const int64_t planes = g.batch * g.out_channels;
  const int64_t chunk = std::max<int64_t>(chunk_columns<T>(g, chunk_asked), 1);
  const int64_t chunks = ceil_div(C.out_size, chunk);
  // Output rows per task. A thread's tasks are consecutive: a band's chunks, then the next
  // band's, so that the input is read row after row (a strip of one chunk, down the
  // picture, would start a new page every row, defeating the hardware prefetcher).
  constexpr int64_t kBand = 8;
  const int64_t bands = ceil_div(R.out_size, kBand);
  const int64_t tasks = planes * chunks * bands;
  // The intermediate of one chunk: the columns its windows reach, a vector of slack.
  const int64_t span = (chunk - 1) * C.stride + (C.kernel - 1) * C.dilation + 1;
  const int64_t mid_size = span + L;
  const int64_t work = planes * R.out_size * (C.out_size * C.kernel + span * R.kernel) * rank;
  const int team = threads_for_tasks(tasks, work);
  Array<T> scratch(size_t(team) * size_t(rank * mid_size));
#pragma omp parallel num_threads(team)
  {
    T* const mids = scratch.data() + size_t(omp_get_thread_num()) * size_t(rank * mid_size);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t c = task % chunks, band = (task / chunks) % bands, q = task / (bands * chunks);
      const int64_t n = q / g.out_channels, qq = q % g.out_channels, p = qq / m;
      const T* plane = x + (n * g.in_channels + p) * g.in_plane();
      const T* col = columns + qq * rank * R.kernel;
      const T* row = rows + qq * rank * C.kernel;
      const T b = bias ? bias[qq] : T(0);
      const int64_t j0 = c * chunk, j1 = std::min(j0 + chunk, C.out_size);
      // Intermediate column k is input column u0 + k; those outside the plane are the
      // zero padding, set once per task.
      const int64_t u0 = j0 * C.stride - C.pad_before;
      const int64_t need = (j1 - 1 - j0) * C.stride + (C.kernel - 1) * C.dilation + 1;
      const int64_t a = std::clamp<int64_t>(-u0, 0, need), e = std::clamp<int64_t>(C.in_size - u0, a, need);
      for (int64_t r = 0; r < rank; ++r) {
        T* mid = mids + r * mid_size;
        std::fill(mid, mid + a, T(0));
        std::fill(mid + e, mid + mid_size, T(0));
      }
      const int64_t i_end = std::min(R.out_size, (band + 1) * kBand);
      for (int64_t i = band * kBand; i < i_end; ++i) {
        T* out = y + q * g.out_plane() + i * C.out_size + j0;
        const int64_t top_row = i * R.stride - R.pad_before;
        // Taps s whose row top_row + s * dy lies inside the plane.
        const int64_t first =
            top_row >= 0 ? 0 : std::min(R.kernel, ceil_div(-top_row, R.dilation));
        const int64_t last = std::clamp<int64_t>(
            ceil_div(R.in_size - top_row, R.dilation), first, R.kernel);
        for (int64_t r = 0; r < rank; ++r) {
          T* mid = mids + r * mid_size;
          if (e > a)
            column_pass<T>(plane, C.in_size, u0, R, top_row, first, last, col + r * R.kernel,
                           a, e, mid);
          if (C.stride == 1)
            row_pass<T>(mid, row + r * C.kernel, C.kernel, C.dilation, j1 - j0, r > 0, b, out);
          else
            row_pass_strided<T>(mid, row + r * C.kernel, C.kernel, C.dilation, C.stride, j1 - j0,
                                r > 0, b, out);
        }
      }
    }
  }
}

}  // namespace

void separable_forward(const Conv2dGeometry& g, int64_t rank, const float* x, const float* columns,
                       const float* rows, const float* bias, float* y, int64_t chunk) {
  separable_forward_typed<float>(g, rank, x, columns, rows, bias, y, chunk);
}

void separable_forward(const Conv2dGeometry& g, int64_t rank, const double* x,
                       const double* columns, const double* rows, const double* bias, double* y,
                       int64_t chunk) {
  separable_forward_typed<double>(g, rank, x, columns, rows, bias, y, chunk);
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
