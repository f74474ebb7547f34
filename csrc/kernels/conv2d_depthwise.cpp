// Strided depthwise float32 convolution, compiled once per instruction set: one input plane per output plane (C_in / groups == 1) with a
// column stride above 1, where the plane filter's contiguous row vectors do not apply.
// Each task copies the input rows it reads, zero padded and split into column phases
// (column k * stride + p goes to phase p, position k): every tap then reads one phase
// contiguously, and vectors run along output rows as in the plane filter. Forward and
// weight gradient; the input gradient is the few-input-channel phase kernel's.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------

namespace convpool {

bool depthwise_strided_forward_supports(const Conv2dGeometry& g, int) {
  // Strides up to 4: a task's buffer holds `stride` phases of each row it reads, and
  // every row between its first and last.
  return g.in_channels_per_group() == 1 && g.cols.stride >= 2 && g.cols.stride <= 4 &&
         g.rows.stride <= 4 && g.batch > 0 && g.rows.out_size > 0 && g.cols.out_size > 0 &&
         g.in_plane() > 0;
}

bool depthwise_strided_grad_weight_supports(const Conv2dGeometry& g, int vector_floats) {
  return depthwise_strided_forward_supports(g, vector_floats);
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "conv/padded_rows.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// Rows of a plane, padded by `mode` and split into column phases: row b, phase p,
// position k holds padded column k * stride + p (plane column k * stride + p - left, or
// the padding, see copy_padded_rows).
// Phases are a whole number of vectors long, so that vector loads never leave a row.
struct PhaseRows {
  Array<float> data, scratch;
  int64_t stride = 1, phase_len = 0, row_len = 0;

  void fill(const float* plane, int64_t rows, int64_t cols, int64_t first_row, int64_t count,
            int64_t left, PaddingMode mode) {
    row_len = stride * phase_len;
    if (data.size() < size_t(count * row_len)) data.assign(size_t(count * row_len), 0.0f);
    if (scratch.size() < size_t(row_len)) scratch.assign(size_t(row_len), 0.0f);
    for (int64_t b = 0; b < count; ++b) {
      copy_padded_rows(plane, rows, cols, first_row + b, 1, left, row_len, scratch.data(), row_len,
                       mode);
      split(scratch.data(), data.data() + b * row_len);
    }
  }
  // Position k of phase p of row b.
  const float* at(int64_t b, int64_t p) const { return data.data() + b * row_len + p * phase_len; }

 private:
  void split(const float* src, float* dst) const {
    if (stride == 2) {
      for (int64_t k = 0; k < phase_len; k += V) {
        const vec a = load(src + 2 * k), b = load(src + 2 * k + V);
        store(dst + k, even_lanes(a, b));
        store(dst + phase_len + k, odd_lanes(a, b));
      }
      return;
    }
    for (int64_t p = 0; p < stride; ++p)
      for (int64_t k = 0; k < phase_len; ++k) dst[p * phase_len + k] = src[k * stride + p];
  }
};

// Where tap t of a row reads, for output column 0: phase (t * dilation) % stride, position
// (t * dilation) / stride, as an offset into a PhaseRows row.
Array<int64_t> column_taps(const WindowAxis& C, int64_t phase_len) {
  Array<int64_t> taps(static_cast<size_t>(C.kernel));
  for (int64_t t = 0; t < C.kernel; ++t) {
    const int64_t col = t * C.dilation;
    taps[size_t(t)] = (col % C.stride) * phase_len + col / C.stride;
  }
  return taps;
}

int64_t phase_length(const WindowAxis& C) {
  const int64_t out_vectors = ceil_div(C.out_size, V) * V;
  return ceil_div(out_vectors + (C.kernel - 1) * C.dilation / C.stride + 1, V) * V;
}

// Output rows per task: enough to amortise a task, few enough to spread one picture over
// the threads and keep a task's rows in L1/L2.
int64_t rows_per_task(int64_t out_rows, int64_t out_cols) {
  return std::clamp<int64_t>(8192 / std::max<int64_t>(out_cols, 1), 1, std::max<int64_t>(out_rows, 1));
}

// NV vectors of one output row from column j on:
//   out[j + l] = bias + sum_{s, t} w[s * kw + t] * in.at(first + s * dh, 0)[taps[t] + j + l]
template <int NV>
void output_vectors(const PhaseRows& in, int64_t first, int64_t dh, int64_t kh, int64_t kw,
                    const int64_t* taps, const float* w, float bias, int64_t j, float* out,
                    int64_t valid) {
  vec acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = broadcast(bias);
  for (int64_t s = 0; s < kh; ++s) {
    const float* row = in.at(first + s * dh, 0) + j;
    for (int64_t t = 0; t < kw; ++t) {
      const vec wv = broadcast(w[s * kw + t]);
      const float* p = row + taps[t];
      for (int v = 0; v < NV; ++v) acc[v] += wv * load(p + v * V);
    }
  }
  for (int v = 0; v < NV; ++v) {
    const int64_t lanes = valid - v * V;
    if (lanes >= V) {
      store(out + j + v * V, acc[v]);
    } else if (lanes > 0) {
      store_first(out + j + v * V, acc[v], lanes);
    }
  }
}

}  // namespace

void depthwise_strided_forward(const Conv2dGeometry& g, const float* x, const float* w,
                               const float* bias, float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cout_g = g.out_channels_per_group(), K = g.kernel_plane();
  const int64_t OW = C.out_size, phase_len = phase_length(C);
  const Array<int64_t> taps = column_taps(C, phase_len);
  const int64_t block = rows_per_task(R.out_size, OW);
  const int64_t blocks = ceil_div(R.out_size, block);
  const int64_t tasks = g.batch * g.out_channels * blocks;
  constexpr int NV = 4;
#pragma omp parallel num_threads(threads_for(g.batch * g.out_channels * g.out_plane() * K))
  {
    PhaseRows in;
    in.stride = C.stride;
    in.phase_len = phase_len;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task % blocks, plane = task / blocks;
      const int64_t n = plane / g.out_channels, q = plane % g.out_channels, p = q / cout_g;
      const int64_t r0 = b * block, rows = std::min(block, R.out_size - r0);
      in.fill(x + (n * g.in_channels + p) * g.in_plane(), R.in_size, C.in_size,
              r0 * R.stride - R.pad_before, (rows - 1) * R.stride + (R.kernel - 1) * R.dilation + 1,
              C.pad_before, g.padding_mode);
      const float* wq = w + q * K;
      const float bq = bias ? bias[q] : 0.0f;
      for (int64_t i = 0; i < rows; ++i) {
        float* out = y + plane * g.out_plane() + (r0 + i) * OW;
        int64_t j = 0;
        for (; j + NV * V <= OW; j += NV * V)
          output_vectors<NV>(in, i * R.stride, R.dilation, R.kernel, C.kernel, taps.data(), wq, bq, j, out, NV * V);
        for (; j < OW; j += V)
          output_vectors<1>(in, i * R.stride, R.dilation, R.kernel, C.kernel, taps.data(), wq, bq, j, out, OW - j);
      }
    }
  }
}

