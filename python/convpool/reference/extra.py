"""The NumPy oracle for transposed convolution, max unpooling and adaptive pooling, and
their gradients.

Written from the definitions, sharing no code with the library:

- transposed convolution scatters: input pixel ``(i, j)`` of channel ``p`` adds
  ``x[n, p, i, j] * W[p, q, s, t]`` to pixel ``(i * sy + s * dy - py, j * sx + t * dx - px)``
  of output channel ``q`` (of ``p``'s group); one tap ``(s, t)`` at a time, on a canvas
  that holds the padding, which is cropped at the end;
- unpooling puts each value at its index;
- adaptive pooling visits each output window ``floor(i * H / out)`` ..
  ``ceil((i + 1) * H / out)`` in a loop.

Everything is computed in float64 and returned in ``numpy.result_type(inputs, float32)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_grad_input",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_grad_input",
    "conv_transpose2d",
    "conv_transpose2d_grad_input",
    "conv_transpose2d_grad_weight",
    "max_unpool2d",
    "max_unpool2d_grad_input",
]


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (
        int(value), int(value))


def _result_dtype(*arrays) -> np.dtype:
    return np.result_type(*arrays, np.float32)


def _batched(array: np.ndarray) -> np.ndarray:
    return array if array.ndim == 4 else array[np.newaxis]


class _Canvas:
    """Where a transposed convolution's taps land: ``(N, C_out, Hc, Wc)``, the output
    with its padding (and output padding) around it."""

    def __init__(self, x_shape, weight_shape, stride, padding, output_padding, groups,
                 dilation) -> None:
        self.stride, self.padding = _pair(stride), _pair(padding)
        self.output_padding, self.dilation = _pair(output_padding), _pair(dilation)
        self.groups = int(groups)
        n, c_in, h, w = x_shape
        _, c_out_g, kh, kw = weight_shape
        self.kernel = (kh, kw)
        self.in_size = (h, w)
        self.c_in_g, self.c_out_g = c_in // self.groups, c_out_g
        self.shape = (n, c_out_g * self.groups,
                      *((self.in_size[a] - 1) * self.stride[a]
                        + self.dilation[a] * (self.kernel[a] - 1) + 1 + self.output_padding[a]
                        for a in (0, 1)))

    def tap(self, s: int, t: int) -> tuple[slice, slice]:
        """The canvas pixels input pixels reach through tap ``(s, t)``."""
        (sy, sx), (dy, dx), (h, w) = self.stride, self.dilation, self.in_size
        return (slice(s * dy, s * dy + (h - 1) * sy + 1, sy),
                slice(t * dx, t * dx + (w - 1) * sx + 1, sx))

    def crop(self) -> tuple[slice, slice]:
        (py, px) = self.padding
        return slice(py, self.shape[2] - py), slice(px, self.shape[3] - px)

    def groups_of(self):
        """Per group: the input channels and output channels it connects."""
        for g in range(self.groups):
            yield (slice(g * self.c_in_g, (g + 1) * self.c_in_g),
                   slice(g * self.c_out_g, (g + 1) * self.c_out_g))


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Oracle of :func:`convpool.conv_transpose2d`."""
    x, weight = np.asarray(x), np.asarray(weight)
    dtype = _result_dtype(x, weight)
    x4 = _batched(x).astype(np.float64)
    w = weight.astype(np.float64)
    canvas = _Canvas(x4.shape, w.shape, stride, padding, output_padding, groups, dilation)
    y = np.zeros(canvas.shape)
    for inputs, outputs in canvas.groups_of():
        for s in range(canvas.kernel[0]):
            for t in range(canvas.kernel[1]):
                rows, cols = canvas.tap(s, t)
                y[:, outputs, rows, cols] += np.einsum("npij,pq->nqij", x4[:, inputs],
                                                       w[inputs, :, s, t])
    rows, cols = canvas.crop()
    y = y[:, :, rows, cols]
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[:, None, None]
    return (y if x.ndim == 4 else y[0]).astype(dtype)


