"""Extra memory during a call: the growth of peak resident memory, in a fresh process.

The worker (``python -m convpool.bench.memory``, JSON request on stdin, JSON results on
stdout) builds each case's operands, warms the call up (thread stacks, lazy set-up), resets
the kernel's high-water mark (``/proc/self/clear_refs``), runs the call once and reads
``VmHWM``. The growth minus the bytes of the outputs the call returns is its scratch memory,
reported as a multiple of the operands' bytes (inputs + outputs). Memory a library keeps
across calls (caches made in the warm-up) is not counted.

Where the high-water mark cannot be reset, each measurement gets its own fresh process and
no warm-up (first-call set-up is then counted too).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from .cases import Case, case_from_dict, case_to_dict
from .runners import Unavailable, as_numpy, make_runner

# With a fixed mmap threshold glibc serves every large block by mmap and unmaps it on free,
# so a freed warm-up buffer is not silently reused (and hidden) by the measured call.
WORKER_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def measure_memory(
    cases: list[Case], passes: tuple[str, ...], libraries: tuple[str, ...], threads: int,
    seed: int = 0, timeout_s: float = 600.0,
) -> dict:
    """``{"method": ..., "results": [one dict per case, pass and library]}``."""
    items = [(case_to_dict(c), p, lib) for c in cases for p in passes for lib in libraries]
    reply = _ask_worker(items, threads, seed, timeout_s, warm_up=True)
    if reply["reset_supported"]:
        return {"method": "peak reset in one process", "results": reply["results"]}
    results = []
    for item in items:
        results += _ask_worker([item], threads, seed, timeout_s, warm_up=False)["results"]
    return {"method": "one fresh process per call, no warm-up", "results": results}


def _ask_worker(items: list, threads: int, seed: int, timeout_s: float, warm_up: bool) -> dict:
    request = {"items": items, "threads": threads, "seed": seed, "warm_up": warm_up}
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
    """Set the high-water mark to the current resident size (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") <= _status_kib("VmRSS") + 64


def _measure(case: Case, pass_: str, library: str, threads: int, seed: int,
             warm_up: bool) -> dict:
    from .operands import operands

    arrays = operands(case, seed)
    names = ("x", "weight", "bias") if pass_ == "fwd" else tuple(arrays)
    input_bytes = sum(arrays[name].nbytes for name in names if name in arrays)
    row = {"case": case.name, "pass": pass_, "library": library}
    try:
        runner = make_runner(library, case, pass_, arrays, threads)
    except Unavailable as error:
        return row | {"skipped": str(error)}
    runner.prepare()
    if warm_up:
        runner.call()
    gc.collect()
    if warm_up:
        _reset_peak()
    before_kib = _status_kib("VmRSS")
    peak_before_kib = _status_kib("VmHWM")
    outputs = runner.call()
    peak_kib = _status_kib("VmHWM")
    output_bytes = sum(as_numpy(output).nbytes for output in outputs)
    growth = max(0, peak_kib - max(before_kib, 0 if warm_up else peak_before_kib)) * 1024
    extra = max(0, growth - output_bytes)
    return row | {
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "peak_growth_bytes": growth,
        "extra_bytes": extra,
        "extra_per_operand": extra / (input_bytes + output_bytes),
    }


def _worker() -> None:
    request = json.load(sys.stdin)
    reset_supported = _reset_peak()
    results = []
    # Without a reset, a warmed-up measurement would be meaningless: the parent then asks
    # again, one fresh process per call.
    if reset_supported or not request["warm_up"]:
        for case_data, pass_, library in request["items"]:
            results.append(_measure(case_from_dict(case_data), pass_, library,
                                    request["threads"], request["seed"], request["warm_up"]))
            gc.collect()
    json.dump({"reset_supported": reset_supported, "results": results}, sys.stdout)


if __name__ == "__main__":
    _worker()