// dW[q][s][t] = sum_n sum_{i,j} gy[n][q][i][j] * x_padded[n][p][i*sy + s*dh][j*sx + t*dw].
// Each task sums one block of rows of one image into its own slot; the slots are added
// in a fixed order, so the result does not depend on the thread count.
void depthwise_strided_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                   float* grad_w) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cout_g = g.out_channels_per_group(), K = g.kernel_plane();
  const int64_t OW = C.out_size, phase_len = phase_length(C), padded_ow = ceil_div(OW, V) * V;
  const Array<int64_t> taps = column_taps(C, phase_len);
  const int64_t block = rows_per_task(R.out_size, OW);
  const int64_t blocks = ceil_div(R.out_size, block);
  const int64_t slots = g.batch * blocks;  // per output channel
  Array<double> partial(static_cast<size_t>(g.out_channels * slots * K));
  const int64_t tasks = g.out_channels * slots;
  // Lanes of the last vector of a row that hold output columns: input values read only
  // by columns past the row (which may be inf or NaN) must not enter the sums.
  lane_index lane, last;
  for (int l = 0; l < V; ++l) {
    lane[l] = l;
    last[l] = int32_t(OW - (padded_ow - V));
  }
  const auto keep = lane < last;
#pragma omp parallel num_threads(threads_for(g.batch * g.out_channels * g.out_plane() * K))
  {
    PhaseRows in;
    in.stride = C.stride;
    in.phase_len = phase_len;
    Array<float> gy(static_cast<size_t>(block * padded_ow));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t q = task / slots, slot = task % slots;
      const int64_t n = slot / blocks, b = slot % blocks, p = q / cout_g;
      const int64_t r0 = b * block, rows = std::min(block, R.out_size - r0);
      in.fill(x + (n * g.in_channels + p) * g.in_plane(), R.in_size, C.in_size,
              r0 * R.stride - R.pad_before, (rows - 1) * R.stride + (R.kernel - 1) * R.dilation + 1,
              C.pad_before, g.padding_mode);
      const float* src = grad_y + (n * g.out_channels + q) * g.out_plane() + r0 * OW;
      for (int64_t i = 0; i < rows; ++i) {
        std::copy(src + i * OW, src + (i + 1) * OW, gy.data() + i * padded_ow);
        std::fill(gy.data() + i * padded_ow + OW, gy.data() + (i + 1) * padded_ow, 0.0f);
      }
      double* sums = partial.data() + task * K;
      for (int64_t s = 0; s < R.kernel; ++s)
        for (int64_t t = 0; t < C.kernel; ++t) {
          vec acc[2] = {vec{}, vec{}};
          for (int64_t i = 0; i < rows; ++i) {
            const float* xr = in.at(i * R.stride + s * R.dilation, 0) + taps[size_t(t)];
            const float* gr = gy.data() + i * padded_ow;
            int64_t j = 0;
            for (; j + 2 * V < padded_ow; j += 2 * V) {
              acc[0] += load(gr + j) * load(xr + j);
              acc[1] += load(gr + j + V) * load(xr + j + V);
            }
            for (; j + V < padded_ow; j += V) acc[0] += load(gr + j) * load(xr + j);
            const vec xv = load(xr + j);
            acc[1] += load(gr + j) * (keep ? xv : vec{});
          }
          sums[s * C.kernel + t] = double(horizontal_sum(acc[0] + acc[1]));
        }
    }
  }
#pragma omp parallel for num_threads(threads_for(tasks * K)) schedule(static)
  for (int64_t q = 0; q < g.out_channels; ++q)
    for (int64_t k = 0; k < K; ++k) {
      double total = 0.0;
      for (int64_t slot = 0; slot < slots; ++slot) total += partial[size_t((q * slots + slot) * K + k)];
      grad_w[q * K + k] = float(total);
    }
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
