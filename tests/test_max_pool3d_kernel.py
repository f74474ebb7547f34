"""The compiled 3-D max pooling with indices (csrc/kernels/max_pool3d.cpp) against the
NumPy oracle: values and flat indices, at every SIMD level and with 1 and 2 threads, on
every window form (padding, stride, dilation, ceil_mode, 'same'), ties, NaN and -inf;
hypothesis draws the shapes. Each test proves that the compiled kernel ran."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, simd_level
from convpool import _core
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of the compiled 3-D max-pooling kernel."""
    calls = []
    kernel = _core.max_pool3d_forward

    def counted(*args, **kwargs):
        calls.append(args[0].dtype)
        return kernel(*args, **kwargs)
    monkeypatch.setattr(_core, "max_pool3d_forward", counted)
    return calls


def check_against_oracle(x, kernel_calls, **options):
    y, indices = convpool.max_pool3d(x, return_indices=True, **options)
    y_ref, indices_ref = ref.max_pool3d(x, return_indices=True, **options)
    dtype = np.result_type(x.dtype, np.float32)
    if np.isfinite(x).all():
        assert_close(y, y_ref, dtype, f"values {options}")
    else:  # a maximum is one of the inputs: exact, NaN where the oracle has NaN
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, y_ref, err_msg=f"values {options}")
    np.testing.assert_array_equal(indices, indices_ref, err_msg=f"indices {options}")
    assert indices.dtype == np.int64
    assert len(kernel_calls) == 1
    kernel_calls.clear()


OPTIONS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3, 1), stride=(1, 2, 1)),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=2, dilation=(1, 2, 2), padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(3, 2, 3), stride=2, padding="same"),
    dict(kernel_size=2, stride=3, padding=((1, 0), (0, 1), (1, 1))),
    dict(kernel_size=(1, 1, 4), stride=(1, 1, 3), padding=(0, 0, 2), ceil_mode=True),
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("level", available_simd_levels())
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_max_pool3d_kernel_matches_oracle(rng, kernel_calls, options, dtype, level, threads):
    x = rng.standard_normal((2, 3, 7, 9, 21)).astype(dtype)
    convpool.set_num_threads(threads)
    with simd_level(level):
        check_against_oracle(x, kernel_calls, **options)


@pytest.mark.parametrize("level", available_simd_levels())
def test_max_pool3d_kernel_ties_nan_and_infinities(rng, kernel_calls, level):
    # few distinct values: ties everywhere, across depth, rows and columns
    x = rng.integers(0, 3, (2, 2, 6, 8, 19)).astype(np.float32)
    x[0, 0, 2, 3, 4] = np.nan
    x[0, 1, 1:3, 2:5, 3:9] = np.nan  # a block of NaN: the first in (d, h, w) order wins
    x[1, 0] = -np.inf  # a window of -inf names its first voxel
    x[1, 1, 3, 5, 10] = np.inf
    with simd_level(level):
        for options in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                        dict(kernel_size=3, stride=1, padding=1, dilation=(2, 1, 1))):
            check_against_oracle(x, kernel_calls, **options)


def test_max_pool3d_kernel_unbatched_strided_and_integer_inputs(rng, kernel_calls):
    x = rng.standard_normal((4, 9, 8, 10)).astype(np.float32)  # (C, D, H, W)
    check_against_oracle(x, kernel_calls, kernel_size=2, stride=2)
    view = rng.standard_normal((2, 3, 10, 12, 16))[:, :, ::2, 1:, ::-1]  # not contiguous
    check_against_oracle(view, kernel_calls, kernel_size=3, stride=2, padding=1)
    integers = rng.integers(-50, 50, (1, 2, 5, 6, 7)).astype(np.int16)
    check_against_oracle(integers, kernel_calls, kernel_size=2)


def test_max_pool3d_gradient_through_the_kernels_indices(rng):
    x = rng.standard_normal((2, 3, 6, 8, 10)).astype(np.float32)
    options = dict(kernel_size=3, stride=2, padding=1)
    y, indices = convpool.max_pool3d(x, return_indices=True, **options)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = convpool.max_pool3d_grad_input(gy, indices, x.shape)
    assert_close(gx, ref.max_pool3d_grad_input(gy, indices, x.shape), np.float32)


def test_max_pool3d_values_agree_with_and_without_indices(rng):
    x = rng.standard_normal((2, 4, 9, 10, 11)).astype(np.float32)
    x[1, 2, 3, 4, 5] = np.nan
    for options in OPTIONS:
        with_indices, _ = convpool.max_pool3d(x, return_indices=True, **options)
        np.testing.assert_array_equal(with_indices, convpool.max_pool3d(x, **options))


def test_max_pool3d_kernel_with_empty_batch(kernel_calls):
    y, indices = convpool.max_pool3d(np.zeros((0, 3, 4, 4, 4), np.float32), 2,
                                     return_indices=True)
    assert y.shape == indices.shape == (0, 3, 2, 2, 2)
    assert kernel_calls == []


def test_max_pool3d_binding_refuses_disagreeing_arrays():
    x = np.zeros((1, 2, 4, 4, 4), np.float32)
    y = np.zeros((1, 2, 2, 2, 2), np.float32)
    indices = np.zeros((1, 2, 2, 2, 2), np.int64)
    args = ((2, 2, 2), (2, 2, 2), (1, 1, 1), (0, 0, 0), (0, 0, 0))
    with pytest.raises(ValueError, match="width"):
        _core.max_pool3d_forward(x, np.zeros((1, 2, 2, 2, 3), np.float32),
                                 np.zeros((1, 2, 2, 2, 3), np.int64), *args)
    with pytest.raises(ValueError, match="indices: expected shape"):
        _core.max_pool3d_forward(x, y, np.zeros((1, 2, 2, 2, 1), np.int64), *args)
    with pytest.raises(TypeError, match="out: dtype must be float32"):
        _core.max_pool3d_forward(x, y.astype(np.float64), indices, *args)
    with pytest.raises(TypeError, match="indices: dtype must be int64"):
        _core.max_pool3d_forward(x, y, indices.astype(np.int32), *args)
    with pytest.raises(ValueError, match="batch and channels"):
        _core.max_pool3d_forward(x, np.zeros((1, 3, 2, 2, 2), np.float32),
                                 np.zeros((1, 3, 2, 2, 2), np.int64), *args)
    same = np.zeros((1, 1, 2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="must not share memory"):
        _core.max_pool3d_forward(same, same, np.zeros((1, 1, 2, 2, 2), np.int64), (1, 1, 1),
                                 (1, 1, 1), (1, 1, 1), (0, 0, 0), (0, 0, 0))


@st.composite
def volumes(draw):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(draw(st.integers(d * (k - 1) + 1, 12))
                 for k, d in zip(kernel, dilation, strict=True))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return dict(shape=shape, kernel_size=kernel, stride=stride, dilation=dilation,
                padding=padding, ceil_mode=draw(st.booleans()),
                ties=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=volumes())
def test_max_pool3d_kernel_hypothesis_shapes(config, kernel_calls):
    rng = np.random.default_rng(config.pop("seed"))
    shape, ties = config.pop("shape"), config.pop("ties")
    x = (rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    try:
        ref.max_pool3d(x, return_indices=True, **config)
    except ValueError:  # a window entirely in the padding: refused alike
        with pytest.raises(ValueError):
            convpool.max_pool3d(x, return_indices=True, **config)
        return
    check_against_oracle(x, kernel_calls, **config)
