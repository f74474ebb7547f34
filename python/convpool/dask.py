"""Run a net or a kernel over a ``dask.array`` too big for one machine's memory or time.

``apply(model_or_function, array)`` chooses by how ``array`` is chunked:

- only along the batch axis N: ``map_blocks``, each block of samples on its own;
- along H and W (one huge picture): ``map_overlap`` with a halo computed from the net's
  receptive field (see :meth:`convpool.nn.Sequential.summary`), each block cropped to the
  output pixels it owns, so the stitched result equals the whole picture computed in
  memory, padding at the picture's true border and strided or pooled layers included.
  Circular padding wraps the picture around: the blocks on its border then take their
  halo from the opposite border (dask's periodic boundary).

The result has the dtype ``model.forward`` gives for the array's dtype (a float32 net on a
float64 picture computes in float64, as in memory).

Needs dask (``pip install convpool[dask]``); ``import convpool`` never loads it. Any
dask scheduler runs the graph: threads, processes or a ``dask.distributed`` cluster.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .nn.layer import Layer
from .nn.receptive_field import ReceptiveField
from .nn.sequential import Sequential
from .nn.summary import summarize

__all__ = ["PicturePlan", "apply", "plan_picture"]


@dataclass(frozen=True)
class PicturePlan:
    """How a picture chunked along H and W is computed exactly, per axis ``(H, W)``.

    ``stride``: the net's total stride (input pixels per output pixel); ``halo``:
    ``(before, after)`` input pixels each block borrows from its neighbours;
    ``output_chunks``: the output pixels each input chunk owns; ``crops``: per chunk,
    the ``(start, stop)`` of those pixels in the block's own output; ``periodic``:
    whether the blocks on the picture's border take their halo from the opposite border
    (circular padding along a chunked axis) rather than having none there.
    """

    stride: tuple[int, int]
    halo: tuple[tuple[int, int], tuple[int, int]]
    output_channels: int
    output_chunks: tuple[tuple[int, ...], tuple[int, ...]]
    crops: tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]
    periodic: tuple[bool, bool] = (False, False)


def _leaves(model: Layer) -> list[Layer]:
    if isinstance(model, Sequential):
        return [leaf for layer in model.layers for leaf in _leaves(layer)]
    return [model]


def _leaf_shapes(model: Layer, shape: tuple[int, int, int]):
    """``(leaf, its input shape, its output shape)`` for each leaf, shapes ``(C, H, W)``."""
    for leaf in _leaves(model):
        output = tuple(leaf.output_shape(shape))
        yield leaf, shape, output
        shape = output


def _padding_chain(model: Layer, shape: tuple[int, int, int]) -> list:
    """Each window layer's resolved padding for an input of ``shape`` (C, H, W)."""
    return [leaf._sides(shape[1:]) for leaf, shape, _ in _leaf_shapes(model, shape)
            if hasattr(leaf, "_sides")]


def _breaks_wraparound(leaf: Layer, shape: tuple[int, int, int],
                       output: tuple[int, ...], axis: int) -> str | None:
    """Why ``leaf`` does not compute the same on the picture as on the picture repeated
    periodically along ``axis`` (None when it does).

    A window layer does when it maps the period exactly (output size = input size /
    stride) and its windows read only copies of the picture: circular padding, or no
    padding read at all. A layer without windows must keep each pixel's field (pointwise).
    """
    size, out = shape[1 + axis], output[1 + axis]
    if not hasattr(leaf, "_sides"):
        try:
            pointwise = (out == size and leaf.receptive_field(
                ReceptiveField.of_input(), shape, shape[1:]) == ReceptiveField.of_input())
        except (TypeError, ValueError, NotImplementedError):
            pointwise = False
        return None if pointwise else "it is not a pointwise layer"
    stride = leaf.stride[axis]
    before, _ = leaf._sides(shape[1:])[axis]
    span = leaf.dilation[axis] * (leaf.kernel_size[axis] - 1) + 1
    mode = getattr(leaf, "padding_mode", "zeros")
    if size != out * stride:
        return f"its output size {out} is not its input size {size} / stride {stride}"
    if mode != "circular" and (before or (out - 1) * stride + span > size):
        return f"it pads with padding_mode={mode!r}"
    return None


