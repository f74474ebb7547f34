// Pointwise (1x1, groups 1, no padding, any stride) float32 convolution as a matrix
// product per picture: out[co, p] = sum_ci W[co, ci] x[ci, p].
//
// Forward and input gradient share one register tile: MR rows of the weight matrix (W for
// the forward pass, W^T for the input gradient), each broadcast from the weights in
// place, times NR vectors of pixels read in place from the input rows. Rows of W and
// columns of W^T are both a fixed stride apart, so nothing is packed: at batch 1 on small
// maps the weights are the largest operand, and one pass over them is the cost floor.
// The weight gradient reduces over pixels (the contiguous axis): MR x NR dot products kept
// as vectors, over fixed slices of the pixels, each slice's partial summed in a fixed order
// (the result does not depend on the thread count). Strides above 1 gather the strided
// pixels into a compact copy first (or scatter the input gradient from one).
// Work is split within a picture (output-row blocks x pixel tiles), so batch 1 uses every
// core, with a grain size (threads_for_tasks) that keeps small calls on one thread.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the registry
// lines name both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// Pixels per slice of the weight gradient's reduction, for c_out x c_in weights: at least
// min(c_out, c_in), so that the per-slice partials stay within the operands' size
// (defined in the predicate section; the kernels ask the same).
int64_t pointwise_slice_pixels(int64_t c_out, int64_t c_in);

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <algorithm>
#include <cmath>