def _grad_canvas(grad_output, canvas: _Canvas) -> np.ndarray:
    """``grad_output`` placed in a zero canvas where the output lies."""
    full = np.zeros(canvas.shape)
    rows, cols = canvas.crop()
    full[:, :, rows, cols] = _batched(np.asarray(grad_output, np.float64))
    return full


def conv_transpose2d_grad_input(grad_output, weight, input_shape, stride=1, padding=0,
                                output_padding=0, groups=1, dilation=1):
    """Oracle of :func:`convpool.conv_transpose2d_grad_input`: each input pixel's
    gradient gathers the output gradient at every pixel it reached."""
    weight = np.asarray(weight)
    dtype = _result_dtype(np.asarray(grad_output), weight)
    shape4 = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    w = weight.astype(np.float64)
    canvas = _Canvas(shape4, w.shape, stride, padding, output_padding, groups, dilation)
    g = _grad_canvas(grad_output, canvas)
    grad = np.zeros(shape4)
    for inputs, outputs in canvas.groups_of():
        for s in range(canvas.kernel[0]):
            for t in range(canvas.kernel[1]):
                rows, cols = canvas.tap(s, t)
                grad[:, inputs] += np.einsum("nqij,pq->npij", g[:, outputs, rows, cols],
                                             w[inputs, :, s, t])
    return grad.reshape(input_shape).astype(dtype)


def conv_transpose2d_grad_weight(x, grad_output, weight_shape, stride=1, padding=0,
                                 output_padding=0, groups=1, dilation=1):
    """Oracle of :func:`convpool.conv_transpose2d_grad_weight`."""
    x = np.asarray(x)
    dtype = _result_dtype(x, np.asarray(grad_output))
    x4 = _batched(x).astype(np.float64)
    canvas = _Canvas(x4.shape, weight_shape, stride, padding, output_padding, groups, dilation)
    g = _grad_canvas(grad_output, canvas)
    grad = np.zeros(weight_shape)
    for inputs, outputs in canvas.groups_of():
        for s in range(canvas.kernel[0]):
            for t in range(canvas.kernel[1]):
                rows, cols = canvas.tap(s, t)
                grad[inputs, :, s, t] = np.einsum("npij,nqij->pq", x4[:, inputs],
                                                  g[:, outputs, rows, cols])
    return grad.astype(dtype)


