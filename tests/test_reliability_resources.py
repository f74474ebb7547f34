"""Memory, time and processes: an allocation failure is a MemoryError (never an abort),
scratch memory follows the operands rather than the padding, empty inputs return at
once, and a forked child can run kernels after its parent used a team of threads.

The cases that used to abort or hang run in a child interpreter, so that a regression
fails the test instead of taking the test run down with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import convpool
import numpy as np
import pytest
from conftest import conv2d_variants, forced_conv2d_implementation


def _run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


# --- allocation failures --------------------------------------------------------------

ABORTING_CALLS = {
    "conv2d(dilation=30000, padding=30000)":
        "cp.conv2d(np.ones((1, 4, 1, 1), np.float32), np.ones((4, 4, 3, 3), np.float32), "
        "dilation=30000, padding=30000)",
    "conv2d_grad_weight(empty 2**34 row)":
        "e = np.empty((0, 1, 1, 2**34), np.float32); cp.conv2d_grad_weight(e, e, (1, 1, 1, 1))",
    "max_pool2d(empty 2**34 row)":
        "cp.max_pool2d(np.empty((0, 1, 1, 2**34), np.float32), (1, 2**34))",
    "avg_pool2d(empty 2**34 row)":
        "cp.avg_pool2d(np.empty((0, 1, 1, 2**34), np.float32), (1, 2**34))",
}


@pytest.mark.parametrize("call", list(ABORTING_CALLS))
def test_huge_scratch_requests_never_abort_the_process(call):
    """Each once threw std::bad_alloc inside an OpenMP region (SIGABRT). Now it either
    computes (padding no window reads costs nothing) or raises MemoryError."""
    child = _run_child(f"""
        import numpy as np, convpool as cp
        try:
            {ABORTING_CALLS[call]}
            print("computed")
        except MemoryError:
            print("MemoryError")
    """)
    assert child.returncode == 0, f"{call}: exit {child.returncode}\n{child.stderr[-2000:]}"
    assert child.stdout.strip() in ("computed", "MemoryError")


def test_dilated_padding_that_no_window_reads_costs_no_memory():
    x = np.ones((1, 4, 1, 1), np.float32)
    w = np.arange(144, dtype=np.float32).reshape(4, 4, 3, 3)
    child = _run_child("""
        import resource, numpy as np, convpool as cp
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        y = cp.conv2d(np.ones((1, 4, 1, 1), np.float32),
                      np.arange(144, dtype=np.float32).reshape(4, 4, 3, 3),
                      dilation=3000, padding=3000)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown // 1024, y.ravel().tolist())
    """)
    assert child.returncode == 0, child.stderr[-2000:]
    grown_mib, values = child.stdout.split(" ", 1)
    assert int(grown_mib) < 32, f"peak memory grew by {grown_mib} MiB for a 16-byte input"
    # Only the centre tap of each kernel reads the single pixel.
    assert eval(values) == w[:, :, 1, 1].sum(axis=1).tolist()  # noqa: S307 (our own output)
    np.testing.assert_array_equal(convpool.conv2d(x, w, dilation=3000, padding=3000)[0, :, 0, 0],
                                  w[:, :, 1, 1].sum(axis=1))


_RESIDENT_MIB = """
import os
def resident_mib():  # VmRSS of this process
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
"""


def _skip_resident_memory_checks() -> None:
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("resident memory is read from /proc/self/statm (Linux)")
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("AddressSanitizer's quarantine keeps freed memory resident on purpose")


STRIDED_PADDING = dict(stride=(3000, 1), padding=3000)


@pytest.mark.parametrize("pass_", ["forward", "grad_input", "grad_weight"])
def test_strided_padding_gives_the_direct_sum_in_every_implementation(pass_):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    gy = rng.standard_normal(convpool.conv2d(x, w, **STRIDED_PADDING).shape).astype(np.float32)
    calls = {
        "forward": lambda: convpool.conv2d(x, w, **STRIDED_PADDING),
        "grad_input": lambda: convpool.conv2d_grad_input(gy, w, x.shape, **STRIDED_PADDING),
        "grad_weight": lambda: convpool.conv2d_grad_weight(x, gy, w.shape, **STRIDED_PADDING),
    }
    with forced_conv2d_implementation(pass_, "direct"):
        expected = calls[pass_]()
    for name in conv2d_variants(pass_, x, w, gy, **STRIDED_PADDING):
        np.testing.assert_allclose(calls[pass_](), expected, rtol=1e-4, atol=1e-4, err_msg=name)


def test_strided_padding_leaves_no_memory_behind():
    """stride 3000 over 3000 rows of padding: the windows read 9 input rows, and no padded
    copy of 6000 rows may be made, nor kept after the call (a fresh process, so that no
    earlier call's scratch hides it)."""
    _skip_resident_memory_checks()
    child = _run_child(_RESIDENT_MIB + """
import numpy as np, convpool as cp
from convpool import _core
x = np.ones((1, 4, 8, 8), np.float32)
w = np.ones((4, 4, 3, 3), np.float32)
kwargs = dict(stride=(3000, 1), padding=3000)
gy = np.ones((1, 4, 3, 6006), np.float32)
before = resident_mib()
calls = {"conv2d": lambda: cp.conv2d(x, w, **kwargs),
         "conv2d_grad_input": lambda: cp.conv2d_grad_input(gy, w, x.shape, **kwargs),
         "conv2d_grad_weight": lambda: cp.conv2d_grad_weight(x, gy, w.shape, **kwargs)}
for op, call in calls.items():
    for name in _core.implementations(op):
        _core.force_implementation(op, name)
        try:
            call()
        except ValueError:  # an implementation that does not support the case refuses it
            pass
    _core.force_implementation(op, "")
print(resident_mib() - before)
""")
    assert child.returncode == 0, child.stderr[-2000:]
    assert float(child.stdout) < 32, f"resident memory grew by {float(child.stdout):.0f} MiB"


def test_large_per_thread_scratch_is_released_after_the_call():
    """A padded copy of ~40 MiB (the row kernel's zero-padded input) is not kept."""
    _skip_resident_memory_checks()
    if convpool.build_info()["simd"] not in ("avx2", "avx512"):
        pytest.skip("the row kernel's padded copy needs vectors of 8 floats or more")
    child = _run_child(_RESIDENT_MIB + """
import numpy as np, convpool as cp
from convpool import _core
rng = np.random.default_rng(1)
x = rng.standard_normal((1, 8, 1100, 1100)).astype(np.float32)
w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
out = np.ones((1, 4, 1100, 1100), np.float32)  # pages touched: only scratch may grow
_core.force_implementation("conv2d", "blocked")
cp.conv2d(x[:, :, :8, :8], w, padding=1)  # the thread's small buffers exist
before = resident_mib()
cp.conv2d(x, w, padding=1, out=out)
grown = resident_mib() - before
expected = cp.conv2d(x[:, :, :40, :40], w, padding=1)
np.testing.assert_allclose(out[:, :, :39, :39], expected[:, :, :39, :39], rtol=1e-4, atol=1e-4)
print(grown)
""")
    assert child.returncode == 0, child.stderr[-2000:]
    assert float(child.stdout) < 16, f"{float(child.stdout):.0f} MiB of scratch kept after the call"


# --- empty inputs -----------------------------------------------------------------------

EMPTY_CALLS = {
    "max_pool2d": "cp.max_pool2d(np.empty((0, 1, 2**40, 1), np.float32), 1)",
    "max_pool2d(C=0)": "cp.max_pool2d(np.empty((3, 0, 2**40, 1), np.float32), 1)",
    "avg_pool2d": "cp.avg_pool2d(np.empty((0, 1, 2**40, 1), np.float32), 1)",
    "avg_pool2d_grad_input": "cp.avg_pool2d_grad_input(np.empty((0, 1, 2**40, 1), np.float32), "
                             "(0, 1, 2**40, 1), 1)",
    "max_pool2d_grad_input": "cp.max_pool2d_grad_input(np.empty((0, 1, 2**40, 1), np.float32), "
                             "np.empty((0, 1, 2**40, 1), np.int64), (0, 1, 2**40, 1))",
    "global_max_pool2d": "cp.global_max_pool2d(np.empty((0, 1, 2**40, 1), np.float32))",
}


@pytest.mark.parametrize("call", list(EMPTY_CALLS))
def test_inputs_without_planes_return_at_once(call):
    """An input with no planes (N = 0 or C = 0) and a 2**40-row plane: the result is empty,
    so the kernels have nothing to do (they took minutes, with O(H) scratch)."""
    child = _run_child(f"""
        import resource, numpy as np, convpool as cp
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = {EMPTY_CALLS[call]}
        assert result.size == 0, result.shape
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """, timeout=60)
    assert child.returncode == 0, child.stderr[-2000:]
    assert int(child.stdout) < 32, f"{call}: peak memory grew by {child.stdout.strip()} MiB"


# --- fork -------------------------------------------------------------------------------

def test_a_forked_child_runs_kernels_after_the_parent_used_threads():
    child = _run_child("""
        import multiprocessing, numpy as np, convpool as cp
        cp.set_num_threads(2)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
        w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)

        def work(seed):
            return float(cp.conv2d(x, w, padding=1).sum() + cp.max_pool2d(x, 2).sum())

        expected = work(0)  # the parent's OpenMP team now exists
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(work, range(4))
        assert all(abs(r - expected) <= 1e-3 * abs(expected) for r in results), results
        assert cp.get_num_threads() == 2
        print("ok")
    """, timeout=120)
    assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr[-2000:]
