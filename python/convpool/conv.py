"""2-D convolution (correlation, as in CNNs) and its gradients.

Each function resolves its arguments once (:func:`convpool.geometry.conv_geometry`), then
calls the compiled kernel with the resolved geometry, padding mode included: the kernels
read the padding themselves (no padded copy of the input is made here).
"""

from __future__ import annotations

import numpy as np

from . import _buffers, _conv_channels_last, _core, python_kernels
from . import _picture_filter as picture_filter
from ._args import as_array, check_shape_tuple, computed_into, contiguous, output_array
from .bf16_dot import bfloat16_route
from .dtypes import half_precision
from .geometry import ConvGeometry, as_4d, check_index_range, compute_dtype, conv_geometry
from .layout import check_layout, from_nchw_shape, nchw_shape, stored_channels_last

__all__ = ["conv2d", "conv2d_grad_input", "conv2d_grad_weight", "conv2d_grad_bias"]


def _check_grad_output(setup: ConvGeometry, grad_output: np.ndarray, layout: str = "NCHW") -> None:
    expected = from_nchw_shape(setup.user_output_shape, layout)
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")


def _channels_last(layout: str, setup: ConvGeometry, array: np.ndarray) -> bool:
    """Whether a call runs the channels-last kernels: an NHWC call with channel axes (a 2-D
    picture has none), or an NCHW call whose 4-D ``array`` is stored channels-last."""
    if layout == "NHWC":
        return setup.input_ndim > 2
    return setup.input_ndim == 4 and stored_channels_last(array)


