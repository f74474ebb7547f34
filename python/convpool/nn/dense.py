"""The fully connected (dense) layer: ``y = x W^T + b``, computed with NumPy's matmul
(BLAS)."""

from __future__ import annotations

import numpy as np

from .._args import positive_int
from ._blas import blas_threads_for
from .init import Seed, as_generator, draw_seed, float_dtype, uniform_initializer
from .layer import Layer, check_input, forward_not_called
from .parameter import Parameter
from .receptive_field import ReceptiveField


class Dense(Layer):
    """``y = x @ weight.T + bias`` over inputs ``(*, in_features)``, as ``torch.nn.Linear``.

    ``weight`` is ``(out_features, in_features)`` (PyTorch's layout, so its state dicts
    load as they are), initialised ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` as
    PyTorch does, and so is ``bias``. A dense layer is global: every output sees every
    input. Small products run on one BLAS thread, leaving the cores to the
    convolution kernels' threads (see ``convpool.nn._blas``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: object = np.float32, seed: Seed = None) -> None:
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        dtype = float_dtype(dtype)
        generator = as_generator(seed)
        initializer = uniform_initializer(self.in_features)
        self.weight = self._add_parameter(Parameter(
            (self.out_features, self.in_features), dtype, initializer, draw_seed(generator),
            "weight"))
        self.bias = (
            self._add_parameter(Parameter(
                (self.out_features,), dtype, initializer, draw_seed(generator), "bias"))
            if bias else None
        )
        self._input: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", tuple(range(1, 33)), "Dense")
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"Dense: x has {x.shape[-1]} features in its last axis (shape {x.shape}), the "
                f"layer expects in_features={self.in_features}"
            )
        self._input = self._keep(x)
        with blas_threads_for(x.size * self.out_features):
            y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._input
        if x is None:
            raise forward_not_called(self)
        grad_output = np.asarray(grad_output)
        g2 = grad_output.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        with blas_threads_for(x.size * self.out_features):
            self.weight.accumulate_grad(g2.T @ x2)
            if self.bias is not None:
                self.bias.accumulate_grad(g2.sum(axis=0))
            if not needs_input_grad:
                return None
            return grad_output @ self.weight.data

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if not input_shape or input_shape[-1] != self.in_features:
            raise ValueError(
                f"Dense: input shape {tuple(input_shape)} must end in in_features="
                f"{self.in_features}"
            )
        return (*input_shape[:-1], self.out_features)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        return ReceptiveField.whole(net_input_size)

    def extra_repr(self) -> str:
        text = f"{self.in_features}, {self.out_features}"
        return text if self.bias is not None else text + ", bias=False"


Linear = Dense
"""PyTorch's name for :class:`Dense`."""
