"""convpool's kernels on torch tensors, with ``torch.nn.functional``'s signatures.

Every function normalises its geometry arguments, then calls one operator of
``torch.ops.convpool`` (see ``_ops.py``): differentiable, traceable by ``torch.compile``
(as an opaque call) and exact to convpool's NumPy-level functions. On top of PyTorch's
arguments they take convpool's: every padding form (``"same"`` at any stride,
``(ph, pw)``, per-side ``((top, bottom), (left, right))``), the padding modes
``"replicate"``, ``"reflect"``, ``"symmetric"`` and ``"circular"`` for convolution, and
``"same"`` / per-side padding for pooling.

Tensors must be float32 or float64, on the CPU, of one dtype; any strides (channels_last,
slices) are accepted. Results are new contiguous (NCHW) tensors.

``conv2d``, ``max_pool2d``, ``avg_pool2d`` and the global pools also take
``layout="NHWC"``: ``(N, H, W, C)`` (or ``(H, W, C)``) tensors in and out, as convpool's
NumPy functions. The tensor is handed to the operator as its NCHW-shaped view (no copy; a
channels-last view, which the kernels read as it is) and the result comes back as the
NHWC view of the operator's result; autograd runs through both views.
"""

from __future__ import annotations

import torch

from convpool._args import positive_int, positive_pair
from convpool.adaptive_pool import _output_size as _adaptive_output_size
from convpool.geometry import check_padding
from convpool.layout import check_layout

from ._ops import call
from ._tensors import FLOAT_DTYPES, check_tensor

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "channel_pool",
    "conv2d",
    "conv_transpose2d",
    "global_avg_pool2d",
    "global_max_pool2d",
    "max_pool2d",
    "max_unpool2d",
]

Padding = int | tuple | str


def _pair(value: object, name: str) -> list[int]:
    if type(value) is int and value >= 1:  # the common case, without the checks' cost
        return [value, value]
    if isinstance(value, torch.Size):
        value = tuple(value)
    return list(positive_pair(value, name))


def _padding(padding: object) -> tuple[list[int], bool]:
    """(top, bottom, left, right) and whether the padding is ``"same"`` instead."""
    if type(padding) is int and padding >= 0:  # the common case, without the checks' cost
        return [padding] * 4, False
    form = check_padding(padding)  # the form alone: no input size is needed
    if isinstance(form, str):
        return [0, 0, 0, 0], form == "same"
    (top, bottom), (left, right) = form
    return [top, bottom, left, right], False


def _input(tensor: object) -> torch.Tensor:
    if (type(tensor) is torch.Tensor and tensor.is_cpu and tensor.layout is torch.strided
            and tensor.dtype in FLOAT_DTYPES):
        return tensor  # the common case in a few attribute reads
    return check_tensor(tensor, "input", devices="fake")


def _channels_first(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """A tensor in ``layout`` as the NCHW-shaped view the operators take."""
    if check_layout(layout) == "NHWC" and tensor.dim() in (3, 4):
        return tensor.movedim(-1, -3)
    return tensor


def _in_layout(result, layout: str):
    """An operator's NCHW result (or results) as ``layout`` holds it: ``(N, C)`` as it is."""
    if layout == "NCHW":
        return result
    if isinstance(result, tuple):
        return tuple(_in_layout(r, layout) for r in result)
    return result.movedim(-3, -1) if result.dim() in (3, 4) else result


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
) -> torch.Tensor:
    """2-D convolution (correlation), as ``torch.nn.functional.conv2d``, plus convpool's
    padding forms and ``padding_mode`` (``"zeros"``, ``"replicate"``, ``"reflect"``,
    ``"symmetric"``, ``"circular"``; gradients fold back through the padding).

    ``input`` is ``(N, C_in, H, W)``, ``(C_in, H, W)`` or a picture ``(H, W)`` with a
    ``(kh, kw)`` weight; ``weight`` is ``(C_out, C_in // groups, kh, kw)``; with
    ``layout="NHWC"``, ``input`` and the result are channels-last.
    """
    padding_sides, same = _padding(padding)
    return _in_layout(
        call("conv2d", _channels_first(_input(input), layout), weight, bias,
             _pair(stride, "stride"), padding_sides, same, _pair(dilation, "dilation"),
             positive_int(groups, "groups"), padding_mode), layout)


