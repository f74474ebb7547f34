"""1-D and 3-D convolution (correlation, as in CNNs) and their gradients, on the
compiled 2-D kernels.

- 1-D: a signal ``(N, C, L)`` is a 2-D problem of height 1, ``(N, C, 1, L)``, a view
  without a copy; the kernel ``(C_out, C_in // groups, k)`` is ``(..., 1, k)``.
- 3-D: ``y[:, :, d] = sum over kd of conv2d(x_padded[:, :, d * sd + kd * dd], w[:, :, kd])``.
  The depth taps are gathered once into the channel axis (input ``(N * OD, kd * C_in, H, W)``,
  weight ``(C_out, kd * C_in // groups, kh, kw)``), so one 2-D convolution sums over them in
  its inner loop; the depth padding is an index map, whatever ``padding_mode`` says. The
  gathered input is ``kd / sd`` times the input (the price of one large call).
  Gradients run the same gather backwards.

Arguments, errors and results follow :mod:`convpool.conv` and ``torch.nn.functional``.
"""

from __future__ import annotations

import numpy as np

from ._args import as_array, check_index_range, check_shape_tuple, compute_dtype, contiguous
from ._nd_geometry import ConvGeometry, check_grad_output, conv_geometry
from .conv import conv2d, conv2d_grad_bias, conv2d_grad_input, conv2d_grad_weight

__all__ = [
    "conv1d",
    "conv1d_grad_bias",
    "conv1d_grad_input",
    "conv1d_grad_weight",
    "conv3d",
    "conv3d_grad_bias",
    "conv3d_grad_input",
    "conv3d_grad_weight",
]

Ints1 = int | tuple[int]
Ints3 = int | tuple[int, int, int]


def _bias_vector(bias: object, geometry: ConvGeometry, dtype: np.dtype) -> np.ndarray | None:
    if bias is None:
        return None
    b = as_array(bias, "bias")
    c_out = geometry.output_shape[1]
    bare = geometry.user_ndim == len(geometry.stride)
    if b.shape not in ((c_out,),) + (((), (1,)) if bare else ()):
        raise ValueError(f"bias: expected shape ({c_out},), got {b.shape}")
    return contiguous(b.reshape(c_out), dtype)


# --- 1-D --------------------------------------------------------------------------------


def _geometry_2d_of_1d(geometry: ConvGeometry) -> dict:
    """The 1-D geometry as conv2d arguments (height 1, nothing on the height axis)."""
    return dict(stride=(1, geometry.stride[0]), padding=((0, 0), geometry.sides[0]),
                dilation=(1, geometry.dilation[0]), groups=geometry.groups,
                padding_mode=geometry.padding_mode)


def _as_2d(array: np.ndarray, shape3: tuple[int, ...]) -> np.ndarray:
    """A batched ``(N, C, L)`` array as ``(N, C, 1, L)``: a view."""
    return array.reshape(shape3)[:, :, np.newaxis, :]


def conv1d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Ints1 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints1 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """1-D convolution (correlation): ``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]``.

    Args:
        x: ``(N, C_in, L)``, ``(C_in, L)`` or a bare signal ``(L,)``.
        weight: ``(C_out, C_in // groups, k)``, or ``(k,)`` for a bare signal.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or ``(s,)``.
        padding: an int, ``(p,)``, ``(before, after)``, ``"valid"`` or ``"same"``.
        groups: independent channel groups (``C_in`` for depthwise).
        padding_mode: ``"zeros"``, ``"replicate"``, ``"reflect"``, ``"symmetric"`` or
            ``"circular"``.

    Returns:
        ``(N, C_out, OL)`` (or the unbatched / bare form matching ``x``), in
        ``numpy.result_type(x, weight, float32)``.
    """
    x = as_array(x, "x")
    weight = as_array(weight, "weight")
    geometry = conv_geometry(x.shape, weight.shape, 1, stride, padding, dilation, groups,
                             padding_mode)
    dtype = compute_dtype(x, weight)
    b = _bias_vector(bias, geometry, dtype)
    y = conv2d(_as_2d(x, geometry.input_shape), _as_2d(weight, geometry.weight_shape), b,
               **_geometry_2d_of_1d(geometry))
    return y.reshape(geometry.user_shape(geometry.output_shape))