def _as_kernel_array(array: np.ndarray, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` as the kernels take it: C-contiguous, of ``dtype``, in 4-D ``shape``."""
    array = contiguous(array, dtype)
    return array if array.shape == shape else array.reshape(shape)


def _bias_vector(bias: object, setup: ConvGeometry, dtype: np.dtype) -> np.ndarray | None:
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


# Each function's arguments resolved once, by the function itself and by
# convpool.implementation (which fills in the public functions' defaults and asks the
# registry which implementation the resolved geometry would run).

def _conv2d_arguments(x, weight, bias, stride, padding, dilation, groups, padding_mode, out,
                      layout="NCHW"):
    layout = check_layout(layout)
    x, weight = as_array(x, "x"), as_array(weight, "weight")
    setup = conv_geometry(nchw_shape(x.shape, layout), weight.shape, stride, padding, dilation,
                          groups, padding_mode)
    dtype = compute_dtype(x, weight)
    b = _bias_vector(bias, setup, dtype)
    if out is not None:
        # The user's own arrays: a float64 bias copied to float32 must still not overlap out.
        inputs = (x, weight) if b is None else (x, weight, b, as_array(bias, "bias"))
        out = output_array(out, from_nchw_shape(setup.user_output_shape, layout), dtype, inputs)
    return x, weight, b, out, setup, dtype, layout


def _conv2d_grad_input_arguments(grad_output, weight, input_shape, stride, padding, dilation,
                                 groups, padding_mode, layout="NCHW"):
    layout = check_layout(layout)
    input_shape = check_shape_tuple(input_shape, "input_shape", (2, 3, 4))
    grad_output = as_array(grad_output, "grad_output")
    weight = as_array(weight, "weight")
    setup = conv_geometry(nchw_shape(input_shape, layout), weight.shape, stride, padding,
                          dilation, groups, padding_mode)
    _check_grad_output(setup, grad_output, layout)
    return (grad_output, weight, input_shape, setup, compute_dtype(grad_output, weight), layout)


def _conv2d_grad_weight_arguments(x, grad_output, weight_shape, stride, padding, dilation, groups,
                                  padding_mode, layout="NCHW"):
    layout = check_layout(layout)
    weight_shape = check_shape_tuple(weight_shape, "weight_shape", (2, 4))
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    setup = conv_geometry(nchw_shape(x.shape, layout), weight_shape, stride, padding, dilation,
                          groups, padding_mode)
    _check_grad_output(setup, grad_output, layout)
    return x, grad_output, weight_shape, setup, compute_dtype(x, grad_output), layout


def _kernels(op: str, compiled, setup: ConvGeometry, dtype: np.dtype, *operands):
    """The compiled kernel of pass ``op``, or a Python implementation's when one runs
    this call (:mod:`convpool.python_kernels`: low-rank kernels, large kernels)."""
    chosen = python_kernels.kernel(op, setup, dtype.itemsize == 8, operands)
    return compiled if chosen is None else chosen


def _kernel_geometry(setup: ConvGeometry, layout: str, array: np.ndarray):
    if _channels_last(layout, setup, array):
        return _conv_channels_last.kernel_geometry(setup)
    return setup.kernel_geometry


def _conv2d_problem(x, weight, bias, stride, padding, dilation, groups, padding_mode,
                    layout="NCHW"):
    layout = check_layout(layout)
    xa, wa = as_array(x, "x"), as_array(weight, "weight")
    if picture_filter.is_picture_filter(xa, wa):
        plan = picture_filter.plan(xa, wa, stride, padding, dilation, groups, padding_mode, layout)
        if plan.plane_call is None:
            return _conv_channels_last.kernel_geometry(plan.setup), compute_dtype(xa, wa)
        px, pw, kwargs = plan.plane_call
        return _conv2d_problem(px, pw, None, kwargs.get("stride", 1), kwargs["padding"],
                               kwargs["dilation"], 1, kwargs.get("padding_mode", "zeros"))
    x, *_, setup, dtype, layout = _conv2d_arguments(
        xa, wa, bias, stride, padding, dilation, groups, padding_mode, None, layout)
    return _kernel_geometry(setup, layout, x), dtype


def _conv2d_grad_input_problem(*args):
    grad_output, *_, setup, dtype, layout = _conv2d_grad_input_arguments(*args)
    return _kernel_geometry(setup, layout, grad_output), dtype


def _conv2d_grad_weight_problem(*args):
    x, *_, setup, dtype, layout = _conv2d_grad_weight_arguments(*args)
    return _kernel_geometry(setup, layout, x), dtype


def _filter_picture(x: np.ndarray, weight: np.ndarray, bias, stride, padding, dilation, groups,
                    padding_mode, out, layout: str) -> np.ndarray:
    """conv2d with a 2-D kernel on a picture with channels: every channel filtered alike
    (convpool._picture_filter)."""
    plan = picture_filter.plan(x, weight, stride, padding, dilation, groups, padding_mode, layout)
    dtype = compute_dtype(x, weight)
    channels = plan.setup.input_shape[1]
    b = picture_filter.bias_per_channel(bias, channels, dtype)
    if out is not None:
        out = output_array(out, plan.user_shape, dtype, (x, weight))
    if plan.plane_call is None:  # channels-last depthwise kernels
        nhwc = x.transpose(0, 2, 3, 1) if plan.transposed else x
        kernel = np.broadcast_to(weight.astype(dtype, copy=False), (channels, 1) + weight.shape)
        y = _conv_channels_last.forward(
            nhwc, kernel, None if b is None else np.ascontiguousarray(b), None, plan.setup, dtype,
            "NHWC", from_nchw_shape(plan.setup.user_output_shape, "NHWC"))
    else:
        px, pw, kwargs = plan.plane_call
        y = conv2d(px, pw.astype(dtype, copy=False), **kwargs).reshape(plan.plane_output_shape)
        if b is not None:  # one pass over the result, only when there is a bias
            y += b[:, None, None] if plan.layout == "NCHW" else b
    if plan.transposed:
        y = y.reshape((-1,) + y.shape[-3:]).transpose(0, 3, 1, 2)
    else:
        y = y.reshape(plan.user_shape)
    if out is None:
        return y
    out[...] = y
    return out


@half_precision("x", "weight", also=("bias",), route=bfloat16_route(rank=2))
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
    layout: str = "NCHW",
) -> np.ndarray:
    """2-D convolution (correlation): ``y[n,q] = b[q] + sum_p W[q,p] * x[n,p]``.

    Args:
        x: ``(N, C_in, H, W)``, ``(C_in, H, W)`` or a 2-D picture ``(H, W)``; with
            ``layout="NHWC"``, ``(N, H, W, C_in)`` or ``(H, W, C_in)``.
        weight: ``(C_out, C_in // groups, kh, kw)`` in either layout, or a 2-D kernel
            ``(kh, kw)``, which filters every channel of a picture alike (OpenCV's
            ``filter2D``; the result keeps the picture's channels and layout; ``bias`` is
            then a scalar or one value per channel).
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or ``(sy, sx)``.
        padding: int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"valid"`` or
            ``"same"`` (see :func:`convpool.padding.resolve_padding`).
        groups: splits the channels into independent groups (``C_in`` for depthwise).
        padding_mode: what padded pixels hold: ``"zeros"``, ``"replicate"``,
            ``"reflect"``, ``"symmetric"`` or ``"circular"``.
        out: optional array of the output's exact shape and dtype to write into.
        layout: ``"NCHW"`` or ``"NHWC"`` (channels-last): where ``x``'s and the result's
            channels are. An NCHW-shaped ``x`` stored channels-last
            (``nhwc.transpose(0, 3, 1, 2)``) runs the channels-last kernels without a
            copy, and the result is stored channels-last too.

    Returns:
        ``(N, C_out, OH, OW)`` (or the unbatched / 2-D form matching ``x``; NHWC:
        ``(N, OH, OW, C_out)`` or ``(OH, OW, C_out)``), in
        ``numpy.result_type(x, weight, float32)`` (integer pictures compute in float32).
    """
    # (an array's own ndim: np.ndim costs a quarter of a microsecond on every call)
    if layout != "NCHW" or (weight.ndim if type(weight) is np.ndarray else np.ndim(weight)) == 2:
        layout = check_layout(layout)
        xa, wa = as_array(x, "x"), as_array(weight, "weight")
        if picture_filter.is_picture_filter(xa, wa):
            return _filter_picture(xa, wa, bias, stride, padding, dilation, groups, padding_mode,
                                   out, layout)
    x, weight, b, result, setup, dtype, layout = _conv2d_arguments(
        x, weight, bias, stride, padding, dilation, groups, padding_mode, out, layout)
    if _channels_last(layout, setup, x):
        return _conv_channels_last.forward(x, weight, b, result, setup, dtype, layout,
                                           from_nchw_shape(setup.user_output_shape, layout))
    forward = _kernels("conv2d", _core.conv2d_forward, setup, dtype, x, weight)
    x4 = _as_kernel_array(x, dtype, setup.input_shape)
    w4 = _as_kernel_array(weight, dtype, setup.weight_shape)
    if result is None:  # the common case: a new array, in the kernel's 4-D shape
        y4 = _buffers.empty(setup.output_shape, dtype)
        forward(x4, w4, b, y4, setup.kernel_geometry)
        return y4 if setup.input_ndim == 4 else y4.reshape(setup.user_output_shape)
    plain = result.view(np.ndarray)  # np.matrix and other subclasses reshape on their own terms
    target = plain if plain.flags.c_contiguous else np.empty(plain.shape, dtype)
    forward(x4, w4, b, _as_kernel_array(target, dtype, setup.output_shape),
            setup.kernel_geometry)
    if target is not plain:
        plain[...] = target
    return result


@half_precision("grad_output", "weight")
def conv2d_grad_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    out: np.ndarray | None = None,
    layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to ``x``, of shape ``input_shape``.

    With a non-zero ``padding_mode`` the gradient of each padded pixel is added to the
    input pixel it was copied from. ``input_shape`` and ``grad_output`` are in ``layout``
    (an NCHW ``grad_output`` stored channels-last gives a channels-last result).
    ``out``: optional array of that shape (in ``layout``) and the compute dtype to write
    into (checked as :func:`conv2d`'s).
    """
    grad_output, weight, input_shape, setup, dtype, layout = _conv2d_grad_input_arguments(
        grad_output, weight, input_shape, stride, padding, dilation, groups, padding_mode, layout)
    if _channels_last(layout, setup, grad_output):
        grad = _conv_channels_last.grad_input(grad_output, weight, setup, dtype, layout,
                                              input_shape)
        return _conv_channels_last.delivered(grad, out, (grad_output, weight))
    gy4 = _as_kernel_array(grad_output, dtype, setup.output_shape)
    w4 = _as_kernel_array(weight, dtype, setup.weight_shape)
    grad_input = _kernels("conv2d_grad_input", _core.conv2d_grad_input, setup, dtype,
                          grad_output, weight)
    return computed_into(
        out, input_shape, dtype, (grad_output, weight),
        lambda target: grad_input(gy4, w4, target, setup.kernel_geometry),
        setup.input_shape)


@half_precision("x", "grad_output")
def conv2d_grad_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    out: np.ndarray | None = None,
    layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to ``weight``, of shape ``weight_shape``.

    Summed over the batch in a fixed order: the result does not depend on the thread count.
    ``x`` and ``grad_output`` are in ``layout``; the weight's shape is the same in both.
    ``out``: optional array of that shape and the compute dtype to write into.
    """
    x, grad_output, weight_shape, setup, dtype, layout = _conv2d_grad_weight_arguments(
        x, grad_output, weight_shape, stride, padding, dilation, groups, padding_mode, layout)
    if _channels_last(layout, setup, x):
        grad = _conv_channels_last.grad_weight(x, grad_output, setup, dtype, layout)
        return _conv_channels_last.delivered(grad.reshape(weight_shape), out,
                                             (x, grad_output))
    x4 = _as_kernel_array(x, dtype, setup.input_shape)
    gy4 = _as_kernel_array(grad_output, dtype, setup.output_shape)
    grad_weight = _kernels("conv2d_grad_weight", _core.conv2d_grad_weight, setup, dtype,
                           x, grad_output)
    return computed_into(
        out, weight_shape, dtype, (x, grad_output),
        lambda target: grad_weight(x4, gy4, target, setup.kernel_geometry),
        setup.weight_shape)


@half_precision("grad_output")
def conv2d_grad_bias(grad_output: np.ndarray, out: np.ndarray | None = None,
                     layout: str = "NCHW") -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to ``bias``: ``grad_output`` summed over
    everything but the channel axis (the last with ``layout="NHWC"``). ``(C_out,)``; a 0-d
    array for a 2-D picture. ``out``: optional array of that shape and the compute dtype to
    write into."""
    layout = check_layout(layout)
    grad_output = as_array(grad_output, "grad_output")
    if grad_output.ndim not in (2, 3, 4):
        expected = ("(N, OH, OW, C), (OH, OW, C)" if layout == "NHWC"
                    else "(N, C, OH, OW), (C, OH, OW)")
        raise ValueError(
            f"grad_output: expected {expected} or (OH, OW), got shape {grad_output.shape}"
        )
    check_index_range(grad_output.shape, "grad_output")
    dtype = compute_dtype(grad_output)
    if layout == "NHWC" and grad_output.ndim > 2:
        return _conv_channels_last.delivered(_conv_channels_last.grad_bias(grad_output, dtype),
                                             out, (grad_output,))
    shape4 = as_4d(grad_output.shape, grad_output.ndim)
    gy4 = contiguous(grad_output, dtype).reshape(shape4)
    shape = () if grad_output.ndim == 2 else (shape4[1],)
    return computed_into(out, shape, dtype, (grad_output,),
                         lambda target: _core.conv2d_grad_bias(gy4, target), (shape4[1],))