def conv_transpose2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d`` (weight
    ``(C_in, C_out // groups, kh, kw)``), computed by :func:`convpool.conv_transpose2d`
    and differentiated by its gradient functions. ``padding`` may also be per side,
    ``((top, bottom), (left, right))``.
    """
    if isinstance(padding, str):
        raise ValueError(
            f"padding: a transposed convolution takes an int, (ph, pw) or "
            f"((top, bottom), (left, right)), got {padding!r}"
        )
    padding_sides, _ = _padding(padding)
    if isinstance(output_padding, int) and not isinstance(output_padding, bool):
        output_padding = (output_padding, output_padding)
    output_padding = [int(p) for p in output_padding]
    if len(output_padding) != 2:
        raise ValueError(f"output_padding: expected an int or a pair, got {output_padding!r}")
    return call("conv_transpose2d", _input(input), weight, bias, _pair(stride, "stride"),
                                  padding_sides, output_padding, _pair(dilation, "dilation"),
                                  positive_int(groups, "groups"))


def max_pool2d(
    input: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    layout: str = "NCHW",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d`` (indices are int64 into each
    ``H * W`` plane), plus ``"same"`` and per-side padding. Ties go to the first maximum;
    a window holding NaN gives NaN. ``layout="NHWC"``: channels-last tensors in and out
    (indices too)."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding_sides, same = _padding(padding)
    args = (_channels_first(_input(input), layout), kernel, stride, padding_sides, same,
            _pair(dilation, "dilation"), bool(ceil_mode))
    # the indices cost an extra output: computed when asked for or when a backward pass
    # will need them (the plain operator finds them again if differentiated after all)
    if return_indices or (torch.is_grad_enabled() and input.requires_grad):
        y, indices = _in_layout(call("max_pool2d_with_indices", *args), layout)
        return (y, indices) if return_indices else y
    return _in_layout(call("max_pool2d", *args), layout)


def avg_pool2d(
    input: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: Padding = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    layout: str = "NCHW",
) -> torch.Tensor:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``, plus ``"same"`` and
    per-side padding; ``layout`` as :func:`max_pool2d`."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding_sides, same = _padding(padding)
    return _in_layout(
        call("avg_pool2d", _channels_first(_input(input), layout), kernel, stride,
             padding_sides, same, bool(ceil_mode), bool(count_include_pad), divisor_override),
        layout)


def channel_pool(input: torch.Tensor, size: int, mode: str = "max") -> torch.Tensor:
    """Max or mean over groups of ``size`` consecutive channels (maxout):
    ``(N, C, H, W) -> (N, C // size, H, W)``."""
    return call("channel_pool", _input(input), positive_int(size, "size"), mode)


def global_avg_pool2d(input: torch.Tensor, keepdims: bool = False,
                      layout: str = "NCHW") -> torch.Tensor:
    """Mean of each plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    (``(N, 1, 1, C)`` with ``layout="NHWC"``, where ``input`` is ``(N, H, W, C)``)."""
    return _in_layout(call("global_avg_pool2d", _channels_first(_input(input), layout),
                           bool(keepdims)), layout)


def global_max_pool2d(input: torch.Tensor, keepdims: bool = False,
                      layout: str = "NCHW") -> torch.Tensor:
    """Maximum of each plane, as :func:`global_avg_pool2d`."""
    return _in_layout(call("global_max_pool2d", _channels_first(_input(input), layout),
                           bool(keepdims)), layout)


def _adaptive_size(input: torch.Tensor, output_size: object) -> list[int]:
    """The output size with None ("keep that axis") resolved against ``input``."""
    if isinstance(output_size, torch.Size):
        output_size = tuple(output_size)
    if input.dim() not in (3, 4):
        raise ValueError(f"input: expected (N, C, H, W) or (C, H, W), got shape "
                         f"{tuple(input.shape)}")
    return list(_adaptive_output_size(output_size, tuple(input.shape[-2:])))


def adaptive_avg_pool2d(input: torch.Tensor, output_size: int | tuple) -> torch.Tensor:
    """Adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``: output
    ``i`` averages rows ``floor(i * H / out)`` to ``ceil((i + 1) * H / out)``, columns
    likewise; ``output_size`` an int, a pair, or a pair with None (keep that axis)."""
    input = _input(input)
    return call("adaptive_avg_pool2d", input, _adaptive_size(input, output_size))


def adaptive_max_pool2d(input: torch.Tensor, output_size: int | tuple,
                        return_indices: bool = False
                        ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d`` (indices int64
    into each ``H * W`` plane: the first maximum, or the first NaN)."""
    input = _input(input)
    y, indices = call("adaptive_max_pool2d", input, _adaptive_size(input, output_size))
    return (y, indices) if return_indices else y


def max_unpool2d(
    input: torch.Tensor,
    indices: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    output_size: list[int] | tuple[int, ...] | None = None,
) -> torch.Tensor:
    """Max unpooling, as ``torch.nn.functional.max_unpool2d``: each value goes to the
    position its (int64) index names in its output plane, zeros elsewhere. Values whose
    indices repeat (overlapping pooling windows) are added; PyTorch keeps one of them.
    ``output_size`` (its last two entries) must lie within a stride of the default size."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    if type(padding) is int:
        padding = [padding, padding]
    if output_size is not None:
        output_size = [int(s) for s in output_size][-2:]
    return call("max_unpool2d", _input(input), indices, kernel, stride, list(padding),
                output_size)
