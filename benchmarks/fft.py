#!/usr/bin/env python
"""Large full-rank kernels on big pictures: convpool's FFT path against OpenCV and SciPy.

    python benchmarks/fft.py                        # RGB and grey 2000 x 3000, 15, 31, 63
    python benchmarks/fft.py --sizes 31 --rounds 3 --json fft.json

The pictures are seeded uniform noise in [0, 1), float32: an RGB (2000, 3000, 3) picture
as picture libraries hold it, and a grey (2000, 3000) one. The kernels are full-rank
random ones (seeded, |weights| summing to 1), so no library can take a separable
shortcut; 'same' output, zero padding.

- convpool: ``conv2d(picture, kernel, padding="same", layout="NHWC")`` (the grey picture as
  a ``(1, 1, H, W)`` array), whatever path it picks (named in the table);
- OpenCV: ``cv2.filter2D`` (``BORDER_CONSTANT``; a DFT for large kernels);
- SciPy: ``scipy.signal.oaconvolve`` (overlap-add FFT) over the picture's two axes.

Each peer is optional. The libraries run interleaved, one call each per round; the table
gives medians of wall time and of process CPU time (all threads; steadier than wall time
on a shared machine), and ratios: the peer's time over convpool's (> 1: convpool faster).
Every result is checked against convpool's (norm-wise, relative to the result's norm); a
disagreement fails the run (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import convpool
import numpy as np

PICTURE_SHAPE = (2000, 3000, 3)
SIZES = (15, 31, 63)
TOLERANCE = 1e-5  # ||ours - theirs|| / ||theirs||


def random_kernel(size: int) -> np.ndarray:
    """A full-rank size x size kernel, its absolute values summing to 1."""
    k = np.random.default_rng(size).standard_normal((size, size))
    return (k / np.abs(k).sum()).astype(np.float32)


def peers(picture: np.ndarray, kernel: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """Each available library's call, returning the result in the picture's layout."""
    grey = picture.ndim == 2
    calls: dict[str, Callable[[], np.ndarray]] = {}
    if grey:
        planes = picture[None, None]
        calls["convpool"] = lambda: convpool.conv2d(planes, kernel[None, None],
                                                    padding="same")[0, 0]
    else:
        calls["convpool"] = lambda: convpool.conv2d(picture, kernel, padding="same",
                                                    layout="NHWC")
    try:
        import cv2

        calls["OpenCV"] = lambda: cv2.filter2D(picture, -1, kernel,
                                               borderType=cv2.BORDER_CONSTANT)
    except ImportError:
        pass
    try:
        from scipy import signal

        flipped = kernel[::-1, ::-1] if grey else kernel[::-1, ::-1, None]
        calls["SciPy"] = lambda: signal.oaconvolve(picture, flipped, mode="same", axes=(0, 1))
    except ImportError:
        pass
    return calls


def measure(calls: dict[str, Callable[[], np.ndarray]], rounds: int
            ) -> tuple[dict[str, tuple[float, float]], dict[str, np.ndarray]]:
    """Median (wall, CPU) seconds per library over interleaved rounds, and each result."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    results = {}
    for _ in range(rounds):
        for name, call in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = call()
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    medians = {name: (statistics.median(s[0] for s in values),
                      statistics.median(s[1] for s in values))
               for name, values in samples.items()}
    return medians, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rgb = rng.random(PICTURE_SHAPE, dtype=np.float32)
    pictures = {"RGB 2000x3000x3": rgb, "grey 2000x3000": np.ascontiguousarray(rgb[..., 1])}
    print(f"convpool threads {convpool.get_num_threads()}; load "
          f"{open('/proc/loadavg').read().split()[0]}; medians of {args.rounds} rounds; "
          "ratios: peer / convpool (> 1: convpool faster), wall | CPU")
    rows, failed = [], False
    for label, picture in pictures.items():
        for size in map(int, args.sizes.split(",")):
            kernel = random_kernel(size)
            if picture.ndim == 2:
                path = convpool.implementation("conv2d", picture[None, None],
                                               kernel[None, None], padding="same")
            else:
                path = convpool.implementation("conv2d", picture, kernel, padding="same",
                                               layout="NHWC")
            times, results = measure(peers(picture, kernel), args.rounds)
            ours = results["convpool"]
            row = {"picture": label, "kernel": size, "path": path,
                   "ms": {name: [round(1e3 * t, 1) for t in pair] for name, pair in times.items()}}
            cells = [f"convpool ({path}) {1e3 * times['convpool'][0]:.0f} | "
                     f"{1e3 * times['convpool'][1]:.0f} ms"]
            for name, (wall, cpu) in times.items():
                if name == "convpool":
                    continue
                error = float(np.linalg.norm(ours - results[name]) / np.linalg.norm(results[name]))
                failed |= not error <= TOLERANCE
                ratio = (wall / times["convpool"][0], cpu / times["convpool"][1])
                row[name] = {"ratio_wall": round(ratio[0], 2), "ratio_cpu": round(ratio[1], 2),
                             "relative_difference": error}
                cells.append(f"{name} {1e3 * wall:.0f} | {1e3 * cpu:.0f} ms: "
                             f"x{ratio[0]:.2f} | x{ratio[1]:.2f}"
                             + ("" if error <= TOLERANCE else f" DIFFERS {error:.2g}"))
            print(f"{label} {size}x{size}: " + "; ".join(cells), flush=True)
            rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
