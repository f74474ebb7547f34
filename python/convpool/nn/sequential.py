"""Sequential: layers applied one after the other."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from .inference import is_inference_mode
from .layer import Layer


class Sequential(Layer):
    """``Sequential(*layers)`` or ``Sequential({"name": layer, ...})``: ``forward`` chains
    the layers, ``backward`` runs them in reverse. Layers are named ``"0"``, ``"1"``...
    (or by the given names), so parameters are named ``"<name>.<parameter>"`` as in
    ``torch.nn.Sequential`` and a PyTorch state dict of the same architecture loads as
    it is.

    Indexing gives a layer (by position, or by name with a string); slicing gives a
    Sequential sharing the same layers under the same names (e.g. ``model[:-1]``, the
    net without its final Softmax).

    Inside :func:`~convpool.nn.inference_mode`, a convolution followed by a batch norm
    in evaluation mode runs as one convolution with the batch norm folded into its
    weights and bias (exact: both are affine per output channel).
    """

    is_chain = True

    def __init__(self, *layers: Layer | Mapping[str, Layer]) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            named = list(layers[0].items())
        else:
            named = [(str(index), layer) for index, layer in enumerate(layers)]
        for name, layer in named:
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential: layer {name!r} is not a Layer, got {type(layer).__name__}")
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"Sequential: layer names must be non-empty strings without "
                                 f"'.', got {name!r}")
            setattr(self, name, layer)

    @property
    def layers(self) -> list[Layer]:
        """The layers in order."""
        return list(self._children.values())

    # --- container --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: int | str | slice) -> Layer:
        if isinstance(index, slice):
            return Sequential(dict(list(self._children.items())[index]))
        if isinstance(index, str):
            return self._children[index]
        return self.layers[index]

    def append(self, layer: Layer) -> Sequential:
        """Add a layer at the end (named by its position); returns the Sequential."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.append: expected a Layer, got {type(layer).__name__}")
        setattr(self, str(len(self)), layer)
        return self

    # --- computation ------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        layers = self.layers
        fold = is_inference_mode()
        position = 0
        while position < len(layers):
            layer = layers[position]
            following = layers[position + 1] if position + 1 < len(layers) else None
            if fold and getattr(layer, "folds_into", None) and following is not None and \
                    layer.folds_into(following):
                x = layer.forward_folded(x, following)
                position += 2
                continue
            x = layer.forward(x)
            position += 1
        return x

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        grad = grad_output
        layers = self.layers
        last = len(layers) - 1
        for position, layer in enumerate(reversed(layers)):
            first_layer = position == last
            grad = layer.backward(grad, needs_input_grad=needs_input_grad or not first_layer)
        return grad

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def receptive_field(self, field, input_shape, net_input_size):
        shape = tuple(input_shape)
        for layer in self.layers:
            if field is None:
                return None
            field = layer.receptive_field(field, shape, net_input_size)
            shape = layer.output_shape(shape)
        return field