def conv1d_grad_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: Ints1 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints1 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv1d` with respect to ``x``, of shape ``input_shape``."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (1, 2, 3))
    grad_output = as_array(grad_output, "grad_output")
    weight = as_array(weight, "weight")
    geometry = conv_geometry(input_shape, weight.shape, 1, stride, padding, dilation, groups,
                             padding_mode)
    check_grad_output(geometry, grad_output)
    n, c, length = geometry.input_shape
    grad = conv2d_grad_input(_as_2d(grad_output, geometry.output_shape),
                             _as_2d(weight, geometry.weight_shape), (n, c, 1, length),
                             **_geometry_2d_of_1d(geometry))
    return grad.reshape(input_shape)


def conv1d_grad_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: Ints1 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints1 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv1d` with respect to ``weight``, of shape ``weight_shape``."""
    weight_shape = check_shape_tuple(weight_shape, "weight_shape", (1, 3))
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    geometry = conv_geometry(x.shape, weight_shape, 1, stride, padding, dilation, groups,
                             padding_mode)
    check_grad_output(geometry, grad_output)
    c_out, c_in_g, k = geometry.weight_shape
    grad = conv2d_grad_weight(_as_2d(x, geometry.input_shape),
                              _as_2d(grad_output, geometry.output_shape), (c_out, c_in_g, 1, k),
                              **_geometry_2d_of_1d(geometry))
    return grad.reshape(weight_shape)


def conv1d_grad_bias(grad_output: np.ndarray) -> np.ndarray:
    """Gradient of :func:`conv1d` with respect to ``bias``: ``grad_output`` summed over
    everything but the channel axis. ``(C_out,)``; a 0-d array for a bare signal."""
    return _grad_bias(grad_output, 1)


def _grad_bias(grad_output: np.ndarray, rank: int) -> np.ndarray:
    grad_output = as_array(grad_output, "grad_output")
    if grad_output.ndim not in (rank, rank + 1, rank + 2):
        forms = {1: "(N, C, OL), (C, OL) or (OL,)",
                 3: "(N, C, OD, OH, OW), (C, OD, OH, OW) or (OD, OH, OW)"}[rank]
        raise ValueError(f"grad_output: expected {forms}, got shape {grad_output.shape}")
    check_index_range(grad_output.shape, "grad_output")
    if grad_output.ndim == rank:
        return conv2d_grad_bias(grad_output.reshape(1, 1, -1)).reshape(())
    shape = (1,) * (rank + 2 - grad_output.ndim) + grad_output.shape
    # every spatial axis folded into one row: the 2-D kernel's sum over (OH, OW)
    n, c = shape[:2]
    return conv2d_grad_bias(grad_output.reshape(n, c, 1, -1))


# --- 3-D --------------------------------------------------------------------------------


def _depth_source(p: np.ndarray, depth: int, mode: str) -> np.ndarray:
    """The input depth that padded-input depth ``p`` (in input coordinates: negative in
    the padding before) copies; -1 for a zero."""
    if mode == "zeros":
        return np.where((p >= 0) & (p < depth), p, -1)
    if mode == "replicate":
        return np.clip(p, 0, depth - 1)
    if mode == "reflect":  # d c b | a b c d | c b a
        p = np.abs(p)
        return np.where(p > depth - 1, 2 * (depth - 1) - p, p)
    if mode == "symmetric":  # c b a | a b c | c b a
        p = np.where(p < 0, -p - 1, p)
        return np.where(p > depth - 1, 2 * depth - 1 - p, p)
    return p % depth  # circular


def _depth_sources(geometry: ConvGeometry) -> np.ndarray:
    """``(kd, OD)``: the input depth each (depth tap, output depth) reads; -1 for a zero."""
    kd = geometry.weight_shape[2]
    od = geometry.output_shape[2]
    (before, _), stride, dilation = geometry.sides[0], geometry.stride[0], geometry.dilation[0]
    p = (np.arange(od)[np.newaxis, :] * stride + np.arange(kd)[:, np.newaxis] * dilation
         - before)
    return _depth_source(p, geometry.input_shape[2], geometry.padding_mode)


def _index_or_slice(indices: np.ndarray) -> slice | np.ndarray:
    """An evenly spaced increasing index list as a slice (a view, not a gather)."""
    if len(indices) == 1:
        return slice(int(indices[0]), int(indices[0]) + 1)
    step = int(indices[1] - indices[0])
    if step > 0 and np.array_equal(indices, indices[0] + step * np.arange(len(indices))):
        return slice(int(indices[0]), int(indices[-1]) + 1, step)
    return indices


class _Depth:
    """The depth taps of one 3-D convolution, gathered into channels and back."""

    def __init__(self, geometry: ConvGeometry) -> None:
        self.geometry = geometry
        n, c_in, depth, h, w = geometry.input_shape
        c_out, c_in_g, kd, kh, kw = geometry.weight_shape
        od = geometry.output_shape[2]
        g = geometry.groups
        self.sources = _depth_sources(geometry)
        # channels of the 2-D problem, per group: (depth tap, channel of the group)
        self.gathered_shape = (n, od, g, kd, c_in_g, h, w)
        self.input_2d = (n * od, g * kd * c_in_g, h, w)
        self.weight_2d = (c_out, kd * c_in_g, kh, kw)
        self.output_2d = (n * od, c_out, *geometry.output_shape[3:])
        (_, top_bottom, left_right) = geometry.sides
        self.conv2d_arguments = dict(
            stride=geometry.stride[1:], padding=(top_bottom, left_right),
            dilation=geometry.dilation[1:], groups=g, padding_mode=geometry.padding_mode)

    def _taps(self):
        """Per depth tap: the output depths that read the input, and the depths they read."""
        for tap, sources in enumerate(self.sources):
            valid = sources >= 0
            yield tap, valid, _index_or_slice(sources[valid]) if valid.any() else None

    def gather(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """The input as ``(N * OD, groups * kd * C_in_g, H, W)``."""
        n, _, depth, h, w = self.geometry.input_shape
        g, c_in_g = self.gathered_shape[2], self.gathered_shape[4]
        x6 = x.reshape(n, g, c_in_g, depth, h, w)
        check_index_range(self.gathered_shape, "x (depth taps gathered)")
        try:
            gathered = np.empty(self.gathered_shape, dtype=dtype)
        except MemoryError:
            raise MemoryError(
                f"conv3d: cannot allocate the gathered depth taps, shape "
                f"{self.gathered_shape} of {dtype}") from None
        for tap, valid, read in self._taps():
            target = gathered[:, :, :, tap]
            if read is None:
                target[...] = 0
                continue
            block = x6[:, :, :, read].transpose(0, 3, 1, 2, 4, 5)
            if valid.all():
                target[...] = block
            else:
                target[:, valid] = block
                target[:, ~valid] = 0
        return gathered.reshape(self.input_2d)

    def grad_input(self, grad_output: np.ndarray, weight: np.ndarray,
                   dtype: np.dtype) -> np.ndarray:
        """The input gradient, as the forward's transpose: input depth ``p`` receives,
        from each depth tap ``t``, the output depth ``(p + before - t * dilation) /
        stride`` when that is a whole output position. Those output depths are gathered
        into the channel axis (``(N * D, groups * kd * C_out_g, OH, OW)``) and one 2-D
        input gradient sums over them; with a non-zero padding mode the gradient of each
        depth of the padding is then added to the depth it copies."""
        geometry = self.geometry
        n, c_in, depth, h, w = geometry.input_shape
        c_out, c_in_g, kd, kh, kw = geometry.weight_shape
        _, _, od, oh, ow = geometry.output_shape
        g = geometry.groups
        (before, after), stride, dilation = (geometry.sides[0], geometry.stride[0],
                                             geometry.dilation[0])
        zeros = geometry.padding_mode == "zeros"
        # padded-input depths that receive a gradient: only the input's with zero padding
        first, count = (before, depth) if zeros else (0, depth + before + after)
        check_index_range((n, count, g, kd, c_out // g, oh, ow), "grad_output (depth taps)")
        taps = np.zeros((n, count, g, kd, c_out // g, oh, ow), dtype=dtype)
        y6 = grad_output.reshape(n, g, c_out // g, od, oh, ow)
        for tap in range(kd):
            # padded depth q = o * stride + tap * dilation, for q in [first, first + count)
            offset = tap * dilation
            lo = max(0, -((offset - first) // stride))  # ceil((first - offset) / stride)
            hi = min(od - 1, (first + count - 1 - offset) // stride)
            if lo > hi:
                continue
            q = slice(lo * stride + offset - first, hi * stride + offset - first + 1, stride)
            taps[:, q, :, tap] = y6[:, :, :, lo:hi + 1].transpose(0, 3, 1, 2, 4, 5)
        # weight (C_out, C_in_g, kd, kh, kw) as (groups * kd * C_out_g, C_in_g, kh, kw)
        w6 = weight.reshape(g, c_out // g, c_in_g, kd, kh, kw).transpose(0, 3, 1, 2, 4, 5)
        grad = conv2d_grad_input(
            taps.reshape(n * count, g * kd * (c_out // g), oh, ow),
            contiguous(w6.reshape(g * kd * (c_out // g), c_in_g, kh, kw), dtype),
            (n * count, c_in, h, w), **self.conv2d_arguments).reshape(n, count, c_in, h, w)
        inside = grad[:, before - first:before - first + depth].transpose(0, 2, 1, 3, 4)
        result = np.ascontiguousarray(inside)
        if not zeros:
            padding = np.r_[0:before, before + depth:count]
            for q, source in zip(padding, _depth_source(padding - before, depth,
                                                        geometry.padding_mode), strict=True):
                result[:, :, source] += grad[:, q]
        return result

    def weight(self, weight: np.ndarray) -> np.ndarray:
        """``(C_out, C_in_g, kd, kh, kw)`` as ``(C_out, kd * C_in_g, kh, kw)``."""
        w5 = weight.reshape(self.geometry.weight_shape)
        return w5.transpose(0, 2, 1, 3, 4).reshape(self.weight_2d)

    def weight_back(self, weight_2d: np.ndarray) -> np.ndarray:
        c_out, c_in_g, kd, kh, kw = self.geometry.weight_shape
        return np.ascontiguousarray(
            weight_2d.reshape(c_out, kd, c_in_g, kh, kw).transpose(0, 2, 1, 3, 4))

    def output_to_2d(self, grad_output: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``(N, C_out, OD, OH, OW)`` as ``(N * OD, C_out, OH, OW)``."""
        n, c_out, od, oh, ow = self.geometry.output_shape
        y5 = grad_output.reshape(self.geometry.output_shape)
        return contiguous(y5.transpose(0, 2, 1, 3, 4), dtype).reshape(self.output_2d)

    def output_from_2d(self, y2: np.ndarray) -> np.ndarray:
        n, c_out, od, oh, ow = self.geometry.output_shape
        return np.ascontiguousarray(y2.reshape(n, od, c_out, oh, ow).transpose(0, 2, 1, 3, 4))