def _periodic_axes(model: Layer, shape: tuple[int, int, int],
                   chunks: tuple[tuple[int, ...], tuple[int, ...]]) -> tuple[bool, bool]:
    """Per axis (H, W): whether the blocks must wrap around the picture (a layer pads
    circularly and the picture is chunked along that axis); ValueError if wrapping the
    halo around cannot reproduce the whole picture."""
    leaves = list(_leaf_shapes(model, shape))
    if not any(getattr(leaf, "padding_mode", "zeros") == "circular" for leaf, _, _ in leaves):
        return False, False
    periodic = []
    for axis, name in ((0, "H"), (1, "W")):
        if len(chunks[axis]) > 1:
            for index, (leaf, in_shape, out_shape) in enumerate(leaves):
                reason = _breaks_wraparound(leaf, in_shape, out_shape, axis)
                if reason:
                    raise ValueError(
                        f"model_or_function: padding_mode='circular' wraps the picture around, "
                        f"which blocks of a picture chunked along {name} reproduce only if every "
                        f"layer computes the same on the picture repeated periodically; layer "
                        f"{index} ({type(leaf).__name__}) does not: {reason}. Keep {name} in one "
                        f"chunk, or chunk along N only")
        periodic.append(len(chunks[axis]) > 1)
    return periodic[0], periodic[1]


