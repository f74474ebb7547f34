"""The base class of every layer: forward/backward, named children, parameters and
buffers, modes, state, and the geometry (shapes, receptive field) summaries read."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from types import ModuleType

import numpy as np

from ..dtypes import is_half
from .inference import is_inference_mode
from .init import float_dtype
from .parameter import Parameter
from .receptive_field import ReceptiveField
from .serialization import read_state, write_state
from .summary import Summary, summarize

# Prefixes PyTorch wrappers put before every key: DataParallel/DistributedDataParallel
# ("module.") and torch.compile ("_orig_mod.").
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class UndeclaredGeometryError(NotImplementedError):
    """A layer that does not say what shape it outputs: summaries show it as unknown and
    ``convpool.dask`` refuses it."""


class Layer:
    """A differentiable operation on NumPy arrays.

    ``forward(x)`` (also ``layer(x)``) computes the output and keeps what ``backward``
    needs (nothing inside :func:`~convpool.nn.inference_mode`); ``backward(grad_output)``
    returns the gradient of the loss with respect to the input of the last ``forward``
    and adds each parameter's gradient to its ``grad`` (cleared by :meth:`zero_grad`, as
    in PyTorch).

    A layer made of layers assigns them as attributes (``self.conv1 = Conv2d(...)``):
    they become its named children, and parameter names join the path,
    ``layer1.0.conv1.weight``, as PyTorch's ``state_dict`` keys do. Buffers (state that
    is not trained, such as batch norm's running statistics) are saved with the
    parameters.

    A layer declares its geometry for summaries and ``convpool.dask`` by overriding
    :meth:`output_shape` and :meth:`receptive_field`; one that does not is shown as
    unknown there (and refused by ``convpool.dask``).
    """

    training: bool = True

    def __init__(self) -> None:
        object.__setattr__(self, "_children", {})
        self._parameters: dict[str, Parameter] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._kernels: ModuleType | None = None
        self.training = True

    def __setattr__(self, name: str, value: object) -> None:
        children = self.__dict__.get("_children")
        if children is not None and not name.startswith("_"):
            if isinstance(value, Layer):
                children[name] = value
            else:
                children.pop(name, None)
        object.__setattr__(self, name, value)

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

    @staticmethod
    def _keep(value):
        """``value``, or None inside inference mode (nothing is kept for backward)."""
        return None if is_inference_mode() else value

    @property
    def _ops(self) -> ModuleType:
        """The module whose functions compute this layer (convpool itself by default)."""
        if self._kernels is not None:
            return self._kernels
        import convpool

        return convpool

    def use_kernels(self, module: ModuleType | None) -> Layer:
        """Compute this layer and every layer inside it with ``module``'s functions
        (same names and signatures as convpool's), e.g. ``convpool.reference`` for the
        NumPy-oracle twin of a net; None goes back to the compiled kernels. Returns the
        layer."""
        self._kernels = module
        for child in self.children():
            child.use_kernels(module)
        return self

    # --- geometry, for summaries and dask ---------------------------------------------
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one sample's output, given one sample's input shape (no batch
        axis). Every built-in layer declares it; a layer that does not raises
        :class:`UndeclaredGeometryError`."""
        raise UndeclaredGeometryError(
            f"{type(self).__name__} declares no output_shape(input_shape) and "
            f"receptive_field(field, input_shape, net_input_size): define both to use it "
            f"in summary() and convpool.dask")

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField | None:
        """The receptive field of this layer's units, given that of its input's units
        (``input_shape`` is this layer's input; ``net_input_size`` the net's (H, W)).
        None means unknown: the default, for a layer that does not declare it."""
        return None

    def summary(self, input_shape: tuple[int, ...], *, show: bool = True) -> Summary:
        """Print (unless ``show=False``) and return a table of the net for one sample of
        ``input_shape`` (no batch axis: ``(C, H, W)``, or ``(features,)``): per layer the
        output shape, parameter count and receptive field in the input (size, jump,
        start), plus totals. Nothing is allocated: this works for nets too large to
        build. See :class:`convpool.nn.summary.Summary`."""
        table = summarize(self, input_shape)
        if show:
            print(table)
        return table

    # --- children, parameters, buffers --------------------------------------------
    def _add_parameter(self, parameter: Parameter) -> Parameter:
        self._parameters[parameter.name] = parameter
        return parameter

    def _add_buffer(self, name: str, value: np.ndarray) -> np.ndarray:
        self._buffers[name] = value
        return value

    def named_children(self) -> Iterator[tuple[str, Layer]]:
        """``(name, layer)`` of the layers directly inside this one."""
        yield from self._children.items()

    def children(self) -> Iterator[Layer]:
        for _, child in self.named_children():
            yield child

    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """This layer (named ``prefix``) and every layer inside it, depth first."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_layers(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs, named as PyTorch's ``state_dict`` keys."""
        for name, layer in self.named_layers(prefix.rstrip(".")):
            for key, parameter in layer._parameters.items():
                yield (f"{name}.{key}" if name else key), parameter

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array)`` of the buffers (e.g. running statistics)."""
        for name, layer in self.named_layers(prefix.rstrip(".")):
            for key, value in layer._buffers.items():
                yield (f"{name}.{key}" if name else key), value

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
        """Convert every parameter and floating-point buffer to float32 or float64;
        returns the layer."""
        dtype = float_dtype(dtype)
        for parameter in self.parameters():
            parameter.astype(dtype)
        for _, layer in self.named_layers():
            for key, value in layer._buffers.items():
                if value.dtype.kind == "f":
                    layer._buffers[key] = value.astype(dtype)
        return self

    # --- modes ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        """Training mode (dropout active, batch statistics); returns the layer."""
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Layer:
        """Evaluation mode (dropout off, running statistics); returns the layer."""
        return self.train(False)

    # --- state ------------------------------------------------------------------
    def _state_entries(self) -> dict[str, tuple[Layer, str, str]]:
        """``key -> (owning layer, "parameter" | "buffer", name in that layer)`` in
        PyTorch's order: each layer's parameters, then its buffers, then its children."""
        entries = {}
        for name, layer in self.named_layers():
            for kind, table in (("parameter", layer._parameters), ("buffer", layer._buffers)):
                for key in table:
                    entries[f"{name}.{key}" if name else key] = (layer, kind, key)
        return entries

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters and buffers, keyed like PyTorch's ``state_dict``."""
        state = {}
        for key, (layer, kind, name) in self._state_entries().items():
            value = layer._parameters[name].data if kind == "parameter" else layer._buffers[name]
            state[key] = value.copy()
        return state

    def load_state_dict(self, state: Mapping[str, object], strict: bool = True) -> None:
        """Set the parameters and buffers from arrays keyed like :meth:`state_dict`.

        Values may be NumPy arrays or CPU torch tensors: a PyTorch model's
        ``state_dict()`` of the same architecture loads as is (keys wrapped by
        DataParallel, ``module.``, or torch.compile, ``_orig_mod.``, are unwrapped).
        Everything is checked before anything is assigned, so a failed load changes
        nothing: with ``strict``, missing and unexpected keys are one ValueError that
        lists both; shapes must always match.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state: expected a mapping of names to arrays, got "
                            f"{type(state).__name__}")
        state = _unwrapped(state)
        own = self._state_entries()
        missing = [key for key in own if key not in state]
        unexpected = [key for key in state if key not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"state: missing keys {missing}, unexpected keys {unexpected} (this model "
                f"has {len(own)} entries, e.g. {list(own)[:4]})")
        assignments = []
        for key, (layer, kind, name) in own.items():
            if key not in state:
                continue
            value = _as_numpy(state[key])
            current = (layer._parameters[name] if kind == "parameter"
                       else layer._buffers[name])
            if value.shape != current.shape:
                raise ValueError(
                    f"state[{key!r}]: expected shape {current.shape}, got {value.shape}")
            if value.dtype.kind not in "uif":
                raise TypeError(f"state[{key!r}]: expected real numbers, got dtype {value.dtype}")
            assignments.append((layer, kind, name, value))
        for layer, kind, name, value in assignments:
            if kind == "parameter":
                layer._parameters[name].data = value
                layer._parameters[name].grad = None
            else:
                layer._buffers[name] = np.array(value, dtype=layer._buffers[name].dtype)

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` as ``.npz`` (the suffix is added when
        missing; :meth:`load` adds it the same way)."""
        write_state(self.state_dict(), path)

    def load(self, path: str | os.PathLike, strict: bool = True) -> None:
        """Read a state dict written by :meth:`save` (or any ``.npz`` keyed like a PyTorch
        state dict of the same architecture, or a PyTorch ``.pt`` file when torch is
        installed) and load it with :meth:`load_state_dict`."""
        self.load_state_dict(read_state(path), strict=strict)

    # --- display ----------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in children]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + "\n" + "\n".join(lines) + "\n)"


def _unwrapped(state: Mapping[str, object]) -> Mapping[str, object]:
    for prefix in _WRAPPER_PREFIXES:
        if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    return state


def _as_numpy(value: object) -> np.ndarray:
    """A NumPy array from an array or a torch tensor (without importing torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_input(x: object, name: str, ndims: tuple[int, ...], layer: str) -> np.ndarray:
    """A layer's input as a float array of an allowed rank."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "uif" and not is_half(x.dtype):
        raise TypeError(f"{layer}: {name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim not in ndims:
        allowed = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{layer}: {name} must have {allowed} dimensions, got shape {x.shape}")
    return x


def forward_not_called(layer: Layer) -> RuntimeError:
    return RuntimeError(
        f"{type(layer).__name__}.backward called before forward, or after a forward in "
        f"inference_mode (which keeps nothing for backward)")


class ShapePreserving(Layer):
    """A layer whose output has its input's shape, each unit seeing only the same unit of
    its input (element-wise or per-channel): geometry declared once here."""

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        return field
