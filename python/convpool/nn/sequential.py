"""Sequential: layers applied one after the other."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .layer import Layer
from .parameter import Parameter


class Sequential(Layer):
    """``Sequential(*layers)``: ``forward`` chains the layers, ``backward`` runs them in
    reverse. Parameters are named ``"<index>.<name>"`` as in ``torch.nn.Sequential``,
    so a PyTorch state dict of the same architecture loads as it is.

    Indexing gives a layer; slicing gives a Sequential sharing the same layers (e.g.
    ``model[:-1]``, the net without its final Softmax).
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential: argument {index} is not a Layer, got {type(layer).__name__}")
        self.layers: list[Layer] = list(layers)

    # --- container --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> Layer:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def append(self, layer: Layer) -> Sequential:
        """Add a layer at the end; returns the Sequential."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.append: expected a Layer, got {type(layer).__name__}")
        self.layers.append(layer)
        return self

    # --- computation ------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        grad = grad_output
        last = len(self.layers) - 1
        for position, layer in enumerate(reversed(self.layers)):
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
            field = layer.receptive_field(field, shape, net_input_size)
            shape = layer.output_shape(shape)
        return field

    # --- parameters and modes ----------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for index, layer in enumerate(self.layers):
            yield from layer.named_parameters(f"{prefix}{index}.")

    def use_kernels(self, module) -> Sequential:
        """Every layer computes with ``module``'s functions (see :meth:`Layer.use_kernels`)."""
        self.kernels = module
        for layer in self.layers:
            layer.use_kernels(module)
        return self

    def train(self, mode: bool = True) -> Sequential:
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    # --- inspection -------------------------------------------------------------
    def summary(self, input_shape: tuple[int, ...], *, show: bool = True):
        """Print (unless ``show=False``) and return a table of the net for one sample of
        ``input_shape`` (no batch axis: ``(C, H, W)``, or ``(features,)``): per layer the
        output shape, parameter count and receptive field in the input (size, jump,
        start), plus totals. Nothing is allocated: this works for nets too large to
        build. See :class:`convpool.nn.summary.Summary`."""
        from .summary import summarize

        table = summarize(self, input_shape)
        if show:
            print(table)
        return table

    def __repr__(self) -> str:
        if not self.layers:
            return "Sequential()"
        lines = [f"  ({index}): {layer!r}".replace("\n", "\n  ")
                 for index, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
