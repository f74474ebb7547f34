// The Winograd transforms of F(2x2, 3x3) and of its stride-2 split (the 3x3 kernel split
// by tap parity, F(2, 2) on the two-tap axes), on V lanes at once, written once for the
// NCHW kernel (kernels/conv2d_winograd.cpp: lanes are the tiles of a row, or channels)
// and the channels-last one (kernels/conv2d_nhwc_winograd.cpp: lanes are channels).
// Included by per-ISA sources only.
#pragma once

#include "common/simd_vec.h"

namespace convpool::CONVPOOL_ISA {

namespace {

constexpr int kPoints = 16;     // the 4x4 transformed tile of stride 1
constexpr int kMaxPoints = 25;  // the 5x5 one of stride 2

// U = G g G^T with G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]], for V
// kernels at once (one a lane).
void transform_kernels(const vec g[3][3], vec u[kPoints]) {
  const vec half = broadcast(0.5f);
  vec gg[4][3];
  for (int j = 0; j < 3; ++j) {
    gg[0][j] = g[0][j];
    gg[1][j] = half * (g[0][j] + g[1][j] + g[2][j]);
    gg[2][j] = half * (g[0][j] - g[1][j] + g[2][j]);
    gg[3][j] = g[2][j];
  }
  for (int i = 0; i < 4; ++i) {
    u[i * 4 + 0] = gg[i][0];
    u[i * 4 + 1] = half * (gg[i][0] + gg[i][1] + gg[i][2]);
    u[i * 4 + 2] = half * (gg[i][0] - gg[i][1] + gg[i][2]);
    u[i * 4 + 3] = gg[i][2];
  }
}

// V = B^T d B with B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]] for V
// 4x4 patches at once, one a lane: d[r * 4 + s] holds row r, column s of every patch.
inline void transform_patch(const vec d[kPoints], vec v[kPoints]) {
  vec t[4][4];
  for (int j = 0; j < 4; ++j) {
    t[0][j] = d[j] - d[8 + j];
    t[1][j] = d[4 + j] + d[8 + j];
    t[2][j] = d[8 + j] - d[4 + j];
    t[3][j] = d[4 + j] - d[12 + j];
  }
  for (int i = 0; i < 4; ++i) {
    v[i * 4 + 0] = t[i][0] - t[i][2];
    v[i * 4 + 1] = t[i][1] + t[i][2];
    v[i * 4 + 2] = t[i][2] - t[i][1];
    v[i * 4 + 3] = t[i][1] - t[i][3];
  }
}

// Y = A^T M A with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], for V channels at once;
// y[a * 2 + e] is output (a, e) of the tile.
inline void transform_output(const vec m[kPoints], vec y[4]) {
  vec s0[4], s1[4];
  for (int j = 0; j < 4; ++j) {
    s0[j] = m[j] + m[4 + j] + m[8 + j];
    s1[j] = m[4 + j] - m[8 + j] - m[12 + j];
  }
  y[0] = s0[0] + s0[1] + s0[2];
  y[1] = s0[1] - s0[2] - s0[3];
  y[2] = s1[0] + s1[1] + s1[2];
  y[3] = s1[1] - s1[2] - s1[3];
}

// Stride 2, one axis: outputs y0 = g0 d0 + g1 d1 + g2 d2 and y1 = g0 d2 + g1 d3 + g2 d4
// are the even taps (g0, g2) over d0, d2, d4, which F(2, 2) does in 3 products, plus the
// odd tap g1 over d1 and d3 (2 products):
//   B^T d = (d0 - d2, d2, d4 - d2, d1, d3), G g = (g0, g0 + g2, g2, g1, g1),
//   y0 = m0 + m1 + m3, y1 = m1 + m2 + m4.
// So a 2x2 output tile costs 25 multiplies per channel pair instead of 36.
void transform_kernels_stride2(const vec g[3][3], vec u[kMaxPoints]) {
  vec gg[5][3];
  for (int j = 0; j < 3; ++j) {
    gg[0][j] = g[0][j];
    gg[1][j] = g[0][j] + g[2][j];
    gg[2][j] = g[2][j];
    gg[3][j] = g[1][j];
    gg[4][j] = g[1][j];
  }
  for (int i = 0; i < 5; ++i) {
    u[i * 5 + 0] = gg[i][0];
    u[i * 5 + 1] = gg[i][0] + gg[i][2];
    u[i * 5 + 2] = gg[i][2];
    u[i * 5 + 3] = gg[i][1];
    u[i * 5 + 4] = gg[i][1];
  }
}

// B^T d B for V 5x5 patches at once: d[r * 5 + s] holds row r, column s of every patch.
inline void transform_patch_stride2(const vec d[kMaxPoints], vec v[kMaxPoints]) {
  vec t[5][5];
  for (int j = 0; j < 5; ++j) {
    t[0][j] = d[j] - d[10 + j];
    t[1][j] = d[10 + j];
    t[2][j] = d[20 + j] - d[10 + j];
    t[3][j] = d[5 + j];
    t[4][j] = d[15 + j];
  }
  for (int i = 0; i < 5; ++i) {
    v[i * 5 + 0] = t[i][0] - t[i][2];
    v[i * 5 + 1] = t[i][2];
    v[i * 5 + 2] = t[i][4] - t[i][2];
    v[i * 5 + 3] = t[i][1];
    v[i * 5 + 4] = t[i][3];
  }
}

// A^T M A with A^T = [[1, 1, 0, 1, 0], [0, 1, 1, 0, 1]].
inline void transform_output_stride2(const vec m[kMaxPoints], vec y[4]) {
  vec s0[5], s1[5];
  for (int j = 0; j < 5; ++j) {
    s0[j] = m[j] + m[5 + j] + m[15 + j];
    s1[j] = m[5 + j] + m[10 + j] + m[20 + j];
  }
  y[0] = s0[0] + s0[1] + s0[3];
  y[1] = s0[1] + s0[2] + s0[4];
  y[2] = s1[0] + s1[1] + s1[3];
  y[3] = s1[1] + s1[2] + s1[4];
}

}  // namespace

}  // namespace convpool::CONVPOOL_ISA
