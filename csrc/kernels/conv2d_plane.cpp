// Plane-filter float32 convolution, compiled once per instruction set: for convolutions where each output plane reads one input plane (C_in / groups == 1:
// a picture filter, LeNet's first layer, depthwise layers), vectorised along the output
// row. The input gradient (stride 1) is the output gradient filtered by the flipped
// kernel; the weight gradient sums per row block and adds the blocks in a fixed order.
// Channel blocking would leave most vector lanes empty here.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <algorithm>

#include "common/threading.h"

namespace convpool {

namespace {

// Output rows one task of the plane kernel computes (as the kernels split them), and
// the floats of its row buffer: the input rows they read, each as wide as a row of
// `out_cols` outputs reads, plus a vector of slack.
int64_t plane_rows_per_task(int64_t out_rows, int64_t out_cols) {
  return std::clamp<int64_t>(16384 / std::max<int64_t>(out_cols, 1), 1,
                             std::max<int64_t>(out_rows, 1));
}

double plane_row_buffer_floats(const WindowAxis& rows, int64_t block, const WindowAxis& cols,
                               int64_t out_cols, int vector_floats) {
  return (double(block - 1) * double(rows.stride) +
          double(rows.kernel - 1) * double(rows.dilation) + 1) *
         (double(out_cols) + double(cols.kernel - 1) * double(cols.dilation) + vector_floats);
}

}  // namespace

bool plane_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  if (!(g.in_channels_per_group() == 1 && g.cols.stride == 1)) return false;
  const int64_t block = plane_rows_per_task(g.rows.out_size, g.cols.out_size);
  return scratch_within_operands(
      g, double(num_threads()) *
             plane_row_buffer_floats(g.rows, block, g.cols, g.cols.out_size, vector_floats));
}

// The weight gradient reads the input in the forward pass's row blocks.
bool plane_grad_weight_supports(const Conv2dGeometry& g, int vector_floats) {
  return plane_forward_supports(g, vector_floats);
}

bool plane_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  if (!g.zero_padded()) return false;  // the padded output gradient is folded by nothing
  if (!(g.in_channels_per_group() == 1 && g.cols.stride == 1 && g.rows.stride == 1))
    return false;
  const int64_t block = plane_rows_per_task(g.rows.in_size, g.cols.in_size);
  return scratch_within_operands(
      g, double(num_threads()) *
             plane_row_buffer_floats(g.rows, block, g.cols, g.cols.in_size, vector_floats));
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>

#include <omp.h>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "conv/padded_rows.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// Output rows per task: enough to amortise a task, few enough to spread one big picture
// over the threads and keep a task's rows in L1/L2.
int64_t rows_per_task(int64_t out_rows, int64_t out_cols) {
  return std::clamp<int64_t>(16384 / std::max<int64_t>(out_cols, 1), 1, std::max<int64_t>(out_rows, 1));
}

// The input rows a task reads, padded by `mode`: buffer row b, column c hold
// src[first_row + b][c - left] where that lies inside the plane, else the padding
// (copy_padded_rows). Each row
// has V floats of slack so that vector loads past the last output never leave it.
struct RowBuffer {
  Array<float> data;
  int64_t cols = 0;

  // Allocates room for `rows` rows of `width` (before the parallel region that fills it:
  // an allocation failure inside one could not be reported).
  void reserve(int64_t rows, int64_t width) { data.assign(size_t(rows * (width + V)), 0.0f); }

  void fill(const float* src, int64_t src_rows, int64_t src_cols, int64_t first_row, int64_t rows,
            int64_t left, int64_t width, PaddingMode mode) {
    cols = width + V;
    if (data.size() != size_t(rows * cols)) data.assign(size_t(rows * cols), 0.0f);
    copy_padded_rows(src, src_rows, src_cols, first_row, rows, left, cols, data.data(), cols, mode);
  }
  const float* row(int64_t b) const { return data.data() + b * cols; }
};

// out[i][j] = init + sum_{s,t} w[s][t] * in.row(i * row_step + s * dh)[j + t * dw],
// for i < rows, j < cols (stride 1 along the row); init is the bias, or out itself.
struct FilterTaps {
  const float* w;
  int64_t kh, kw, dh, dw;
};

template <int NV>
inline void filter_vectors(const RowBuffer& in, int64_t first_row, const FilterTaps& f,
                           int64_t j, vec* acc) {
  for (int64_t s = 0; s < f.kh; ++s) {
    const float* r = in.row(first_row + s * f.dh) + j;
    for (int64_t t = 0; t < f.kw; ++t) {
      const vec wv = broadcast(f.w[s * f.kw + t]);
      const float* p = r + t * f.dw;
      for (int v = 0; v < NV; ++v) acc[v] += wv * load(p + v * V);
    }
  }
}

