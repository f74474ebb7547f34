// Register-blocked float32 convolution for one instruction set (see conv2d_blocked.h).
// This file is compiled once per ISA with CONVPOOL_ISA set to the namespace name; GCC
// vector extensions give each build its native vector width.
#include "conv/conv2d_blocked.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/threading.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// Vector width and the largest register tiles (pixels x NB weight vectors) that fit the
// register file with room for the weights and one broadcast.
#if defined(CONVPOOL_ISA_avx512)
constexpr int V = 16;                    // 32 zmm registers
constexpr int kMaxTile[3] = {0, 28, 14};  // indexed by NB
#elif defined(CONVPOOL_ISA_avx2)
constexpr int V = 8;  // 16 ymm registers
constexpr int kMaxTile[3] = {0, 12, 6};
#else
constexpr int V = 4;  // 16 xmm registers (SSE2)
constexpr int kMaxTile[3] = {0, 12, 6};
#endif
constexpr int kMaxUr = kMaxTile[1];

typedef float vec __attribute__((vector_size(V * sizeof(float))));
typedef float vec_unaligned __attribute__((vector_size(V * sizeof(float)), aligned(4), may_alias));

inline vec load(const float* p) { return *reinterpret_cast<const vec_unaligned*>(p); }
inline void store(float* p, vec v) { *reinterpret_cast<vec_unaligned*>(p) = v; }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Output channels per register tile: one vector when a group has few, else two.
int weight_vectors(int64_t out_channels_per_group) { return out_channels_per_group > V ? 2 : 1; }

// ---------------------------------------------------------------------------------------
// The tap-convolution microkernel. Contract:
//   tile[j][o] = sum_{c < channels, t < ntaps} in[c * channel_stride + taps[t] + j * CS] * w[(c * ntaps + t) * NB * V + o]
// for j < UR pixels and o < NB * V output channels; `tile` is UR x (NB * V) floats.
template <int NB, int UR, int CS>
void tap_tile(const float* in, int64_t channels, int64_t channel_stride, const int64_t* taps,
              int ntaps, const float* w, float* tile) {
  vec acc[UR][NB];
  for (int j = 0; j < UR; ++j)
    for (int b = 0; b < NB; ++b) acc[j][b] = vec{};
  for (int64_t c = 0; c < channels; ++c) {
    const float* in_c = in + c * channel_stride;
    for (int t = 0; t < ntaps; ++t) {
      const float* src = in_c + taps[t];
      vec wv[NB];
      for (int b = 0; b < NB; ++b) wv[b] = load(w + b * V);
      w += NB * V;
      for (int j = 0; j < UR; ++j) {
        const vec xv = vec{} + src[j * CS];
        for (int b = 0; b < NB; ++b) acc[j][b] += xv * wv[b];
      }
    }
  }
  for (int j = 0; j < UR; ++j)
    for (int b = 0; b < NB; ++b) store(tile + (j * NB + b) * V, acc[j][b]);
}

using TapTileFn = void (*)(const float*, int64_t, int64_t, const int64_t*, int, const float*, float*);

template <int NB, int CS, int... I>
constexpr std::array<TapTileFn, sizeof...(I) + 1> tap_tiles(std::integer_sequence<int, I...>) {
  return {nullptr, &tap_tile<NB, I + 1, CS>...};
}

// tap_tile_table[NB][CS][UR]
const std::array<TapTileFn, kMaxTile[1] + 1> kTapTiles1[2] = {
    tap_tiles<1, 1>(std::make_integer_sequence<int, kMaxTile[1]>{}),
    tap_tiles<1, 2>(std::make_integer_sequence<int, kMaxTile[1]>{})};
const std::array<TapTileFn, kMaxTile[2] + 1> kTapTiles2[2] = {
    tap_tiles<2, 1>(std::make_integer_sequence<int, kMaxTile[2]>{}),
    tap_tiles<2, 2>(std::make_integer_sequence<int, kMaxTile[2]>{})};

TapTileFn tap_tile_for(int nb, int64_t col_step, int ur) {
  return nb == 1 ? kTapTiles1[col_step - 1][ur] : kTapTiles2[col_step - 1][ur];
}

// ---------------------------------------------------------------------------------------
// A tap convolution: for every image n, group g and output position (r, c) < (rows, cols)
//   out[n, g*cout_g + o, row0 + r*row_step, col0 + c*col_step]
//     = bias + sum_{i < cin_g, t} packed[g][o-block][i][t][o] * in[n, g*cin_g + i, r*in_row_step*in_cols + c*in_col_step + taps[t]]
// where `in` holds (in_rows x in_cols) planes padded so that every read is inside.
struct TapConvolution {
  int64_t batch = 0, groups = 1, cin_g = 0, cout_g = 0;
  const float* in = nullptr;
  int64_t in_channels = 0, in_rows = 0, in_cols = 0, in_row_step = 1, in_col_step = 1;
  std::vector<int64_t> taps;
  std::vector<float> packed;  // [g][ob][i][t][NB * V]
  int nb = 1;
  float* out = nullptr;
  int64_t out_channels = 0, out_rows = 0, out_cols = 0;
  int64_t rows = 0, cols = 0, row0 = 0, col0 = 0, row_step = 1, col_step = 1;
  const float* bias = nullptr;

  int64_t block() const { return int64_t(nb) * V; }
  int64_t out_blocks() const { return ceil_div(cout_g, block()); }