namespace convpool {

namespace {

// A 1x1 window, one group, no padding: every output pixel reads exactly one input pixel
// (the dilation then changes nothing).
bool pointwise_case(const Conv2dGeometry& g) {
  const WindowAxis &R = g.rows, &C = g.cols;
  return R.kernel == 1 && C.kernel == 1 && g.groups == 1 && R.pad_before == 0 &&
         R.pad_after == 0 && C.pad_before == 0 && C.pad_after == 0 && g.batch > 0 &&
         g.in_channels > 0 && g.out_channels > 0 && g.out_plane() > 0;
}

bool strided(const Conv2dGeometry& g) { return g.rows.stride > 1 || g.cols.stride > 1; }

// The compact copy of the strided pixels (forward, weight gradient) or of the strided
// input gradient: one value per input channel and output pixel.
double compact_floats(const Conv2dGeometry& g) {
  return strided(g) ? double(g.batch) * double(g.in_channels) * double(g.out_plane()) : 0.0;
}

// Enough multiply-adds per output value of the forward pass and the input gradient for a
// matrix product to pay off (the weight gradient reduces over pixels, which are many).
constexpr int64_t kMinReduction = 8;

}  // namespace

int64_t pointwise_slice_pixels(int64_t c_out, int64_t c_in) {
  return std::max<int64_t>(1024, std::min(c_out, c_in));
}

bool pointwise_forward_supports(const Conv2dGeometry& g, int) {
  return pointwise_case(g) && g.in_channels >= kMinReduction &&
         scratch_within_operands(g, compact_floats(g));
}

bool pointwise_grad_input_supports(const Conv2dGeometry& g, int) {
  return pointwise_case(g) && g.out_channels >= kMinReduction &&
         scratch_within_operands(g, compact_floats(g));
}

bool pointwise_grad_weight_supports(const Conv2dGeometry& g, int) {
  if (!pointwise_case(g)) return false;
  const double pixels = double(g.batch) * double(g.out_plane());
  const double slices =
      std::ceil(pixels / double(pointwise_slice_pixels(g.out_channels, g.in_channels)));
  const double partials =
      slices > 1 ? slices * double(g.out_channels) * double(g.in_channels) : 0.0;
  return scratch_within_operands(g, compact_floats(g) + partials);
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "common/workspace.h"

#include <omp.h>

namespace convpool::CONVPOOL_ISA {

namespace {

// The product's register tile: kMR broadcast rows x kNR vectors of pixels (kMR x kNR
// accumulators, kNR input vectors and a broadcast within the register file). The weight
// gradient's tile: kGM output channels x kGN input channels of vector dot products
// (kGM x kGN accumulators, kGM loaded vectors and one more).
#if defined(CONVPOOL_ISA_avx512)
constexpr int kMR = 6, kNR = 4, kGM = 4, kGN = 6;
#else
constexpr int kMR = 6, kNR = 2, kGM = 3, kGN = 3;
#endif

// The first n (< V) lanes at p, the others zero, reading nothing past p + n.
inline vec load_first(const float* p, int n) {
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
#elif defined(CONVPOOL_ISA_avx2)
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes));
#else
  vec v = vec{};
  for (int l = 0; l < n; ++l) v[l] = p[l];
  return v;
#endif
}

// The product's microkernel. Contract, for o < MR, r < NR and lanes l < V (when MASKED,
// lanes of the last vector from `last_lanes` on are undefined: they read the next row, or
// zeros past the last one):
//   result[o * NR + r][l] = sum_{k < depth} a[o * a_row + k * a_step] * x[k * x_row + r * V + l]
template <int MR, int NR, bool MASKED>
void product_tile(const float* a, int64_t a_row, int64_t a_step, const float* x, int64_t x_row,
                  int64_t depth, int last_lanes, vec* result) {
  vec acc[MR][NR];
  for (int o = 0; o < MR; ++o)
    for (int r = 0; r < NR; ++r) acc[o][r] = vec{};
  const float* ao[MR];
  for (int o = 0; o < MR; ++o) ao[o] = a + o * a_row;
  auto step = [&](int64_t k, const float* row, bool masked) {
    vec xv[NR];
    for (int r = 0; r < NR; ++r)
      xv[r] = (masked && r == NR - 1) ? load_first(row + r * V, last_lanes) : load(row + r * V);
    for (int o = 0; o < MR; ++o) {
      const vec wv = broadcast(ao[o][k * a_step]);
      for (int r = 0; r < NR; ++r) acc[o][r] += wv * xv[r];
    }
  };
  // A short last vector reads on into the next row, whose lanes are discarded: only the
  // last row may end the array, so only it is read masked (a masked load in the loop
  // itself made GCC keep the accumulators in memory).
  const int64_t plain = MASKED ? depth - 1 : depth;
  for (int64_t k = 0; k < plain; ++k, x += x_row) step(k, x, false);
  if (MASKED && depth > 0) step(depth - 1, x, true);
  for (int o = 0; o < MR; ++o)
    for (int r = 0; r < NR; ++r) result[o * NR + r] = acc[o][r];
}

using ProductFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int,
                           vec*);

template <int MR, int... R>
constexpr std::array<std::array<ProductFn, 2>, kNR + 1> products_for(std::integer_sequence<int, R...>) {
  return {std::array<ProductFn, 2>{},
          std::array<ProductFn, 2>{&product_tile<MR, R + 1, false>, &product_tile<MR, R + 1, true>}...};
}

template <int... M>
constexpr std::array<std::array<std::array<ProductFn, 2>, kNR + 1>, kMR + 1> product_table(
    std::integer_sequence<int, M...>) {
  return {std::array<std::array<ProductFn, 2>, kNR + 1>{},
          products_for<M + 1>(std::make_integer_sequence<int, kNR>{})...};
}

// kProducts[mr][nr][masked] for the tails of rows and pixels.
const std::array<std::array<std::array<ProductFn, 2>, kNR + 1>, kMR + 1> kProducts =
    product_table(std::make_integer_sequence<int, kMR>{});

// out[n][m][p] = bias[m] + sum_k a[m * a_row + k * a_step] * x[n][k][p], for n < batch,
// m < rows, k < depth, p < pixels; x and out are C-contiguous.
void matrix_product(const float* a, int64_t a_row, int64_t a_step, const float* x, const float* bias,
                    float* out, int64_t batch, int64_t rows, int64_t depth, int64_t pixels) {
  const int64_t vectors = ceil_div(pixels, V), tiles = ceil_div(vectors, kNR);
  const int64_t row_blocks = ceil_div(rows, kMR);
  const int tail_lanes = int(pixels - (vectors - 1) * V);
  // Row blocks innermost: consecutive tasks share one tile of input pixels (all of its
  // rows), which stays in L2 while the weights stream past it.
  const int64_t tasks = batch * tiles * row_blocks;
  const int team = threads_for_tasks(tasks, batch * rows * depth * pixels);
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t block = task % row_blocks, rest = task / row_blocks;
    const int64_t tile = rest % tiles, n = rest / tiles;
    const int64_t m0 = block * kMR, v0 = tile * kNR;
    const int mr = int(std::min<int64_t>(kMR, rows - m0));
    const int nr = int(std::min<int64_t>(kNR, vectors - v0));
    const bool masked = v0 + nr == vectors && tail_lanes < V;
    vec result[kMR * kNR];
    kProducts[mr][nr][masked](a + m0 * a_row, a_row, a_step, x + n * depth * pixels + v0 * V,
                              pixels, depth, tail_lanes, result);
    float* dst = out + (n * rows + m0) * pixels + v0 * V;
    for (int o = 0; o < mr; ++o, dst += pixels) {
      const vec b = broadcast(bias ? bias[m0 + o] : 0.0f);
      for (int r = 0; r < nr; ++r) {
        const vec v = bias ? result[o * nr + r] + b : result[o * nr + r];
        if (masked && r == nr - 1) {
          store_first(dst + r * V, v, tail_lanes);
        } else {
          store(dst + r * V, v);
        }
      }
    }
  }
}