def conv3d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Ints3 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints3 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """3-D convolution (correlation): ``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]``.

    Args:
        x: ``(N, C_in, D, H, W)``, ``(C_in, D, H, W)`` or a bare volume ``(D, H, W)``.
        weight: ``(C_out, C_in // groups, kd, kh, kw)``, or ``(kd, kh, kw)`` for a volume.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or ``(sd, sh, sw)``.
        padding: an int, ``(pd, ph, pw)``, per side ``((front, back), (top, bottom),
            (left, right))`` (entries may mix ints and pairs), ``"valid"`` or ``"same"``.
        groups: independent channel groups (``C_in`` for depthwise).
        padding_mode: ``"zeros"``, ``"replicate"``, ``"reflect"``, ``"symmetric"`` or
            ``"circular"``, on every axis.

    Returns:
        ``(N, C_out, OD, OH, OW)`` (or the unbatched / bare form matching ``x``), in
        ``numpy.result_type(x, weight, float32)``.
    """
    x = as_array(x, "x")
    weight = as_array(weight, "weight")
    geometry = conv_geometry(x.shape, weight.shape, 3, stride, padding, dilation, groups,
                             padding_mode)
    dtype = compute_dtype(x, weight)
    b = _bias_vector(bias, geometry, dtype)
    depth = _Depth(geometry)
    y2 = conv2d(depth.gather(x, dtype), contiguous(depth.weight(weight), dtype), b,
                **depth.conv2d_arguments)
    return depth.output_from_2d(y2).reshape(geometry.user_shape(geometry.output_shape))