  // Packs weight(g, o, i, t) for o < cout_g, i < cin_g, t < taps.size().
  template <typename WeightAt>
  void pack(WeightAt weight_at) {
    const int64_t ob_count = out_blocks(), B = block(), T = int64_t(taps.size());
    packed.assign(size_t(groups * ob_count * cin_g * T * B), 0.0f);
    float* p = packed.data();
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t ob = 0; ob < ob_count; ++ob)
        for (int64_t i = 0; i < cin_g; ++i)
          for (int64_t t = 0; t < T; ++t, p += B)
            for (int64_t o = 0; o < B && ob * B + o < cout_g; ++o) p[o] = weight_at(g, ob * B + o, i, t);
  }

  void run() const {
    const int64_t ob_count = out_blocks(), B = block(), T = int64_t(taps.size());
    const int ur_max = kMaxTile[nb];
    const int64_t tasks = batch * groups * ob_count * rows;
    const int64_t in_plane = in_rows * in_cols, out_plane = out_rows * out_cols;
#pragma omp parallel num_threads(num_threads())
    {
      alignas(64) float tile[kMaxUr * 2 * V];
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t r = task % rows;
        int64_t rest = task / rows;
        const int64_t ob = rest % ob_count;
        rest /= ob_count;
        const int64_t g = rest % groups, n = rest / groups;
        const float* in_row = in + (n * in_channels + g * cin_g) * in_plane + r * in_row_step * in_cols;
        const float* w = packed.data() + (g * ob_count + ob) * cin_g * T * B;
        const int64_t valid = std::min(B, cout_g - ob * B);
        const int64_t first_out = g * cout_g + ob * B;
        float* out_row = out + (n * out_channels + first_out) * out_plane + (row0 + r * row_step) * out_cols + col0;
        for (int64_t c0 = 0; c0 < cols; c0 += ur_max) {
          const int ur = int(std::min<int64_t>(ur_max, cols - c0));
          tap_tile_for(nb, in_col_step, ur)(in_row + c0 * in_col_step, cin_g, in_plane, taps.data(),
                                            int(T), w, tile);
          for (int64_t o = 0; o < valid; ++o) {
            const float b = bias ? bias[first_out + o] : 0.0f;
            float* dst = out_row + o * out_plane + c0 * col_step;
            for (int j = 0; j < ur; ++j) dst[j * col_step] = tile[j * B + o] + b;
          }
        }
      }
    }
  }
};

// Copies planes of (rows x cols) into planes of (padded_rows x padded_cols), pixel (r, c)
// going to (r + top, c + left); everything else is zero. top/left may be negative (crop).
std::vector<float> padded_planes(const float* src, int64_t planes, int64_t rows, int64_t cols,
                                 int64_t top, int64_t left, int64_t padded_rows, int64_t padded_cols) {
  std::vector<float> dst(size_t(planes * padded_rows * padded_cols));
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* d = dst.data() + p * padded_rows * padded_cols;
    const float* s = src + p * rows * cols;
    for (int64_t r = 0; r < padded_rows; ++r) {
      float* drow = d + r * padded_cols;
      const int64_t sr = r - top;
      if (sr < 0 || sr >= rows) {
        std::fill(drow, drow + padded_cols, 0.0f);
        continue;
      }
      for (int64_t c = 0; c < padded_cols; ++c) {
        const int64_t sc = c - left;
        drow[c] = (sc >= 0 && sc < cols) ? s[sr * cols + sc] : 0.0f;
      }
    }
  }
  return dst;
}

// Rows (or columns) of the input that the forward pass reads, from the first padded one.
int64_t read_extent(const WindowAxis& a) { return (a.out_size - 1) * a.stride + a.dilation * (a.kernel - 1) + 1; }

}  // namespace

bool blocked_supports(const Conv2dGeometry& g) {
  return g.cols.stride <= 2 && g.out_channels_per_group() >= 4 && g.batch > 0 &&
         g.rows.out_size > 0 && g.cols.out_size > 0 && g.in_plane() > 0;
}

void blocked_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                     float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  TapConvolution job;
  job.batch = g.batch;
  job.groups = g.groups;
  job.cin_g = g.in_channels_per_group();
  job.cout_g = g.out_channels_per_group();
  job.nb = weight_vectors(job.cout_g);

  // Zero padding becomes real zeros so that the microkernel never tests bounds.
  const int64_t rows_read = read_extent(R), cols_read = read_extent(C);
  std::vector<float> padded;
  job.in = x;
  job.in_rows = R.in_size;
  job.in_cols = C.in_size;
  if (R.pad_before > 0 || C.pad_before > 0 || rows_read > R.in_size || cols_read > C.in_size) {
    job.in_rows = rows_read;
    job.in_cols = cols_read;
    padded = padded_planes(x, g.batch * g.in_channels, R.in_size, C.in_size, R.pad_before,
                           C.pad_before, job.in_rows, job.in_cols);
    job.in = padded.data();
  }
  job.in_channels = g.in_channels;
  job.in_row_step = R.stride;
  job.in_col_step = C.stride;
  for (int64_t s = 0; s < R.kernel; ++s)
    for (int64_t t = 0; t < C.kernel; ++t)
      job.taps.push_back(s * R.dilation * job.in_cols + t * C.dilation);

  const int64_t cin_g = job.cin_g, cout_g = job.cout_g, K = g.kernel_plane();
  job.pack([&](int64_t grp, int64_t o, int64_t i, int64_t t) {
    return w[((grp * cout_g + o) * cin_g + i) * K + t];
  });

  job.out = y;
  job.out_channels = g.out_channels;
  job.out_rows = job.rows = R.out_size;
  job.out_cols = job.cols = C.out_size;
  job.bias = bias;
  job.run();
}

void blocked_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                        float* grad_x) {
  (void)g; (void)grad_y; (void)w; (void)grad_x;
}

void blocked_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                         float* grad_w) {
  (void)g; (void)x; (void)grad_y; (void)grad_w;
}

}  // namespace convpool::CONVPOOL_ISA
