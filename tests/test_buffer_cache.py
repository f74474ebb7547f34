"""The cache of large output buffers: a buffer comes back only once nothing outside the
cache can reach it (no array, view or exported buffer), its bound holds, and repeated large
calls stop paying page faults."""

from __future__ import annotations

import resource

import convpool
import numpy as np
import pytest
from convpool import reference

# (4, 64, 64, 64) float32: 4 MiB, above the cache's threshold
X = np.random.default_rng(7).standard_normal((4, 64, 64, 64)).astype(np.float32)


@pytest.fixture(autouse=True)
def fresh_cache():
    previous = convpool.set_buffer_cache(0)
    convpool.set_buffer_cache(64 << 20)
    yield
    convpool.set_buffer_cache(0)
    convpool.set_buffer_cache(previous)


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def test_a_released_large_output_is_reused():
    first = convpool.avg_pool2d(X, 3, 1, 1)
    where = address(first)
    del first
    again = convpool.avg_pool2d(X, 3, 1, 1)
    assert address(again) == where
    np.testing.assert_allclose(again, reference.avg_pool2d(X, 3, 1, 1), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("keep", ["array", "view", "memoryview", "reshaped"])
def test_an_output_still_reachable_is_never_overwritten(keep):
    first = convpool.avg_pool2d(X, 3, 1, 1)
    saved = first.copy()
    held = {"array": lambda a: a, "view": lambda a: a[1:, ::2],
            "memoryview": memoryview, "reshaped": lambda a: a.reshape(-1)}[keep](first)
    del first
    for _ in range(3):
        other = convpool.avg_pool2d(-X, 3, 1, 1)
        assert not np.shares_memory(np.asarray(held), other)
        del other
    np.testing.assert_array_equal(np.asarray(held), {
        "array": saved, "view": saved[1:, ::2], "memoryview": saved,
        "reshaped": saved.reshape(-1)}[keep])


def test_small_outputs_bypass_the_cache():
    convpool.avg_pool2d(X[:1, :4], 3, 1, 1)
    assert convpool.get_buffer_cache()["buffers"] == 0


def test_idle_buffers_stay_within_the_bound():
    convpool.set_buffer_cache(6 << 20)  # one 4 MiB buffer fits, two do not
    outputs = [convpool.avg_pool2d(X, 3, 1, 1) for _ in range(3)]
    del outputs
    state = convpool.get_buffer_cache()
    assert state["idle_bytes"] <= 6 << 20
    assert state["idle_buffers"] == 1


def test_a_zero_bound_turns_the_cache_off():
    convpool.avg_pool2d(X, 3, 1, 1)
    convpool.set_buffer_cache(0)
    assert convpool.get_buffer_cache()["buffers"] == 0
    convpool.avg_pool2d(X, 3, 1, 1)
    assert convpool.get_buffer_cache()["buffers"] == 0


def test_bad_bounds_are_refused():
    with pytest.raises(TypeError, match=r"max_bytes: expected an int, got 1.5"):
        convpool.set_buffer_cache(1.5)
    with pytest.raises(TypeError, match=r"max_bytes: expected an int, got True"):
        convpool.set_buffer_cache(True)
    with pytest.raises(ValueError, match=r"max_bytes: must be >= 0, got -1"):
        convpool.set_buffer_cache(-1)


def _faults_of_repeated_calls(x: np.ndarray, calls: int) -> int:
    convpool.channel_pool(x, 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        convpool.channel_pool(x, 1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_repeated_large_calls_do_not_fault_their_pages_again():
    """48 MiB outputs, above glibc's largest mmap threshold (32 MiB): without the cache each
    new output is a fresh mapping whose pages fault as the kernel writes them (one fault
    per 4 KiB page, or per 2 MiB huge page); with it, the pages stay mapped."""
    x = np.zeros((12, 64, 128, 128), np.float32)
    convpool.set_buffer_cache(0)
    without = _faults_of_repeated_calls(x, 4)
    convpool.set_buffer_cache(64 << 20)
    with_cache = _faults_of_repeated_calls(x, 4)
    assert without >= 4 * 20, f"the measurement sees no faults without the cache ({without})"
    assert with_cache < 4, f"{with_cache} page faults in 4 calls with the cache"
