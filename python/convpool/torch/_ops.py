"""convpool's kernels as PyTorch custom operators: ``torch.ops.convpool.<name>``.

Each operator is one :class:`OpSpec` in :data:`OPS`: its schema, what it computes on NumPy
arrays (a convpool function), the shapes of its outputs (for fake tensors: shape
propagation, ``torch.compile``, the meta device) and, for the differentiable ones, which
inputs the backward pass needs and how it computes the gradients - always with other
operators of this table, so that ``torch.compile`` can trace the backward pass too.
:func:`register` turns the table into operators once, when :mod:`convpool.torch` is imported,
and :func:`call` runs one: directly in plain eager code, through ``torch.ops.convpool``
whenever torch traces.

Geometry arguments reach the operators already normalised (see ``functional.py``):
``stride``/``dilation``/``kernel_size`` as two ints, ``padding`` as four ints (top,
bottom, left, right) and ``same`` saying the padding is ``"same"`` instead (resolved per
call, against the actual input size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

import convpool
from convpool import _transposed
from convpool import adaptive_pool as _adaptive
from convpool import conv as _conv
from convpool import geometry as _geometry
from convpool import pool as _pool
from convpool import unpool as _unpool

from ._tensors import FLOAT_DTYPES, check_same_dtype, check_tensor, to_array, to_tensor

NAMESPACE = "convpool"

Shape = tuple[int, ...]


@dataclass(frozen=True)
class OpSpec:
    """One operator: ``compute`` runs it on arrays, ``output_shapes`` on shapes alone."""

    name: str
    schema: str
    compute: Callable[..., np.ndarray | tuple[np.ndarray, ...]]
    # (shape, dtype) of each output, given the inputs (fake tensors) - None for the input
    # dtype. Calling convpool's own argument resolution also validates the call.
    output_shapes: Callable[..., list[tuple[Shape, torch.dtype | None]]]
    # differentiable operators: the input names (or "output<i>") the backward pass reads,
    # and backward(saved, args, needs, *grads) -> {input name: gradient}
    saves: tuple[str, ...] = ()
    backward: Callable[..., dict[str, torch.Tensor | None]] | None = None
    integer_inputs: tuple[str, ...] = ("indices",)


def op(name: str):
    """The registered operator ``torch.ops.convpool.<name>``."""
    return getattr(getattr(torch.ops, NAMESPACE), name)


def sides(padding: list[int], same: bool) -> str | tuple[tuple[int, int], tuple[int, int]]:
    """The operators' padding arguments in the form convpool's functions take."""
    if same:
        return "same"
    top, bottom, left, right = padding
    # the simplest equivalent form: convpool's argument cache checks it fastest
    if top == bottom == left == right:
        return top
    if top == bottom and left == right:
        return top, left
    return (top, bottom), (left, right)


def per_side(padding: list[int]) -> tuple[tuple[int, int], tuple[int, int]]:
    top, bottom, left, right = padding
    return (top, bottom), (left, right)


def _pair(values: list[int]) -> tuple[int, int]:
    first, second = values
    if type(first) is int and type(second) is int:
        return first, second
    return int(first), int(second)  # SymInts while tracing


def _shape(tensor: torch.Tensor) -> Shape:
    return tuple(int(size) for size in tensor.shape)


# ---------------------------------------------------------------- convolution

_CONV_GEOMETRY = (
    "int[] stride, int[] padding, bool same, int[] dilation, int groups, str padding_mode"
)


def _conv_setup(input_shape, weight_shape, stride, padding, same, dilation, groups, padding_mode):
    return _geometry.conv_geometry(tuple(input_shape), tuple(weight_shape), _pair(stride),
                        sides(padding, same), _pair(dilation), groups, padding_mode)


def _conv_geometry(args: dict) -> tuple:
    return (args["stride"], args["padding"], args["same"], args["dilation"], args["groups"],
            args["padding_mode"])


def _conv2d_compute(x, weight, bias, stride, padding, same, dilation, groups, padding_mode):
    return convpool.conv2d(x, weight, bias, _pair(stride), sides(padding, same),
                           _pair(dilation), groups, padding_mode)


def _conv2d_shapes(x, weight, bias, stride, padding, same, dilation, groups, padding_mode):
    setup = _conv_setup(_shape(x), _shape(weight), stride, padding, same, dilation, groups,
                        padding_mode)
    allowed = [(setup.output_shape[1],)] + ([()] if setup.input_ndim == 2 else [])
    if bias is not None and _shape(bias) not in allowed:
        raise ValueError(f"bias: expected shape ({setup.output_shape[1]},), got {_shape(bias)}")
    return [(setup.user_output_shape, None)]


def _conv2d_backward(saved, args, needs, grad):
    x, weight = saved["x"], saved["weight"]
    geometry = _conv_geometry(args)
    return {
        "x": call("conv2d_grad_input", grad, weight, list(x.shape), *geometry)
        if needs["x"] else None,
        "weight": call("conv2d_grad_weight", x, grad, list(weight.shape), *geometry)
        if needs["weight"] else None,
        # a picture's bias may be a scalar or have one element
        "bias": call("conv2d_grad_bias", grad).reshape(args["bias"]) if needs["bias"] else None,
    }


def _conv2d_grad_input_compute(grad_output, weight, input_shape, stride, padding, same, dilation,
                               groups, padding_mode):
    return convpool.conv2d_grad_input(grad_output, weight, tuple(input_shape), _pair(stride),
                                      sides(padding, same), _pair(dilation), groups, padding_mode)


def _conv2d_grad_input_shapes(grad_output, weight, input_shape, *geometry):
    setup = _conv_setup(input_shape, _shape(weight), *geometry)
    _conv._check_grad_output(setup, grad_output)
    return [(tuple(int(s) for s in input_shape), None)]


def _conv2d_grad_weight_compute(x, grad_output, weight_shape, stride, padding, same, dilation,
                                groups, padding_mode):
    return convpool.conv2d_grad_weight(x, grad_output, tuple(weight_shape), _pair(stride),
                                       sides(padding, same), _pair(dilation), groups,
                                       padding_mode)


def _conv2d_grad_weight_shapes(x, grad_output, weight_shape, *geometry):
    setup = _conv_setup(_shape(x), weight_shape, *geometry)
    _conv._check_grad_output(setup, grad_output)
    return [(tuple(int(s) for s in weight_shape), None)]


def _conv2d_grad_bias_shapes(grad_output):
    if grad_output.dim() not in (2, 3, 4):
        raise ValueError(f"grad_output: expected 2, 3 or 4 dimensions, got {_shape(grad_output)}")
    return [(() if grad_output.dim() == 2 else (int(grad_output.shape[-3]),), None)]


_TRANSPOSE_GEOMETRY = (
    "int[] stride, int[] padding, int[] output_padding, int[] dilation, int groups"
)


def _transposed_keywords(stride, padding, output_padding, dilation, groups) -> dict:
    return dict(stride=_pair(stride), sides=per_side(padding),
                output_padding=_pair(output_padding), groups=groups, dilation=_pair(dilation))


def _conv_transpose2d_compute(x, weight, bias, *geometry):
    return _transposed.conv_transpose2d(x, weight, bias, **_transposed_keywords(*geometry))


def _conv_transpose2d_shapes(x, weight, bias, *geometry):
    shape = _transposed.per_side(_shape(x), _shape(weight),
                                 **_transposed_keywords(*geometry)).output_shape
    if bias is not None and _shape(bias) != (shape[-3],):
        raise ValueError(f"bias: expected shape ({shape[-3]},), got {_shape(bias)}")
    return [(shape, None)]


def _conv_transpose2d_backward(saved, args, needs, grad):
    x, weight = saved["x"], saved["weight"]
    geometry = [args[name] for name in ("stride", "padding", "output_padding", "dilation",
                                        "groups")]
    return {
        "x": call("conv_transpose2d_grad_input", grad, weight, list(x.shape), *geometry)
        if needs["x"] else None,
        "weight": call("conv_transpose2d_grad_weight", x, grad, list(weight.shape), *geometry)
        if needs["weight"] else None,
        "bias": call("conv2d_grad_bias", grad) if needs["bias"] else None,
    }


def _conv_transpose2d_grad_input_compute(grad_output, weight, input_shape, *geometry):
    return _transposed.conv_transpose2d_grad_input(grad_output, weight, tuple(input_shape),
                                                   **_transposed_keywords(*geometry))


def _conv_transpose2d_grad_weight_compute(x, grad_output, weight_shape, *geometry):
    return _transposed.conv_transpose2d_grad_weight(x, grad_output, tuple(weight_shape),
                                                    **_transposed_keywords(*geometry))


def _check_transposed_grad_output(input_shape, weight_shape, grad_output, geometry) -> None:
    expected = _transposed.per_side(tuple(int(s) for s in input_shape),
                                    tuple(int(s) for s in weight_shape),
                                    **_transposed_keywords(*geometry)).output_shape
    if _shape(grad_output) != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {_shape(grad_output)}")


def _conv_transpose2d_grad_input_shapes(grad_output, weight, input_shape, *geometry):
    _check_transposed_grad_output(input_shape, _shape(weight), grad_output, geometry)
    return [(tuple(int(s) for s in input_shape), None)]


def _conv_transpose2d_grad_weight_shapes(x, grad_output, weight_shape, *geometry):
    _check_transposed_grad_output(_shape(x), weight_shape, grad_output, geometry)
    return [(tuple(int(s) for s in weight_shape), None)]


# ---------------------------------------------------------------- pooling

_WINDOW = "int[] kernel_size, int[] stride, int[] padding, bool same"
_AVG_OPTIONS = "bool ceil_mode, bool count_include_pad, int? divisor_override"


def _pool_setup(input_shape, kernel_size, stride, padding, same, dilation, ceil_mode, name="x"):
    setup = _geometry.pool_geometry(tuple(input_shape), _pair(kernel_size), _pair(stride),
                         sides(padding, same), _pair(dilation), ceil_mode, name)
    _check_windows_reach_input(setup)
    return setup


def _check_windows_reach_input(setup) -> None:
    """The compiled layer's last pooling check, for the fake kernels: every window holds an
    input pixel (with dilation, a window can fall between the pixels into the padding)."""
    for axis, name in ((0, "height"), (1, "width")):
        size, kernel = setup.input_shape[2 + axis], setup.kernel_size[axis]
        stride, dilation = setup.stride[axis], setup.dilation[axis]
        before = setup.sides[axis][0]
        for o in range(setup.output_shape[2 + axis]):
            start = o * stride - before
            if not any(0 <= start + j * dilation < size for j in range(kernel)):
                raise ValueError(
                    f"{name}: the window of output position {o} lies entirely in the padding "
                    f"(input {size}, kernel {kernel}, stride {stride}, dilation {dilation}, "
                    f"padding before {before})"
                )


def _max_pool2d_compute(x, kernel_size, stride, padding, same, dilation, ceil_mode):
    return convpool.max_pool2d(x, _pair(kernel_size), _pair(stride), sides(padding, same),
                               _pair(dilation), ceil_mode)


def _max_pool2d_with_indices_compute(x, kernel_size, stride, padding, same, dilation, ceil_mode):
    return convpool.max_pool2d(x, _pair(kernel_size), _pair(stride), sides(padding, same),
                               _pair(dilation), ceil_mode, return_indices=True)


def _max_pool2d_output(x, kernel_size, stride, padding, same, dilation, ceil_mode):
    setup = _pool_setup(_shape(x), kernel_size, stride, padding, same, dilation, ceil_mode)
    return setup.user_shape(setup.output_shape)


def _max_pool2d_shapes(*args):
    return [(_max_pool2d_output(*args), None)]


def _max_pool2d_with_indices_shapes(*args):
    shape = _max_pool2d_output(*args)
    return [(shape, None), (shape, torch.int64)]


def _max_pool2d_backward(saved, args, needs, grad):
    # the operator without indices (chosen when no gradient was expected) finds them again
    x = saved["x"]
    window = [args[name] for name in ("kernel_size", "stride", "padding", "same", "dilation",
                                      "ceil_mode")]
    _, indices = call("max_pool2d_with_indices", x, *window)
    return {"x": call("max_pool2d_grad_input", grad, indices, list(x.shape))}


def _max_pool2d_with_indices_backward(saved, args, needs, grad, _grad_indices):
    return {"x": call("max_pool2d_grad_input", grad, saved["output1"], list(args["x"]))}


def _max_pool2d_grad_input_shapes(grad_output, indices, input_shape):
    if _shape(indices) != _shape(grad_output):
        raise ValueError(
            f"indices: expected the shape of grad_output {_shape(grad_output)}, got "
            f"{_shape(indices)}"
        )
    return [(tuple(int(s) for s in input_shape), None)]


def _avg_pool2d_compute(x, kernel_size, stride, padding, same, ceil_mode, count_include_pad,
                        divisor_override):
    return convpool.avg_pool2d(x, _pair(kernel_size), _pair(stride), sides(padding, same),
                               ceil_mode, count_include_pad, divisor_override)


def _avg_pool2d_shapes(x, kernel_size, stride, padding, same, ceil_mode, count_include_pad,
                       divisor_override):
    setup = _pool_setup(_shape(x), kernel_size, stride, padding, same, (1, 1), ceil_mode)
    _pool._divisor(divisor_override)
    return [(setup.user_shape(setup.output_shape), None)]


def _avg_pool2d_backward(saved, args, needs, grad):
    options = [args[name] for name in ("kernel_size", "stride", "padding", "same", "ceil_mode",
                                       "count_include_pad", "divisor_override")]
    return {"x": call("avg_pool2d_grad_input", grad, list(args["x"]), *options)}


def _avg_pool2d_grad_input_compute(grad_output, input_shape, kernel_size, stride, padding, same,
                                   ceil_mode, count_include_pad, divisor_override):
    return convpool.avg_pool2d_grad_input(grad_output, tuple(input_shape), _pair(kernel_size),
                                          _pair(stride), sides(padding, same), ceil_mode,
                                          count_include_pad, divisor_override)


def _avg_pool2d_grad_input_shapes(grad_output, input_shape, kernel_size, stride, padding, same,
                                  ceil_mode, count_include_pad, divisor_override):
    setup = _pool_setup(input_shape, kernel_size, stride, padding, same, (1, 1), ceil_mode,
                        "input_shape")
    _pool._check_grad_shape(grad_output, setup.user_shape(setup.output_shape))
    return [(tuple(int(s) for s in input_shape), None)]


def _channel_pool_shapes(x, size, mode):
    _, out4, _, _ = _pool._channelpool_geometry(_shape(x), size, mode, "x")
    return [(out4[4 - x.dim():], None)]


def _channel_pool_backward(saved, args, needs, grad):
    return {"x": call("channel_pool_grad_input", grad, saved["x"], args["size"], args["mode"])}


def _channel_pool_grad_input_shapes(grad_output, x, size, mode):
    _channel_pool_shapes(x, size, mode)
    return [(_shape(x), None)]


def _global_shapes(x, keepdims):
    _pool._global_shape(_shape(x), "x")
    return [(_pool._global_output_shape(_shape(x), keepdims), None)]


def _global_avg_pool2d_backward(saved, args, needs, grad):
    return {"x": call("global_avg_pool2d_grad_input", grad, list(args["x"]))}


def _global_max_pool2d_backward(saved, args, needs, grad):
    return {"x": call("global_max_pool2d_grad_input", grad, saved["x"])}


def _adaptive_setup(x, output_size) -> Shape:
    """The output shape of an adaptive pooling of ``x`` (convpool's checks)."""
    if x.dim() not in (3, 4):
        raise ValueError(f"x: expected (N, C, H, W) or (C, H, W), got shape {_shape(x)}")
    if min(_shape(x)[-2:]) < 1:
        raise ValueError(f"x: H and W must be >= 1, got shape {_shape(x)}")
    return _shape(x)[:-2] + _adaptive._output_size(_pair(output_size), _shape(x)[-2:])


def _adaptive_avg_pool2d_backward(saved, args, needs, grad):
    return {"x": call("adaptive_avg_pool2d_grad_input", grad, list(args["x"]))}


def _adaptive_avg_pool2d_grad_input_shapes(grad_output, input_shape):
    input_shape = tuple(int(s) for s in input_shape)
    if (grad_output.dim() != len(input_shape) or len(input_shape) not in (3, 4)
            or _shape(grad_output)[:-2] != input_shape[:-2]):
        raise ValueError(
            f"grad_output: expected shape {input_shape[:-2]} + (OH, OW) to match input_shape "
            f"{input_shape}, got {_shape(grad_output)}")
    return [(input_shape, None)]


def _adaptive_max_pool2d_shapes(x, output_size):
    shape = _adaptive_setup(x, output_size)
    return [(shape, None), (shape, torch.int64)]


def _adaptive_max_pool2d_backward(saved, args, needs, grad, _grad_indices):
    return {"x": call("max_pool2d_grad_input", grad, saved["output1"], list(args["x"]))}


_UNPOOL_WINDOW = "int[] kernel_size, int[] stride, int[] padding, int[]? output_size"


def _max_unpool2d_compute(x, indices, kernel_size, stride, padding, output_size):
    return convpool.max_unpool2d(x, indices, _pair(kernel_size), _pair(stride), _pair(padding),
                                 None if output_size is None else _pair(output_size))


def _max_unpool2d_shapes(x, indices, kernel_size, stride, padding, output_size):
    if x.dim() not in (3, 4):
        raise ValueError(f"x: expected (N, C, H, W) or (C, H, W), got shape {_shape(x)}")
    if _shape(indices) != _shape(x):
        raise ValueError(f"indices: expected the shape of x {_shape(x)}, got {_shape(indices)}")
    size = _unpool.max_unpool2d_output_size(
        _shape(x)[-2:], _pair(kernel_size), _pair(stride), _pair(padding),
        None if output_size is None else _pair(output_size))
    return [(_shape(x)[:-2] + tuple(size), None)]


def _max_unpool2d_backward(saved, args, needs, grad):
    return {"x": call("max_unpool2d_grad_input", grad, saved["indices"]) if needs["x"] else None}


def _max_unpool2d_grad_input_shapes(grad_output, indices):
    if grad_output.dim() not in (3, 4) or indices.dim() != grad_output.dim() or (
            _shape(indices)[:-2] != _shape(grad_output)[:-2]):
        raise ValueError(
            f"indices, grad_output: expected (N, C, H, W) or (C, H, W) with the same leading "
            f"sizes, got indices {_shape(indices)}, grad_output {_shape(grad_output)}")
    return [(_shape(indices), None)]


def _input_shape_output(grad_output, input_shape, *_):
    return [(tuple(int(s) for s in input_shape), None)]


def _x_shaped_output(grad_output, x, *_):
    return [(_shape(x), None)]


OPS: tuple[OpSpec, ...] = (
    OpSpec("conv2d", f"(Tensor x, Tensor weight, Tensor? bias, {_CONV_GEOMETRY}) -> Tensor",
           _conv2d_compute, _conv2d_shapes, saves=("x", "weight"), backward=_conv2d_backward),
    OpSpec("conv2d_grad_input",
           f"(Tensor grad_output, Tensor weight, SymInt[] input_shape, {_CONV_GEOMETRY}) -> Tensor",
           _conv2d_grad_input_compute, _conv2d_grad_input_shapes),
    OpSpec("conv2d_grad_weight",
           f"(Tensor x, Tensor grad_output, SymInt[] weight_shape, {_CONV_GEOMETRY}) -> Tensor",
           _conv2d_grad_weight_compute, _conv2d_grad_weight_shapes),
    OpSpec("conv2d_grad_bias", "(Tensor grad_output) -> Tensor",
           convpool.conv2d_grad_bias, _conv2d_grad_bias_shapes),
    OpSpec("conv_transpose2d",
           f"(Tensor x, Tensor weight, Tensor? bias, {_TRANSPOSE_GEOMETRY}) -> Tensor",
           _conv_transpose2d_compute, _conv_transpose2d_shapes, saves=("x", "weight"),
           backward=_conv_transpose2d_backward),
    OpSpec("conv_transpose2d_grad_input",
           f"(Tensor grad_output, Tensor weight, SymInt[] input_shape, {_TRANSPOSE_GEOMETRY})"
           " -> Tensor",
           _conv_transpose2d_grad_input_compute, _conv_transpose2d_grad_input_shapes),
    OpSpec("conv_transpose2d_grad_weight",
           f"(Tensor x, Tensor grad_output, SymInt[] weight_shape, {_TRANSPOSE_GEOMETRY})"
           " -> Tensor",
           _conv_transpose2d_grad_weight_compute, _conv_transpose2d_grad_weight_shapes),
    OpSpec("max_pool2d", f"(Tensor x, {_WINDOW}, int[] dilation, bool ceil_mode) -> Tensor",
           _max_pool2d_compute, _max_pool2d_shapes, saves=("x",), backward=_max_pool2d_backward),
    OpSpec("max_pool2d_with_indices",
           f"(Tensor x, {_WINDOW}, int[] dilation, bool ceil_mode) -> (Tensor, Tensor)",
           _max_pool2d_with_indices_compute, _max_pool2d_with_indices_shapes,
           saves=("output1",), backward=_max_pool2d_with_indices_backward),
    OpSpec("max_pool2d_grad_input",
           "(Tensor grad_output, Tensor indices, SymInt[] input_shape) -> Tensor",
           lambda g, indices, shape: convpool.max_pool2d_grad_input(g, indices, tuple(shape)),
           _max_pool2d_grad_input_shapes),
    OpSpec("avg_pool2d", f"(Tensor x, {_WINDOW}, {_AVG_OPTIONS}) -> Tensor",
           _avg_pool2d_compute, _avg_pool2d_shapes, backward=_avg_pool2d_backward),
    OpSpec("avg_pool2d_grad_input",
           f"(Tensor grad_output, SymInt[] input_shape, {_WINDOW}, {_AVG_OPTIONS}) -> Tensor",
           _avg_pool2d_grad_input_compute, _avg_pool2d_grad_input_shapes),
    OpSpec("channel_pool", "(Tensor x, int size, str mode) -> Tensor",
           convpool.channel_pool, _channel_pool_shapes, saves=("x",),
           backward=_channel_pool_backward),
    OpSpec("channel_pool_grad_input",
           "(Tensor grad_output, Tensor x, int size, str mode) -> Tensor",
           convpool.channel_pool_grad_input, _channel_pool_grad_input_shapes),
    OpSpec("global_avg_pool2d", "(Tensor x, bool keepdims) -> Tensor",
           convpool.global_avg_pool2d, _global_shapes, backward=_global_avg_pool2d_backward),
    OpSpec("global_avg_pool2d_grad_input",
           "(Tensor grad_output, SymInt[] input_shape) -> Tensor",
           lambda g, shape: convpool.global_avg_pool2d_grad_input(g, tuple(shape)),
           _input_shape_output),
    OpSpec("global_max_pool2d", "(Tensor x, bool keepdims) -> Tensor",
           convpool.global_max_pool2d, _global_shapes, saves=("x",),
           backward=_global_max_pool2d_backward),
    OpSpec("global_max_pool2d_grad_input", "(Tensor grad_output, Tensor x) -> Tensor",
           convpool.global_max_pool2d_grad_input, _x_shaped_output),
    OpSpec("adaptive_avg_pool2d", "(Tensor x, int[] output_size) -> Tensor",
           lambda x, size: convpool.adaptive_avg_pool2d(x, _pair(size)),
           lambda x, size: [(_adaptive_setup(x, size), None)],
           backward=_adaptive_avg_pool2d_backward),
    OpSpec("adaptive_avg_pool2d_grad_input",
           "(Tensor grad_output, SymInt[] input_shape) -> Tensor",
           lambda g, shape: convpool.adaptive_avg_pool2d_grad_input(g, tuple(shape)),
           _adaptive_avg_pool2d_grad_input_shapes),
    # the indices come with every call: the backward pass reads them (max_pool2d_grad_input)
    OpSpec("adaptive_max_pool2d", "(Tensor x, int[] output_size) -> (Tensor, Tensor)",
           lambda x, size: convpool.adaptive_max_pool2d(x, _pair(size), return_indices=True),
           _adaptive_max_pool2d_shapes, saves=("output1",),
           backward=_adaptive_max_pool2d_backward),
    OpSpec("max_unpool2d", f"(Tensor x, Tensor indices, {_UNPOOL_WINDOW}) -> Tensor",
           _max_unpool2d_compute, _max_unpool2d_shapes, saves=("indices",),
           backward=_max_unpool2d_backward),
    OpSpec("max_unpool2d_grad_input", "(Tensor grad_output, Tensor indices) -> Tensor",
           convpool.max_unpool2d_grad_input, _max_unpool2d_grad_input_shapes),
)


# ---------------------------------------------------------------- registration

def _tensor_arguments(spec: OpSpec) -> list[tuple[int, str, bool]]:
    """(position, name, holds indices) of each tensor argument of the schema."""
    schema = torch._C.parse_schema(f"{NAMESPACE}::{spec.name}{spec.schema}")
    return [(i, a.name, a.name in spec.integer_inputs) for i, a in enumerate(schema.arguments)
            if str(a.type) in ("Tensor", "Optional[Tensor]")]


def _argument_names(spec: OpSpec) -> list[str]:
    schema = torch._C.parse_schema(f"{NAMESPACE}::{spec.name}{spec.schema}")
    return [argument.name for argument in schema.arguments]


def _checker(spec: OpSpec, devices: str):
    """A check of every tensor argument (CPU - or meta for the fake kernels -, dense,
    float32/float64 or int64 indices), the floating ones of one dtype."""
    tensors = _tensor_arguments(spec)

    def check(args: tuple) -> None:
        dtype = None
        for index, name, integer in tensors:
            tensor = args[index]
            if tensor is None:
                continue
            # the common case in a few attribute reads; the full check names what is wrong
            if not (tensor.is_cpu and tensor.layout is torch.strided
                    and (tensor.dtype is torch.int64 if integer
                         else tensor.dtype in FLOAT_DTYPES)):
                check_tensor(tensor, name, integer=integer, devices=devices)
            if not integer:
                if dtype is not None and tensor.dtype != dtype:
                    check_same_dtype({n: args[i] for i, n, is_int in tensors if not is_int})
                dtype = tensor.dtype

    return check


def _kernel(spec: OpSpec):
    check = _checker(spec, "real")
    positions = [index for index, _, _ in _tensor_arguments(spec)]

    def kernel(*args):
        check(args)
        arrays = list(args)
        for index in positions:
            if arrays[index] is not None:
                arrays[index] = to_array(arrays[index])
        result = spec.compute(*arrays)
        if isinstance(result, tuple):
            return tuple(to_tensor(r) for r in result)
        return to_tensor(result)

    kernel.__name__ = spec.name
    return kernel


def _fake(spec: OpSpec):
    check = _checker(spec, "fake")

    def fake(*args):
        check(args)
        like = next(a for a in args if isinstance(a, torch.Tensor))
        outputs = [like.new_empty(shape, dtype=dtype or like.dtype)
                   for shape, dtype in spec.output_shapes(*args)]
        return tuple(outputs) if len(outputs) > 1 else outputs[0]

    return fake


def _autograd(spec: OpSpec, names: list[str]):
    """backward and setup_context, shared by the operator and the eager path."""
    def setup_context(ctx, inputs, output):
        outputs = output if isinstance(output, tuple) else (output,)
        saved = [inputs[names.index(name)] if not name.startswith("output")
                 else outputs[int(name[len("output"):])] for name in spec.saves]
        ctx.save_for_backward(*saved)
        ctx.mark_non_differentiable(*(o for o in outputs if not o.is_floating_point()))
        # what the backward pass reads besides saved tensors: the non-tensor arguments and
        # the shapes of the inputs it does not keep
        ctx.convpool_args = {
            name: (tuple(value.shape) if isinstance(value, torch.Tensor) else value)
            for name, value in zip(names, inputs, strict=True)
        }

    def backward(ctx, *grads):
        if torch.is_grad_enabled():
            # the gradient kernels have no gradients of their own: a graph of this backward
            # pass would give wrong (missing) second derivatives
            raise RuntimeError(
                f"convpool.{spec.name}: second derivatives are not supported (a backward "
                "pass with create_graph=True)"
            )
        saved = dict(zip(spec.saves, ctx.saved_tensors, strict=True))
        needs = dict(zip(names, ctx.needs_input_grad, strict=True))
        gradients = spec.backward(saved, ctx.convpool_args, needs, *grads)
        return tuple(gradients.get(name) for name in names)

    return backward, setup_context


def _eager(spec: OpSpec, names: list[str], kernel):
    """The operator's computation without the dispatcher, for plain CPU tensors in eager
    code: the kernel itself, or for a differentiable operator an autograd.Function over it
    when some input requires a gradient."""
    if spec.backward is None:
        return kernel
    gradients, save = _autograd(spec, names)

    # the classic form (ctx in forward): Function.apply then costs a few microseconds, where
    # the form with a separate setup_context goes through torch.func's machinery
    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            output = kernel(*args)
            save(ctx, args, output)
            return output

        backward = staticmethod(gradients)

    Function.__name__ = Function.__qualname__ = f"convpool_{spec.name}"
    tensor_positions = [index for index, _, _ in _tensor_arguments(spec)]

    def eager(*args):
        if torch.is_grad_enabled() and any(args[i] is not None and args[i].requires_grad
                                           for i in tensor_positions):
            return Function.apply(*args)
        return kernel(*args)

    return eager


_EAGER: dict[str, Callable] = {}


def _plain_eager(args: tuple) -> bool:
    """True when nothing is tracing or transforming this call and every tensor is a plain CPU
    tensor: then the dispatcher (a few tens of microseconds per call) has nothing to add."""
    if (torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None
            or torch._C._are_functorch_transforms_active()):
        return False
    return all(type(a) is torch.Tensor and a.is_cpu for a in args if isinstance(a, torch.Tensor))


def call(name: str, *args):
    """Run operator ``name``: directly in plain eager code, through ``torch.ops.convpool``
    whenever torch traces (``torch.compile``, export, fake or meta tensors, dispatch modes,
    ``torch.func``). Both run the same kernel, checks and backward functions."""
    if _plain_eager(args):
        return _EAGER[name](*args)
    return op(name)(*args)


def register() -> None:
    """Define every operator of :data:`OPS` (once per process)."""
    for spec in OPS:
        names = _argument_names(spec)
        kernel = _kernel(spec)
        _EAGER[spec.name] = _eager(spec, names, kernel)
        if hasattr(getattr(torch.ops, NAMESPACE), spec.name):
            continue
        custom = torch.library.custom_op(f"{NAMESPACE}::{spec.name}", kernel, mutates_args=(),
                                         schema=spec.schema)
        custom.register_fake(_fake(spec))
        if spec.backward is not None:
            backward, setup_context = _autograd(spec, names)
            custom.register_autograd(backward, setup_context=setup_context)
