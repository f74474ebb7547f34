"""Nearest-neighbour up-sampling by integer factors."""

from __future__ import annotations

import numpy as np

from .._args import positive_pair
from ._geometry import spatial
from .layer import Layer, check_input, forward_not_called
from .receptive_field import ReceptiveField


class Upsample(Layer):
    """Repeat each pixel ``scale_factor`` times along H and W, as
    ``torch.nn.Upsample(scale_factor=s, mode="nearest")`` with integer ``s`` (an int or a
    pair). The gradient sums each block of copies."""

    def __init__(self, scale_factor: int | tuple[int, int] = 2, mode: str = "nearest") -> None:
        super().__init__()
        if mode != "nearest":
            raise ValueError(f"mode: only 'nearest' is supported, got {mode!r}")
        self.mode = mode
        self.scale_factor = positive_pair(scale_factor, "scale_factor")
        self._input_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), "Upsample")
        self._input_shape = self._keep(x.shape)
        sy, sx = self.scale_factor
        *lead, h, w = x.shape
        y = np.broadcast_to(x[..., :, None, :, None], (*lead, h, sy, w, sx))
        return y.reshape(*lead, h * sy, w * sx)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._input_shape is None:
            raise forward_not_called(self)
        if not needs_input_grad:
            return None
        sy, sx = self.scale_factor
        *lead, h, w = self._input_shape
        return np.asarray(grad_output).reshape(*lead, h, sy, w, sx).sum(axis=(-3, -1))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, (h, w) = spatial("Upsample", input_shape)
        return channels, h * self.scale_factor[0], w * self.scale_factor[1]

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        return field.through_upsampling(self.scale_factor)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"
