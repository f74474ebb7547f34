// The register-tiled tap microkernel shared by the blocked and Winograd convolutions.
// Only for files compiled once per ISA.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "common/simd_vec.h"
#include "common/threading.h"

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

}  // namespace

}  // namespace convpool::CONVPOOL_ISA
