"""Throughput of a small CNN on one big picture: in memory, on dask's threads, and on a
dask.distributed LocalCluster of worker processes (convpool.dask; needs
``pip install dask[array,distributed]``).

    python -m convpool.bench.dask_picture [--height 2000] [--width 3000] [--chunk 256]
                                          [--repeats 3] [--workers 2] [--json PATH]

Each way is timed ``repeats`` times (median); the chunked results are checked against
the in-memory one (float32: within rounding). The cluster's input is generated and
kept on the workers, so its time is the net's, not the picture's transfer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..nn import AvgPool2d, Conv2d, MaxPool2d, ReLU, Sequential, Tanh

__all__ = ["main", "measure", "picture_cnn"]


def picture_cnn(dtype: object = np.float32) -> Sequential:
    """A small fully convolutional net: 'same' convolution, a strided convolution, max
    pooling, a 'valid' convolution and average pooling (total stride 8)."""
    return Sequential(
        Conv2d(1, 8, 3, padding="same", dtype=dtype, seed=0), ReLU(),
        Conv2d(8, 8, 3, stride=2, padding=1, dtype=dtype, seed=1), Tanh(),
        MaxPool2d(2),
        Conv2d(8, 4, 5, dtype=dtype, seed=2),
        AvgPool2d(2),
    )


def _median_seconds(run: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(height: int = 2000, width: int = 3000, chunk: int = 256, repeats: int = 3,
            workers: int = 2, cluster: bool = True) -> dict:
    """Seconds and megapixels per second of :func:`picture_cnn` (float32) on a
    ``height x width`` picture: ``"in memory"``, ``"dask threads"`` and, with
    ``cluster``, ``"dask LocalCluster"`` (``workers`` processes of one thread)."""
    import dask
    import dask.array as da

    from .. import dask as convpool_dask

    model = picture_cnn(np.float32)
    source = da.random.RandomState(0).random_sample((height, width), chunks=chunk)
    picture = source.astype(np.float32).compute(scheduler="threads")
    megapixels = height * width / 1e6
    rows = {}

    def record(name: str, seconds: float, result: np.ndarray, reference) -> None:
        error = 0.0 if reference is None else float(np.abs(result - reference).max())
        rows[name] = {"seconds": seconds, "megapixels_per_s": megapixels / seconds,
                      "max_abs_difference": error}

    model.eval()
    seconds, expected = _median_seconds(lambda: model.forward(picture[None, None])[0], repeats)
    record("in memory", seconds, expected, None)
    chunked = da.from_array(picture, chunks=chunk)
    with dask.config.set(scheduler="threads"):
        seconds, result = _median_seconds(
            lambda: convpool_dask.apply(model, chunked).compute(), repeats)
    record("dask threads", seconds, result, expected)
    if cluster:
        from distributed import Client, LocalCluster, wait

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as local, Client(local) as client:
            on_workers = source.astype(np.float32).persist()
            wait(on_workers)
            seconds, result = _median_seconds(
                lambda: client.compute(convpool_dask.apply(model, on_workers), sync=True),
                repeats)
        record(f"dask LocalCluster ({workers} processes)", seconds, result, expected)
    return {"picture": [height, width], "chunk": chunk, "dtype": "float32",
            "net": repr(model), "rows": rows}


def render(results: dict) -> str:
    """The table of :func:`measure`'s results."""
    height, width = results["picture"]
    lines = [f"picture_cnn on a {height}x{width} float32 picture, chunks of "
             f"{results['chunk']}x{results['chunk']}",
             f"{'way':34} {'seconds':>8} {'Mpixel/s':>9} {'max |diff|':>11}"]
    for name, row in results["rows"].items():
        lines.append(f"{name:34} {row['seconds']:8.3f} {row['megapixels_per_s']:9.1f} "
                     f"{row['max_abs_difference']:11.2e}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--width", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-cluster", action="store_true", help="threads only")
    parser.add_argument("--json", metavar="PATH", help="write the numbers to PATH")
    args = parser.parse_args(argv)
    results = measure(args.height, args.width, args.chunk, args.repeats, args.workers,
                      cluster=not args.no_cluster)
    print(render(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    # float32: blocks may sum in another order than the whole picture, never by more
    worst = max(row["max_abs_difference"] for row in results["rows"].values())
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
