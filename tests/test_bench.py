"""The benchmark suite's machinery (convpool.bench) on tiny cases: work counts, case
selection, interleaved timing, the correctness check, the memory worker, the JSON layout
and the report. No real timing: budgets are zero and shapes a few pixels wide."""

from __future__ import annotations

import json

import convpool
import numpy as np
import pytest
from convpool.bench import main
from convpool.bench.accuracy import relative_errors
from convpool.bench.cases import (
    MAIN_CASES,
    ConvCase,
    PoolCase,
    main_case,
    selected,
    sweep_cases,
)
from convpool.bench.machine import Limits, measure_limits
from convpool.bench.plot import plot
from convpool.bench.report import render
from convpool.bench.runners import Runner
from convpool.bench.suite import SECTIONS, Settings, run_suite
from convpool.bench.timing import TimingPlan, time_interleaved
from convpool.bench.training import measure_training
from convpool.padding import output_size

GIVEN_LIMITS = Limits({1: 100.0, 2: 200.0}, 30.0, {"fma_peak": "given", "stream": "given"})
NO_WAIT = TimingPlan(budget_s=0.0, min_rounds=2, max_rounds=2, min_sample_s=1e-5)

TINY_CASES = (
    ConvCase("tiny-conv", 2, 3, 9, 9, 4, 3, padding=1, fma_bound=True),
    ConvCase("tiny-picture", 1, 1, 12, 16, 1, 3, padding=1, picture=True),
    PoolCase("tiny-max", "max", 2, 3, 8, 8, 2, 2),
)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The suite sets PyTorch's thread count; other tests get theirs back."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny_settings(**changes) -> Settings:
    # quick: forward-only threads and sweep rows, convpool alone in the memory worker
    fields = dict(threads=2, plan=NO_WAIT, quick=True, sweep_bases=("tiny-conv",),
                  sweep_batches=(1, 3), sections=tuple(s for s in SECTIONS if s != "training"),
                  limits=GIVEN_LIMITS)
    return Settings(**(fields | changes))


def test_convolution_work_counts_every_multiply_add_twice():
    res64 = main_case("res-64")
    assert res64.output_shape == (8, 64, 56, 56)
    forward = 2 * 8 * 64 * 56 * 56 * 64 * 3 * 3
    assert res64.work("fwd") == forward
    assert res64.work("fwd+bwd") == 3 * forward + 8 * 64 * 56 * 56  # + the bias gradient
    depthwise = main_case("dw-32")
    assert depthwise.weight_shape == (32, 1, 3, 3)
    assert depthwise.work("fwd") == 2 * 8 * 32 * 112 * 112 * 1 * 9
    assert main_case("res-s2").output_shape == (8, 128, 28, 28)


def test_pooling_work_counts_bytes_read_and_written():
    pool = main_case("max-2x2")
    n_in, n_out = 8 * 64 * 112 * 112, 8 * 64 * 56 * 56
    assert pool.work("fwd") == 4 * (n_in + n_out)
    # forward writes values and int64 indices; backward reads both, writes the input gradient
    assert pool.work("fwd+bwd") == (4 * n_in + 12 * n_out) + (12 * n_out + 4 * n_in)
    assert main_case("avg-2x2").work("fwd+bwd") == 8 * (n_in + n_out)


@pytest.mark.parametrize("case", MAIN_CASES, ids=lambda case: case.name)
def test_case_output_shapes_follow_the_public_rule(case):
    n, c = case.output_shape[:2]
    expected = tuple(output_size(size, case.kernel, case.stride, 1, case.padding, case.padding)
                     for size in (case.height, case.width))
    assert case.output_shape[2:] == expected
    assert n == case.batch and c > 0


def test_case_patterns_are_glob_prefixes():
    names = [c.name for c in MAIN_CASES] + [c.name for c in sweep_cases((1, 8))]
    assert [n for n in names if selected(n, ("sobel",))] == ["sobel-400x600"]
    assert {n for n in names if selected(n, ("res-1",))} == {"res-128", "res-128-n1",
                                                              "res-128-n8"}
    assert [n for n in names if selected(n, ("*2x2",))] == ["max-2x2", "avg-2x2"]
    assert all(selected(n, ()) for n in names)