// The vectors of one row that start at column j, for NR rows from `first_row` on (row
// r at first_row + r * row_step): NR independent sums, so that the FMAs of short rows
// do not wait on each other.
template <int NR>
inline void filter_column(const RowBuffer& in, int64_t first_row, int64_t row_step,
                          const FilterTaps& f, int64_t j, vec* acc) {
  for (int64_t s = 0; s < f.kh; ++s)
    for (int64_t t = 0; t < f.kw; ++t) {
      const vec wv = broadcast(f.w[s * f.kw + t]);
      for (int r = 0; r < NR; ++r)
        acc[r] += wv * load(in.row(first_row + r * row_step + s * f.dh) + j + t * f.dw);
    }
}

// Rows [i, i + NR) from column j on, one vector per row; the last vector may hang past
// the row: it is computed whole (the buffer has slack) and only its lanes inside are kept.
template <int NR>
void filter_tail(const RowBuffer& in, int64_t row_step, const FilterTaps& f, int64_t i,
                 int64_t j, int64_t cols, float bias, bool accumulate, float* out, int64_t out_cols) {
  for (; j < cols; j += V) {
    const int64_t lanes = std::min<int64_t>(V, cols - j);
    vec acc[NR];
    for (int r = 0; r < NR; ++r) {
      acc[r] = broadcast(bias);
      if (accumulate)
        for (int64_t l = 0; l < lanes; ++l) acc[r][l] = out[(i + r) * out_cols + j + l];
    }
    filter_column<NR>(in, i * row_step, row_step, f, j, acc);
    for (int r = 0; r < NR; ++r)
      for (int64_t l = 0; l < lanes; ++l) out[(i + r) * out_cols + j + l] = acc[r][l];
  }
}

void filter_rows(const RowBuffer& in, int64_t row_step, const FilterTaps& f, int64_t rows,
                 int64_t cols, float bias, bool accumulate, float* out, int64_t out_cols) {
  constexpr int NV = 4, NR = 4;
  const int64_t wide = cols / (NV * V) * (NV * V);  // columns done NV vectors at a time
  for (int64_t i = 0; i < rows; ++i) {
    float* o = out + i * out_cols;
    const int64_t first_row = i * row_step;
    for (int64_t j = 0; j < wide; j += NV * V) {
      vec acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = accumulate ? load(o + j + v * V) : broadcast(bias);
      filter_vectors<NV>(in, first_row, f, j, acc);
      for (int v = 0; v < NV; ++v) store(o + j + v * V, acc[v]);
    }
  }
  int64_t i = 0;
  for (; i + NR <= rows; i += NR) filter_tail<NR>(in, row_step, f, i, wide, cols, bias, accumulate, out, out_cols);
  for (; i < rows; ++i) filter_tail<1>(in, row_step, f, i, wide, cols, bias, accumulate, out, out_cols);
}

}  // namespace

void plane_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                   float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cout_g = g.out_channels_per_group();
  const int64_t block = rows_per_task(R.out_size, C.out_size);
  const int64_t blocks = ceil_div(R.out_size, block);
  const int64_t tasks = g.batch * g.out_channels * blocks;
  const int team = threads_for(tasks * block * C.out_size * g.kernel_plane());
  Array<RowBuffer> buffers(static_cast<size_t>(team));
  for (RowBuffer& b : buffers)
    b.reserve((block - 1) * R.stride + R.dilation * (R.kernel - 1) + 1, C.out_size + C.dilation * (C.kernel - 1));
#pragma omp parallel num_threads(team)
  {
    RowBuffer& buffer = buffers[size_t(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task % blocks, plane = task / blocks;
      const int64_t n = plane / g.out_channels, q = plane % g.out_channels, p = q / cout_g;
      const int64_t r0 = b * block, rows = std::min(block, R.out_size - r0);
      buffer.fill(x + (n * g.in_channels + p) * g.in_plane(), R.in_size, C.in_size,
                  r0 * R.stride - R.pad_before, (rows - 1) * R.stride + R.dilation * (R.kernel - 1) + 1,
                  C.pad_before, C.out_size + C.dilation * (C.kernel - 1), g.padding_mode);
      const FilterTaps f{w + q * g.kernel_plane(), R.kernel, C.kernel, R.dilation, C.dilation};
      filter_rows(buffer, R.stride, f, rows, C.out_size, bias ? bias[q] : 0.0f, false,
                  y + plane * g.out_plane() + r0 * C.out_size, C.out_size);
    }
  }
}

