"""Progress display for training: a tqdm bar per epoch (``pip install tqdm``, part of
the ``train`` extra), else one line per epoch."""

from __future__ import annotations

import sys


class _Quiet:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: float) -> None:
        pass

    def close(self) -> None:
        pass


class _EpochLine(_Quiet):
    """Without tqdm: the epoch's description and final values, once, at the end."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.values: dict[str, float] = {}

    def set_postfix(self, **values: float) -> None:
        self.values = values

    def close(self) -> None:
        text = " ".join(f"{key} {value:.4g}" for key, value in self.values.items())
        print(f"{self.description}: {text}".rstrip(), file=sys.stderr, flush=True)


class _Tqdm:
    def __init__(self, bar) -> None:
        self.bar = bar

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_postfix(self, **values: float) -> None:
        self.bar.set_postfix({key: f"{value:.4g}" for key, value in values.items()},
                             refresh=False)

    def close(self) -> None:
        self.bar.close()


def progress_bar(total: int, description: str, verbose: int):
    """A bar with ``update(n)``, ``set_postfix(**values)`` and ``close()``: nothing at
    ``verbose=0``, a line per epoch at 2 (or at 1 without tqdm), a tqdm bar at 1."""
    if verbose <= 0:
        return _Quiet()
    if verbose == 1:
        try:
            from tqdm import tqdm
        except ImportError:
            return _EpochLine(description)
        return _Tqdm(tqdm(total=total, desc=description, unit="batch", leave=True))
    return _EpochLine(description)
