"""Learning-rate schedules with PyTorch's formulas (``torch.optim.lr_scheduler``):
``scheduler.step()`` after each epoch (or, for :class:`OneCycleLR`, after each batch)
sets ``optimizer.lr``."""

from __future__ import annotations

import math
import numbers

from .optim import Optimizer


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def _positive_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return float(value)


class LRScheduler:
    """Base: ``base_lr`` is the optimizer's rate when the schedule starts; ``step()``
    advances one step and sets ``optimizer.lr = lr_at(step)``."""

    per_batch = False
    """True for schedules that step after every batch (``fit`` steps them so)."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a convpool.nn optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_step = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, step: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)

    def get_last_lr(self) -> float:
        return self.optimizer.lr


class StepLR(LRScheduler):
    """``base_lr * gamma ** (step // step_size)``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int(step_size, "step_size")
        self.gamma = _positive_number(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base_lr - eta_min) (1 + cos(pi step / T_max)) / 2``."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        self.T_max = _positive_int(T_max, "T_max")
        if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real) or eta_min < 0:
            raise ValueError(f"eta_min: expected a number >= 0, got {eta_min!r}")
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1 + math.cos(math.pi * step / self.T_max)) / 2


class OneCycleLR(LRScheduler):
    """The one-cycle policy (Smith), as ``torch.optim.lr_scheduler.OneCycleLR`` with its
    defaults: the rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` and falls to ``initial / final_div_factor`` by the
    last, on cosine curves; with ``cycle_momentum`` the momentum (SGD) or first beta
    (Adam) moves the other way between ``max_momentum`` and ``base_momentum``. Steps
    after every batch."""

    per_batch = True

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int,
                 pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95) -> None:
        self.max_lr = _positive_number(max_lr, "max_lr")
        self.total_steps = _positive_int(total_steps, "total_steps")
        if isinstance(pct_start, bool) or not isinstance(pct_start, numbers.Real) or not (
                0 < pct_start < 1):
            raise ValueError(f"pct_start: expected a number in (0, 1), got {pct_start!r}")
        self.initial_lr = self.max_lr / _positive_number(div_factor, "div_factor")
        self.min_lr = self.initial_lr / _positive_number(final_div_factor, "final_div_factor")
        self.phase_end = float(pct_start * self.total_steps) - 1
        self.cycle_momentum = bool(cycle_momentum) and (
            hasattr(optimizer, "betas") or getattr(optimizer, "momentum", 0) > 0)
        self.momenta = (float(max_momentum), float(base_momentum))
        super().__init__(optimizer)

    @staticmethod
    def _anneal(start: float, end: float, fraction: float) -> float:
        return end + (start - end) / 2 * (1 + math.cos(math.pi * fraction))

    def _at(self, step: int, rising: tuple[float, float], falling: tuple[float, float]
            ) -> float:
        if step <= self.phase_end:
            return self._anneal(*rising, step / self.phase_end)
        last = self.total_steps - 1
        return self._anneal(*falling, (step - self.phase_end) / (last - self.phase_end))

    def lr_at(self, step: int) -> float:
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, past total_steps="
                             f"{self.total_steps}")
        if self.cycle_momentum:
            high, low = self.momenta
            momentum = self._at(step, (high, low), (low, high))
            if hasattr(self.optimizer, "betas"):
                self.optimizer.betas = (momentum, self.optimizer.betas[1])
            else:
                self.optimizer.momentum = momentum
        return self._at(step, (self.initial_lr, self.max_lr), (self.max_lr, self.min_lr))
