"""The base class of every layer: forward/backward, parameters, modes, state."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from types import ModuleType

import numpy as np

from .init import float_dtype
from .parameter import Parameter
from .receptive_field import ReceptiveField


class Layer:
    """A differentiable operation on NumPy arrays.

    ``forward(x)`` (also ``layer(x)``) computes the output and keeps what ``backward``
    needs; ``backward(grad_output)`` returns the gradient of the loss with respect to
    the input of the last ``forward`` and adds each parameter's gradient to its
    ``grad`` (cleared by :meth:`zero_grad`, as in PyTorch).
    """

    training: bool = True
    kernels: ModuleType | None = None
    """Where the layer finds ``conv2d``, ``max_pool2d``...: None for convpool's compiled
    kernels; :meth:`use_kernels` swaps in another module with the same functions."""

    def __init__(self) -> None:
        self._parameters: dict[str, Parameter] = {}
        self.training = True

    # --- computation -------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        """Gradient with respect to the last input (None if ``needs_input_grad`` is
        False: the first layer of a net skips that work); stores parameter gradients."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    @property
    def ops(self) -> ModuleType:
        """The module whose functions compute this layer (convpool itself by default)."""
        if self.kernels is not None:
            return self.kernels
        import convpool

        return convpool

    def use_kernels(self, module: ModuleType | None) -> Layer:
        """Compute with ``module``'s functions (same names and signatures as convpool's),
        e.g. ``convpool.reference`` to build the NumPy-oracle twin of a net; None goes
        back to the compiled kernels. Returns the layer."""
        self.kernels = module
        return self

    # --- shapes, for summaries ----------------------------------------------------
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one sample's output, given one sample's input shape (no batch
        axis). Element-wise layers keep the shape."""
        return tuple(input_shape)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        """The receptive field of this layer's units, given that of its input's units
        (``input_shape`` is this layer's input; ``net_input_size`` the net's (H, W))."""
        return field

    # --- parameters -------------------------------------------------------------
    def _add_parameter(self, parameter: Parameter) -> Parameter:
        self._parameters[parameter.name] = parameter
        return parameter

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs, named as PyTorch's ``state_dict`` keys."""
        for name, parameter in self._parameters.items():
            yield prefix + name, parameter

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter (``.data``, ``.grad``, ``.name``), for an optimizer."""
        for _, parameter in self.named_parameters():
            yield parameter

    def num_parameters(self) -> int:
        """Total number of parameter values (counted without allocating them)."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self) -> None:
        """Forget the stored gradients (set them to None)."""
        for parameter in self.parameters():
            parameter.grad = None

    def astype(self, dtype: object) -> Layer:
        """Convert every parameter to float32 or float64; returns the layer."""
        dtype = float_dtype(dtype)
        for parameter in self.parameters():
            parameter.astype(dtype)
        return self

    # --- modes ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        """Training mode (dropout active); returns the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Evaluation mode (dropout off); returns the layer."""
        return self.train(False)

    # --- state ------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, keyed like PyTorch's ``state_dict``."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, object], strict: bool = True) -> None:
        """Set the parameters from arrays keyed like :meth:`state_dict`.

        Values may be NumPy arrays or CPU torch tensors (a PyTorch model's
        ``state_dict()`` of the same architecture loads as is). With ``strict``, missing
        or unexpected keys are a ValueError; shapes must always match.
        """
        own = dict(self.named_parameters())
        if strict:
            missing = sorted(set(own) - set(state))
            unexpected = sorted(set(state) - set(own))
            if missing or unexpected:
                raise ValueError(
                    f"state: missing keys {missing}, unexpected keys {unexpected}; "
                    f"this model has {list(own)}"
                )
        for name, parameter in own.items():
            if name not in state:
                continue
            value = _as_numpy(state[name])
            if value.shape != parameter.shape:
                raise ValueError(
                    f"state[{name!r}]: expected shape {parameter.shape}, got {value.shape}"
                )
            parameter.data = value
            parameter.grad = None

    def save(self, path: str | os.PathLike) -> None:
        """Write the parameters to a ``.npz`` file (keys as :meth:`state_dict`)."""
        from .serialization import save

        save(self, path)

    def load(self, path: str | os.PathLike) -> None:
        """Read parameters written by :meth:`save`."""
        from .serialization import load

        load(self, path)

    # --- display ----------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def _as_numpy(value: object) -> np.ndarray:
    """A NumPy array from an array or a torch tensor (without importing torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_input(x: object, name: str, ndims: tuple[int, ...], layer: str) -> np.ndarray:
    """A layer's input as a float array of an allowed rank."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "uif":
        raise TypeError(f"{layer}: {name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim not in ndims:
        allowed = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{layer}: {name} must have {allowed} dimensions, got shape {x.shape}")
    return x


def forward_not_called(layer: Layer) -> RuntimeError:
    return RuntimeError(f"{type(layer).__name__}.backward called before forward")
