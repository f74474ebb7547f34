// The register-tiled tap microkernel shared by the blocked and Winograd convolutions, and
// the zero-padded plane copy they read from. Only for files compiled once per ISA.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "common/workspace.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// The largest register tiles (pixels x NB weight vectors) that fit the register file
// with room for the weights and one broadcast.
#if defined(CONVPOOL_ISA_avx512)
constexpr int kMaxTile[3] = {0, 28, 14};  // indexed by NB
#else
constexpr int kMaxTile[3] = {0, 12, 6};
#endif
constexpr int kMaxUr = kMaxTile[1];

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
        const vec xv = broadcast(src[j * CS]);
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

// Copies planes of (rows x cols) into planes (followed by V zeros of slack) of (padded_rows x padded_cols), pixel (r, c)
// going to (r + top, c + left); everything else is zero. top/left may be negative (crop).
const float* padded_planes(const float* src, int64_t planes, int64_t rows, int64_t cols,
                           int64_t top, int64_t left, int64_t padded_rows, int64_t padded_cols) {
  const size_t size = size_t(planes * padded_rows * padded_cols);
  float* dst = workspace(WorkspaceSlot::padded_input, size + V);
  std::fill(dst + size, dst + size + V, 0.0f);  // slack for vector loads past the last row
#pragma omp parallel for num_threads(threads_for(planes * padded_rows * padded_cols)) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* d = dst + p * padded_rows * padded_cols;
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

}  // namespace

}  // namespace convpool::CONVPOOL_ISA