def _unpool_size(in_size, kernel_size, stride, padding, output_size) -> tuple[int, int]:
    if output_size is not None:
        return int(output_size[-2]), int(output_size[-1])
    k = _pair(kernel_size)
    s = k if stride is None else _pair(stride)
    p = _pair(padding)
    return tuple((in_size[a] - 1) * s[a] - 2 * p[a] + k[a] for a in (0, 1))


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Oracle of :func:`convpool.max_unpool2d` (repeated indices add up)."""
    x = np.asarray(x)
    dtype = _result_dtype(x)
    x4, i4 = _batched(x).astype(np.float64), _batched(np.asarray(indices))
    oh, ow = _unpool_size(x.shape[-2:], kernel_size, stride, padding, output_size)
    y = np.zeros((x4.shape[0], x4.shape[1], oh * ow))
    for n in range(x4.shape[0]):
        for c in range(x4.shape[1]):
            np.add.at(y[n, c], i4[n, c].ravel(), x4[n, c].ravel())
    y = y.reshape(x4.shape[0], x4.shape[1], oh, ow)
    return (y if x.ndim == 4 else y[0]).astype(dtype)


def max_unpool2d_grad_input(grad_output, indices):
    """Oracle of :func:`convpool.max_unpool2d_grad_input`: the output gradient at each
    index."""
    grad_output = np.asarray(grad_output)
    g4, i4 = _batched(grad_output).astype(np.float64), _batched(np.asarray(indices))
    grad = np.zeros(i4.shape)
    for n in range(i4.shape[0]):
        for c in range(i4.shape[1]):
            grad[n, c] = g4[n, c].ravel()[i4[n, c]]
    return grad.reshape(np.shape(indices)).astype(_result_dtype(grad_output))


def _windows(in_size: int, out_size: int) -> list[tuple[int, int]]:
    return [(math.floor(i * in_size / out_size), math.ceil((i + 1) * in_size / out_size))
            for i in range(out_size)]


def _adaptive_size(output_size, in_size) -> tuple[int, int]:
    pair = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    return tuple(in_size[a] if pair[a] is None else int(pair[a]) for a in (0, 1))


def adaptive_avg_pool2d(x, output_size):
    """Oracle of :func:`convpool.adaptive_avg_pool2d`."""
    x = np.asarray(x)
    x4 = _batched(x).astype(np.float64)
    oh, ow = _adaptive_size(output_size, x.shape[-2:])
    y = np.zeros((*x4.shape[:2], oh, ow))
    for i, (r0, r1) in enumerate(_windows(x4.shape[2], oh)):
        for j, (c0, c1) in enumerate(_windows(x4.shape[3], ow)):
            y[:, :, i, j] = x4[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return (y if x.ndim == 4 else y[0]).astype(_result_dtype(x))


def adaptive_avg_pool2d_grad_input(grad_output, input_shape):
    """Oracle of :func:`convpool.adaptive_avg_pool2d_grad_input`."""
    grad_output = np.asarray(grad_output)
    g4 = _batched(grad_output).astype(np.float64)
    shape4 = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    grad = np.zeros(shape4)
    for i, (r0, r1) in enumerate(_windows(shape4[2], g4.shape[2])):
        for j, (c0, c1) in enumerate(_windows(shape4[3], g4.shape[3])):
            grad[:, :, r0:r1, c0:c1] += (g4[:, :, i, j] / ((r1 - r0) * (c1 - c0)))[:, :, None, None]
    return grad.reshape(input_shape).astype(_result_dtype(grad_output))


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Oracle of :func:`convpool.adaptive_max_pool2d`: the first maximum of each window in
    row-major order, or its first NaN."""
    x = np.asarray(x)
    x4 = _batched(x).astype(np.float64)
    n, c, h, w = x4.shape
    oh, ow = _adaptive_size(output_size, (h, w))
    y = np.zeros((n, c, oh, ow))
    indices = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i, (r0, r1) in enumerate(_windows(h, oh)):
        for j, (c0, c1) in enumerate(_windows(w, ow)):
            window = x4[:, :, r0:r1, c0:c1].reshape(n, c, -1)
            nan = np.isnan(window)
            first = np.where(nan.any(axis=2), nan.argmax(axis=2), window.argmax(axis=2))
            y[:, :, i, j] = np.take_along_axis(window, first[:, :, None], 2)[:, :, 0]
            indices[:, :, i, j] = (r0 + first // (c1 - c0)) * w + c0 + first % (c1 - c0)
    y = (y if x.ndim == 4 else y[0]).astype(_result_dtype(x))
    indices = indices if x.ndim == 4 else indices[0]
    return (y, indices) if return_indices else y


def adaptive_max_pool2d_grad_input(grad_output, indices, input_shape):
    """Oracle of :func:`convpool.adaptive_max_pool2d_grad_input`: each gradient added at
    its index."""
    grad_output = np.asarray(grad_output)
    g4 = _batched(grad_output).astype(np.float64)
    i4 = _batched(np.asarray(indices))
    shape4 = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    grad = np.zeros((shape4[0], shape4[1], shape4[2] * shape4[3]))
    for n in range(shape4[0]):
        for c in range(shape4[1]):
            np.add.at(grad[n, c], i4[n, c].ravel(), g4[n, c].ravel())
    return grad.reshape(input_shape).astype(_result_dtype(grad_output))
