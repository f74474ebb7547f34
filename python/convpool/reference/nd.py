"""The NumPy oracle for 1-D and 3-D convolution and pooling.

Written to be read, not to be fast, and on its own: it resolves its arguments itself
and shares nothing with the library (whose 1-D and 3-D functions run on the 2-D
kernels), so a mistake in that reduction cannot hide here. One formula serves every
rank ``r`` of spatial axes:

- convolution: ``y[n, q, o] = b[q] + sum over taps t and channels p of the group of
  w[q, p, t] * x_padded[n, p, o * stride + t * dilation]``, where the non-zero modes pad
  with ``numpy.pad`` (edge, reflect, symmetric, wrap) and a tap in zero padding is no
  term at all (an infinite weight there makes no NaN: the direct sum's rule); the input
  gradient runs the same sum backwards and folds each padded voxel back onto the voxel
  it copies; the weight gradient sums ``grad_output * x_padded`` per tap.
- pooling: every output voxel is one explicit window; the taps inside the input are
  listed in row-major order, ``numpy.argmax`` picks the first maximum (and the first
  NaN); the index is the flat position in the channel's signal or volume. An average
  divides the window's sum (in float64) by ``divisor_override``, or by the product over
  the axes of the taps inside the input plus padding (a ``ceil_mode`` window past the
  padding counts only its part inside), or by the taps inside the input.

Results are in ``numpy.result_type(inputs, float32)``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._ieee import ieee as _ieee
from .geometry import output_size, same_padding, window_span

__all__ = [
    "avg_pool1d",
    "avg_pool1d_grad_input",
    "avg_pool3d",
    "avg_pool3d_grad_input",
    "conv1d",
    "conv1d_grad_bias",
    "conv1d_grad_input",
    "conv1d_grad_weight",
    "conv3d",
    "conv3d_grad_bias",
    "conv3d_grad_input",
    "conv3d_grad_weight",
    "global_avg_pool1d",
    "global_avg_pool1d_grad_input",
    "global_avg_pool3d",
    "global_avg_pool3d_grad_input",
    "global_max_pool1d",
    "global_max_pool1d_grad_input",
    "global_max_pool3d",
    "global_max_pool3d_grad_input",
    "max_pool1d",
    "max_pool1d_grad_input",
    "max_pool3d",
    "max_pool3d_grad_input",
]

_NUMPY_PAD_MODE = {"zeros": "constant", "replicate": "edge", "reflect": "reflect",
                   "symmetric": "symmetric", "circular": "wrap"}


def _dtype(*arrays) -> np.dtype:
    return np.result_type(*[np.asarray(a) for a in arrays], np.float32)


def _ints(value, rank: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank
    if len(values) != rank or any(int(v) != v or v < 1 for v in values):
        raise ValueError(f"expected an int or {rank} positive ints, got {value!r}")
    return tuple(int(v) for v in values)


def _sides(padding, size, kernel, stride, dilation) -> list[tuple[int, int]]:
    """``(before, after)`` per axis for every padding form."""
    rank = len(size)
    if padding == "valid":
        return [(0, 0)] * rank
    if padding == "same":
        return [same_padding(*axis) for axis in zip(size, kernel, stride, dilation, strict=True)]
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * rank
    items = list(padding)
    if rank == 1 and len(items) == 2 and all(isinstance(i, (int, np.integer)) for i in items):
        return [(int(items[0]), int(items[1]))]
    if len(items) != rank:
        raise ValueError(f"padding {padding!r} does not fit {rank} axes")
    return [(int(i[0]), int(i[1])) if isinstance(i, (tuple, list)) else (int(i), int(i))
            for i in items]


def _batched(x: np.ndarray, rank: int) -> np.ndarray:
    return x.reshape((1,) * (rank + 2 - x.ndim) + x.shape)


# --- convolution ------------------------------------------------------------------------


class _Conv:
    """One convolution's geometry, batched ``(N, C_in, *size)``."""

    def __init__(self, x_shape, w_shape, rank, stride, padding, dilation, groups, mode):
        self.rank = rank
        self.bare = len(x_shape) == rank
        self.user_ndim = len(x_shape)
        self.x_shape = (1,) * (rank + 2 - len(x_shape)) + tuple(x_shape)
        self.w_shape = (1, 1, *w_shape) if self.bare else tuple(w_shape)
        self.stride, self.dilation = _ints(stride, rank), _ints(dilation, rank)
        self.groups, self.mode = int(groups), mode
        size, kernel = self.x_shape[2:], self.w_shape[2:]
        self.sides = _sides(padding, size, kernel, self.stride, self.dilation)
        self.out = tuple(
            output_size(n, k, s, d, b, a)
            for n, k, s, d, (b, a) in zip(size, kernel, self.stride, self.dilation, self.sides,
                                          strict=True))
        if min(self.out) < 1:
            raise ValueError(f"the kernel does not fit: output {self.out}")
        self.y_shape = (self.x_shape[0], self.w_shape[0], *self.out)

    def user(self, shape_or_array, full_shape):
        """A batched result in the caller's rank."""
        array = shape_or_array
        if self.bare:
            return array.reshape(full_shape[2:])
        return array.reshape(full_shape[self.rank + 2 - self.user_ndim:])

    def pad(self, x: np.ndarray) -> np.ndarray:
        """The input the taps read: padded for the non-zero modes. Zero padding is not
        materialised: a tap that falls in it is no term of the sum (so an infinite
        weight there makes no NaN)."""
        if self.mode == "zeros":
            return x
        width = [(0, 0), (0, 0), *self.sides]
        return np.pad(x, width, mode=_NUMPY_PAD_MODE[self.mode])

    def unpad(self, grad_padded: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`pad`: each padded voxel's gradient added to its source."""
        if self.mode == "zeros":
            return grad_padded
        grad = grad_padded
        for axis, (before, _) in enumerate(self.sides, start=2):
            size = self.x_shape[axis]
            source = np.arange(grad.shape[axis]) - before
            if self.mode == "replicate":
                source = np.clip(source, 0, size - 1)
            elif self.mode == "reflect":
                source = np.abs(source)
                source = np.where(source >= size, 2 * (size - 1) - source, source)
            elif self.mode == "symmetric":
                source = np.where(source < 0, -source - 1, source)
                source = np.where(source >= size, 2 * size - 1 - source, source)
            else:
                source = source % size
            moved = np.moveaxis(grad, axis, 0)
            folded = np.zeros((size, *moved.shape[1:]), dtype=grad.dtype)
            np.add.at(folded, source, moved)
            grad = np.moveaxis(folded, 0, axis)
        return grad

    def window(self, tap) -> tuple[tuple, tuple]:
        """``(outputs, inputs)``: the output positions whose tap ``tap`` reads the (padded)
        input, and the input positions they read, as slices per axis."""
        outputs, inputs = [], []
        for axis, (t, d, o, s) in enumerate(zip(tap, self.dilation, self.out, self.stride,
                                                strict=True)):
            before, after = self.sides[axis]
            n = self.x_shape[axis + 2]
            if self.mode != "zeros":  # the padded input: every tap is inside
                n, before = n + before + after, 0
            offset = t * d - before  # input position of output 0
            first = max(0, -(offset // s))  # ceil(-offset / s)
            last = min(o - 1, (n - 1 - offset) // s)
            if first > last:
                return (), ()
            outputs.append(slice(first, last + 1))
            inputs.append(slice(first * s + offset, last * s + offset + 1, s))
        return tuple(outputs), tuple(inputs)

    def taps(self):
        return itertools.product(*(range(k) for k in self.w_shape[2:]))

    def grouped(self, array: np.ndarray) -> np.ndarray:
        """``(N, C, ...)`` as ``(N, groups, C // groups, ...)``."""
        n, c = array.shape[:2]
        return array.reshape(n, self.groups, c // self.groups, *array.shape[2:])


def _conv(x, weight, bias, rank, stride, padding, dilation, groups, padding_mode):
    x, weight = np.asarray(x), np.asarray(weight)
    dtype = _dtype(x, weight)
    geo = _Conv(x.shape, weight.shape, rank, stride, padding, dilation, groups, padding_mode)
    xp = geo.grouped(geo.pad(x.reshape(geo.x_shape).astype(np.float64)))
    w = weight.reshape(geo.w_shape).astype(np.float64)
    wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])  # (g, q, p, *taps)
    y = np.zeros((geo.y_shape[0], groups, geo.y_shape[1] // groups, *geo.out))
    every = (slice(None),) * 3
    for tap in geo.taps():
        outputs, inputs = geo.window(tap)
        if outputs:
            y[(*every, *outputs)] += np.einsum("ngp...,gqp->ngq...", xp[(*every, *inputs)],
                                               wg[(Ellipsis, *tap)])
    y = y.reshape(geo.y_shape)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64).reshape((1, -1) + (1,) * rank)
    return geo.user(y, geo.y_shape).astype(dtype)


def _conv_grad_input(grad_output, weight, input_shape, rank, stride, padding, dilation, groups,
                     padding_mode):
    grad_output, weight = np.asarray(grad_output), np.asarray(weight)
    dtype = _dtype(grad_output, weight)
    geo = _Conv(tuple(input_shape), weight.shape, rank, stride, padding, dilation, groups,
                padding_mode)
    gy = geo.grouped(grad_output.reshape(geo.y_shape).astype(np.float64))
    w = weight.reshape(geo.w_shape).astype(np.float64)
    wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
    padded = [n + (b + a if padding_mode != "zeros" else 0)
              for n, (b, a) in zip(geo.x_shape[2:], geo.sides, strict=True)]
    gxp = np.zeros((geo.x_shape[0], groups, geo.x_shape[1] // groups, *padded))
    every = (slice(None),) * 3
    for tap in geo.taps():
        outputs, inputs = geo.window(tap)
        if outputs:
            gxp[(*every, *inputs)] += np.einsum("ngq...,gqp->ngp...", gy[(*every, *outputs)],
                                                wg[(Ellipsis, *tap)])
    grad = geo.unpad(gxp.reshape(geo.x_shape[0], geo.x_shape[1], *padded))
    return grad.reshape(tuple(input_shape)).astype(dtype)


def _conv_grad_weight(x, grad_output, weight_shape, rank, stride, padding, dilation, groups,
                      padding_mode):
    x, grad_output = np.asarray(x), np.asarray(grad_output)
    dtype = _dtype(x, grad_output)
    geo = _Conv(x.shape, tuple(weight_shape), rank, stride, padding, dilation, groups,
                padding_mode)
    xp = geo.grouped(geo.pad(x.reshape(geo.x_shape).astype(np.float64)))
    gy = geo.grouped(grad_output.reshape(geo.y_shape).astype(np.float64))
    c_out, c_in_g = geo.w_shape[:2]
    grad = np.zeros((groups, c_out // groups, c_in_g, *geo.w_shape[2:]))
    every = (slice(None),) * 3
    for tap in geo.taps():
        outputs, inputs = geo.window(tap)
        if outputs:
            block, dy = xp[(*every, *inputs)], gy[(*every, *outputs)]
            grad[(Ellipsis, *tap)] = np.einsum("ngqs,ngps->gqp", dy.reshape(*dy.shape[:3], -1),
                                               block.reshape(*block.shape[:3], -1))
    return grad.reshape(tuple(weight_shape)).astype(dtype)


def _conv_grad_bias(grad_output, rank):
    grad_output = np.asarray(grad_output)
    dtype = _dtype(grad_output)
    if grad_output.ndim == rank:
        return np.asarray(grad_output.sum(dtype=np.float64), dtype=dtype)
    batched = _batched(grad_output, rank).astype(np.float64)
    axes = (0, *range(2, rank + 2))
    return batched.sum(axis=axes).astype(dtype)


@_ieee
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """Oracle of :func:`convpool.conv1d`."""
    return _conv(x, weight, bias, 1, stride, padding, dilation, groups, padding_mode)


@_ieee
def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """Oracle of :func:`convpool.conv3d`."""
    return _conv(x, weight, bias, 3, stride, padding, dilation, groups, padding_mode)


@_ieee
def conv1d_grad_input(grad_output, weight, input_shape, stride=1, padding=0, dilation=1,
                      groups=1, padding_mode="zeros"):
    """Oracle of :func:`convpool.conv1d_grad_input`."""
    return _conv_grad_input(grad_output, weight, input_shape, 1, stride, padding, dilation,
                            groups, padding_mode)


@_ieee
def conv3d_grad_input(grad_output, weight, input_shape, stride=1, padding=0, dilation=1,
                      groups=1, padding_mode="zeros"):
    """Oracle of :func:`convpool.conv3d_grad_input`."""
    return _conv_grad_input(grad_output, weight, input_shape, 3, stride, padding, dilation,
                            groups, padding_mode)


@_ieee
def conv1d_grad_weight(x, grad_output, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                       padding_mode="zeros"):
    """Oracle of :func:`convpool.conv1d_grad_weight`."""
    return _conv_grad_weight(x, grad_output, weight_shape, 1, stride, padding, dilation, groups,
                             padding_mode)


@_ieee
def conv3d_grad_weight(x, grad_output, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                       padding_mode="zeros"):
    """Oracle of :func:`convpool.conv3d_grad_weight`."""
    return _conv_grad_weight(x, grad_output, weight_shape, 3, stride, padding, dilation, groups,
                             padding_mode)


@_ieee
def conv1d_grad_bias(grad_output):
    """Oracle of :func:`convpool.conv1d_grad_bias`."""
    return _conv_grad_bias(grad_output, 1)


@_ieee
def conv3d_grad_bias(grad_output):
    """Oracle of :func:`convpool.conv3d_grad_bias`."""
    return _conv_grad_bias(grad_output, 3)


# --- pooling ----------------------------------------------------------------------------


class _Pool:
    """One pooling call's windows, batched ``(N, C, *size)``."""

    def __init__(self, shape, rank, kernel_size, stride, padding, dilation, ceil_mode):
        self.user_ndim = len(shape)
        self.x_shape = (1,) * (rank + 2 - len(shape)) + tuple(shape)
        self.size = self.x_shape[2:]
        self.kernel = _ints(kernel_size, rank)
        self.stride = self.kernel if stride is None else _ints(stride, rank)
        self.dilation = _ints(dilation, rank)
        self.sides = _sides(padding, self.size, self.kernel, self.stride, self.dilation)
        if not isinstance(padding, str) and any(
                max(side) > k // 2 for side, k in zip(self.sides, self.kernel, strict=True)):
            raise ValueError(f"padding {self.sides} is more than half the kernel {self.kernel}")
        self.out = []
        for n, k, s, d, (b, a) in zip(self.size, self.kernel, self.stride, self.dilation,
                                      self.sides, strict=True):
            if window_span(k, d) > n + b + a:
                raise ValueError("the window does not fit in the padded input")
            self.out.append(output_size(n, k, s, d, b, a, ceil_mode))
        self.y_shape = (*self.x_shape[:2], *self.out)

    def user(self, array):
        return array.reshape(self.y_shape[len(self.y_shape) - self.user_ndim:])

    def positions(self):
        return itertools.product(*(range(o) for o in self.out))

    def taps(self, position):
        """Per axis: every position the window covers (padding included)."""
        return [[o * s - b + t * d for t in range(k)]
                for o, s, (b, _), d, k in zip(position, self.stride, self.sides, self.dilation,
                                              self.kernel, strict=True)]

    def inside(self, position):
        """The window's taps inside the input, row-major, as index arrays per axis."""
        per_axis = [[p for p in taps if 0 <= p < n]
                    for taps, n in zip(self.taps(position), self.size, strict=True)]
        if not all(per_axis):
            raise ValueError(f"window {position} lies entirely in the padding")
        grid = np.meshgrid(*per_axis, indexing="ij")
        return tuple(g.ravel() for g in grid)

    def padded_count(self, position) -> int:
        count = 1
        for taps, n, (b, a) in zip(self.taps(position), self.size, self.sides, strict=True):
            count *= sum(-b <= p < n + a for p in taps)
        return count


def _max_pool(x, rank, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x = np.asarray(x)
    dtype = _dtype(x)
    geo = _Pool(x.shape, rank, kernel_size, stride, padding, dilation, ceil_mode)
    xb = x.reshape(geo.x_shape).astype(dtype)
    y = np.empty(geo.y_shape, dtype=dtype)
    indices = np.empty(geo.y_shape, dtype=np.int64)
    for position in geo.positions():
        where = geo.inside(position)
        values = xb[(slice(None), slice(None), *where)]  # (N, C, taps)
        best = np.argmax(values, axis=-1)  # the first maximum; the first NaN if any
        y[(slice(None), slice(None), *position)] = np.take_along_axis(
            values, best[..., None], -1)[..., 0]
        flat = np.ravel_multi_index(where, geo.size)
        indices[(slice(None), slice(None), *position)] = flat[best]
    y, indices = geo.user(y), geo.user(indices)
    return (y, indices) if return_indices else y


def _max_pool_grad(grad_output, indices, input_shape, rank):
    grad_output, indices = np.asarray(grad_output), np.asarray(indices)
    dtype = _dtype(grad_output)
    batched = (1,) * (rank + 2 - len(input_shape)) + tuple(input_shape)
    plane = int(np.prod(batched[2:]))
    rows = batched[0] * batched[1]
    gy = grad_output.reshape(rows, -1).astype(np.float64)
    where = indices.reshape(rows, -1).astype(np.int64)
    if where.size and (where.min() < 0 or where.max() >= plane):
        raise ValueError("indices out of range")
    grad = np.zeros((rows, plane))
    np.add.at(grad, (np.arange(rows)[:, None].repeat(where.shape[1], 1), where), gy)
    return grad.reshape(tuple(input_shape)).astype(dtype)


def _avg_divisor(geo, position, where, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    if count_include_pad:
        return geo.padded_count(position)
    return len(where[0])


def _avg_pool(x, rank, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x = np.asarray(x)
    dtype = _dtype(x)
    geo = _Pool(x.shape, rank, kernel_size, stride, padding, 1, ceil_mode)
    xb = x.reshape(geo.x_shape).astype(np.float64)
    y = np.empty(geo.y_shape)
    for position in geo.positions():
        where = geo.inside(position)
        total = xb[(slice(None), slice(None), *where)].sum(axis=-1)
        divisor = _avg_divisor(geo, position, where, count_include_pad, divisor_override)
        y[(slice(None), slice(None), *position)] = total / divisor
    return geo.user(y).astype(dtype)


def _avg_pool_grad(grad_output, input_shape, rank, kernel_size, stride, padding, ceil_mode,
                   count_include_pad, divisor_override):
    grad_output = np.asarray(grad_output)
    dtype = _dtype(grad_output)
    geo = _Pool(tuple(input_shape), rank, kernel_size, stride, padding, 1, ceil_mode)
    gy = grad_output.reshape(geo.y_shape).astype(np.float64)
    grad = np.zeros(geo.x_shape)
    for position in geo.positions():
        where = geo.inside(position)
        divisor = _avg_divisor(geo, position, where, count_include_pad, divisor_override)
        share = gy[(slice(None), slice(None), *position)] / divisor
        np.add.at(grad, (slice(None), slice(None), *where), share[..., None])
    return grad.reshape(tuple(input_shape)).astype(dtype)


@_ieee
def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Oracle of :func:`convpool.max_pool1d`."""
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@_ieee
def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Oracle of :func:`convpool.max_pool3d`."""
    return _max_pool(x, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@_ieee
def max_pool1d_grad_input(grad_output, indices, input_shape):
    """Oracle of :func:`convpool.max_pool1d_grad_input`."""
    return _max_pool_grad(grad_output, indices, input_shape, 1)


@_ieee
def max_pool3d_grad_input(grad_output, indices, input_shape):
    """Oracle of :func:`convpool.max_pool3d_grad_input`."""
    return _max_pool_grad(grad_output, indices, input_shape, 3)


@_ieee
def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Oracle of :func:`convpool.avg_pool1d`."""
    return _avg_pool(x, 1, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


@_ieee
def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Oracle of :func:`convpool.avg_pool3d`."""
    return _avg_pool(x, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


@_ieee
def avg_pool1d_grad_input(grad_output, input_shape, kernel_size, stride=None, padding=0,
                          ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Oracle of :func:`convpool.avg_pool1d_grad_input`."""
    return _avg_pool_grad(grad_output, input_shape, 1, kernel_size, stride, padding, ceil_mode,
                          count_include_pad, divisor_override)


@_ieee
def avg_pool3d_grad_input(grad_output, input_shape, kernel_size, stride=None, padding=0,
                          ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Oracle of :func:`convpool.avg_pool3d_grad_input`."""
    return _avg_pool_grad(grad_output, input_shape, 3, kernel_size, stride, padding, ceil_mode,
                          count_include_pad, divisor_override)


def _global(x, rank, keepdims, reduce):
    x = np.asarray(x)
    dtype = _dtype(x)
    axes = tuple(range(x.ndim - rank, x.ndim))
    return reduce(x.astype(np.float64), axis=axes, keepdims=keepdims).astype(dtype)


@_ieee
def global_avg_pool1d(x, keepdims=False):
    """Oracle of :func:`convpool.global_avg_pool1d`."""
    return _global(x, 1, keepdims, np.mean)


@_ieee
def global_avg_pool3d(x, keepdims=False):
    """Oracle of :func:`convpool.global_avg_pool3d`."""
    return _global(x, 3, keepdims, np.mean)


@_ieee
def global_max_pool1d(x, keepdims=False):
    """Oracle of :func:`convpool.global_max_pool1d` (``numpy.max`` propagates NaN)."""
    return _global(x, 1, keepdims, np.max)


@_ieee
def global_max_pool3d(x, keepdims=False):
    """Oracle of :func:`convpool.global_max_pool3d`."""
    return _global(x, 3, keepdims, np.max)


def _global_avg_grad(grad_output, input_shape, rank):
    grad_output = np.asarray(grad_output)
    dtype = _dtype(grad_output)
    lead = tuple(input_shape[:-rank])
    count = int(np.prod(input_shape[-rank:]))
    share = grad_output.reshape(lead + (1,) * rank).astype(np.float64) / count
    return np.broadcast_to(share, tuple(input_shape)).astype(dtype)


def _global_max_grad(grad_output, x, rank):
    grad_output, x = np.asarray(grad_output), np.asarray(x)
    dtype = _dtype(grad_output, x)
    lead = x.shape[:-rank]
    flat = x.reshape(*lead, -1).astype(np.float64)
    best = np.argmax(flat, axis=-1)  # the first maximum; the first NaN if any
    grad = np.zeros(flat.shape)
    np.put_along_axis(grad, best[..., None], grad_output.reshape(*lead, 1).astype(np.float64),
                      axis=-1)
    return grad.reshape(x.shape).astype(dtype)


@_ieee
def global_avg_pool1d_grad_input(grad_output, input_shape):
    """Oracle of :func:`convpool.global_avg_pool1d_grad_input`."""
    return _global_avg_grad(grad_output, input_shape, 1)


@_ieee
def global_avg_pool3d_grad_input(grad_output, input_shape):
    """Oracle of :func:`convpool.global_avg_pool3d_grad_input`."""
    return _global_avg_grad(grad_output, input_shape, 3)


@_ieee
def global_max_pool1d_grad_input(grad_output, x):
    """Oracle of :func:`convpool.global_max_pool1d_grad_input`."""
    return _global_max_grad(grad_output, x, 1)


@_ieee
def global_max_pool3d_grad_input(grad_output, x):
    """Oracle of :func:`convpool.global_max_pool3d_grad_input`."""
    return _global_max_grad(grad_output, x, 3)
