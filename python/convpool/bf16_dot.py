"""bfloat16 convolution forward on the CPU's AVX512_BF16 dot products (``bf16_dot``,
csrc/kernels/conv_bf16_dot.cpp), for ``conv2d`` and ``conv3d`` whose ``x`` and ``weight``
are both ``ml_dtypes.bfloat16``.

The operands stay 16-bit: pairs of input channels are interleaved into 32-bit words (the
input padded once, zeros or the padding mode, in that form), each ``vdpbf16ps`` adds two
exact bf16 products per output channel to a float32 accumulator, and the float32 result
is rounded to bfloat16 once, as the float32 path's is. It is off unless :data:`enabled`
is set (measured slower than the float32 path here). Where the kernel does not serve a
call (no AVX512_BF16, SIMD level below AVX-512, channels-last, ``out=``, unbatched
shapes, non-finite weights meeting zero padding) the call runs the float32 path
unchanged (:mod:`convpool.dtypes`). One difference the hardware imposes: the dot product
treats bfloat16 subnormals (below 1.2e-38) as zero.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from . import _core
from .geometry import ConvGeometry, conv_geometry

# numpy.pad's name of each padding mode that copies input voxels
_NUMPY_PAD_MODES = {"replicate": "edge", "reflect": "reflect", "symmetric": "symmetric",
                    "circular": "wrap"}
_LANES = 16  # output channels per vector

enabled = False
"""Whether bfloat16 convolutions use the dot-product kernel. Off by default: on the
Sapphire Rapids machine of the project's measurements (loaded, 1 thread) the kernel ran at
about half the speed of the float32 path on widened copies (Winograd, blocked, direct3d
kernels), so a bfloat16 call is faster without it; set ``convpool.bf16_dot.enabled =
True`` to use it (the tests do)."""


def _is_bfloat16(array: object) -> bool:
    return (isinstance(array, np.ndarray) and array.dtype.kind == "V"
            and array.dtype.name == "bfloat16")


def _input_pairs(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray | None:
    """``x`` as ``(N, groups * pairs, D, H, W)`` uint32 channel pairs, padded."""
    n, c, *spatial = geometry.input_shape
    g = geometry.groups
    c_in_g = c // g
    pairs = (c_in_g + 1) // 2
    bits = np.ascontiguousarray(x).view(np.uint16).reshape(n, g, c_in_g, *spatial)
    if 2 * pairs != c_in_g:
        bits = np.pad(bits, ((0, 0), (0, 0), (0, 1)) + ((0, 0),) * len(spatial))
    bits = bits.reshape(n, g, pairs, 2, *spatial)
    sides = ((0, 0),) * (3 - len(spatial)) + tuple(geometry.sides)
    zeros = geometry.padding_mode == "zeros"
    padded = [size + before + after for size, (before, after) in
              zip((1,) * (3 - len(spatial)) + tuple(spatial), sides, strict=True)]
    # whole planes at a time (a word is channel 2p in its low half, 2p + 1 in its high)
    low = bits[:, :, :, 0].reshape(n, g, pairs, *([1] * (3 - len(spatial))), *spatial)
    high = bits[:, :, :, 1].reshape(low.shape)
    if zeros:
        words = np.zeros((n, g, pairs, *padded), dtype=np.uint32)
        interior = words[(slice(None),) * 3 + tuple(slice(before, before + size) for
                                                     (before, _), size in
                                                     zip(sides, low.shape[3:], strict=True))]
        np.left_shift(high, 16, out=interior, dtype=np.uint32)
        np.bitwise_or(interior, low, out=interior)
        return words.reshape(n, g * pairs, *padded)
    words = np.left_shift(high, 16, dtype=np.uint32)
    np.bitwise_or(words, low, out=words)
    words = words.reshape(n, g * pairs, *low.shape[3:])
    if any(max(side) > size for side, size in zip(geometry.sides, spatial, strict=True)):
        return None
    return np.pad(words, ((0, 0), (0, 0), *sides), mode=_NUMPY_PAD_MODES[geometry.padding_mode])


def _weight_pairs(weight: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The weights as ``[group][block of 16 output channels][pair][tap][16]`` uint32
    channel pairs, zeros past the last channel of a group."""
    c_out, c_in_g, *kernel = geometry.weight_shape
    g = geometry.groups
    c_out_g = c_out // g
    pairs = (c_in_g + 1) // 2
    blocks = -(-c_out_g // _LANES)
    taps = int(np.prod(kernel))
    bits = np.zeros((g, blocks * _LANES, 2 * pairs, taps), dtype=np.uint16)
    bits[:, :c_out_g, :c_in_g] = np.ascontiguousarray(weight).view(np.uint16).reshape(
        g, c_out_g, c_in_g, taps)
    bits = bits.reshape(g, blocks, _LANES, pairs, 2, taps).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(bits).view(np.uint32).reshape(-1)


def forward(x: np.ndarray, weight: np.ndarray, bias: object, geometry: ConvGeometry
            ) -> np.ndarray | None:
    """The bfloat16 convolution through the dot-product kernel (batched operands), or
    None where it does not serve the call."""
    if not enabled:
        return None
    c_out, c_in_g, *kernel = geometry.weight_shape
    if min(*geometry.input_shape, *geometry.output_shape) < 1:
        return None
    if geometry.padding_mode == "zeros" and not np.isfinite(weight.astype(np.float32)).all():
        return None  # 0 * inf in the padding: the float32 path skips those terms
    pairs = (c_in_g + 1) // 2
    extra = 3 - geometry.rank
    weight_shape = [c_out, pairs, *([1] * extra), *kernel]
    triples = dict(groups=geometry.groups, stride=(1,) * extra + tuple(geometry.stride),
                   dilation=(1,) * extra + tuple(geometry.dilation))
    n, c_in, *spatial = geometry.input_shape
    padded = [1] * extra + [size + before + after
                            for size, (before, after) in zip(spatial, geometry.sides, strict=True)]
    out_shape = [n, c_out, *([1] * extra), *geometry.output_shape[2:]]
    if not _core.conv3d_supporting("conv_bf16", [n, geometry.groups * pairs, *padded],
                                   weight_shape, out_shape, pad_before=(0, 0, 0),
                                   pad_after=(0, 0, 0), **triples):
        return None
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (c_out,):
            return None
        bias = np.ascontiguousarray(bias, dtype=np.float32)
    x_pairs = _input_pairs(x, geometry)
    if x_pairs is None:
        return None
    y = np.empty(out_shape, dtype=np.float32)
    _core.conv_bf16_forward(x_pairs, _weight_pairs(weight, geometry), weight_shape, bias, y,
                            **triples)
    return y.reshape(geometry.output_shape).astype(x.dtype)  # rounded once


def bfloat16_route(rank: int) -> Callable[[Callable, tuple, dict], np.ndarray | None]:
    """The ``route`` of :func:`convpool.dtypes.half_precision` for ``conv2d`` / ``conv3d``:
    a call with bfloat16 ``x`` and ``weight`` (batched, channels first, no ``out=``) runs
    :func:`forward`; None for every other call, and any the kernel does not serve (which
    then run the float32 path)."""
    signatures: dict[Callable, inspect.Signature] = {}

    def route(function: Callable, args: tuple, kwargs: dict) -> np.ndarray | None:
        if len(args) >= 2 and _is_bfloat16(args[0]) and _is_bfloat16(args[1]):
            signature = signatures.get(function)
            if signature is None:
                signature = signatures[function] = inspect.signature(function)
            return _try(signature, rank, args, kwargs)
        return None

    return route


def _try(signature: inspect.Signature, rank: int, args: tuple, kwargs: dict
         ) -> np.ndarray | None:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None  # the function itself reports it
    bound.apply_defaults()
    a = bound.arguments
    x, weight = a["x"], a["weight"]
    if (x.ndim != rank + 2 or weight.ndim != rank + 2 or not x.flags.c_contiguous
            or a.get("out") is not None
            or a.get("layout", "NCHW") != "NCHW"):
        return None
    try:
        geometry = conv_geometry(x.shape, weight.shape, a["stride"], a["padding"],
                                 a["dilation"], a["groups"], a["padding_mode"], rank=rank)
    except (TypeError, ValueError):
        return None  # the function itself reports it
    return forward(x, weight, a["bias"], geometry)
