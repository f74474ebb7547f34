"""Batch normalisation over the channels of ``(N, C, H, W)`` feature maps."""

from __future__ import annotations

import numbers

import numpy as np

from .._args import positive_int
from .init import constant_initializer, float_dtype
from .layer import ShapePreserving, check_input, forward_not_called
from .parameter import Parameter


class BatchNorm2d(ShapePreserving):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel, as
    ``torch.nn.BatchNorm2d``.

    In training mode (or without ``track_running_stats``) ``mean`` and ``var`` are the
    batch's, over N, H and W (``var`` biased), and the running statistics move towards
    them: ``running = (1 - momentum) running + momentum batch`` with the unbiased batch
    variance (``momentum=None``: the cumulative average over ``num_batches_tracked``
    batches). In evaluation mode the running statistics are used. The state dict holds
    ``weight``, ``bias`` (with ``affine``), ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` (with ``track_running_stats``), as PyTorch's.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype: object = np.float32) -> None:
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
            raise ValueError(f"eps: must be a number > 0, got {eps!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(
                momentum, numbers.Real) or not 0 <= momentum <= 1):
            raise ValueError(f"momentum: must be a number in [0, 1] or None, got {momentum!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = float_dtype(dtype)
        shape = (self.num_features,)
        ones, zeros = constant_initializer(1.0), constant_initializer(0.0)
        self.weight = (self._add_parameter(Parameter(shape, dtype, ones, 0, "weight"))
                       if self.affine else None)
        self.bias = (self._add_parameter(Parameter(shape, dtype, zeros, 0, "bias"))
                     if self.affine else None)
        if self.track_running_stats:
            self._add_buffer("running_mean", np.zeros(shape, dtype))
            self._add_buffer("running_var", np.ones(shape, dtype))
            self._add_buffer("num_batches_tracked", np.array(0, np.int64))
        self._saved: tuple | None = None

    @property
    def running_mean(self) -> np.ndarray | None:
        return self._buffers.get("running_mean")

    @property
    def running_var(self) -> np.ndarray | None:
        return self._buffers.get("running_var")

    @property
    def num_batches_tracked(self) -> np.ndarray | None:
        return self._buffers.get("num_batches_tracked")

    def _uses_batch_statistics(self) -> bool:
        return self.training or not self.track_running_stats

    def _dtype(self) -> np.dtype:
        if self.weight is not None:
            return self.weight.dtype
        return self.running_mean.dtype if self.track_running_stats else np.dtype(np.float32)

    def scale_and_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """Per channel ``(scale, shift)`` with ``y = x * scale + shift`` in evaluation
        mode (from the running statistics), computed in float64."""
        scale = 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)
        shift = -self.running_mean.astype(np.float64) * scale
        if self.affine:
            scale = scale * self.weight.data
            shift = shift * self.weight.data + self.bias.data
        return scale, shift

    def foldable(self, channels: int) -> bool:
        """Whether a convolution with ``channels`` outputs can absorb this layer now."""
        return not self._uses_batch_statistics() and channels == self.num_features

    def _check(self, x: object) -> np.ndarray:
        x = check_input(x, "x", (4,), "BatchNorm2d")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d: x has {x.shape[1]} channels (shape {x.shape}), "
                             f"the layer expects num_features={self.num_features}")
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        dtype = self._dtype()
        if not self._uses_batch_statistics():
            scale, shift = self.scale_and_shift()
            self._saved = self._keep(("eval", x))
            y = x * scale.astype(dtype)[:, None, None]
            y += shift.astype(dtype)[:, None, None]
            return y
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if count < 2 and self.training:
            raise ValueError(
                f"BatchNorm2d: training needs more than one value per channel, got input "
                f"shape {x.shape}")
        mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
        centred = x - mean.astype(dtype)[:, None, None]
        var = np.square(centred).mean(axis=(0, 2, 3), dtype=np.float64)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        normalised = centred
        normalised *= inv_std.astype(dtype)[:, None, None]
        if self.training and self.track_running_stats:
            self._update_running(mean, var * count / max(count - 1, 1))
        self._saved = self._keep(("batch", normalised, inv_std.astype(dtype)))
        if not self.affine:
            return normalised.copy() if self._saved is not None else normalised
        y = normalised * self.weight.data[:, None, None]
        y += self.bias.data[:, None, None]
        return y

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        tracked = self._buffers["num_batches_tracked"] + 1
        self._buffers["num_batches_tracked"] = np.array(tracked, np.int64)
        momentum = 1.0 / float(tracked) if self.momentum is None else self.momentum
        for name, value in (("running_mean", mean), ("running_var", unbiased_var)):
            old = self._buffers[name]
            self._buffers[name] = ((1 - momentum) * old + momentum * value).astype(old.dtype)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._saved is None:
            raise forward_not_called(self)
        grad_output = np.asarray(grad_output)
        axes = (0, 2, 3)
        if self._saved[0] == "eval":
            # Running statistics are constants: the layer is affine per channel.
            x = self._saved[1]
            inv_std = 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)
            if self.affine:
                normalised = (x - self.running_mean[:, None, None]) * inv_std.astype(
                    x.dtype)[:, None, None]
                self.weight.accumulate_grad(
                    (grad_output * normalised).sum(axis=axes, dtype=np.float64).astype(
                        self.weight.dtype))
                self.bias.accumulate_grad(
                    grad_output.sum(axis=axes, dtype=np.float64).astype(self.bias.dtype))
            if not needs_input_grad:
                return None
            scale, _ = self.scale_and_shift()
            return grad_output * scale.astype(grad_output.dtype)[:, None, None]
        _, normalised, inv_std = self._saved
        grad_sum = grad_output.sum(axis=axes, dtype=np.float64)
        grad_dot = (grad_output * normalised).sum(axis=axes, dtype=np.float64)
        if self.affine:
            self.weight.accumulate_grad(grad_dot.astype(self.weight.dtype))
            self.bias.accumulate_grad(grad_sum.astype(self.bias.dtype))
        if not needs_input_grad:
            return None
        gamma = self.weight.data.astype(np.float64) if self.affine else np.ones(
            self.num_features)
        count = normalised.size // self.num_features
        dtype = normalised.dtype
        # d/dx of the normalised value: (g - mean(g) - xhat mean(g xhat)) / std, times gamma
        grad = grad_output - (grad_sum / count).astype(dtype)[:, None, None]
        grad -= normalised * (grad_dot / count).astype(dtype)[:, None, None]
        grad *= (gamma * inv_std).astype(dtype)[:, None, None]
        return grad

    def extra_repr(self) -> str:
        text = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        if not self.affine:
            text += ", affine=False"
        if not self.track_running_stats:
            text += ", track_running_stats=False"
        return text
