// Overlap-save correlation on pocketfft (conv_fft.h). The transforms' real type R is the
// operands' type, or double for float32 operands when the caller asks for it (docs/fft.md
// measures both).
#include "fft/conv_fft.h"

#include <omp.h>

#include <algorithm>
#include <complex>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/threading.h"

// pocketfft keeps its plans (twiddle factors, factorisations) in a small cache guarded by a
// mutex, so every tile reuses the plans of the first; its own thread pool is not built (the
// tiles are the threads' work).
#define POCKETFFT_NO_MULTITHREADING
#define POCKETFFT_CACHE_SIZE 16
#include <pocketfft_hdronly.h>

namespace convpool::fft {

namespace {

struct Transform {
  int64_t fh, fw;
  int64_t points() const { return fh * fw; }
  int64_t half() const { return fw / 2 + 1; }
  int64_t spectrum() const { return fh * half(); }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// `count` contiguous fh x fw planes to their contiguous fh x (fw/2 + 1) spectra.
template <typename R>
void forward(const R* planes, std::complex<R>* spectra, int64_t count, const Transform& f) {
  if (count == 0) return;
  const ptrdiff_t d = sizeof(R), z = sizeof(std::complex<R>);
  pocketfft::shape_t shape{size_t(count), size_t(f.fh), size_t(f.fw)};
  pocketfft::stride_t in{d * f.points(), d * f.fw, d};
  pocketfft::stride_t out{z * f.spectrum(), z * f.half(), z};
  pocketfft::r2c(shape, in, out, pocketfft::shape_t{1, 2}, pocketfft::FORWARD, planes, spectra,
                 R(1), 1);
}

// The inverse of forward(), scaled by 1 / points, of the first `rows` rows of each plane
// (the rest would be discarded); the spectra are overwritten (the column transforms run in
// place, so no scratch the size of the spectra is allocated).
template <typename R>
void inverse(std::complex<R>* spectra, R* planes, int64_t count, int64_t rows,
             const Transform& f) {
  if (count == 0) return;
  const ptrdiff_t d = sizeof(R), z = sizeof(std::complex<R>);
  pocketfft::stride_t spectrum_strides{z * f.spectrum(), z * f.half(), z};
  pocketfft::shape_t half{size_t(count), size_t(f.fh), size_t(f.half())};
  pocketfft::c2c(half, spectrum_strides, spectrum_strides, pocketfft::shape_t{1},
                 pocketfft::BACKWARD, spectra, spectra, R(1), 1);
  pocketfft::shape_t shape{size_t(count), size_t(rows), size_t(f.fw)};
  pocketfft::stride_t plane_strides{d * f.points(), d * f.fw, d};
  pocketfft::c2r(shape, spectrum_strides, plane_strides, size_t(2), pocketfft::BACKWARD, spectra,
                 planes, R(1) / R(f.points()), 1);
}

template <typename R>
void conjugate(std::complex<R>* spectra, int64_t n) {
  R* v = reinterpret_cast<R*>(spectra);
  for (int64_t i = 0; i < n; ++i) v[2 * i + 1] = -v[2 * i + 1];
}

// y (+)= a * b over n complex numbers, spelled out: std::complex's operator* checks for
// NaN and inf through a library call, and the operands here are finite. The arrays never
// overlap (restrict lets the compiler vectorise without run-time checks).
template <typename R>
void multiply(const std::complex<R>* a, const std::complex<R>* b, std::complex<R>* y, int64_t n,
              bool accumulate) {
  const R* __restrict__ av = reinterpret_cast<const R*>(a);
  const R* __restrict__ bv = reinterpret_cast<const R*>(b);
  R* __restrict__ yv = reinterpret_cast<R*>(y);
  if (!accumulate) std::fill(yv, yv + 2 * n, R(0));
  for (int64_t i = 0; i < n; ++i) {
    const R ar = av[2 * i], ai = av[2 * i + 1], br = bv[2 * i], bi = bv[2 * i + 1];
    yv[2 * i] += ar * br - ai * bi;
    yv[2 * i + 1] += ar * bi + ai * br;
  }
}

// Spectrum points mixed at a time: a block of every channel's spectrum stays in the core's
// cache while the channels mix.
constexpr int64_t kMixBlock = 256;

// plane[i, j] = src[row + i, col + j] where row + i is in [row_lo, row_hi) and col + j in
// [col_lo, col_hi), else 0 (the zero padding and the transform's own zero extension).
template <typename T, typename R>
void load_plane(const T* src, Strides s, int64_t row_lo, int64_t row_hi, int64_t col_lo,
                int64_t col_hi, int64_t row, int64_t col, R* plane, const Transform& f) {
  const int64_t c0 = std::max(col, col_lo), c1 = std::min(col + f.fw, col_hi);
  for (int64_t i = 0; i < f.fh; ++i) {
    R* dst = plane + i * f.fw;
    const int64_t r = row + i;
    if (r < row_lo || r >= row_hi || c0 >= c1) {
      std::fill(dst, dst + f.fw, R(0));
      continue;
    }
    std::fill(dst, dst + (c0 - col), R(0));
    const T* line = src + r * s.h;
    if (s.w == 1) {
      for (int64_t j = c0; j < c1; ++j) dst[j - col] = R(line[j]);
    } else {
      for (int64_t j = c0; j < c1; ++j) dst[j - col] = R(line[j * s.w]);
    }
    std::fill(dst + (c1 - col), dst + f.fw, R(0));
  }
}

// The first exception thrown on any thread of a parallel region, rethrown after it (an
// exception must not leave an OpenMP region).
class FirstError {
 public:
  template <typename Body>
  void run(Body&& body) {
    try {
      body();
    } catch (...) {
#pragma omp critical(convpool_fft_first_error)
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

int threads_for_jobs(int64_t jobs) {
  return int(std::max<int64_t>(1, std::min<int64_t>(num_threads(), jobs)));
}

// conj(FFT(k)) of `count` kh x kw kernels zero-extended to the transform size: the factor
// of a correlation.
template <typename R, typename T>
std::vector<std::complex<R>> kernel_spectra(const T* k, int64_t count, int64_t kh, int64_t kw,
                                            const Transform& f) {
  constexpr int64_t kChunk = 16;
  std::vector<std::complex<R>> spectra(size_t(count * f.spectrum()));
  const int64_t chunks = ceil_div(count, kChunk);
  const int threads = threads_for_jobs(chunks);
  std::vector<R> planes(size_t(threads * kChunk * f.points()));
  FirstError error;
#pragma omp parallel num_threads(threads)
  {
    int64_t begin, end;
    split_range(chunks, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
    R* mine = planes.data() + omp_get_thread_num() * kChunk * f.points();
    error.run([&] {
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        const int64_t first = chunk * kChunk, m = std::min(kChunk, count - first);
        std::fill(mine, mine + m * f.points(), R(0));
        for (int64_t i = 0; i < m; ++i)
          for (int64_t a = 0; a < kh; ++a)
            for (int64_t b = 0; b < kw; ++b)
              mine[i * f.points() + a * f.fw + b] = R(k[((first + i) * kh + a) * kw + b]);
        std::complex<R>* out = spectra.data() + first * f.spectrum();
        forward(mine, out, m, f);
        conjugate(out, m * f.spectrum());
      }
    });
  }
  error.rethrow();
  return spectra;
}

}  // namespace

void validate(const Correlation& c, const Tiling& t) {
  const auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("fft correlation: " + what);
  };
  require(c.batch >= 0 && c.in_channels >= 1 && c.out_channels >= 1 && c.groups >= 1,
          "batch must be >= 0 and channels and groups >= 1");
  require(c.in_channels % c.groups == 0 && c.out_channels % c.groups == 0,
          "groups must divide the input and output channels");
  require(c.height >= 0 && c.width >= 0 && c.out_height >= 0 && c.out_width >= 0,
          "sizes must be >= 0");
  require(c.kh >= 1 && c.kw >= 1, "the kernel must be at least 1 x 1");
  require(t.th >= 1 && t.tw >= 1, "tiles must be at least 1 x 1, got " + std::to_string(t.th) +
                                      " x " + std::to_string(t.tw));
  require(t.fh >= t.th + c.kh - 1 && t.fw >= t.tw + c.kw - 1,
          "the transform (" + std::to_string(t.fh) + " x " + std::to_string(t.fw) +
              ") must hold a tile plus the kernel's halo (" + std::to_string(t.th + c.kh - 1) +
              " x " + std::to_string(t.tw + c.kw - 1) + ")");
  require(t.fh <= (int64_t(1) << 16) && t.fw <= (int64_t(1) << 16),
          "the transform must be at most 65536 points along each axis");
}

namespace {

// The input tile at (row, col) of picture n, every channel, zero beyond the input (the
// padding and the transform's extension), transformed into `spectra`.
template <typename T, typename R>
void transform_input_tile(const T* x, Strides xs, const Correlation& c, int64_t n, int64_t row,
                          int64_t col, R* planes, std::complex<R>* spectra, const Transform& f) {
  for (int64_t p = 0; p < c.in_channels; ++p)
    load_plane(x + n * xs.n + p * xs.c, xs, 0, c.height, 0, c.width, row - c.top, col - c.left,
               planes + p * f.points(), f);
  forward(planes, spectra, c.in_channels, f);
}

template <typename T, typename R>
void correlate_in(const T* x, Strides xs, const T* k, const T* bias, T* out, Strides os,
                  const Correlation& c, const Tiling& t) {
  using Complex = std::complex<R>;
  const Transform f{t.fh, t.fw};
  const int64_t c_in_g = c.in_channels / c.groups, c_out_g = c.out_channels / c.groups;
  const int64_t points = f.points(), spectrum = f.spectrum();
  const int64_t tiles_h = ceil_div(c.out_height, t.th), tiles_w = ceil_div(c.out_width, t.tw);
  const int64_t jobs = c.batch * tiles_h * tiles_w;
  if (jobs == 0) return;
  const std::vector<Complex> k_spectra = kernel_spectra<R>(k, c.out_channels * c_in_g, c.kh, c.kw, f);

  const int threads = threads_for_jobs(jobs);
  const int64_t plane_count = std::max(c.in_channels, c.out_channels);
  std::vector<R> planes(size_t(threads * plane_count * points));
  std::vector<Complex> x_spectra(size_t(threads * c.in_channels * spectrum));
  std::vector<Complex> y_spectra(size_t(threads * c.out_channels * spectrum));
  FirstError error;
#pragma omp parallel num_threads(threads)
  {
    const int me = omp_get_thread_num();
    int64_t begin, end;
    split_range(jobs, omp_get_num_threads(), me, &begin, &end);
    R* plane = planes.data() + me * plane_count * points;
    Complex* xf = x_spectra.data() + me * c.in_channels * spectrum;
    Complex* yf = y_spectra.data() + me * c.out_channels * spectrum;
    error.run([&] {
      for (int64_t job = begin; job < end; ++job) {
        const int64_t n = job / (tiles_h * tiles_w), tile = job % (tiles_h * tiles_w);
        const int64_t row = tile / tiles_w * t.th, col = tile % tiles_w * t.tw;
        transform_input_tile(x, xs, c, n, row, col, plane, xf, f);
        for (int64_t s0 = 0; s0 < spectrum; s0 += kMixBlock) {
          const int64_t m = std::min(kMixBlock, spectrum - s0);
          for (int64_t q = 0; q < c.out_channels; ++q) {
            const Complex* kq = k_spectra.data() + q * c_in_g * spectrum + s0;
            const Complex* xg = xf + (q / c_out_g) * c_in_g * spectrum + s0;
            for (int64_t p = 0; p < c_in_g; ++p)
              multiply(kq + p * spectrum, xg + p * spectrum, yf + q * spectrum + s0, m, p > 0);
          }
        }
        const int64_t rows = std::min(t.th, c.out_height - row);
        inverse(yf, plane, c.out_channels, rows, f);
        const int64_t cols = std::min(t.tw, c.out_width - col);
        for (int64_t q = 0; q < c.out_channels; ++q) {
          const double shift = bias ? double(bias[q]) : 0.0;
          const R* src = plane + q * points;
          T* dst = out + n * os.n + q * os.c + row * os.h + col * os.w;
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j)
              dst[i * os.h + j * os.w] = T(src[i * f.fw + j] + shift);
        }
      }
    });
  }
  error.rethrow();
}

template <typename T, typename R>
void correlate_weight_in(const T* x, Strides xs, const T* grad_out, Strides gs, T* grad_k,
                         const Correlation& c, const Tiling& t) {
  using Complex = std::complex<R>;
  const Transform f{t.fh, t.fw};
  const int64_t c_in_g = c.in_channels / c.groups, c_out_g = c.out_channels / c.groups;
  const int64_t points = f.points(), spectrum = f.spectrum();
  const int64_t kernels = c.out_channels * c_in_g;
  const int64_t tiles_h = ceil_div(c.out_height, t.th), tiles_w = ceil_div(c.out_width, t.tw);
  const int64_t jobs = c.batch * tiles_h * tiles_w;

  const int threads = threads_for_jobs(jobs);
  const int64_t plane_count = std::max(c.in_channels, c.out_channels);
  std::vector<R> planes(size_t(threads * plane_count * points));
  std::vector<Complex> x_spectra(size_t(threads * c.in_channels * spectrum));
  std::vector<Complex> g_spectra(size_t(threads * c.out_channels * spectrum));
  std::vector<Complex> sums(size_t(threads * kernels * spectrum));  // zeros
  FirstError error;
  if (jobs > 0) {
#pragma omp parallel num_threads(threads)
    {
      const int me = omp_get_thread_num();
      int64_t begin, end;
      split_range(jobs, omp_get_num_threads(), me, &begin, &end);
      R* plane = planes.data() + me * plane_count * points;
      Complex* xf = x_spectra.data() + me * c.in_channels * spectrum;
      Complex* gf = g_spectra.data() + me * c.out_channels * spectrum;
      Complex* sum = sums.data() + me * kernels * spectrum;
      error.run([&] {
        for (int64_t job = begin; job < end; ++job) {
          const int64_t n = job / (tiles_h * tiles_w), tile = job % (tiles_h * tiles_w);
          const int64_t row = tile / tiles_w * t.th, col = tile % tiles_w * t.tw;
          transform_input_tile(x, xs, c, n, row, col, plane, xf, f);
          // the output gradient's tile, zero beyond the tile (the transform's extension)
          const int64_t row_end = std::min(row + t.th, c.out_height);
          const int64_t col_end = std::min(col + t.tw, c.out_width);
          for (int64_t q = 0; q < c.out_channels; ++q)
            load_plane(grad_out + n * gs.n + q * gs.c, gs, row, row_end, col, col_end, row, col,
                       plane + q * points, f);
          forward(plane, gf, c.out_channels, f);
          conjugate(gf, c.out_channels * spectrum);
          for (int64_t s0 = 0; s0 < spectrum; s0 += kMixBlock) {
            const int64_t m = std::min(kMixBlock, spectrum - s0);
            for (int64_t q = 0; q < c.out_channels; ++q) {
              const Complex* xg = xf + (q / c_out_g) * c_in_g * spectrum + s0;
              for (int64_t p = 0; p < c_in_g; ++p)
                multiply(gf + q * spectrum + s0, xg + p * spectrum,
                         sum + (q * c_in_g + p) * spectrum + s0, m, true);
            }
          }
        }
      });
    }
    error.rethrow();
  }
  // The threads' sums in thread order (the result does not depend on scheduling), then the
  // inverse transforms a chunk of kernels at a time.
  Complex* total = sums.data();
  for (int i = 1; i < threads; ++i) {
    const Complex* part = sums.data() + int64_t(i) * kernels * spectrum;
    for (int64_t s = 0; s < kernels * spectrum; ++s) total[s] += part[s];
  }
  constexpr int64_t kChunk = 16;
  std::vector<R> result(size_t(kChunk * points));
  for (int64_t first = 0; first < kernels; first += kChunk) {
    const int64_t m = std::min(kChunk, kernels - first);
    inverse(total + first * spectrum, result.data(), m, c.kh, f);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t a = 0; a < c.kh; ++a)
        for (int64_t b = 0; b < c.kw; ++b)
          grad_k[((first + i) * c.kh + a) * c.kw + b] = T(result[i * points + a * f.fw + b]);
  }
}

}  // namespace

template <typename T>
void correlate(const T* x, Strides x_strides, const T* k, const T* bias, T* out,
               Strides out_strides, const Correlation& c, const Tiling& t,
               bool float64_transforms) {
  validate(c, t);
  if (float64_transforms)
    correlate_in<T, double>(x, x_strides, k, bias, out, out_strides, c, t);
  else
    correlate_in<T, T>(x, x_strides, k, bias, out, out_strides, c, t);
}

template <typename T>
void correlate_weight(const T* x, Strides x_strides, const T* grad_out, Strides grad_out_strides,
                      T* grad_k, const Correlation& c, const Tiling& t, bool float64_transforms) {
  validate(c, t);
  if (float64_transforms)
    correlate_weight_in<T, double>(x, x_strides, grad_out, grad_out_strides, grad_k, c, t);
  else
    correlate_weight_in<T, T>(x, x_strides, grad_out, grad_out_strides, grad_k, c, t);
}

template void correlate<float>(const float*, Strides, const float*, const float*, float*, Strides,
                               const Correlation&, const Tiling&, bool);
template void correlate<double>(const double*, Strides, const double*, const double*, double*,
                                Strides, const Correlation&, const Tiling&, bool);
template void correlate_weight<float>(const float*, Strides, const float*, Strides, float*,
                                      const Correlation&, const Tiling&, bool);
template void correlate_weight<double>(const double*, Strides, const double*, Strides, double*,
                                       const Correlation&, const Tiling&, bool);

}  // namespace convpool::fft
