"""A progress bar for training: tqdm when it is installed (the optional ``progress``
extra), else a plain-text line on stderr."""

from __future__ import annotations

import sys
import time


class PlainProgress:
    """One line per epoch, redrawn in place at most every 0.2 s on a terminal (written
    once, when the epoch ends, on anything else)."""

    def __init__(self, total: int, description: str, file=None) -> None:
        self.total = total
        self.description = description
        self.file = file if file is not None else sys.stderr
        self.count = 0
        self.postfix = ""
        self._interactive = bool(getattr(self.file, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._start = time.perf_counter()

    def _line(self) -> str:
        width = 24
        done = int(width * self.count / self.total) if self.total else width
        bar = "=" * done + (">" if done < width else "") + " " * max(width - done - 1, 0)
        elapsed = time.perf_counter() - self._start
        text = f"{self.description} [{bar}] {self.count}/{self.total} {elapsed:.1f}s"
        return f"{text} {self.postfix}".rstrip()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if self._interactive and now - self._last_draw > 0.2:
            self._last_draw = now
            print("\r" + self._line(), end="", file=self.file, flush=True)

    def set_postfix(self, **values: float) -> None:
        self.postfix = " ".join(f"{key} {value:.4g}" for key, value in values.items())

    def close(self) -> None:
        print(("\r" if self._interactive else "") + self._line(), file=self.file, flush=True)


class SilentProgress:
    """No output."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: float) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, description: str, enabled: bool):
    """A bar with ``update(n)``, ``set_postfix(**values)`` and ``close()``."""
    if not enabled:
        return SilentProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        return PlainProgress(total, description)
    return _TqdmProgress(tqdm(total=total, desc=description, unit="batch", leave=True))


class _TqdmProgress:
    def __init__(self, bar) -> None:
        self.bar = bar

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_postfix(self, **values: float) -> None:
        self.bar.set_postfix({key: f"{value:.4g}" for key, value in values.items()},
                             refresh=False)

    def close(self) -> None:
        self.bar.close()
