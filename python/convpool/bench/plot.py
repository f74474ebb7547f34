"""``--plot``: a PNG bar chart of the main cases (matplotlib, imported only here)."""

from __future__ import annotations

from .cases import PASSES


def plot(results: dict, path: str) -> None:
    """Top: PyTorch time / convpool time per case and pass (log scale, > 1 is faster).
    Bottom: convpool's share of the machine's limit (FMA peak, or bandwidth for pooling)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = [r for r in results["records"] if r["section"] == "main" and "skipped" not in r]
    cases = list(dict.fromkeys(r["case"] for r in records))
    by_key = {(r["case"], r["pass"]): r for r in records}
    figure = Figure(figsize=(max(8.0, 0.8 * len(cases) + 2), 8), layout="constrained")
    FigureCanvasAgg(figure)
    ratio_axes, peak_axes = figure.subplots(2, 1, sharex=True)
    width = 0.8 / len(PASSES)
    positions = range(len(cases))
    for i, pass_ in enumerate(PASSES):
        offsets = [p + (i - (len(PASSES) - 1) / 2) * width for p in positions]
        ratios = [by_key.get((c, pass_), {}).get("ratios", {}).get("torch", 0) for c in cases]
        peaks = [by_key[(c, pass_)]["runners"]["convpool"]["percent_of_limit"]
                 if (c, pass_) in by_key else 0 for c in cases]
        # Bars start at 1 (parity): up when convpool is faster, down when slower.
        bars = ratio_axes.bar(offsets, [r - 1 if r else 0 for r in ratios], width, bottom=1,
                              label=pass_)
        ratio_axes.bar_label(bars, labels=[f"{r:.2f}" if r else "" for r in ratios],
                             fontsize=7)
        peak_axes.bar(offsets, peaks, width, label=pass_)
    if any(r.get("ratios", {}).get("torch") for r in records):
        ratio_axes.set_yscale("log")
    ratio_axes.axhline(1.0, color="black", linewidth=0.8)
    ratio_axes.axhline(2.0, color="gray", linestyle="--", linewidth=0.8, label="geomean target")
    ratio_axes.set_ylabel("PyTorch time / convpool time")
    ratio_axes.legend()
    threads = results["settings"]["threads"]
    ratio_axes.set_title(f"convpool vs PyTorch, float32, {threads} threads "
                         f"({'quick' if results['settings']['quick'] else 'full'} run)")
    peak_axes.set_ylabel("% of FMA peak (pooling: of bandwidth)")
    peak_axes.axhline(100.0, color="black", linewidth=0.8)
    peak_axes.set_xticks(list(positions), cases, rotation=30, ha="right")
    figure.savefig(path, dpi=120)