def test_relative_error_flags_shape_mismatch_and_nan():
    a = np.array([1.0, 2.0, 4.0], np.float32)
    names = ("output",)
    assert relative_errors((a,), (a,), names) == {"output": 0.0}
    assert relative_errors((a + 0.04,), (a,), names)["output"] == pytest.approx(0.01)
    assert relative_errors((a[:2],), (a,), names)["output"] == float("inf")
    assert relative_errors((np.array([1.0, np.nan, 4.0]),), (a,), names)["output"] == float("inf")


def test_timing_rotates_the_runners_each_round():
    calls: list[str] = []
    runners = [Runner(name, 1, lambda name=name: calls.append(name) or (), lambda n: None)
               for name in ("a", "b", "c")]
    plan = TimingPlan(budget_s=0.0, min_rounds=3, max_rounds=10, min_sample_s=0.0)
    timings = time_interleaved(runners, plan)
    assert calls == ["a", "b", "c"] + ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {t.label: len(t.samples_s) for t in timings.values()} == {"a": 3, "b": 3, "c": 3}
    assert all(t.q1_s <= t.median_s <= t.q3_s for t in timings.values())


def test_suite_on_tiny_cases_writes_every_section_to_json(tmp_path):
    lines: list[str] = []
    results = json.loads(json.dumps(run_suite(tiny_settings(), TINY_CASES, lines.append)))

    assert results["schema"] == "convpool-bench/1"
    assert results["machine"]["convpool"]["version"] == convpool.__version__
    assert results["settings"]["threads"] == 2
    sections = {r["section"] for r in results["records"]}
    assert sections == {"main", "overhead", "threads", "sweep"}
    main_rows = [r for r in results["records"] if r["section"] == "main"]
    assert [(r["case"], r["pass"]) for r in main_rows] == [
        (c.name, p) for c in TINY_CASES for p in ("fwd", "fwd+bwd")]
    for row in main_rows:
        assert "skipped" not in row
        convpool_run = row["runners"]["convpool"]
        assert convpool_run["median_s"] > 0 and len(convpool_run["samples_s"]) == 2
        assert convpool_run["rate"] == pytest.approx(row["work"] / convpool_run["median_s"] / 1e9)
        assert set(row["ratios"]) == set(row["runners"]) - {"convpool"}
        if row["reference"] is not None:
            assert row["correct"] is True
            assert max(row["errors"]["convpool"].values()) < 1e-5
    threads_rows = [r for r in results["records"] if r["section"] == "threads"]
    assert [(r["case"], r["pass"]) for r in threads_rows] == [("tiny-conv", "fwd")]
    assert "convpool@1t" in threads_rows[0]["runners"]
    assert threads_rows[0]["speedups"]["convpool"] > 0
    sweep_rows = [r["case"] for r in results["records"] if r["section"] == "sweep"]
    assert sweep_rows == ["tiny-conv-n1", "tiny-conv-n3"]

    memory = [row for row in results["memory"]["results"] if "skipped" not in row]
    assert {(row["case"], row["pass"]) for row in memory} >= {("tiny-conv", "fwd"),
                                                             ("tiny-picture", "fwd+bwd")}
    for row in memory:
        assert row["output_bytes"] > 0 and row["extra_per_operand"] >= 0
        assert 0 <= row["kept_bytes"] <= row["peak_growth_bytes"] + (1 << 20)
    assert results["training"] is None  # not among the sections asked for

    summary = results["summary"]
    assert summary["correct"] is True and summary["wrong"] == []
    assert "targets" not in summary  # the package measures; benchmarks/targets.py judges
    text = render(results)
    assert "tiny-conv" in text and "Summary" in text and "Extra memory" in text
    assert any(line.startswith("main     tiny-conv") for line in lines)
    if _has_matplotlib():
        plot(results, str(tmp_path / "bench.png"))
        assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.torch
