"""Extra memory during a call: the growth of peak resident memory, in fresh processes.

One worker process per library (``python -m convpool.bench.memory``, JSON request on stdin,
JSON rows on stdout) imports it, then forks a fresh child per case, before any kernel ran.
The child builds the case's operands, starts the library's thread team with a small call,
notes its resident size (the baseline), then for each pass resets the peak-RSS mark
(``/proc/self/clear_refs``), runs the call once and reads ``VmHWM``. Everything above the
baseline except the outputs the call returns is extra memory: scratch, and whatever the
library allocated on the way and keeps (workspaces, caches: ``kept`` is what remains
resident after the outputs are freed). Reported as a multiple of the operands' bytes
(inputs + outputs).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from .cases import Case, ConvCase, case_from_dict, case_to_dict
from .runners import Unavailable, as_numpy, make_runner

# With a fixed mmap threshold glibc serves every large block by mmap and unmaps it on free:
# freed memory leaves the resident set at once, so "kept" means kept by the library.
WORKER_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def measure_memory(
    cases: list[Case], passes: tuple[str, ...], libraries: tuple[str, ...], threads: int,
    seed: int = 0, timeout_s: float = 600.0,
) -> dict:
    """``{"method": ..., "results": [one row per case, pass and library]}``."""
    results, reset_everywhere = [], True
    for library in libraries:
        request = {"cases": [case_to_dict(case) for case in cases], "passes": list(passes),
                   "library": library, "threads": threads, "seed": seed}
        reply = _ask_worker(request, threads, timeout_s)
        results += reply["results"]
        reset_everywhere &= reply["reset_supported"]
    method = "a fresh (forked) process per case and library, peak reset before each pass"
    if not reset_everywhere:
        method += " (reset unsupported here: peaks since the process started)"
    order = {(case.name, library): i for i, (case, library) in
             enumerate((c, lib) for c in cases for lib in libraries)}
    results.sort(key=lambda row: order[(row["case"], row["library"])])
    return {"method": method, "results": results}


def _ask_worker(request: dict, threads: int, timeout_s: float) -> dict:
    environment = os.environ | WORKER_ENVIRONMENT | {"OMP_NUM_THREADS": str(threads)}
    process = subprocess.run(
        [sys.executable, "-m", "convpool.bench.memory"], input=json.dumps(request),
        capture_output=True, text=True, env=environment, timeout=timeout_s, check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"memory worker failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout)


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {key}")


def _reset_peak() -> bool:
    """Set the high-water mark to the current resident size (Linux >= 4.0). The kernel's
    RSS counters are batched per thread, so both numbers are exact only to ~0.25 MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


# Big enough for every library to start its thread team, small enough that whatever it
# leaves behind (stacks, per-thread arenas, small workspaces) is a fixed cost of the
# process rather than of the measured call.
_THREAD_POOL_CASE = ConvCase("thread-pool-start", 2, 8, 64, 64, 8, 3, padding=1)


def _start_thread_pool(library: str, threads: int, seed: int) -> None:
    from .operands import operands

    try:
        arrays = operands(_THREAD_POOL_CASE, seed)
        make_runner(library, _THREAD_POOL_CASE, "fwd", arrays, threads).call()
    except Unavailable:
        pass


def _measure_case(case: Case, passes: list[str], library: str, threads: int,
                  seed: int) -> tuple[list[dict], bool]:
    from .operands import operands

    arrays = operands(case, seed)
    runners, rows = {}, []
    for pass_ in passes:
        try:
            runners[pass_] = make_runner(library, case, pass_, arrays, threads)
        except Unavailable as error:
            rows.append({"case": case.name, "pass": pass_, "library": library,
                         "skipped": str(error)})
    _start_thread_pool(library, threads, seed)
    gc.collect()
    baseline_kib = _status_kib("VmRSS")
    reset_supported = True
    for pass_, runner in runners.items():
        runner.prepare()
        reset_supported &= _reset_peak()
        outputs = runner.call()
        peak_kib = _status_kib("VmHWM")
        output_bytes = sum(as_numpy(output).nbytes for output in outputs)
        del outputs
        gc.collect()
        kept = max(0, _status_kib("VmRSS") - baseline_kib) * 1024
        names = ("x", "weight", "bias") if pass_ == "fwd" else tuple(arrays)
        input_bytes = sum(arrays[name].nbytes for name in names if name in arrays)
        growth = max(0, peak_kib - baseline_kib) * 1024
        extra = max(0, growth - output_bytes)
        rows.append({
            "case": case.name, "pass": pass_, "library": library,
            "input_bytes": input_bytes,
            "output_bytes": output_bytes,
            "peak_growth_bytes": growth,
            "extra_bytes": extra,
            "kept_bytes": kept,
            "extra_per_operand": extra / (input_bytes + output_bytes),
        })
    rows.sort(key=lambda row: passes.index(row["pass"]))
    return rows, reset_supported


def _in_child(measure) -> tuple[list[dict], bool]:
    """``measure()`` in a forked child: a process in which no kernel has run yet."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        status = 0
        try:
            reply = json.dumps(measure()).encode()
        except BaseException as error:  # reported by the parent, never raised past fork
            reply, status = json.dumps(f"{type(error).__name__}: {error}").encode(), 1
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(reply)
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reply = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"memory measurement failed: {reply.decode(errors='replace')}")
    rows, reset_supported = json.loads(reply)
    return rows, reset_supported


def _worker() -> None:
    request = json.load(sys.stdin)
    if request["library"] == "torch":
        import torch  # noqa: F401  (imported once, before forking, as a DataLoader would)
    results, reset_everywhere = [], True
    for case_data in request["cases"]:
        case = case_from_dict(case_data)

        def measure(case=case):
            return _measure_case(case, request["passes"], request["library"],
                                 request["threads"], request["seed"])

        rows, reset_supported = _in_child(measure) if hasattr(os, "fork") else measure()
        results += rows
        reset_everywhere &= reset_supported
    json.dump({"reset_supported": reset_everywhere, "results": results}, sys.stdout)


if __name__ == "__main__":
    _worker()