// The weight gradient's microkernel: for o < GM, i < GN,
//   result[o * GN + i] = sum over pixel vectors of gy[o * channel][p] * x[i * channel][p]
// for p < count, lanes past count reading as zero.
template <int GM, int GN>
void dot_tile(const float* gy, const float* x, int64_t channel, int64_t count, vec* result) {
  vec acc[GM][GN];
  for (int o = 0; o < GM; ++o)
    for (int i = 0; i < GN; ++i) acc[o][i] = vec{};
  const int64_t whole = count / V * V;
  auto step = [&](int64_t p, auto&& read) {
    vec gv[GM];
    for (int o = 0; o < GM; ++o) gv[o] = read(gy + o * channel + p);
    for (int i = 0; i < GN; ++i) {
      const vec xv = read(x + i * channel + p);
      for (int o = 0; o < GM; ++o) acc[o][i] += gv[o] * xv;
    }
  };
  for (int64_t p = 0; p < whole; p += V) step(p, [](const float* q) { return load(q); });
  if (whole < count) {
    const int rest = int(count - whole);
    step(whole, [rest](const float* q) { return load_first(q, rest); });
  }
  for (int o = 0; o < GM; ++o)
    for (int i = 0; i < GN; ++i) result[o * GN + i] = acc[o][i];
}

using DotFn = void (*)(const float*, const float*, int64_t, int64_t, vec*);

template <int GM, int... I>
constexpr std::array<DotFn, kGN + 1> dots_for(std::integer_sequence<int, I...>) {
  return {nullptr, &dot_tile<GM, I + 1>...};
}

template <int... M>
constexpr std::array<std::array<DotFn, kGN + 1>, kGM + 1> dot_table(std::integer_sequence<int, M...>) {
  return {std::array<DotFn, kGN + 1>{}, dots_for<M + 1>(std::make_integer_sequence<int, kGN>{})...};
}

// kDots[gm][gn] for the tails of both channel counts.
const std::array<std::array<DotFn, kGN + 1>, kGM + 1> kDots =
    dot_table(std::make_integer_sequence<int, kGM>{});

// The pixels (oh * sr, ow * sc) of every input plane, as planes of out_rows x out_cols.
void gather_strided(const Conv2dGeometry& g, const float* x, float* compact) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t planes = g.batch * g.in_channels, in_plane = g.in_plane(), out_plane = g.out_plane();
#pragma omp parallel for num_threads(threads_for(planes * out_plane)) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* src = x + plane * in_plane;
    float* dst = compact + plane * out_plane;
    for (int64_t oh = 0; oh < R.out_size; ++oh, dst += C.out_size) {
      const float* row = src + oh * R.stride * C.in_size;
      for (int64_t ow = 0; ow < C.out_size; ++ow) dst[ow] = row[ow * C.stride];
    }
  }
}

// The inverse: every input plane zero but for the strided pixels, taken from `compact`.
void scatter_strided(const Conv2dGeometry& g, const float* compact, float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t planes = g.batch * g.in_channels, in_plane = g.in_plane(), out_plane = g.out_plane();
#pragma omp parallel for num_threads(threads_for(planes * in_plane)) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* dst = grad_x + plane * in_plane;
    const float* src = compact + plane * out_plane;
    std::fill(dst, dst + in_plane, 0.0f);
    for (int64_t oh = 0; oh < R.out_size; ++oh, src += C.out_size) {
      float* row = dst + oh * R.stride * C.in_size;
      for (int64_t ow = 0; ow < C.out_size; ++ow) row[ow * C.stride] = src[ow];
    }
  }
}

