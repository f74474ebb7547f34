"""Threads and repeatability: the kernels release the GIL, calls from many Python threads
at once give the serial results, results repeat bit for bit from run to run, and one and
two OpenMP threads agree within float rounding.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import convpool
import numpy as np
import pytest
from conftest import CONV_PASSES, assert_close, conv2d_variants
from convpool import _core

PYTHON_THREADS = 8


def _conv_data(rng, n=2, scale=1):
    x = rng.standard_normal((n, 8 * scale, 20, 18)).astype(np.float32)
    w = rng.standard_normal((12, 8 * scale, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((n, 12, 10, 9)).astype(np.float32)
    return x, w, gy


CONV_KW = dict(stride=2, padding=1)


def _normal(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# name -> (make inputs from a generator and a batch size, call on those inputs). Float32 and
# float64 cases; inputs are contiguous and of the computed dtype, so a call spends its time
# in the kernel.
CASES: dict[str, tuple[Callable, Callable]] = {
    "conv2d": (_conv_data, lambda x, w, gy: convpool.conv2d(x, w, w[:, 0, 0, 0], **CONV_KW)),
    "conv2d(reflect)": (lambda rng, n=2: [a.astype(np.float64) for a in _conv_data(rng, n)[:2]],
                        lambda x, w: convpool.conv2d(x, w, padding=2, dilation=2,
                                                     padding_mode="reflect")),
    "conv2d_grad_input": (_conv_data, lambda x, w, gy: convpool.conv2d_grad_input(
        gy, w, x.shape, **CONV_KW)),
    "conv2d_grad_weight": (_conv_data, lambda x, w, gy: convpool.conv2d_grad_weight(
        x, gy, w.shape, **CONV_KW)),
    "conv2d_grad_bias": (_conv_data, lambda x, w, gy: convpool.conv2d_grad_bias(gy)),
    "max_pool2d": (lambda rng, n=4: (_normal(rng, (n, 16, 30, 30)),),
                   lambda x: convpool.max_pool2d(x, 3, 2, 1, return_indices=True)),
    "max_pool2d_grad_input": (
        lambda rng, n=4: (_normal(rng, (n, 16, 15, 15), np.float32),
                          rng.integers(0, 900, (n, 16, 15, 15))),
        lambda gy, idx: convpool.max_pool2d_grad_input(gy, idx, gy.shape[:2] + (30, 30))),
    "avg_pool2d": (lambda rng, n=4: (_normal(rng, (n, 16, 30, 30), np.float32),),
                   lambda x: convpool.avg_pool2d(x, 3, 2, 1, ceil_mode=True)),
    "avg_pool2d_grad_input": (
        lambda rng, n=4: (_normal(rng, (n, 16, 16, 16)),),
        lambda gy: convpool.avg_pool2d_grad_input(gy, gy.shape[:2] + (30, 30), 3, 2, 1,
                                                  ceil_mode=True)),
    "global_avg_pool2d": (lambda rng, n=4: (_normal(rng, (n, 16, 30, 30)),),
                          convpool.global_avg_pool2d),
    "global_avg_pool2d_grad_input": (
        lambda rng, n=4: (_normal(rng, (n, 16), np.float32),),
        lambda gy: convpool.global_avg_pool2d_grad_input(gy, gy.shape + (30, 30))),
    "global_max_pool2d": (lambda rng, n=4: (_normal(rng, (n, 16, 30, 30), np.float32),),
                          convpool.global_max_pool2d),
    "global_max_pool2d_grad_input": (
        lambda rng, n=4: (_normal(rng, (n, 16)), _normal(rng, (n, 16, 30, 30))),
        convpool.global_max_pool2d_grad_input),
    "channel_pool": (lambda rng, n=4: (_normal(rng, (n, 16, 30, 30), np.float32),),
                     lambda x: convpool.channel_pool(x, 4)),
    "channel_pool_grad_input": (
        lambda rng, n=4: (_normal(rng, (n, 8, 30, 30)), _normal(rng, (n, 16, 30, 30))),
        lambda gy, x: convpool.channel_pool_grad_input(gy, x, 2, "avg")),
}


def _results(value) -> tuple[np.ndarray, ...]:
    return value if isinstance(value, tuple) else (value,)


def _assert_identical(actual, expected, where: str) -> None:
    for a, e in zip(_results(actual), _results(expected), strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape, where
        np.testing.assert_array_equal(a, e, err_msg=where)


def _inputs(seed: int):
    """One input set per case, different for every seed."""
    rng = np.random.default_rng(seed)
    return {name: make(rng) for name, (make, _) in CASES.items()}


def test_concurrent_calls_from_python_threads_match_serial_calls():
    # 8 threads, each its own data, every function interleaved with every other one
    data = [_inputs(seed) for seed in range(PYTHON_THREADS)]
    jobs = [(name, k) for k in range(PYTHON_THREADS) for name in CASES] * 2
    serial = {(name, k): CASES[name][1](*data[k][name]) for name, k in set(jobs)}
    order = np.random.default_rng(0).permutation(len(jobs))
    with ThreadPoolExecutor(PYTHON_THREADS) as pool:
        futures = [(jobs[i], pool.submit(CASES[jobs[i][0]][1], *data[jobs[i][1]][jobs[i][0]]))
                   for i in order]
        for (name, k), future in futures:
            _assert_identical(future.result(), serial[(name, k)], f"{name}, data set {k}")


@pytest.mark.parametrize("pass_", CONV_PASSES)
def test_concurrent_convolutions_match_serial_calls_in_every_implementation(pass_):
    name = {"forward": "conv2d", "grad_input": "conv2d_grad_input",
            "grad_weight": "conv2d_grad_weight"}[pass_]
    call = CASES[name][1]
    data = [_conv_data(np.random.default_rng(seed)) for seed in range(PYTHON_THREADS)]
    level = _core.get_simd_level()
    for implementation in conv2d_variants(pass_, *data[0], simd_levels=(level,), **CONV_KW):
        serial = [call(*d) for d in data]
        with ThreadPoolExecutor(PYTHON_THREADS) as pool:
            concurrent = list(pool.map(lambda d: call(*d), data * 2))
        for k, result in enumerate(concurrent):
            _assert_identical(result, serial[k % PYTHON_THREADS], f"{implementation}, set {k}")


def test_changing_the_thread_count_while_kernels_run_is_safe():
    """set_num_threads from one Python thread while 8 others compute: every result is
    still the serial one within float rounding (the count a call sees may change between
    its calls, never inside one of its parallel regions)."""
    data = [_inputs(seed) for seed in range(PYTHON_THREADS)]
    expected = {(name, k): CASES[name][1](*data[k][name]) for name in CASES
                for k in range(PYTHON_THREADS)}
    stop = threading.Event()

    def toggle():
        counts = [1, 2, 3, 2]
        i = 0
        while not stop.is_set():
            convpool.set_num_threads(counts[i % len(counts)])
            i += 1

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        with ThreadPoolExecutor(PYTHON_THREADS) as pool:
            futures = {key: pool.submit(CASES[key[0]][1], *data[key[1]][key[0]])
                       for key in expected}
            results = {key: future.result() for key, future in futures.items()}
    finally:
        stop.set()
        toggler.join()
    for (name, k), result in results.items():
        for a, e in zip(_results(result), _results(expected[(name, k)]), strict=True):
            if a.dtype == np.int64:
                np.testing.assert_array_equal(a, e, err_msg=name)
            else:
                assert_close(a, e, a.dtype, f"{name}, set {k}")


@pytest.mark.parametrize("name", list(CASES))
def test_results_repeat_bit_for_bit(name):
    make, call = CASES[name]
    inputs = make(np.random.default_rng(7))
    for threads in (1, 2, 3):
        convpool.set_num_threads(threads)
        first = call(*inputs)
        for _ in range(3):
            _assert_identical(call(*inputs), first, f"{name}, {threads} threads")


def _winograd_data(rng):
    x = rng.standard_normal((2, 16, 40, 38)).astype(np.float32)
    w = rng.standard_normal((20, 16, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 20, 40, 38)).astype(np.float32)
    return x, w, gy


# Each pass on two geometries: stride 2 over 32 channels (room for the blocked kernels'
# tiles) and 3x3 stride 1 over 16 channels, 760 tiles (the Winograd kernels' case, in
# several blocks of tiles, so that both threads get some).
GEOMETRIES = {
    "stride-2": (lambda rng: _conv_data(rng, scale=4), CONV_KW),
    "3x3-stride-1": (_winograd_data, dict(padding=1)),
}
PASS_CALLS = {
    "forward": lambda kw: lambda x, w, gy: convpool.conv2d(x, w, w[:, 0, 0, 0], **kw),
    "grad_input": lambda kw: lambda x, w, gy: convpool.conv2d_grad_input(gy, w, x.shape, **kw),
    "grad_weight": lambda kw: lambda x, w, gy: convpool.conv2d_grad_weight(x, gy, w.shape, **kw),
}


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("pass_", CONV_PASSES)
def test_convolution_repeats_bit_for_bit_in_every_implementation(pass_, geometry):
    make, kwargs = GEOMETRIES[geometry]
    call = PASS_CALLS[pass_](kwargs)
    inputs = make(np.random.default_rng(8))
    level = _core.get_simd_level()
    for implementation in conv2d_variants(pass_, *inputs, simd_levels=(level,), **kwargs):
        for threads in (1, 2):
            convpool.set_num_threads(threads)
            first = call(*inputs)
            _assert_identical(call(*inputs), first, f"{implementation}, {threads} threads")


@pytest.mark.parametrize("name", list(CASES))
def test_one_and_two_threads_agree(name):
    make, call = CASES[name]
    inputs = make(np.random.default_rng(9))
    convpool.set_num_threads(1)
    single = call(*inputs)
    convpool.set_num_threads(2)
    double = call(*inputs)
    for a, e in zip(_results(double), _results(single), strict=True):
        if a.dtype == np.int64:
            np.testing.assert_array_equal(a, e, err_msg=name)
        else:
            assert_close(a, e, a.dtype, f"{name}: 2 threads vs 1")


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("pass_", CONV_PASSES)
def test_one_and_two_threads_agree_in_every_implementation(pass_, geometry):
    make, kwargs = GEOMETRIES[geometry]
    call = PASS_CALLS[pass_](kwargs)
    inputs = make(np.random.default_rng(10))
    level = _core.get_simd_level()
    for implementation in conv2d_variants(pass_, *inputs, simd_levels=(level,), **kwargs):
        convpool.set_num_threads(1)
        single = call(*inputs)
        convpool.set_num_threads(2)
        assert_close(call(*inputs), single, np.float32, f"{implementation}: 2 threads vs 1")


@pytest.mark.parametrize("name", list(CASES))
def test_kernels_release_the_gil(name):
    """While one Python thread is inside a kernel, another runs Python code. With a long
    switch interval, the main thread gets the GIL back while the worker is inside the
    call only if the call released it: a kernel that held the GIL would keep `inside`
    invisible (the worker sets it back before letting go)."""
    make, call = CASES[name]
    inputs = make(np.random.default_rng(11), 128)  # a millisecond or so per call
    convpool.set_num_threads(1)  # leave a core for this thread
    state = {"inside": False, "seen": 0}

    def worker():
        # until the main thread has seen the worker inside a call: on a busy machine it may
        # not be scheduled during the first few
        deadline = time.monotonic() + 5.0
        while not state["seen"] and time.monotonic() < deadline:
            state["inside"] = True
            call(*inputs)
            state["inside"] = False

    interval = sys.getswitchinterval()
    sys.setswitchinterval(10.0)  # no forced GIL hand-over within the test
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            thread.join(0.0005)  # waits with the GIL released, then takes it back
            state["seen"] += state["inside"]
    finally:
        sys.setswitchinterval(interval)
    assert state["seen"] > 0, f"{name}: the GIL was never free during a kernel call"
