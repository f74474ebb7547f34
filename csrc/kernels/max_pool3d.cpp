// 3-D max pooling with indices (NCDHW): one output row (plane, depth, row) at a time.
// The interior columns, whose every width tap lies inside the input, keep their running
// maxima and indices in the output row itself and take the window's taps one at a time
// in row-major (d, h, w) order, each tap a pass along the row (vectorised: the same
// operation on every column); the `replaces` rule then leaves the first maximum, or the
// first NaN. Columns whose window the padding clips take their window one tap at a time.
// Done in one pass over the input, where pooling the planes in 2-D and combining the
// depths in NumPy took five (measured ahead of PyTorch's max_pool3d with indices).
//
// One file, two sections: the `supports` predicate (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the 3-D
// pooling list (pool/pool3d.cpp) names both.
#include <cstdint>

#include "pool/pool3d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Every case: the kernel takes any window, stride, dilation and padding.
bool max_pool3d_rows_supports(const Pool3dShape&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <limits>

#include "common/threading.h"
#include "pool/pool_common.h"

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::replaces;
using pool::TapRange;

// Output row (od, oh) of one volume `in`: y_row and at_row hold its OW maxima and indices.
template <typename T>
void pool_row(const Pool3dShape& s, const T* in, int64_t od, int64_t oh, T* __restrict y_row,
              int64_t* __restrict at_row) {
  const WindowAxis &D = s.axes[0], &H = s.axes[1], &W = s.axes[2];
  const int64_t h_in = H.in_size, w_in = W.in_size, ow = W.out_size;
  const int64_t sw = W.stride, dw = W.dilation;
  const TapRange ds = pool::taps_inside(D, od), hs = pool::taps_inside(H, oh);
  const TapRange inner = pool::interior(W);
  // Interior columns: every width tap inside. The first tap sets the running maximum (so
  // that a window of -inf still names its first voxel); the others replace it by the rule.
  if (inner.begin < inner.end) {
    bool first = true;
    for (int64_t a = ds.begin; a < ds.end; ++a)
      for (int64_t b = hs.begin; b < hs.end; ++b) {
        const int64_t row = (D.input_index(od, a) * h_in + H.input_index(oh, b)) * w_in;
        for (int64_t c = 0; c < W.kernel; ++c) {
          // the input column of output column j at this tap: j * sw + offset
          const int64_t offset = c * dw - W.pad_before;
          const T* src = in + row + offset;
          const int64_t at0 = row + offset;
          if (first) {
            for (int64_t j = inner.begin; j < inner.end; ++j) {
              y_row[j] = src[j * sw];
              at_row[j] = at0 + j * sw;
            }
            first = false;
            continue;
          }
          for (int64_t j = inner.begin; j < inner.end; ++j) {
            const T v = src[j * sw];
            const bool r = replaces(v, y_row[j]);
            y_row[j] = r ? v : y_row[j];
            at_row[j] = r ? at0 + j * sw : at_row[j];
          }
        }
      }
    if (first)  // no depth or row tap inside (the Python layer refuses such windows)
      for (int64_t j = inner.begin; j < inner.end; ++j) {
        y_row[j] = -std::numeric_limits<T>::infinity();
        at_row[j] = -1;
      }
  }
  // Edge columns: the taps inside, window by window.
  for (int64_t j = 0; j < ow; ++j) {
    if (j == inner.begin && inner.begin < inner.end) j = inner.end;
    if (j >= ow) break;
    const TapRange ws = pool::taps_inside(W, j);
    T best = -std::numeric_limits<T>::infinity();
    int64_t at = -1;
    for (int64_t a = ds.begin; a < ds.end; ++a)
      for (int64_t b = hs.begin; b < hs.end; ++b) {
        const int64_t row = (D.input_index(od, a) * h_in + H.input_index(oh, b)) * w_in;
        for (int64_t c = ws.begin; c < ws.end; ++c) {
          const int64_t k = row + W.input_index(j, c);
          if (at < 0 || replaces(in[k], best)) {
            best = in[k];
            at = k;
          }
        }
      }
    y_row[j] = best;
    at_row[j] = at;
  }
}

}  // namespace

template <typename T>
void max_pool3d_rows(const Pool3dShape& s, const T* x, T* y, int64_t* indices) {
  const int64_t od = s.axes[0].out_size, oh = s.axes[1].out_size, ow = s.axes[2].out_size;
  const int64_t rows = s.planes * od * oh;
  const int64_t taps = s.axes[0].kernel * s.axes[1].kernel * s.axes[2].kernel;
  const int64_t in_volume = s.in_volume();
#pragma omp parallel for num_threads(threads_for(rows * ow * taps)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t plane = r / (od * oh), d = r / oh % od, h = r % oh;
    pool_row(s, x + plane * in_volume, d, h, y + r * ow, indices + r * ow);
  }
}

template void max_pool3d_rows<float>(const Pool3dShape&, const float*, float*, int64_t*);
template void max_pool3d_rows<double>(const Pool3dShape&, const double*, double*, int64_t*);

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
