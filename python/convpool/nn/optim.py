"""Optimizers, with PyTorch's update rules (so results match ``torch.optim`` step by
step). Parameters whose ``grad`` is None are skipped."""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from .parameter import Parameter


def _non_negative(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    if not value >= 0:
        raise ValueError(f"{name}: must be >= 0, got {value}")
    return float(value)


class Optimizer:
    """Holds the parameters to update; ``step()`` applies one update from their
    gradients, ``zero_grad()`` clears the gradients."""

    def __init__(self, parameters: Iterable[Parameter], lr: float) -> None:
        if hasattr(parameters, "parameters") and callable(parameters.parameters):
            parameters = parameters.parameters()  # a model given directly
        self.parameters: list[Parameter] = list(parameters)
        for parameter in self.parameters:
            if not isinstance(parameter, Parameter):
                raise TypeError(
                    f"parameters: expected convpool.nn Parameters (model.parameters()), got "
                    f"{type(parameter).__name__}"
                )
        if not self.parameters:
            raise ValueError("parameters: the optimizer got an empty parameter list")
        self.lr = _non_negative(lr, "lr")
        self.state: dict[int, dict[str, np.ndarray | int]] = {}

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        for parameter in self.parameters:
            if parameter.grad is not None:
                self._update(parameter, self.state.setdefault(id(parameter), {}))

    def _update(self, parameter: Parameter, state: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2
    weight decay, exactly as ``torch.optim.SGD`` (dampening 0)::

        g = grad + weight_decay * p
        buf = g (first step), then momentum * buf + g
        g = g + momentum * buf if nesterov else buf
        p -= lr * g
    """

    def __init__(self, parameters: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(parameters, lr)
        self.momentum = _non_negative(momentum, "momentum")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0")

    def _update(self, parameter: Parameter, state: dict) -> None:
        p = parameter.data
        g = parameter.grad
        if self.weight_decay:
            g = g + p.dtype.type(self.weight_decay) * p
        if self.momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
            else:
                buffer *= p.dtype.type(self.momentum)
                buffer += g
            g = g + p.dtype.type(self.momentum) * buffer if self.nesterov else buffer
        p -= p.dtype.type(self.lr) * g

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}, "
                f"nesterov={self.nesterov})")


class Adam(Optimizer):
    """Adam (Kingma and Ba), exactly as ``torch.optim.Adam`` (L2 ``weight_decay`` added
    to the gradient)::

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def __init__(self, parameters: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(parameters, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair of numbers, got {betas!r}")
        self.betas = (_non_negative(betas[0], "betas[0]"), _non_negative(betas[1], "betas[1]"))
        if not all(b < 1 for b in self.betas):
            raise ValueError(f"betas: each must be in [0, 1), got {betas}")
        self.eps = _non_negative(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def _update(self, parameter: Parameter, state: dict) -> None:
        p = parameter.data
        g = parameter.grad
        one = p.dtype.type
        beta1, beta2 = self.betas
        if self.weight_decay:
            g = g + one(self.weight_decay) * p
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= one(beta1)
        m += one(1 - beta1) * g
        v *= one(beta2)
        v += one(1 - beta2) * np.square(g)
        correction1 = 1 - beta1**step
        correction2_sqrt = np.sqrt(1 - beta2**step)
        denominator = np.sqrt(v)
        denominator /= one(correction2_sqrt)
        denominator += one(self.eps)
        p -= one(self.lr / correction1) * m / denominator

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay})")


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), exactly as
    ``torch.optim.AdamW``: ``p -= lr * weight_decay * p`` before the Adam step, whose
    gradient carries no decay term. Default ``weight_decay=0.01``, as PyTorch."""

    def __init__(self, parameters: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(parameters, lr, betas, eps, 0.0)
        self.decoupled_weight_decay = _non_negative(weight_decay, "weight_decay")

    def _update(self, parameter: Parameter, state: dict) -> None:
        if self.decoupled_weight_decay:
            p = parameter.data
            p *= p.dtype.type(1 - self.lr * self.decoupled_weight_decay)
        super()._update(parameter, state)

    def __repr__(self) -> str:
        return (f"AdamW(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.decoupled_weight_decay})")