def _axis_plan(axis: str, chunks: tuple[int, ...], stride: int, before: int, after: int,
               out_total: int, periodic: bool
               ) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Output chunks and crops along one axis; ValueError if the chunking cannot be exact."""
    for size in chunks[:-1]:
        if size % stride:
            raise ValueError(
                f"array: chunks along {axis} {chunks} must be multiples of the net's total "
                f"stride {stride} (all but the last), so that every block starts on an output "
                f"pixel; rechunk, e.g. to {max(stride, chunks[0] // stride * stride)}")
    # dask's overlap takes the halo from the next block only, and wants every block
    # at least as large as the deeper side.
    if len(chunks) > 1 and min(chunks) < max(before, after):
        raise ValueError(
            f"array: chunks along {axis} {chunks} are smaller than the halo the net needs "
            f"({before} pixels before, {after} after); use larger chunks")
    output_chunks, crops = [], []
    start = 0
    for index, size in enumerate(chunks):
        last = index == len(chunks) - 1
        first_output = start // stride
        stop_output = out_total if last else min((start + size) // stride, out_total)
        if stop_output <= first_output:
            raise ValueError(
                f"array: chunk {index} along {axis} (pixels {start}..{start + size - 1}) owns "
                f"no output pixel of the net (output size {out_total}, stride {stride}); "
                f"make the last chunk larger")
        # boundary 'none': no halo at the true border; 'periodic': a halo everywhere
        region_start = start - before if periodic else max(0, start - before)
        offset = region_start // stride
        output_chunks.append(stop_output - first_output)
        crops.append((first_output - offset, stop_output - offset))
        start += size
    return tuple(output_chunks), tuple(crops)


def plan_picture(model: Layer, shape: tuple[int, int, int],
                 chunks: tuple[tuple[int, ...], tuple[int, ...]]) -> PicturePlan:
    """The :class:`PicturePlan` for running ``model`` over pictures of ``shape``
    ``(C, H, W)`` chunked as ``chunks`` ``(H chunks, W chunks)``.

    The halo comes from the receptive field of the net's output (size, jump = total
    stride, start): output pixel ``o`` sees input pixels ``start + o * jump`` +- ``(size
    - 1) / 2``. Raises ValueError if the net is not fully convolutional, if a chunking
    cannot be exact (chunks not multiples of the stride, a chunk smaller than the halo
    or owning no output), or if a layer's padding depends on the picture's size
    ('same' with a stride), which blocks of other sizes would change.

    Every padding mode is exact. Zeros, replicate, reflect and symmetric read only pixels
    near the picture's border, which the border blocks hold: they get no halo there and
    pad as the whole picture does. Circular padding reads the opposite border: along a
    chunked axis the blocks then take their halo from there (``periodic``), which is
    exact when every layer computes the same on the picture repeated periodically (each
    window layer pads circularly or reads no padding, and its output size is its input
    size / its stride); otherwise ValueError.
    """
    summary = summarize(model, tuple(shape))
    field = summary.receptive_field
    if field is None or field.is_global or len(summary.output_shape) != 3:
        raise ValueError(
            "model_or_function: a picture chunked along H and W needs a fully convolutional "
            f"net (convolution, pooling, activations; output (C, H, W)), got output shape "
            f"{summary.output_shape}")
    out_channels, *out_size = summary.output_shape
    periodic = _periodic_axes(model, tuple(shape), chunks)
    halo, stride, output_chunks, crops = [], [], [], []
    for axis, name in ((0, "H"), (1, "W")):
        jump = field.jump[axis]
        reach = (field.size[axis] - 1) / 2
        before = max(0, math.ceil(reach - field.start[axis]))
        before = -(-before // jump) * jump  # a block's region must start on the stride grid
        after = max(0, math.ceil(field.start[axis] + reach + 1 - jump))
        if periodic[axis]:  # dask wraps a halo around only when it is the same both sides
            before = after = -(-max(before, after) // jump) * jump
        axis_chunks, axis_crops = _axis_plan(name, tuple(chunks[axis]), jump, before, after,
                                             out_size[axis], periodic[axis])
        halo.append((before, after))
        stride.append(jump)
        output_chunks.append(axis_chunks)
        crops.append(axis_crops)
    whole = _padding_chain(model, tuple(shape))
    for height in _region_sizes(chunks[0], *halo[0], periodic[0]):
        for width in _region_sizes(chunks[1], *halo[1], periodic[1]):
            if _padding_chain(model, (shape[0], height, width)) != whole:
                raise ValueError(
                    "model_or_function: a layer's padding depends on the picture's size "
                    "('same' with a stride), so blocks cannot reproduce the whole picture; "
                    "use explicit integer padding")
    return PicturePlan(stride=(stride[0], stride[1]), halo=(halo[0], halo[1]),
                       output_channels=out_channels,
                       output_chunks=(output_chunks[0], output_chunks[1]),
                       crops=(crops[0], crops[1]), periodic=periodic)


def _region_sizes(chunks: tuple[int, ...], before: int, after: int, periodic: bool) -> set[int]:
    """Sizes of the blocks with their halos (none at the picture's ends unless periodic)."""
    sizes = set()
    for index, size in enumerate(chunks):
        sizes.add(size + (before if index > 0 or periodic else 0)
                  + (after if index < len(chunks) - 1 or periodic else 0))
    return sizes


class _ModelRunner:
    """A copy of the net in evaluation mode, as sent to the workers, applied to blocks
    as ``model.forward`` would be applied to the whole array (same dtypes)."""

    def __init__(self, model: Layer) -> None:
        # A layer's array attributes are what its last forward saved for backward (the
        # parameters are Parameter objects): left out of the copy, they would otherwise
        # travel with every task (the whole picture, after an in-memory run).
        saved = {id(value): None for leaf in _leaves(model) for value in vars(leaf).values()
                 if isinstance(value, np.ndarray)}
        self.model = copy.deepcopy(model, saved).eval()
        for parameter in self.model.parameters():
            parameter.data  # noqa: B018 - materialised, so no initialiser needs pickling

    def output_dtype(self, dtype: np.dtype, sample_shape: tuple[int, ...]) -> np.dtype:
        """The dtype of ``model.forward`` for samples of ``sample_shape`` in ``dtype``:
        run on an empty batch of them, on a copy (so no saved array joins the tasks)."""
        probe = np.zeros((0, *sample_shape), dtype)
        return np.asarray(copy.deepcopy(self.model).forward(probe)).dtype

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return self.model.forward(np.ascontiguousarray(block))


def _run_picture_block(block: np.ndarray, runner: _ModelRunner, crops,
                       block_id=None) -> np.ndarray:
    output = runner(block)
    (top, bottom), (left, right) = crops[0][block_id[2]], crops[1][block_id[3]]
    return output[:, :, top:bottom, left:right]


def _run_function(block: np.ndarray, function: Callable) -> np.ndarray:
    return np.asarray(function(block))


def apply(model_or_function: Layer | Callable[[np.ndarray], np.ndarray], array):
    """``model_or_function`` over a ``dask.array``, lazily: returns a ``dask.array``.

    Args:
        model_or_function: a :class:`~convpool.nn.Layer` (e.g. a ``Sequential``), run in
            evaluation mode on a copy (the given net is not changed), or a function of
            one NumPy batch such as ``functools.partial(convpool.conv2d,
            weight=kernel, padding="same")``.
        array: ``(N, C, H, W)`` or one grey picture ``(H, W)`` (treated as
            ``(1, 1, H, W)``; the result is ``(H', W')`` for a one-channel output,
            else ``(C', H', W')``). Chunks along C are merged.

    Chunked only along N, each block runs as it is (``map_blocks``). Chunked along H or
    W, ``model_or_function`` must be a fully convolutional net; each block gets the
    halo of :func:`plan_picture` (``map_overlap``, no halo at the picture's true
    border, where the net pads as it does for the whole picture, except that circular
    padding wraps the halo around) and keeps the output pixels it owns. Chunks along H
    and W must then be multiples of the net's total stride (all but the last); a
    chunking or a net that cannot give the in-memory result raises ValueError.

    The result's dtype is the one ``model.forward`` gives for ``array``'s dtype (for a
    function, the one it returns for a sample).
    """
    import dask.array as da

    if not isinstance(array, da.Array):
        raise TypeError(f"array: expected a dask.array.Array, got {type(array).__name__}")
    is_layer = isinstance(model_or_function, Layer)
    if not is_layer and not callable(model_or_function):
        raise TypeError(
            f"model_or_function: expected a convpool.nn.Layer or a function, got "
            f"{type(model_or_function).__name__}")
    if array.ndim not in (2, 4):
        raise ValueError(
            f"array: expected (N, C, H, W) or one picture (H, W), got shape {array.shape}")
    if array.dtype.kind not in "uif":
        raise TypeError(f"array: must hold real numbers, got dtype {array.dtype}")
    picture = array.ndim == 2
    x = array[None, None] if picture else array
    if len(x.chunks[1]) > 1:
        x = x.rechunk({1: -1})
    spatially_chunked = len(x.chunks[2]) > 1 or len(x.chunks[3]) > 1

    if is_layer:
        runner = _ModelRunner(model_or_function)
        model = runner.model
    if spatially_chunked:
        if not is_layer:
            raise ValueError(
                "model_or_function: a function has no receptive field to size the halo; "
                "chunk the array along N only, or wrap the kernel in a layer (e.g. "
                "nn.Conv2d with its weight set)")
        plan = plan_picture(model, x.shape[1:], (x.chunks[2], x.chunks[3]))
        block = min(_region_sizes(x.chunks[2], *plan.halo[0], plan.periodic[0])), min(
            _region_sizes(x.chunks[3], *plan.halo[1], plan.periodic[1]))
        dtype = runner.output_dtype(x.dtype, (x.shape[1], *block))
        # a wrapped halo is one depth for both sides (dask's periodic boundary)
        depth = {2 + axis: plan.halo[axis][0] if plan.periodic[axis] else plan.halo[axis]
                 for axis in (0, 1)}
        boundary = {2 + axis: "periodic" if plan.periodic[axis] else "none" for axis in (0, 1)}
        result = da.map_overlap(
            functools.partial(_run_picture_block, runner=runner, crops=plan.crops),
            x, depth={0: 0, 1: 0, **depth}, boundary={0: "none", 1: "none", **boundary},
            trim=False, allow_rechunk=False,
            dtype=dtype, meta=np.empty((0, 0, 0, 0), dtype),
            chunks=(x.chunks[0], (plan.output_channels,), *plan.output_chunks))
    elif is_layer:
        out_shape = model.output_shape(tuple(x.shape[1:]))
        result = _map_batches(da, runner, x, out_shape,
                              runner.output_dtype(x.dtype, tuple(x.shape[1:])))
    else:
        # A function's output shape and dtype: found by running it on one sample.
        probe = _run_function(np.zeros((1, *x.shape[1:]), x.dtype), model_or_function)
        result = _map_batches(da, functools.partial(_run_function, function=model_or_function),
                              x, probe.shape[1:], probe.dtype)
    if picture:
        result = result[0, 0] if result.shape[1] == 1 else result[0]
    return result


def _map_batches(da, function, x, out_shape: tuple[int, ...], dtype):
    """``function`` over blocks of whole samples; ``out_shape`` is one sample's output."""
    chunks = (x.chunks[0], *((size,) for size in out_shape))
    dropped = list(range(1 + len(out_shape), 4))
    new = list(range(4, 1 + len(out_shape)))
    return da.map_blocks(function, x, dtype=dtype, chunks=chunks, drop_axis=dropped,
                         new_axis=new, meta=np.empty((0,) * len(chunks), dtype))
