#!/usr/bin/env python
"""Gaussian blur of an RGB picture, convpool against OpenCV and SciPy, interleaved.

    python benchmarks/pictures.py                      # 3x3 ... 31x31 on 2000x3000, 63x63
    python benchmarks/pictures.py --quick --sizes 15,31 --json pictures.json

The picture is a real photograph (matplotlib's Grace Hopper, scaled to 2000 x 3000 x 3,
float32; a smooth synthetic picture without matplotlib), filtered with a Gaussian kernel
per channel, output the size of the input with zero padding ('same'), and next to each
Gaussian a full-rank random kernel of the same size (seeded, |weights| summing to 1): a
Gaussian is separable (rank 1), which convpool's ``separable`` path exploits, and a
random kernel is not, so the two rows show both sides honestly.

- convpool: ``conv2d(picture, kernel, padding="same", layout="NHWC")``, the 2-D kernel on
  every channel of the (H, W, 3) picture as it is (see :func:`convpool_blur`);
- OpenCV: ``cv2.filter2D`` (every channel, ``BORDER_CONSTANT``; it switches to a DFT for
  large kernels);
- SciPy: ``scipy.signal.oaconvolve`` per channel (overlap-add FFT convolution).

Each peer is optional and reported as missing when not importable. Every result is
checked against convpool's (the largest difference relative to the picture's largest
value); a wrong one fails the run (exit status 1). Timings are medians of interleaved
samples; ratios are the peer's time over convpool's (> 1: convpool faster); GFLOP/s
count the direct sum's 2 k^2 flops per output value, whatever a library computes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable

import numpy as np
from convpool.bench.runners import Runner
from convpool.bench.timing import TimingPlan, time_interleaved

PICTURE_SHAPE = (2000, 3000, 3)
SMALL_PICTURE_SHAPE = (1000, 1500, 3)  # for the kernels beyond 31x31
SIZES = (3, 5, 7, 11, 15, 21, 31, 63)
TOLERANCE = 1e-4  # max |ours - theirs| / max |picture|


def gaussian_kernel(size: int) -> np.ndarray:
    """A normalised size x size Gaussian, sigma as OpenCV's getGaussianKernel picks it."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    g /= g.sum()
    return np.outer(g, g).astype(np.float32)


def random_kernel(size: int) -> np.ndarray:
    """A full-rank size x size kernel, its absolute values summing to 1 (so the blur stays
    within the picture's range)."""
    k = np.random.default_rng(size).standard_normal((size, size))
    return (k / np.abs(k).sum()).astype(np.float32)


KERNELS = {"gaussian": gaussian_kernel, "random": random_kernel}


def photograph(shape: tuple[int, int, int]) -> tuple[np.ndarray, str]:
    """An RGB float32 picture in [0, 1] of ``shape``, and where it came from."""
    h, w, _ = shape
    try:
        import matplotlib.image
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as file:
            small = matplotlib.image.imread(file, format="jpg").astype(np.float32) / 255
        rows = (np.arange(h) * small.shape[0]) // h  # nearest-neighbour scaling
        cols = (np.arange(w) * small.shape[1]) // w
        return np.ascontiguousarray(small[rows][:, cols, :3]), "matplotlib's grace_hopper.jpg"
    except ImportError:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        planes = [np.sin(x / 37 + c) * np.cos(y / 53 - c) for c in range(3)]
        return (np.stack(planes, axis=-1) * 0.5 + 0.5).astype(np.float32), "synthetic"


