"""2-D convolution (correlation, as in CNNs) and its gradients.

Each function normalises its arguments once (:class:`_ConvSetup`), then calls the
compiled kernel. Non-zero padding modes pad the input explicitly (a copy the size of
the input); zero padding costs nothing, the kernels skip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from . import _core
from ._args import (
    as_array,
    check_index_range,
    check_shape_tuple,
    compute_dtype,
    contiguous,
    output_array,
    positive_int,
    positive_pair,
)
from .padding import Sides, check_padding_mode, output_size, resolve_padding

__all__ = ["conv2d", "conv2d_grad_input", "conv2d_grad_weight", "conv2d_grad_bias"]


@dataclass(frozen=True)
class _ConvSetup:
    """One call's resolved geometry, in the kernels' 4-D terms."""

    input_shape: tuple[int, int, int, int]  # (N, C_in, H, W)
    weight_shape: tuple[int, int, int, int]  # (C_out, C_in // groups, kh, kw)
    output_shape: tuple[int, int, int, int]  # (N, C_out, OH, OW)
    stride: tuple[int, int]
    dilation: tuple[int, int]
    sides: Sides
    groups: int
    padding_mode: str
    input_ndim: int  # 4 batched, 3 unbatched, 2 picture

    @cached_property
    def flat_padding(self) -> tuple[int, int, int, int]:
        (top, bottom), (left, right) = self.sides
        return top, bottom, left, right

    @cached_property
    def explicit_padding(self) -> bool:
        return self.padding_mode != "zeros" and any(self.flat_padding)

    @cached_property
    def kernel_padding(self) -> tuple[int, int, int, int]:
        """The zero padding the kernel applies (none once padding was made explicit)."""
        return (0, 0, 0, 0) if self.explicit_padding else self.flat_padding

    @cached_property
    def padded_shape(self) -> tuple[int, int, int, int]:
        n, c, h, w = self.input_shape
        top, bottom, left, right = self.flat_padding
        return n, c, h + top + bottom, w + left + right

    @cached_property
    def kernel_arguments(self) -> tuple:
        """stride, padding (top, bottom, left, right), dilation, groups."""
        return self.stride, self.kernel_padding, self.dilation, self.groups

    @cached_property
    def user_output_shape(self) -> tuple[int, ...]:
        return self.user_shape(self.output_shape)

    def user_shape(self, shape4: tuple[int, ...]) -> tuple[int, ...]:
        """A 4-D shape in the rank the user called with."""
        return shape4[4 - self.input_ndim :] if self.input_ndim > 2 else shape4[2:]


def _as_4d(shape: tuple[int, ...], ndim: int) -> tuple[int, int, int, int]:
    return (1,) * (4 - ndim) + tuple(shape) if ndim > 2 else (1, 1) + tuple(shape)  # type: ignore[return-value]


def _setup(input_shape, weight_shape, stride, padding, dilation, groups,
           padding_mode) -> _ConvSetup:
    """The resolved geometry; repeated calls with the same arguments (a training loop)
    reuse it, which keeps the per-call overhead of small convolutions to microseconds."""
    key = (tuple(input_shape), tuple(weight_shape), stride, padding, dilation, groups, padding_mode)
    cacheable = _cacheable  # spelled out: a generator here costs a microsecond per call
    if (cacheable(stride) and cacheable(padding) and cacheable(dilation) and cacheable(groups)
            and cacheable(padding_mode)):
        return _cached_setup(*key)
    return _resolve_setup(*key)  # lists, floats, bools, NumPy ints


def _cacheable(value: object) -> bool:
    """Exact ints and strs, or tuples of them: 1, 1.0 and True are equal and hash alike, so a
    cache keyed on anything looser would accept ``stride=True`` after ``stride=1``."""
    kind = type(value)
    if kind is int or kind is str:
        return True
    return kind is tuple and all(_cacheable(item) for item in value)


def _resolve_setup(input_shape, weight_shape, stride, padding, dilation, groups,
                   padding_mode) -> _ConvSetup:
    ndim = len(input_shape)
    if ndim not in (2, 3, 4):
        raise ValueError(
            f"x: expected (N, C, H, W), (C, H, W) or a 2-D picture (H, W), got shape {input_shape}"
        )
    weight_ndim = 2 if ndim == 2 else 4
    if len(weight_shape) != weight_ndim:
        expected = "(kh, kw) for a 2-D picture" if ndim == 2 else "(C_out, C_in // groups, kh, kw)"
        raise ValueError(f"weight: expected {expected}, got shape {tuple(weight_shape)}")
    x4 = _as_4d(tuple(input_shape), ndim)
    w4 = (1, 1) + tuple(weight_shape) if ndim == 2 else tuple(weight_shape)
    stride = positive_pair(stride, "stride")
    dilation = positive_pair(dilation, "dilation")
    groups = positive_int(groups, "groups")
    n, c_in, h, w = x4
    c_out, c_in_g, kh, kw = w4
    if min(c_in, c_out, kh, kw) < 1:
        raise ValueError(
            f"x, weight: channel and kernel sizes must be >= 1, got x {tuple(input_shape)}, "
            f"weight {tuple(weight_shape)}"
        )
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"groups: {groups} must divide in_channels ({c_in}) and out_channels ({c_out})"
        )
    if c_in_g * groups != c_in:
        raise ValueError(
            f"weight: shape {tuple(weight_shape)} needs in_channels = {c_in_g} x groups ({groups}) "
            f"= {c_in_g * groups}, but x has {c_in} channels (shape {tuple(input_shape)})"
        )
    sides = resolve_padding(padding, (h, w), (kh, kw), stride, dilation)
    padding_mode = check_padding_mode(padding_mode, sides, (h, w))
    out_hw = []
    for axis, name in ((0, "height"), (1, "width")):
        size = output_size((h, w)[axis], (kh, kw)[axis], stride[axis], dilation[axis], *sides[axis])
        if size < 1:
            raise ValueError(
                f"output {name} would be {size}: input {(h, w)[axis]}, kernel {(kh, kw)[axis]}, "
                f"stride {stride[axis]}, dilation {dilation[axis]}, padding {sides[axis]} "
                "(the dilated kernel must fit in the padded input)"
            )
        out_hw.append(size)
    (top, bottom), (left, right) = sides
    check_index_range((n, c_in, h + top + bottom, w + left + right), "x (padded)")
    check_index_range(w4, "weight")
    check_index_range((n, c_out, *out_hw), "output")
    return _ConvSetup(
        input_shape=x4, weight_shape=w4, output_shape=(n, c_out, out_hw[0], out_hw[1]),
        stride=stride, dilation=dilation, sides=sides, groups=groups,
        padding_mode=padding_mode, input_ndim=ndim,
    )


_cached_setup = lru_cache(maxsize=1024)(_resolve_setup)


def _pad(setup: _ConvSetup, x4: np.ndarray) -> np.ndarray:
    """The input as the kernel reads it: explicitly padded for non-zero padding modes."""
    if not setup.explicit_padding:
        return x4
    padded = np.empty(setup.padded_shape, dtype=x4.dtype)
    _core.pad2d(x4, padded, setup.flat_padding, setup.padding_mode)
    return padded


def _check_grad_output(setup: _ConvSetup, grad_output: np.ndarray) -> None:
    if grad_output.shape != setup.user_output_shape:
        raise ValueError(
            f"grad_output: expected shape {setup.user_output_shape}, got {grad_output.shape}"
        )


def _as_kernel_array(array: np.ndarray, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` as the kernels take it: C-contiguous, of ``dtype``, in 4-D ``shape``."""
    array = contiguous(array, dtype)
    return array if array.shape == shape else array.reshape(shape)