bool is_strided(const Conv2dGeometry& g) { return g.rows.stride > 1 || g.cols.stride > 1; }

}  // namespace

void pointwise_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                       float* y) {
  const int64_t pixels = g.out_plane();
  if (is_strided(g)) {
    float* compact = workspace(WorkspaceSlot::padded_input, size_t(g.batch * g.in_channels * pixels));
    gather_strided(g, x, compact);
    x = compact;
  }
  matrix_product(w, g.in_channels, 1, x, bias, y, g.batch, g.out_channels, g.in_channels, pixels);
}

// grad_x[n][ci][p] = sum_co W[co][ci] grad_y[n][co][p]: the product with W^T, whose rows
// are W's columns (consecutive floats) and whose steps are W's rows.
void pointwise_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                          float* grad_x) {
  const int64_t pixels = g.out_plane();
  float* target = grad_x;
  if (is_strided(g))
    target = workspace(WorkspaceSlot::padded_input, size_t(g.batch * g.in_channels * pixels));
  matrix_product(w, 1, g.in_channels, grad_y, nullptr, target, g.batch, g.in_channels,
                 g.out_channels, pixels);
  if (target != grad_x) scatter_strided(g, target, grad_x);
}

// grad_w[co][ci] = sum_{n, p} grad_y[n][co][p] x[n][ci][p], the pixels (all pictures in
// a row) cut into fixed slices whose partials are added in slice order.
void pointwise_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                           float* grad_w) {
  const int64_t c_out = g.out_channels, c_in = g.in_channels, pixels = g.out_plane();
  if (is_strided(g)) {
    float* compact = workspace(WorkspaceSlot::padded_input, size_t(g.batch * c_in * pixels));
    gather_strided(g, x, compact);
    x = compact;
  }
  const int64_t total = g.batch * pixels;
  const int64_t slice = pointwise_slice_pixels(c_out, c_in), slices = ceil_div(total, slice);
  const int64_t weights = c_out * c_in;
  float* partials =
      slices == 1 ? grad_w : workspace(WorkspaceSlot::transformed_weights, size_t(slices * weights));
  const int64_t blocks = ceil_div(c_out, kGM);
  const int64_t tasks = slices * blocks;
  const int team = threads_for_tasks(tasks, total * weights);
#pragma omp parallel num_threads(team)
  {
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t s = task / blocks, o0 = task % blocks * kGM;
      const int gm = int(std::min<int64_t>(kGM, c_out - o0));
      float* part = partials + s * weights;
      const int64_t first = s * slice, last = std::min(total, first + slice);
      for (int64_t i0 = 0; i0 < c_in; i0 += kGN) {
        const int gn = int(std::min<int64_t>(kGN, c_in - i0));
        vec sum[kGM * kGN];
        for (int t = 0; t < gm * gn; ++t) sum[t] = vec{};
        // The slice's pixels, picture by picture.
        for (int64_t at = first; at < last;) {
          const int64_t n = at / pixels, p = at % pixels;
          const int64_t count = std::min(last - at, pixels - p);
          vec piece[kGM * kGN];
          kDots[gm][gn](grad_y + (n * c_out + o0) * pixels + p, x + (n * c_in + i0) * pixels + p,
                        pixels, count, piece);
          for (int t = 0; t < gm * gn; ++t) sum[t] += piece[t];
          at += count;
        }
        for (int o = 0; o < gm; ++o)
          for (int i = 0; i < gn; ++i) part[(o0 + o) * c_in + i0 + i] = horizontal_sum(sum[o * gn + i]);
      }
    }
    if (slices > 1) {
#pragma omp for schedule(static)
      for (int64_t e = 0; e < weights; ++e) {
        float total_e = partials[e];
        for (int64_t s = 1; s < slices; ++s) total_e += partials[s * weights + e];
        grad_w[e] = total_e;
      }
    }
  }
}

}  // namespace convpool::CONVPOOL_ISA

#endif  // CONVPOOL_PREDICATES_ONLY