// With stride 1 the input gradient is the output gradient filtered by the flipped
// kernel: gx[i][j] = sum_{s,t} w[kh-1-s][kw-1-t] * gy[i + top - (kh-1-s)*dh][...].
void plane_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                      float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cout_g = g.out_channels_per_group(), K = g.kernel_plane();
  Array<float> flipped(size_t(g.out_channels * K));
  for (int64_t q = 0; q < g.out_channels; ++q)
    for (int64_t k = 0; k < K; ++k) flipped[size_t(q * K + k)] = w[q * K + (K - 1 - k)];
  const int64_t top = R.dilation * (R.kernel - 1) - R.pad_before;
  const int64_t left = C.dilation * (C.kernel - 1) - C.pad_before;
  const int64_t block = rows_per_task(R.in_size, C.in_size);
  const int64_t blocks = ceil_div(R.in_size, block);
  const int64_t tasks = g.batch * g.in_channels * blocks;
  const int team = threads_for(tasks * block * C.in_size * K * cout_g);
  Array<RowBuffer> buffers(static_cast<size_t>(team));
  for (RowBuffer& b : buffers)
    b.reserve(block + R.dilation * (R.kernel - 1), C.in_size + C.dilation * (C.kernel - 1));
#pragma omp parallel num_threads(team)
  {
    RowBuffer& buffer = buffers[size_t(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task % blocks, plane = task / blocks;
      const int64_t n = plane / g.in_channels, p = plane % g.in_channels;
      const int64_t r0 = b * block, rows = std::min(block, R.in_size - r0);
      float* out = grad_x + plane * g.in_plane() + r0 * C.in_size;
      for (int64_t qq = 0; qq < cout_g; ++qq) {
        const int64_t q = p * cout_g + qq;
        buffer.fill(grad_y + (n * g.out_channels + q) * g.out_plane(), R.out_size, C.out_size,
                    r0 - top, rows + R.dilation * (R.kernel - 1), left,
                    C.in_size + C.dilation * (C.kernel - 1), PaddingMode::zeros);
        const FilterTaps f{flipped.data() + q * K, R.kernel, C.kernel, R.dilation, C.dilation};
        filter_rows(buffer, 1, f, rows, C.in_size, 0.0f, qq > 0, out, C.in_size);
      }
    }
  }
}

// dW[q][s][t] = sum_n sum_{i,j} gy[n][q][i][j] * x[n][p][i*sy - top + s*dh][j - left + t*dw].
// Each task sums one block of rows of one image into its own slot; the slots are added
// in a fixed order, so the result does not depend on the thread count.
void plane_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                       float* grad_w) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cout_g = g.out_channels_per_group(), K = g.kernel_plane();
  const int64_t block = rows_per_task(R.out_size, C.out_size);
  const int64_t blocks = ceil_div(R.out_size, block);
  const int64_t slots = g.batch * blocks;  // per output channel
  Array<double> partial(size_t(g.out_channels * slots * K));
  const int64_t tasks = g.out_channels * slots;
  const int64_t OW = C.out_size, padded_ow = ceil_div(OW, V) * V;
  const int team = threads_for(tasks * block * OW * K);
  Array<RowBuffer> buffers(static_cast<size_t>(team));
  for (RowBuffer& b : buffers)
    b.reserve((block - 1) * R.stride + R.dilation * (R.kernel - 1) + 1, OW + C.dilation * (C.kernel - 1));
  // Each thread's rows of grad_y, each zero-filled to a whole number of vectors so that
  // the products past the row's end are zeros.
  Array<float> gy_rows(size_t(team) * size_t(block * padded_ow));
#pragma omp parallel num_threads(team)
  {
    const int tid = omp_get_thread_num();
    RowBuffer& buffer = buffers[size_t(tid)];
    float* const gy = gy_rows.data() + size_t(tid) * size_t(block * padded_ow);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t q = task / slots, slot = task % slots;
      const int64_t n = slot / blocks, b = slot % blocks, p = q / cout_g;
      const int64_t r0 = b * block, rows = std::min(block, R.out_size - r0);
      buffer.fill(x + (n * g.in_channels + p) * g.in_plane(), R.in_size, C.in_size,
                  r0 * R.stride - R.pad_before, (rows - 1) * R.stride + R.dilation * (R.kernel - 1) + 1,
                  C.pad_before, OW + C.dilation * (C.kernel - 1), g.padding_mode);
      const float* src = grad_y + (n * g.out_channels + q) * g.out_plane() + r0 * OW;
      for (int64_t i = 0; i < rows; ++i) {
        std::copy(src + i * OW, src + (i + 1) * OW, gy + i * padded_ow);
        std::fill(gy + i * padded_ow + OW, gy + (i + 1) * padded_ow, 0.0f);
      }
      double* sums = partial.data() + task * K;
      for (int64_t s = 0; s < R.kernel; ++s)
        for (int64_t t = 0; t < C.kernel; ++t) {
          vec acc[2] = {vec{}, vec{}};
          for (int64_t i = 0; i < rows; ++i) {
            const float* xr = buffer.row(i * R.stride + s * R.dilation) + t * C.dilation;
            const float* gr = gy + i * padded_ow;
            int64_t j = 0;
            for (; j + 2 * V <= padded_ow; j += 2 * V) {
              acc[0] += load(gr + j) * load(xr + j);
              acc[1] += load(gr + j + V) * load(xr + j + V);
            }
            if (j < padded_ow) acc[0] += load(gr + j) * load(xr + j);
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