def convpool_blur(picture: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The kernel over every channel of an (H, W, C) picture, 'same', as (H, W, C): the
    picture as it is held, channels last, with no transpose."""
    import convpool

    return convpool.conv2d(picture, kernel, padding="same", layout="NHWC")


def peers(threads: int) -> tuple[dict[str, tuple[Callable, Callable]], dict[str, str]]:
    """(label -> (blur(picture, kernel), set_threads)) of the importable peers, and
    (label -> why not) of the others."""
    found, missing = {}, {}
    try:
        import cv2

        def opencv(picture, kernel):
            return cv2.filter2D(picture, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        found["opencv"] = (opencv, cv2.setNumThreads)
    except ImportError as error:
        missing["opencv"] = str(error)
    try:
        from scipy import signal

        def scipy_oa(picture, kernel):
            flipped = kernel[::-1, ::-1]  # oaconvolve convolves; the others correlate
            return np.stack([signal.oaconvolve(picture[:, :, c], flipped, mode="same")
                             for c in range(picture.shape[2])], axis=-1)
        found["scipy"] = (scipy_oa, lambda n: None)  # one thread, whatever is asked
    except ImportError as error:
        missing["scipy"] = str(error)
    return found, missing


def measure(picture: np.ndarray, size: int, kind: str, threads: int, plan: TimingPlan,
            found: dict) -> dict:
    import convpool

    kernel = KERNELS[kind](size)
    implementation = convpool.implementation("conv2d", picture, kernel, padding="same",
                                             layout="NHWC")
    runners = [Runner("convpool", threads, lambda: (convpool_blur(picture, kernel),),
                      convpool.set_num_threads)]
    ours = runners[0].call()[0]  # also the warm-up
    errors = {}
    for label, (blur, set_threads) in found.items():
        theirs = blur(picture, kernel)
        errors[label] = float(np.max(np.abs(ours - theirs))) / float(np.max(np.abs(picture)))
        runners.append(Runner(label, threads, lambda blur=blur: (blur(picture, kernel),),
                              set_threads))
    timings = time_interleaved(runners, plan)
    h, w, c = picture.shape
    flops = 2 * size * size * h * w * c
    ours_s = timings["convpool"].median_s
    record = {"picture": f"{h}x{w}x{c}", "kernel": size, "kind": kind,
              "implementation": implementation,
              "convpool_ms": ours_s * 1e3, "convpool_gflops": flops / ours_s / 1e9,
              "spread": max((t.q3_s - t.q1_s) / t.median_s for t in timings.values())}
    for label in found:
        record[f"{label}_ms"] = timings[label].median_s * 1e3
        record[f"{label}_ratio"] = timings[label].median_s / ours_s
        record[f"{label}_error"] = errors[label]
    record["correct"] = all(e <= TOLERANCE for e in errors.values())
    return record


def render(records: list[dict], labels: list[str], missing: dict[str, str]) -> str:
    head = (f"{'picture':>12} {'kernel':>6} {'kind':>8} {'path':>10} {'convpool ms':>11} "
            f"{'GFLOP/s':>8}")
    for label in labels:
        head += f" {label + ' ms':>11} {label + ' x':>9}"
    lines = [head]
    for r in records:
        line = (f"{r['picture']:>12} {r['kernel']:>4}^2 {r['kind']:>8} {r['implementation']:>10} "
                f"{r['convpool_ms']:11.1f} {r['convpool_gflops']:8.1f}")
        for label in labels:
            line += f" {r[label + '_ms']:11.1f} {r[label + '_ratio']:9.2f}"
        notes = ("WRONG " if not r["correct"] else "") + ("busy" if r["spread"] > 0.25 else "")
        lines.append(line + (f"  {notes.strip()}" if notes else ""))
    for label in labels:
        for kind in KERNELS:
            ratios = [r[f"{label}_ratio"] for r in records if r["kind"] == kind]
            if ratios:
                geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
                lines.append(f"{label} / convpool, {kind}: geometric mean {geomean:.2f}, lowest "
                             f"{min(ratios):.2f} over {len(ratios)} kernels "
                             "(> 1: convpool faster)")
    for label, why in missing.items():
        lines.append(f"{label}: not measured ({why})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per kernel size")
    parser.add_argument("--quick", action="store_true", help="3 rounds per kernel size")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="kernel sizes, comma-separated")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    import convpool

    threads = args.threads or convpool.get_num_threads()
    plan = TimingPlan(budget_s=0.0 if args.quick else args.budget, min_rounds=3 if args.quick
                      else 5, min_sample_s=0.0)
    found, missing = peers(threads)
    pictures = {}
    records = []
    for size in (int(s) for s in args.sizes.split(",")):
        shape = PICTURE_SHAPE if size <= 31 else SMALL_PICTURE_SHAPE
        if shape not in pictures:
            pictures[shape], source = photograph(shape)
            print(f"picture {shape} from {source}", file=sys.stderr)
        for kind in KERNELS:
            record = measure(pictures[shape], size, kind, threads, plan, found)
            records.append(record)
            print(f"{size}x{size} {kind}: convpool {record['convpool_ms']:.1f} ms "
                  f"({record['implementation']})"
                  + "".join(f", {k} {record[k + '_ms']:.1f} ms" for k in found),
                  file=sys.stderr, flush=True)
    print(f"threads: {threads}; ratios: peer time / convpool time")
    print(render(records, list(found), missing))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"threads": threads, "records": records, "missing": missing,
                       "build": convpool.build_info()}, out, indent=1)
    return 0 if all(r["correct"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
