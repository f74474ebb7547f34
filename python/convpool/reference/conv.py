"""The NumPy oracle for 2-D convolution (correlation, as in CNNs) and its gradients.

Written to be read, not to be fast. Output channel ``q``
is a sum over the input channels ``p`` of its group, each correlated with its own kernel:

    z^q = sum_p W^{p,q} * z^p + b^q

where ``*`` is the 2-D correlation of a (padded) input plane ``z^p`` with a kernel
``W^{p,q}`` of ``kh x kw`` taps. Looping over the taps ``(s, t)`` turns each correlation
into ``kh * kw`` shifted, strided views of the padded input: tap ``(s, t)`` of output
pixel ``(i, j)`` reads ``zpad^p[i * sy + s * dy, j * sx + t * dx]``. The channel sum of
one tap is then an ``einsum`` over ``p``.

Padding is the padded input ``zpad`` made explicit: each padded position holds a copy of
the input pixel its padding mode names, or a zero (``geometry.padding_source``). The
gradient with respect to ``x`` sums the gradient of every padded position into the pixel
it copies (a scatter-add); zero padding copies no pixel, so its gradient goes nowhere.

Everything is computed in float64 and returned in ``numpy.result_type(x, weight, float32)``.
Plain IEEE arithmetic throughout: a NaN or inf reaches exactly the sums that hold it as a
term. A tap in the zero padding is no term of the sum (skipped, not multiplied by zero),
so an inf weight or output gradient meets no padding zero; PyTorch, which multiplies the
zeros, reports NaN there instead. This module never touches the compiled kernels, nor
the library's argument handling: its geometry is its own (``convpool.reference.geometry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arguments import (
    as_array,
    output_array,
    positive_int,
    positive_pair,
    result_dtype,
    shape_tuple,
)
from ._ieee import ieee
from .geometry import Sides, check_padding_mode, output_size, padding_source, resolve_padding

__all__ = [
    "conv2d",
    "conv2d_grad_bias",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "resolve_padding",
]


@dataclass(frozen=True)
class _Geometry:
    """One call's shapes in 4-D terms: ``x (N, C_in, H, W)``, ``W (C_out, C_in/g, kh, kw)``."""

    input_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    output_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    sides: Sides
    groups: int
    padding_mode: str
    input_ndim: int  # 4 batched, 3 unbatched, 2 a picture with a 2-D kernel

    def user_shape(self, shape4: tuple[int, ...]) -> tuple[int, ...]:
        """A 4-D shape in the rank the caller used."""
        return shape4[4 - self.input_ndim :] if self.input_ndim > 2 else shape4[2:]

    def channel_groups(self):
        """For each group: (its output channels, its input channels) as slices."""
        c_in, c_out = self.input_shape[1], self.output_shape[1]
        cin_g, cout_g = c_in // self.groups, c_out // self.groups
        for g in range(self.groups):
            yield slice(g * cout_g, (g + 1) * cout_g), slice(g * cin_g, (g + 1) * cin_g)

    def tap_window(self, s: int, t: int) -> tuple[slice, slice]:
        """Rows and columns of the padded input that tap ``(s, t)`` reads, one per output pixel."""
        (sy, sx), (dy, dx) = self.stride, self.dilation
        oh, ow = self.output_shape[2:]
        rows = slice(s * dy, s * dy + (oh - 1) * sy + 1, sy)
        cols = slice(t * dx, t * dx + (ow - 1) * sx + 1, sx)
        return rows, cols


def _geometry(
    input_shape, weight_shape, stride, padding, dilation, groups, padding_mode
) -> _Geometry:
    ndim = len(input_shape)
    if ndim not in (2, 3, 4):
        raise ValueError(
            f"x: expected (N, C, H, W), (C, H, W) or a 2-D picture (H, W), got shape "
            f"{tuple(input_shape)}"
        )
    if len(weight_shape) != (2 if ndim == 2 else 4):
        expected = "(kh, kw) for a 2-D picture" if ndim == 2 else "(C_out, C_in // groups, kh, kw)"
        raise ValueError(f"weight: expected {expected}, got shape {tuple(weight_shape)}")
    x4 = (1,) * (4 - ndim) + tuple(input_shape) if ndim > 2 else (1, 1) + tuple(input_shape)
    w4 = (1, 1) + tuple(weight_shape) if ndim == 2 else tuple(weight_shape)
    stride = positive_pair(stride, "stride")
    dilation = positive_pair(dilation, "dilation")
    groups = positive_int(groups, "groups")
    n, c_in, h, w = x4
    c_out, cin_g, kh, kw = w4
    if min(c_in, c_out, kh, kw) < 1:
        raise ValueError(
            f"x, weight: channel and kernel sizes must be >= 1, got x {tuple(input_shape)}, "
            f"weight {tuple(weight_shape)}"
        )
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"groups: {groups} must divide in_channels ({c_in}) and out_channels ({c_out})"
        )
    if cin_g * groups != c_in:
        raise ValueError(
            f"weight: shape {tuple(weight_shape)} needs in_channels = {cin_g} x groups ({groups}) "
            f"= {cin_g * groups}, but x has {c_in} channels (shape {tuple(input_shape)})"
        )
    sides = resolve_padding(padding, (h, w), (kh, kw), stride, dilation)
    padding_mode = check_padding_mode(padding_mode, sides, (h, w))
    out_hw = []
    for axis, name in ((0, "height"), (1, "width")):
        size = output_size((h, w)[axis], (kh, kw)[axis], stride[axis], dilation[axis],
                           *sides[axis])
        if size < 1:
            raise ValueError(
                f"output {name} would be {size}: input {(h, w)[axis]}, kernel {(kh, kw)[axis]}, "
                f"stride {stride[axis]}, dilation {dilation[axis]}, padding {sides[axis]} "
                "(the dilated kernel must fit in the padded input)"
            )
        out_hw.append(size)
    return _Geometry(
        input_shape=x4, weight_shape=w4, output_shape=(n, c_out, out_hw[0], out_hw[1]),
        stride=stride, dilation=dilation, sides=sides, groups=groups,
        padding_mode=padding_mode, input_ndim=ndim,
    )