def conv3d_grad_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: Ints3 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints3 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv3d` with respect to ``x``, of shape ``input_shape``.

    With a non-zero ``padding_mode`` the gradient of each padded voxel is added to the
    input voxel it was copied from."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4, 5))
    grad_output = as_array(grad_output, "grad_output")
    weight = as_array(weight, "weight")
    geometry = conv_geometry(input_shape, weight.shape, 3, stride, padding, dilation, groups,
                             padding_mode)
    check_grad_output(geometry, grad_output)
    dtype = compute_dtype(grad_output, weight)
    depth = _Depth(geometry)
    return depth.grad_input(grad_output, weight, dtype).reshape(input_shape)


def conv3d_grad_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: Ints3 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints3 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv3d` with respect to ``weight``, of shape ``weight_shape``.

    Summed over the batch in a fixed order: the result does not depend on the thread count.
    """
    weight_shape = check_shape_tuple(weight_shape, "weight_shape", (3, 5))
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    geometry = conv_geometry(x.shape, weight_shape, 3, stride, padding, dilation, groups,
                             padding_mode)
    check_grad_output(geometry, grad_output)
    dtype = compute_dtype(x, grad_output)
    depth = _Depth(geometry)
    grad_2d = conv2d_grad_weight(depth.gather(x, dtype), depth.output_to_2d(grad_output, dtype),
                                 depth.weight_2d, **depth.conv2d_arguments)
    return depth.weight_back(grad_2d).reshape(weight_shape)


def conv3d_grad_bias(grad_output: np.ndarray) -> np.ndarray:
    """Gradient of :func:`conv3d` with respect to ``bias``: ``grad_output`` summed over
    everything but the channel axis. ``(C_out,)``; a 0-d array for a bare volume."""
    return _grad_bias(grad_output, 3)
