"""The readable report: fixed-width tables per section and a summary, from the results dict
(so a saved ``--json`` file can be rendered again with ``--render``)."""

from __future__ import annotations

import math

from .accuracy import TOLERANCE


def _table(headers: list[str], rows: list[list[str]], left: int = 2) -> str:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned. A row
    shorter than the header (a skipped case) spans the columns after its first two."""
    full = [row for row in rows if len(row) == len(headers)]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *full, strict=True)]

    def line(cells: list[str]) -> str:
        if len(cells) < len(headers):
            return "  ".join([cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), *cells[2:]])
        return "  ".join(
            str(cell).ljust(width) if i < left else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "-" if value is None else str(value)
    return f"{value:.{digits}f}"


def _spread(run: dict) -> str:
    """The interquartile range of the samples, in % of the median: how noisy the row is."""
    return f"{100 * (run['q3_s'] - run['q1_s']) / run['median_s']:.0f}%"


def _ratio(value: float | None) -> str:
    """Three significant digits: 0.996 is not rounded up to a met target."""
    return "-" if value is None else f"{value:.3g}"


def _verdict(record: dict) -> str:
    if record.get("correct") is False:
        return "WRONG"
    missed = [c["target"] for c in record.get("checks", []) if not c["met"]]
    if missed:
        return "MISS " + ", ".join(missed)
    if record.get("checks"):
        return "ok"
    return "-"


def _max_error(record: dict, label: str = "convpool") -> str:
    errors = record.get("errors", {}).get(label)
    return f"{max(errors.values()):.1e}" if errors else "-"


def _main_table(records: list[dict]) -> str | None:
    rows = []
    for r in (r for r in records if r["section"] == "main"):
        if "skipped" in r:
            rows.append([r["case"], r["pass"], "skipped: " + r["skipped"]])
            continue
        cp = r["runners"]["convpool"]
        peers = [label for label in r["runners"] if label != "convpool"] or [None]
        for i, peer in enumerate(peers):
            left = [r["case"], r["pass"], _ms(cp["median_s"]), _spread(cp),
                    f"{cp['rate']:.1f} {r['unit']}", f"{cp['percent_of_limit']:.0f}%"]
            row = left if i == 0 else [""] * len(left)
            peer_ms = _ms(r["runners"][peer]["median_s"]) if peer else "-"
            ratio = _ratio(r["ratios"].get(peer)) if peer else "-"
            tail = [_max_error(r), _verdict(r)] if i == 0 else ["", ""]
            rows.append(row + [peer or "-", peer_ms, ratio] + tail)
    if not rows:
        return None
    headers = ["case", "pass", "convpool ms", "iqr", "rate", "% peak", "peer", "peer ms",
               "peer/convpool", "max rel err", "verdict"]
    return _table(headers, [_pad(row, len(headers)) for row in rows])


def _pad(row: list[str], length: int) -> list[str]:
    return row + [""] * (length - len(row))


def _overhead_table(records: list[dict]) -> str | None:
    rows = []
    for r in (r for r in records if r["section"] == "overhead"):
        if "skipped" in r:
            rows.append([r["case"], r["pass"], "skipped: " + r["skipped"]])
            continue
        torch = r["runners"].get("torch")
        rows.append([
            r["case"], r["pass"], f"{r['runners']['convpool']['median_s'] * 1e6:.1f}",
            f"{torch['median_s'] * 1e6:.1f}" if torch else "-", _ratio(r["ratios"].get("torch")),
            _max_error(r), _verdict(r),
        ])
    if not rows:
        return None
    headers = ["case", "pass", "convpool us", "torch us", "torch/convpool", "max rel err",
               "verdict"]
    return _table(headers, [_pad(row, len(headers)) for row in rows])


def _threads_table(records: list[dict], threads: int) -> str | None:
    rows = []
    for r in (r for r in records if r["section"] == "threads"):
        if "skipped" in r:
            rows.append([r["case"], r["pass"], "skipped: " + r["skipped"]])
            continue
        many = f"{threads}t"
        speedups = r.get("speedups", {})
        rows.append([
            r["case"], r["pass"],
            _ms(r["runners"]["convpool@1t"]["median_s"]),
            _ms(r["runners"][f"convpool@{many}"]["median_s"]),
            _ratio(speedups.get("convpool")) + "x",
            f"{r['runners']['convpool@1t']['percent_of_limit']:.0f}%",
            _ms(r["runners"].get("torch@1t", {}).get("median_s")),
            _ms(r["runners"].get(f"torch@{many}", {}).get("median_s")),
            _ratio(speedups.get("torch")) + "x" if "torch" in speedups else "-",
            _verdict(r),
        ])
    if not rows:
        return None
    headers = ["case", "pass", "convpool 1t ms", f"convpool {threads}t ms", "speedup",
               "% 1t peak", "torch 1t ms", f"torch {threads}t ms", "torch speedup", "verdict"]
    return _table(headers, [_pad(row, len(headers)) for row in rows])


def _sweep_table(records: list[dict]) -> str | None:
    rows = []
    for r in (r for r in records if r["section"] == "sweep"):
        if "skipped" in r:
            rows.append([r["case"], r["pass"], "skipped: " + r["skipped"]])
            continue
        cp = r["runners"]["convpool"]
        batch = int(r["case"].rsplit("-n", 1)[1])
        rows.append([
            r["base"], r["pass"], str(batch), _ms(cp["median_s"]),
            f"{cp['median_s'] * 1e6 / batch:.1f}", f"{cp['rate']:.1f}",
            _ms(r["runners"].get("torch", {}).get("median_s")), _ratio(r["ratios"].get("torch")),
            _max_error(r) + (" WRONG" if r.get("correct") is False else ""),
        ])
    if not rows:
        return None
    headers = ["case", "pass", "N", "convpool ms", "us/image", "GFLOP/s", "torch ms",
               "torch/convpool", "max rel err"]
    return _table(headers, [_pad(row, len(headers)) for row in rows], left=3)


def _memory_table(memory: dict | None) -> str | None:
    if not memory:
        return None
    by_key: dict[tuple[str, str], dict[str, dict]] = {}
    for row in memory["results"]:
        by_key.setdefault((row["case"], row["pass"]), {})[row["library"]] = row
    rows = []
    for (case, pass_), libraries in by_key.items():
        cp = libraries.get("convpool", {})
        if "skipped" in cp:
            rows.append([case, pass_, "skipped: " + cp["skipped"]])
            continue
        torch = libraries.get("torch", {})
        mib = 1 << 20
        rows.append([
            case, pass_, f"{(cp['input_bytes'] + cp['output_bytes']) / mib:.2f}",
            f"{cp['extra_bytes'] / mib:.2f}", _num(cp["extra_per_operand"]),
            f"{cp['kept_bytes'] / mib:.2f}",
            _num(torch["extra_per_operand"]) if "extra_per_operand" in torch else "-",
            _verdict(cp),
        ])
    headers = ["case", "pass", "operands MiB", "extra MiB", "extra/operands", "kept MiB",
               "torch extra/operands", "verdict"]
    return (_table(headers, [_pad(row, len(headers)) for row in rows])
            + f"\n(method: {memory['method']})")


def _optional(value: object, form: str) -> str:
    """A value a result file written by an older version may lack."""
    return "-" if value is None else form.format(value)


def _training_table(training: dict | None) -> str | None:
    if not training:
        return None
    if "skipped" in training:
        return f"{training['case']}: skipped: {training['skipped']}"
    rows = []
    for library, run in training["runs"].items():
        rows.append([library, str(training["images"]), f"{run['seconds']:.2f}",
                     f"{training['images'] / run['seconds']:.0f}",
                     f"{run['seconds'] * training['epoch_images'] / training['images']:.2f}",
                     _optional(run.get("cpu_seconds"), "{:.2f}"),
                     _optional(run.get("page_faults"), "{:d}"),
                     f"{run['final_loss']:.3f}"])
    table = _table(["library", "images", "seconds", "images/s", "epoch s (60000)", "CPU s",
                    "page faults", "last loss"], rows, left=1)
    ratio = training.get("ratio")
    return table + (f"\ntorch/convpool: {ratio:.3g}" if ratio else "") + (
        f"\n{training['note']}" if training.get("note") else "")


def _summary(results: dict) -> str:
    summary = results["summary"]
    settings = results["settings"]
    machine = results["machine"]
    lines = [
        f"threads {settings['threads']}, {'quick' if settings['quick'] else 'full'} run, "
        f"{results.get('elapsed_s', 0):.0f} s, load average "
        f"{machine.get('load_average_at_start')} -> {machine.get('load_average_at_end')}",
    ]
    load = machine.get("load_average_at_start")
    cpus = machine.get("cpus_available") or 1
    if load and max(load[0], (machine.get("load_average_at_end") or load)[0]) > 0.5 * cpus:
        lines.append(f"warning: load average {load[0]} on {cpus} cpus: other work competed "
                     "for the cores; times are noisy (ratios less so, being interleaved)")
    geomean = summary["geomean_ratio_vs_torch"]
    if geomean is not None:
        lines.append(f"geometric mean of torch/convpool over {summary['ratios_in_geomean']} "
                     f"main rows: {geomean:.2f}")
    for target in summary.get("targets", {}).values():
        mark = "met " if target["met"] == target["total"] else "MISS"
        lines.append(f"  {mark} {target['met']:>3}/{target['total']:<3} {target['description']}")
    if summary["correct"]:
        lines.append(f"correctness: every checked output matches (max rel error <= {TOLERANCE:g})")
    else:
        lines += ["correctness: WRONG RESULTS"] + [f"  {line}" for line in summary["wrong"]]
    if summary["unchecked"]:
        lines.append("unchecked (no peer): " + ", ".join(summary["unchecked"]))
    lines += [f"skipped: {line}" for line in summary["skipped"]]
    lines += [f"note: {line}" for line in summary.get("notes", [])]
    return "\n".join(lines)


def _header(results: dict) -> str:
    machine = results["machine"]
    build = machine["convpool"]
    limits = results["settings"]["limits"]
    source = limits.get("source", {})
    peaks = ", ".join(f"{gflops:g} GFLOP/s on {threads}t"
                      for threads, gflops in limits["fma_peak_gflops"].items())
    return (
        f"convpool {build.get('version')} ({build.get('compiler')}, SIMD {build.get('simd')}), "
        f"torch {machine.get('torch')}, opencv {machine.get('opencv')}\n"
        f"{machine['cpu']}, {machine['cpus_available']} cpus\n"
        f"fp32 FMA peak {peaks} ({source.get('fma_peak', 'given')}); "
        f"streaming bandwidth {limits['stream_gbs']:g} GB/s ({source.get('stream', 'given')})"
    )


def render(results: dict) -> str:
    """The whole report as text."""
    records = results["records"]
    parts = [_header(results)]
    sections = [
        ("Cases (float32; peer/convpool > 1 means convpool is faster)",
         _main_table(records)),
        ("Per-call overhead (1x1x8x8 conv, 3x3, microseconds per call)",
         _overhead_table(records)),
        ("Threads: one vs all", _threads_table(records, results["settings"]["threads"])),
        ("Batch-size sweep", _sweep_table(records)),
        ("Extra memory during one call", _memory_table(results.get("memory"))),
        ("Training: LeNet-5, one epoch of random 28x28 images", _training_table(
            results.get("training"))),
        ("Summary", _summary(results)),
    ]
    for title, body in sections:
        if body:
            parts.append(f"{title}\n{body}")
    return "\n\n".join(parts)