def _padding_sources(geo: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """For the padded rows and columns: the input row / column each copies, or -1."""
    (top, bottom), (left, right) = geo.sides
    h, w = geo.input_shape[2:]
    return (padding_source(h, top, bottom, geo.padding_mode),
            padding_source(w, left, right, geo.padding_mode))


def _pad(x4: np.ndarray, geo: _Geometry) -> np.ndarray:
    """``zpad``: ``x`` inside its padding frame, each padded pixel a copy or a zero."""
    rows, cols = _padding_sources(geo)
    padded = np.zeros(x4.shape[:2] + (rows.size, cols.size))
    r, c = np.flatnonzero(rows >= 0), np.flatnonzero(cols >= 0)  # the positions that copy
    padded[:, :, r[:, None], c] = x4[:, :, rows[r][:, None], cols[c]]
    return padded


def _real(geo: _Geometry) -> np.ndarray:
    """Which positions of the padding frame hold a term of the sum: the input and the
    padded pixels that copy one (every mode but zeros). A tap that lands in the zero
    padding is no term: it is skipped, not multiplied by zero, so an inf weight or output
    gradient meets no zero there (inf x 0 would be NaN)."""
    rows, cols = _padding_sources(geo)
    return (rows >= 0)[:, None] & (cols >= 0)[None, :]


def _unpad_gradient(grad_padded: np.ndarray, geo: _Geometry) -> np.ndarray:
    """dL/dx from dL/dzpad: each padded position's gradient is added to the pixel it
    copies (a pixel copied k times receives k terms); zeros of the padding copy nothing."""
    rows, cols = _padding_sources(geo)
    grad = np.zeros(geo.input_shape)
    r, c = np.flatnonzero(rows >= 0), np.flatnonzero(cols >= 0)
    every = slice(None)
    np.add.at(grad, (every, every, rows[r][:, None], cols[c]), grad_padded[:, :, r[:, None], c])
    return grad


def _forward(x4: np.ndarray, w4: np.ndarray, b: np.ndarray | None, geo: _Geometry) -> np.ndarray:
    """``z^q = sum_p W^{p,q} * z^p + b^q`` on float64 4-D arrays."""
    z_in, real = _pad(x4, geo), _real(geo)
    n, c_out, oh, ow = geo.output_shape
    z_out = np.zeros((n, c_out, oh, ow))
    kh, kw = geo.weight_shape[2:]
    for q, p in geo.channel_groups():
        for s in range(kh):
            for t in range(kw):
                rows, cols = geo.tap_window(s, t)
                # tap (s, t) of W^{p,q} times the shifted input, summed over the group's p,
                # at the outputs where the tap reads a real pixel
                term = np.einsum("qp,npij->nqij", w4[q, :, s, t], z_in[:, p, rows, cols])
                z_out[:, q] += np.where(real[rows, cols], term, 0.0)
    if b is not None:
        z_out += b[None, :, None, None]
    return z_out


def _grad_input(grad_out: np.ndarray, w4: np.ndarray, geo: _Geometry) -> np.ndarray:
    """dL/dz^p = sum_q (W^{p,q} correlated backwards with dL/dz^q), then through the padding."""
    n, c_in, h, w = geo.input_shape
    (top, bottom), (left, right) = geo.sides
    grad_padded = np.zeros((n, c_in, h + top + bottom, w + left + right))
    kh, kw = geo.weight_shape[2:]
    for q, p in geo.channel_groups():
        for s in range(kh):
            for t in range(kw):
                rows, cols = geo.tap_window(s, t)
                # every input pixel read by tap (s, t) receives W^{p,q}[s, t] * dL/dz^q
                grad_padded[:, p, rows, cols] += np.einsum(
                    "qp,nqij->npij", w4[q, :, s, t], grad_out[:, q]
                )
    return _unpad_gradient(grad_padded, geo)


def _grad_weight(x4: np.ndarray, grad_out: np.ndarray, geo: _Geometry) -> np.ndarray:
    """dL/dW^{p,q}[s, t] = sum over the batch and output pixels of dL/dz^q * shifted z^p."""
    z_in, real = _pad(x4, geo), _real(geo)
    grad_w = np.zeros(geo.weight_shape)
    kh, kw = geo.weight_shape[2:]
    for q, p in geo.channel_groups():
        for s in range(kh):
            for t in range(kw):
                rows, cols = geo.tap_window(s, t)
                # only the outputs where the tap reads a real pixel hold a term
                grad_here = np.where(real[rows, cols], grad_out[:, q], 0.0)
                grad_w[q, :, s, t] = np.einsum("nqij,npij->qp", grad_here, z_in[:, p, rows, cols])
    return grad_w


def _float64(array: np.ndarray, shape4: tuple[int, ...]) -> np.ndarray:
    return np.asarray(array, dtype=np.float64).reshape(shape4)


def _bias(bias: object, geo: _Geometry) -> np.ndarray | None:
    if bias is None:
        return None
    b = as_array(bias, "bias")
    c_out = geo.output_shape[1]
    allowed = [(c_out,)] + ([(), (1,)] if geo.input_ndim == 2 else [])
    if b.shape not in allowed:
        raise ValueError(f"bias: expected shape ({c_out},), got {b.shape}")
    return _float64(b, (c_out,))


def _check_grad_output(grad_output: np.ndarray, geo: _Geometry) -> None:
    expected = geo.user_shape(geo.output_shape)
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")


@ieee
def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """2-D convolution (correlation): ``z^q = sum_p W^{p,q} * z^p + b^q``.

    Same arguments, shapes and result as :func:`convpool.conv2d`: ``x`` is
    ``(N, C_in, H, W)``, ``(C_in, H, W)`` or a picture ``(H, W)`` (then ``weight`` is
    ``(kh, kw)``); the result is in ``numpy.result_type(x, weight, float32)``.
    """
    x = as_array(x, "x")
    weight = as_array(weight, "weight")
    geo = _geometry(x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    dtype = result_dtype(x, weight)
    b = _bias(bias, geo)
    result = output_array(out, geo.user_shape(geo.output_shape), dtype, (x, weight))
    y = _forward(_float64(x, geo.input_shape), _float64(weight, geo.weight_shape), b, geo)
    result[...] = y.reshape(result.shape)
    return result


@ieee
def conv2d_grad_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to ``x`` (shape ``input_shape``).

    With a non-zero ``padding_mode`` the gradient of each padded pixel is added to the
    input pixel it was copied from.
    """
    input_shape = shape_tuple(input_shape, "input_shape", (2, 3, 4))
    grad_output = as_array(grad_output, "grad_output")
    weight = as_array(weight, "weight")
    geo = _geometry(input_shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    _check_grad_output(grad_output, geo)
    dtype = result_dtype(grad_output, weight)
    grad = _grad_input(
        _float64(grad_output, geo.output_shape), _float64(weight, geo.weight_shape), geo
    )
    return grad.reshape(input_shape).astype(dtype)


@ieee
def conv2d_grad_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to ``weight`` (shape ``weight_shape``)."""
    weight_shape = shape_tuple(weight_shape, "weight_shape", (2, 4))
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    geo = _geometry(x.shape, weight_shape, stride, padding, dilation, groups, padding_mode)
    _check_grad_output(grad_output, geo)
    dtype = result_dtype(x, grad_output)
    grad = _grad_weight(
        _float64(x, geo.input_shape), _float64(grad_output, geo.output_shape), geo
    )
    return grad.reshape(weight_shape).astype(dtype)


@ieee
def conv2d_grad_bias(grad_output: np.ndarray) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to ``bias``: ``dL/db^q = sum dL/dz^q``.

    ``(C_out,)`` for batched and unbatched ``grad_output``; a 0-d array for a 2-D picture.
    """
    grad_output = as_array(grad_output, "grad_output")
    if grad_output.ndim not in (2, 3, 4):
        raise ValueError(
            f"grad_output: expected (N, C, OH, OW), (C, OH, OW) or (OH, OW), got shape "
            f"{grad_output.shape}"
        )
    dtype = result_dtype(grad_output)
    every_axis_but_channels = {4: (0, 2, 3), 3: (1, 2), 2: (0, 1)}[grad_output.ndim]
    total = np.asarray(grad_output, dtype=np.float64).sum(axis=every_axis_but_channels)
    return np.asarray(total, dtype=dtype)