def _bias_vector(bias: object, setup: _ConvSetup, dtype: np.dtype) -> np.ndarray | None:
    if bias is None:
        return None
    c_out = setup.output_shape[1]
    if (type(bias) is np.ndarray and bias.dtype == dtype and bias.shape == (c_out,)
            and bias.flags.c_contiguous):
        return bias  # the common case, without the checks below
    b = as_array(bias, "bias")
    if b.shape not in ((c_out,),) + (((), (1,)) if setup.input_ndim == 2 else ()):
        raise ValueError(f"bias: expected shape ({c_out},), got {b.shape}")
    return contiguous(b.reshape(c_out), dtype)


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
    """2-D convolution (correlation): ``y[n,q] = b[q] + sum_p W[q,p] * x[n,p]``.

    Args:
        x: ``(N, C_in, H, W)``, ``(C_in, H, W)`` or a 2-D picture ``(H, W)``.
        weight: ``(C_out, C_in // groups, kh, kw)``, or ``(kh, kw)`` for a 2-D picture.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or ``(sy, sx)``.
        padding: int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"valid"`` or
            ``"same"`` (see :func:`convpool.padding.resolve_padding`).
        groups: splits the channels into independent groups (``C_in`` for depthwise).
        padding_mode: what padded pixels hold: ``"zeros"``, ``"replicate"``,
            ``"reflect"``, ``"symmetric"`` or ``"circular"``.
        out: optional array of the output's exact shape and dtype to write into.

    Returns:
        ``(N, C_out, OH, OW)`` (or the unbatched / 2-D form matching ``x``), in
        ``numpy.result_type(x, weight, float32)``.
    """
    x = as_array(x, "x")
    weight = as_array(weight, "weight")
    setup = _setup(x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    dtype = compute_dtype(x, weight)
    b = _bias_vector(bias, setup, dtype)
    x4 = _pad(setup, _as_kernel_array(x, dtype, setup.input_shape))
    w4 = _as_kernel_array(weight, dtype, setup.weight_shape)
    if out is None:  # the common case: a new array, in the kernel's 4-D shape
        y4 = np.empty(setup.output_shape, dtype)
        _core.conv2d_forward(x4, w4, b, y4, *setup.kernel_arguments)
        return y4 if setup.input_ndim == 4 else y4.reshape(setup.user_output_shape)
    # The user's own arrays: a float64 bias copied to float32 must still not overlap out.
    inputs = (x, weight) if b is None else (x, weight, b, as_array(bias, "bias"))
    result = output_array(out, setup.user_output_shape, dtype, inputs)
    plain = result.view(np.ndarray)  # np.matrix and other subclasses reshape on their own terms
    target = plain if plain.flags.c_contiguous else np.empty(plain.shape, dtype)
    _core.conv2d_forward(x4, w4, b, _as_kernel_array(target, dtype, setup.output_shape),
                         *setup.kernel_arguments)
    if target is not plain:
        plain[...] = target
    return result


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
    """Gradient of :func:`conv2d` with respect to ``x``, of shape ``input_shape``.

    With a non-zero ``padding_mode`` the gradient of each padded pixel is added to the
    input pixel it was copied from.
    """
    input_shape = check_shape_tuple(input_shape, "input_shape", (2, 3, 4))
    grad_output = as_array(grad_output, "grad_output")
    weight = as_array(weight, "weight")
    setup = _setup(input_shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    _check_grad_output(setup, grad_output)
    dtype = compute_dtype(grad_output, weight)
    gy4 = _as_kernel_array(grad_output, dtype, setup.output_shape)
    w4 = _as_kernel_array(weight, dtype, setup.weight_shape)
    kernel_input_shape = setup.padded_shape if setup.explicit_padding else setup.input_shape
    grad = np.empty(kernel_input_shape, dtype=dtype)
    _core.conv2d_grad_input(gy4, w4, grad, *setup.kernel_arguments)
    if setup.explicit_padding:
        folded = np.empty(setup.input_shape, dtype=dtype)
        _core.pad2d_backward(grad, folded, setup.flat_padding, setup.padding_mode)
        grad = folded
    return grad.reshape(input_shape)


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
    """Gradient of :func:`conv2d` with respect to ``weight``, of shape ``weight_shape``.

    Summed over the batch in a fixed order: the result does not depend on the thread count.
    """
    weight_shape = check_shape_tuple(weight_shape, "weight_shape", (2, 4))
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    setup = _setup(x.shape, weight_shape, stride, padding, dilation, groups, padding_mode)
    _check_grad_output(setup, grad_output)
    dtype = compute_dtype(x, grad_output)
    x4 = _pad(setup, _as_kernel_array(x, dtype, setup.input_shape))
    gy4 = _as_kernel_array(grad_output, dtype, setup.output_shape)
    grad = np.empty(setup.weight_shape, dtype=dtype)
    _core.conv2d_grad_weight(x4, gy4, grad, *setup.kernel_arguments)
    return grad.reshape(weight_shape)


def conv2d_grad_bias(grad_output: np.ndarray) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to ``bias``: ``grad_output`` summed over
    everything but the channel axis. ``(C_out,)``; a 0-d array for a 2-D picture."""
    grad_output = as_array(grad_output, "grad_output")
    if grad_output.ndim not in (2, 3, 4):
        raise ValueError(
            f"grad_output: expected (N, C, OH, OW), (C, OH, OW) or (OH, OW), got shape "
            f"{grad_output.shape}"
        )
    check_index_range(grad_output.shape, "grad_output")
    dtype = compute_dtype(grad_output)
    shape4 = _as_4d(grad_output.shape, grad_output.ndim)
    grad = np.empty(shape4[1], dtype=dtype)
    _core.conv2d_grad_bias(contiguous(grad_output, dtype).reshape(shape4), grad)
    return grad.reshape(()) if grad_output.ndim == 2 else grad
