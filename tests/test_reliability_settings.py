"""Settings and ``out=`` arrays: clear errors that name the argument, the value and the
rule; a mistyped environment variable is reported, not silently ignored."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import convpool
import numpy as np
import pytest
from convpool import _config


@pytest.mark.parametrize("n", [0, -1, 2**31, 2**63, convpool._config.MAX_THREADS + 1])
def test_set_num_threads_names_n_and_the_accepted_range(n):
    with pytest.raises(ValueError, match=rf"n: .*between 1 and {_config.MAX_THREADS}, got {n}"):
        convpool.set_num_threads(n)


@pytest.mark.parametrize("n", [1.0, "2", True, None])
def test_set_num_threads_refuses_what_is_not_an_int(n):
    with pytest.raises(TypeError, match="n: expected an int"):
        convpool.set_num_threads(n)


def test_set_num_threads_accepts_the_whole_range():
    previous = convpool.get_num_threads()
    for n in (1, np.int64(3), _config.MAX_THREADS):
        convpool.set_num_threads(n)
        assert convpool.get_num_threads() == n
    convpool.set_num_threads(previous)


def test_an_unknown_simd_level_in_the_environment_warns():
    with pytest.warns(RuntimeWarning, match=r"CONVPOOL_SIMD='bogus'.*avx512, avx2, baseline"):
        _config.check_simd_environment({"CONVPOOL_SIMD": "bogus"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in ("avx512", "avx2", "baseline", ""):
            _config.check_simd_environment({"CONVPOOL_SIMD": value})
        _config.check_simd_environment({})


def test_importing_convpool_with_an_unknown_simd_level_warns_once():
    child = subprocess.run(
        [sys.executable, "-W", "always", "-c",
         "import convpool, numpy; convpool.conv2d(numpy.ones((3, 3)), numpy.ones((3, 3)))"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CONVPOOL_SIMD": "bogus"},
    )
    assert child.returncode == 0, child.stderr
    assert child.stderr.count("RuntimeWarning: CONVPOOL_SIMD='bogus'") == 1, child.stderr


def _matrix(a: np.ndarray) -> np.matrix:
    with warnings.catch_warnings():  # NumPy discourages the class; users still pass it
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(a)


def test_out_as_a_matrix_of_the_right_shape_is_filled():
    picture = np.arange(30, dtype=np.float32).reshape(5, 6)
    sobel = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float32)
    out = _matrix(np.zeros((5, 6), np.float32))
    result = convpool.conv2d(picture, sobel, padding=1, out=out)
    assert result is out
    np.testing.assert_array_equal(np.asarray(out), convpool.conv2d(picture, sobel, padding=1))


@pytest.mark.parametrize("x_shape", [(5, 6), (1, 5, 6), (1, 1, 5, 6)])
def test_out_of_the_wrong_shape_names_out_and_the_users_shapes(x_shape):
    x = np.ones(x_shape, np.float32)
    w = np.ones((3, 3) if len(x_shape) == 2 else (1, 1, 3, 3), np.float32)
    expected = convpool.conv2d(x, w).shape
    out = _matrix(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError) as error:
        convpool.conv2d(x, w, out=out)
    message = str(error.value)
    assert message.startswith("out:") and f"{expected}" in message and "(4, 5)" in message
    if len(x_shape) < 4:
        assert "(1, 1, 3, 4)" not in message  # the kernels' 4-D shape is internal


def test_out_sharing_memory_with_a_float64_bias_is_refused():
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    storage = np.zeros(64, np.float64)
    bias = storage[:3]  # float64: the kernel gets a float32 copy of it
    out = storage[8:].view(np.float32)[:3 * 2 * 2].reshape(1, 3, 2, 2)
    out_over_bias = storage.view(np.float32)[:12].reshape(1, 3, 2, 2)
    convpool.conv2d(x, w, bias, out=out)  # separate memory: fine
    with pytest.raises(ValueError, match="out: must not share memory with an input"):
        convpool.conv2d(x, w, bias, out=out_over_bias)
