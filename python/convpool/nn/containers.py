"""Containers for nets that are not a chain: a residual block (branches summed) and a
concatenation of branches along the channels."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

import numpy as np

from ._geometry import spatial
from .inference import is_inference_mode
from .layer import Layer
from .receptive_field import ReceptiveField


def _tied_to_the_picture(layer: Layer) -> bool:
    """Whether a layer inside ``layer`` computes differently on a block than on the whole
    picture however wide the halo: circular padding (wraps to the opposite border) or
    padding resolved from the input's size ('same' with a stride)."""
    for _, inner in layer.named_layers():
        padding = getattr(inner, "padding", None)
        if getattr(inner, "padding_mode", "zeros") == "circular" or (
                isinstance(padding, str) and padding != "valid"
                and getattr(inner, "stride", (1, 1)) != (1, 1)):
            return True
    return False


def _union(container: Layer, fields: list[ReceptiveField | None], net_input_size
           ) -> ReceptiveField | None:
    """The branches' fields joined. When a layer inside is tied to the whole picture (see
    :func:`_tied_to_the_picture`) the field gets the picture as its period: summaries
    still show it, and ``convpool.dask`` (which sees a container as one layer) refuses to
    tile the net rather than compute its blocks wrongly."""
    result = fields[0]
    for field in fields[1:]:
        if result is None or field is None:
            return None
        result = result.union(field, net_input_size)
    if result is not None and not result.is_global and _tied_to_the_picture(container):
        result = replace(result, period=tuple(net_input_size))
    return result


class Residual(Layer):
    """``activation(body(x) + shortcut(x))``: a residual block (He et al.), the shortcut
    being the identity when None (then ``body`` must keep the shape).

    The children are named ``body_name`` and ``shortcut_name``; with ``body_name=None``
    the body's own children appear directly under the block, so that a body
    ``Sequential({"conv1": ..., "bn1": ..., ...})`` with ``shortcut_name="downsample"``
    gives torchvision's ``conv1.weight`` ... ``downsample.0.weight`` keys.
    """

    def __init__(self, body: Layer, shortcut: Layer | None = None,
                 activation: Layer | None = None, *, body_name: str | None = "body",
                 shortcut_name: str = "shortcut", activation_name: str = "activation") -> None:
        super().__init__()
        for name, value in (("body", body), ("shortcut", shortcut),
                            ("activation", activation)):
            if value is not None and not isinstance(value, Layer):
                raise TypeError(f"Residual: {name} must be a Layer, got {type(value).__name__}")
        if body is None:
            raise TypeError("Residual: body must be a Layer, got None")
        self._body, self._shortcut, self._activation = body, shortcut, activation
        if body_name is None:
            for name, child in body.named_children():
                setattr(self, name, child)
        else:
            setattr(self, body_name, body)
        if shortcut is not None:
            setattr(self, shortcut_name, shortcut)
        if activation is not None and activation_name not in self._children:
            setattr(self, activation_name, activation)

    def use_kernels(self, module) -> Residual:
        super().use_kernels(module)
        for part in (self._body, self._shortcut, self._activation):
            if part is not None:
                part.use_kernels(module)
        return self

    def train(self, mode: bool = True) -> Residual:
        super().train(mode)
        for part in (self._body, self._shortcut, self._activation):
            if part is not None:
                part.train(mode)
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        main = self._body.forward(x)
        other = x if self._shortcut is None else self._shortcut.forward(x)
        if main.shape != other.shape:
            raise ValueError(f"Residual: body output {main.shape} and shortcut output "
                             f"{other.shape} differ")
        if (is_inference_mode() and main.flags.writeable
                and main.dtype == np.result_type(main, other)
                and not np.may_share_memory(main, x) and not np.may_share_memory(main, other)):
            main += other  # a fresh array nothing keeps: sum in place, no third feature map
            y = main
        else:
            y = main + other
        return y if self._activation is None else self._activation.forward(y)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        grad = grad_output if self._activation is None else self._activation.backward(
            grad_output)
        through_body = self._body.backward(grad, needs_input_grad=needs_input_grad)
        if self._shortcut is None:
            through_shortcut = grad
        else:
            through_shortcut = self._shortcut.backward(grad, needs_input_grad=needs_input_grad)
        if not needs_input_grad:
            return None
        return through_body + through_shortcut

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        main = self._body.output_shape(input_shape)
        other = (tuple(input_shape) if self._shortcut is None
                 else self._shortcut.output_shape(input_shape))
        if tuple(main) != tuple(other):
            raise ValueError(f"Residual: body output {tuple(main)} and shortcut output "
                             f"{tuple(other)} differ for input {tuple(input_shape)}")
        return main if self._activation is None else self._activation.output_shape(main)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField | None:
        main = self._body.receptive_field(field, input_shape, net_input_size)
        other = (field if self._shortcut is None
                 else self._shortcut.receptive_field(field, input_shape, net_input_size))
        result = _union(self, [main, other], net_input_size)
        if result is not None and self._activation is not None:
            result = self._activation.receptive_field(
                result, self._body.output_shape(input_shape), net_input_size)
        return result


class Concat(Layer):
    """Branches applied to the same input, their outputs concatenated along the channels
    (Inception, DenseNet, U-Net skip connections): ``Concat(a, b, ...)`` or
    ``Concat({"name": a, ...})``. Every branch must give the same H and W."""

    def __init__(self, *branches: Layer | Mapping[str, Layer]) -> None:
        super().__init__()
        if len(branches) == 1 and isinstance(branches[0], Mapping):
            named = list(branches[0].items())
        else:
            named = [(str(index), branch) for index, branch in enumerate(branches)]
        if not named:
            raise ValueError("Concat: needs at least one branch")
        for name, branch in named:
            if not isinstance(branch, Layer):
                raise TypeError(f"Concat: branch {name!r} is not a Layer, got "
                                f"{type(branch).__name__}")
            setattr(self, name, branch)
        self._channels: list[int] | None = None

    def branches(self) -> Iterator[Layer]:
        return self.children()

    def forward(self, x: np.ndarray) -> np.ndarray:
        outputs = [branch.forward(x) for branch in self.branches()]
        sizes = {out.shape[:-3] + out.shape[-2:] for out in outputs}
        if len(sizes) != 1:
            raise ValueError(f"Concat: branch outputs {[o.shape for o in outputs]} differ "
                             f"in batch size, H or W")
        self._channels = self._keep([out.shape[-3] for out in outputs])
        return np.concatenate(outputs, axis=-3)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._channels is None:
            raise RuntimeError("Concat.backward called before forward, or after a forward "
                               "in inference_mode")
        cuts = np.cumsum(self._channels)[:-1]
        parts = np.split(np.asarray(grad_output), cuts, axis=-3)
        total = None
        for branch, part in zip(self.branches(), parts, strict=True):
            grad = branch.backward(np.ascontiguousarray(part), needs_input_grad=needs_input_grad)
            if needs_input_grad:
                total = grad if total is None else total + grad
        return total

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        shapes = [tuple(b.output_shape(input_shape)) for b in self.branches()]
        for shape in shapes:
            spatial("Concat", shape)
        if len({shape[1:] for shape in shapes}) != 1:
            raise ValueError(f"Concat: branch outputs {shapes} differ in H or W")
        return (sum(shape[0] for shape in shapes), *shapes[0][1:])

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField | None:
        return _union(self, [b.receptive_field(field, input_shape, net_input_size)
                             for b in self.branches()], net_input_size)
