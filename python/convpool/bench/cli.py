"""``convpool-bench`` / ``python benchmarks/run.py``: parse flags, run, print, save."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence

from .cases import MAIN_CASES, OVERHEAD_CASE, QUICK_SWEEP_BATCHES, TRAINING_CASE, selected
from .machine import Limits
from .report import render
from .suite import PEERS, SECTIONS, Settings, run_suite
from .timing import QUICK_PLAN, TimingPlan

QUICK_TRAINING_IMAGES = 3_840  # 60 batches of 64: the epoch time is projected from these


def _csv(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convpool-bench",
        description="Time convpool's convolution and pooling kernels against PyTorch (and "
        "OpenCV filter2D on a picture), interleaved in one process, and check their outputs.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="a ~20 s run: short budgets, forward-only sweeps, a partial epoch")
    parser.add_argument("--cases", type=_csv, default=(), metavar="PATTERNS",
                        help="comma-separated glob prefixes of case names (see --list), "
                        "e.g. 'sobel' or 'res,max-*'")
    parser.add_argument("--sections", type=_csv, default=SECTIONS, metavar="NAMES",
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for convpool and the peers (default: convpool's own, "
                        "which honours OMP_NUM_THREADS)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="timing budget per case and pass (default 2, quick 0.2)")
    parser.add_argument("--no-peers", action="store_true", help="time convpool alone")
    parser.add_argument("--training-images", type=int, default=None,
                        help="images in the LeNet-5 epoch (default 60000, quick 3840)")
    parser.add_argument("--json", metavar="PATH", help="write every number to PATH")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG bar chart (matplotlib)")
    parser.add_argument("--render", metavar="JSON", help="print the report of a saved run")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--fma-peak", type=_peaks, default=None, metavar="GFLOPS",
                        help="use this fp32 FMA peak instead of measuring it: GFLOP/s per "
                        "thread (e.g. 120), or per thread count (e.g. 1:120,2:236)")
    parser.add_argument("--stream-gbs", type=float, default=None, metavar="GBS",
                        help="use this streaming bandwidth (GB/s, read + written) instead of "
                        "measuring it")
    return parser


def _peaks(text: str) -> dict[int, float]:
    """'120' (per thread) or '1:120,2:236' (per thread count) -> {threads: GFLOP/s}."""
    try:
        if ":" not in text:
            per_thread = float(text)
            peaks = {1: per_thread}
        else:
            peaks = {int(t): float(g) for t, g in (item.split(":") for item in _csv(text))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected GFLOP/s per thread or THREADS:GFLOPS pairs, got {text!r}") from None
    if not peaks or any(t < 1 or g <= 0 for t, g in peaks.items()):
        raise argparse.ArgumentTypeError(f"thread counts >= 1 and peaks > 0, got {text!r}")
    return peaks


def _list_cases() -> str:
    lines = [f"{case.name:16} {case.describe()}" for case in MAIN_CASES]
    lines.append(f"{OVERHEAD_CASE.name:16} {OVERHEAD_CASE.describe()} (per-call overhead)")
    lines.append(f"{TRAINING_CASE:16} one epoch of LeNet-5 training (convpool.nn vs torch.nn)")
    return "\n".join(lines)


def _given_limits(args: argparse.Namespace, threads: int) -> Limits | None:
    """Limits from the flags when both are given; None to measure (the suite measures what
    a flag did not give)."""
    if args.fma_peak is None and args.stream_gbs is None:
        return None
    from .machine import measure_limits

    peaks = args.fma_peak
    if peaks is not None and set(peaks) == {1}:
        peaks = {t: peaks[1] * t for t in {1, threads}}
    return measure_limits({1, threads}, fma_peak_gflops=peaks, stream_gbs=args.stream_gbs,
                          quick=args.quick)


def settings_from(args: argparse.Namespace) -> Settings:
    import convpool

    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"--sections: unknown {unknown}; choose from {list(SECTIONS)}")
    threads = args.threads if args.threads is not None else convpool.get_num_threads()
    if threads < 1:
        raise ValueError(f"--threads: must be >= 1, got {threads}")
    plan = QUICK_PLAN if args.quick else TimingPlan()
    if args.budget is not None:
        plan = dataclasses.replace(plan, budget_s=args.budget)
    settings = Settings(
        threads=threads,
        plan=plan,
        limits=_given_limits(args, threads),
        quick=args.quick,
        peers=() if args.no_peers else PEERS,
        sections=args.sections,
        patterns=args.cases,
    )
    if args.quick:
        settings = dataclasses.replace(settings, sweep_batches=QUICK_SWEEP_BATCHES,
                                       training_images=QUICK_TRAINING_IMAGES)
    if args.training_images is not None:
        settings = dataclasses.replace(settings, training_images=args.training_images)
    return settings


def main(argv: Sequence[str] | None = None,
         judge: Callable[[dict], None] | None = None) -> int:
    """Run the suite; exit status 1 if any convpool output disagrees with its peer.

    ``judge`` (``benchmarks/targets.py`` from a checkout) marks rows against targets.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print(_list_cases())
        return 0
    if args.render:
        with open(args.render) as saved:
            results = json.load(saved)
    else:
        try:
            settings = settings_from(args)
        except ValueError as error:
            parser.error(str(error))
        if settings.patterns and not any(
            selected(name, settings.patterns)
            for name in [c.name for c in MAIN_CASES] + [OVERHEAD_CASE.name, TRAINING_CASE]
        ):
            parser.error(f"--cases: {','.join(settings.patterns)} selects no case (see --list)")
        results = run_suite(settings)
    if judge is not None:
        judge(results)
    print(render(results), flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
        print(f"\nwrote {args.json}", file=sys.stderr)
    if args.plot:
        from .plot import plot

        try:
            plot(results, args.plot)
            print(f"wrote {args.plot}", file=sys.stderr)
        except ImportError:
            print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
    return 0 if results["summary"]["correct"] else 1