def test_a_wrong_kernel_is_caught_and_fails_the_run(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    right = convpool.conv2d
    monkeypatch.setattr(convpool, "conv2d", lambda *args, **kwargs: right(*args, **kwargs) + 0.5)
    settings = tiny_settings(sections=("main",), peers=("torch",))
    results = run_suite(settings, TINY_CASES[:1], progress=lambda line: None)
    assert [r["correct"] for r in results["records"]] == [False, False]
    assert results["summary"]["correct"] is False
    assert "tiny-conv fwd" in results["summary"]["wrong"][0]
    assert "WRONG" in render(results)
    saved = tmp_path / "wrong.json"
    saved.write_text(json.dumps(results))
    assert main(["--render", str(saved)]) == 1


@pytest.mark.torch
def test_training_case_trains_the_same_net_in_both_libraries():
    pytest.importorskip("torch")
    training = measure_training(images=64, threads=2, with_torch=True)
    runs = training["runs"]
    assert runs["convpool"]["seconds"] > 0 and runs["torch"]["seconds"] > 0
    for run in runs.values():
        assert run["cpu_seconds"] > 0 and run["page_faults"] >= 0
    ratio = runs["torch"]["seconds"] / runs["convpool"]["seconds"]
    assert training["ratio"] == pytest.approx(ratio)
    # same initial weights, data, optimizer: the same losses, up to float32 rounding
    assert runs["convpool"]["final_loss"] == pytest.approx(runs["torch"]["final_loss"], rel=1e-4)
    assert "projected" in training["note"]


def test_a_kernel_that_raises_is_reported_and_fails_the_run(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("broken kernel")

    monkeypatch.setattr(convpool, "conv2d", broken)
    settings = tiny_settings(sections=("main",), peers=())
    results = run_suite(settings, TINY_CASES[:1], progress=lambda line: None)
    assert all("broken kernel" in r["skipped"] for r in results["records"])
    assert results["summary"]["correct"] is False
    assert "convpool raised ValueError: broken kernel" in results["summary"]["wrong"][0]


def test_command_line_quick_run_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--quick", "--cases", "overhead", "--sections", "overhead", "--budget", "0",
            "--json", str(out)]
    assert main(argv) == 0
    results = json.loads(out.read_text())
    assert [(r["case"], r["pass"]) for r in results["records"]] == [
        ("overhead-8x8", "fwd"), ("overhead-8x8", "fwd+bwd")]
    assert results["settings"]["quick"] is True
    assert results["settings"]["limits"]["source"] == {"fma_peak": "measured",
                                                       "stream": "measured"}
    output = capsys.readouterr().out
    assert "overhead-8x8" in output and "fp32 FMA peak" in output


def test_command_line_rejects_unknown_cases_and_sections(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--cases", "no-such-case"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit):
        main(["--sections", "main,bogus"])
    assert "bogus" in capsys.readouterr().err
    assert main(["--list"]) == 0


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_limits_are_measured_on_this_machine():
    """The yardsticks come from this CPU: the FMA peak grows with the vector width in use
    and the bandwidth is a plausible number of GB/s, not a constant from another machine."""
    limits = measure_limits({1}, quick=True)
    assert limits.source == {"fma_peak": "measured", "stream": "measured"}
    # Even a loaded SSE2 core does more than 1 GFLOP/s; no CPU core today does 2 TFLOP/s.
    assert 1.0 < limits.fma_peak(1) < 2000.0
    assert 0.1 < limits.stream_gbs < 2000.0
    given = measure_limits({1, 2}, fma_peak_gflops={1: 50.0, 2: 99.0}, stream_gbs=12.0)
    assert given.fma_peak(2) == 99.0 and given.stream_gbs == 12.0
    assert given.source == {"fma_peak": "given", "stream": "given"}


def test_command_line_peak_flags_override_the_measurement(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--quick", "--cases", "overhead", "--sections", "overhead", "--budget", "0",
            "--threads", "2", "--fma-peak", "120", "--stream-gbs", "40", "--json", str(out)]
    assert main(argv) == 0
    limits = json.loads(out.read_text())["settings"]["limits"]
    assert limits["fma_peak_gflops"] == {"1": 120.0, "2": 240.0}
    assert limits["stream_gbs"] == 40.0
    assert limits["source"] == {"fma_peak": "given", "stream": "given"}


def test_project_targets_judge_a_run():
    """benchmarks/targets.py (the project's targets, outside the package) marks rows."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "targets.py"
    spec = importlib.util.spec_from_file_location("targets", path)
    targets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(targets)
    results = json.loads(json.dumps(run_suite(tiny_settings(sections=("main", "overhead")),
                                              TINY_CASES[:1], lambda line: None)))
    targets.judge(results)
    overhead = [r for r in results["records"] if r["section"] == "overhead" and r["pass"] == "fwd"]
    assert overhead[0]["checks"][0]["family"] == "overhead"
    assert set(results["summary"]["targets"]) >= {"overhead"}
    assert "overhead" in render(results)
