"""Fuzzing every public function: random shapes, strides, paddings, dilations, dtypes and
array layouts (Fortran order, negative and zero strides, read-only, slices of a larger
buffer), valid or not. Each call must either raise TypeError/ValueError with a message, or
return what the NumPy oracle returns for the same arguments. A crash ends the test run.

Bounded: a fixed number of examples per function (CONVPOOL_FUZZ_EXAMPLES, default 14),
derandomised (the same examples every run), no example database.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, forced_implementation, simd_level
from convpool import reference as ref
from convpool.layout import stored_channels_last
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# 14 examples per function in the normal run; .ci/sanitize asks for more through the
# environment (the point of fuzzing under AddressSanitizer).
FUZZ = settings(max_examples=int(os.environ.get("CONVPOOL_FUZZ_EXAMPLES", "14")), deadline=None,
                derandomize=True, database=None, suppress_health_check=list(HealthCheck))

# Real dtypes are computed (uint8/int16/float16 promote to float32, int64 to float64); the
# others must be refused with a TypeError.
GOOD_DTYPES = [np.float32, np.float64, np.uint8, np.int16, np.int64, np.float16]
BAD_DTYPES = [np.bool_, np.complex64, object]
LAYOUTS = ["c", "fortran", "reversed", "strided", "broadcast", "readonly"]


def mostly(good, bad):
    """`good`, and now and then `bad` (an invalid value, which must be refused)."""
    return st.integers(0, 23).flatmap(lambda k: bad if k == 23 else good)


def dtypes():
    return mostly(st.sampled_from(GOOD_DTYPES), st.sampled_from(BAD_DTYPES)).map(np.dtype)


@st.composite
def arrays(draw, shape, dtype=None, low=-3, high=3):
    """Random values of `shape` in `dtype`, in a random memory layout."""
    dtype = draw(dtypes()) if dtype is None else np.dtype(dtype)
    seed = draw(st.integers(0, 2**32 - 1))
    values = np.random.default_rng(seed).uniform(low, high, size=shape)
    if dtype.kind in "ui":
        values = np.abs(values) * 40 if dtype.kind == "u" else values * 40
    array = values.astype(dtype)
    layout = draw(st.sampled_from(LAYOUTS))
    if not shape:
        return array
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "reversed":
        return np.ascontiguousarray(array[..., ::-1])[..., ::-1]
    if layout == "strided":
        wide = np.zeros(shape[:-1] + (2 * shape[-1] + 1,), dtype)
        wide[..., 1::2] = array
        return wide[..., 1::2]
    if layout == "broadcast" and shape[0] > 0:
        return np.broadcast_to(array[:1], shape)  # a zero stride along the first axis
    if layout == "readonly":
        array.setflags(write=False)
    return array


pairs = mostly(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
              st.sampled_from([0, -1, (1, 0), 1.5]))
paddings = mostly(
    st.one_of(
        st.integers(0, 2),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 3)),
                  st.tuples(st.integers(0, 3), st.integers(0, 2))),
        st.sampled_from(["valid", "same"]),
    ),
    st.sampled_from([-1, "full", (1, 2, 3), None]),
)


def outcome(call):
    """("ok", result) or ("error", exception) for TypeError/ValueError; anything else
    (another exception type) propagates and fails the test."""
    try:
        return "ok", call()
    except (TypeError, ValueError) as error:
        assert str(error), f"{type(error).__name__} without a message"
        return "error", error


def check(compiled, oracle):
    """Compiled and oracle agree: both refuse (TypeError or ValueError; with several wrong
    arguments they may name different ones), or both return equal results (C-contiguous
    arrays of the same dtype and shape). One leniency: the compiled layer may refuse where
    the oracle returns an empty array (the gradient of global pooling for an empty plane,
    whose forward both refuse)."""
    got, result = outcome(compiled)
    with np.errstate(all="ignore"):
        expected_kind, expected = outcome(oracle)
    if got == "error":
        empty = expected_kind == "ok" and all(
            e.size == 0 for e in (expected if isinstance(expected, tuple) else (expected,)))
        assert expected_kind == "error" or empty, f"compiled refused ({result!r}), oracle did not"
        return
    assert expected_kind == "ok", f"compiled returned a result, the oracle refused: {expected!r}"
    results = result if isinstance(result, tuple) else (result,)
    expecteds = expected if isinstance(expected, tuple) else (expected,)
    for r, e in zip(results, expecteds, strict=True):
        # C-contiguous, or channels-last when an operand was stored channels-last (a
        # drawn view can be): results keep that memory format, as PyTorch's do.
        assert isinstance(r, np.ndarray) and (r.flags.c_contiguous or stored_channels_last(r))
        if r.dtype == np.int64:
            np.testing.assert_array_equal(r, e)
        else:
            assert_close(r, e, r.dtype)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    n = draw(mostly(st.integers(1, 2), st.just(0)))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    if draw(st.integers(0, 11)) == 11:
        c_out += 1  # groups may no longer divide: an error
    h, w = draw(mostly(st.integers(3, 8), st.just(0))), draw(st.integers(1, 8))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rank = draw(st.sampled_from([4, 3, 2]))
    kwargs = dict(stride=draw(pairs), padding=draw(paddings), dilation=draw(pairs),
                  groups=groups,
                  padding_mode=draw(mostly(st.sampled_from(["zeros", "replicate", "reflect",
                                                            "symmetric", "circular"]),
                                           st.just("edge"))))
    if rank == 2:
        x_shape, w_shape = (h, w), (kh, kw)
        kwargs["groups"] = 1
    else:
        x_shape = (n, c_in, h, w)[4 - rank:]
        w_shape = (c_out, c_in // groups, kh, kw)
    return x_shape, w_shape, kwargs


def conv_output_shape(x_shape, w_shape, kwargs):
    """The output shape, or for an invalid geometry the input's (the call must raise)."""
    try:
        return ref.conv2d(np.zeros(x_shape), np.zeros(w_shape), **kwargs).shape
    except (TypeError, ValueError):
        return x_shape


def implementations(pass_):
    """(SIMD level, pick) pairs: the level to run at and which of the implementations that
    support the drawn case to force (:func:`forced_pick`)."""
    return st.tuples(st.sampled_from(available_simd_levels()), st.integers(0, 7))


@contextmanager
def forced_pick(way, op, *args, **kwargs):
    """Run the block at SIMD level ``way[0]`` with the ``way[1]``-th (cyclically) of the
    implementations of ``op`` that support ``op(*args, **kwargs)`` forced, and check that it
    ran; arguments the call refuses are left to the call (nothing forced)."""
    with simd_level(way[0]):
        try:
            names = convpool.implementations(op, *args, **kwargs)
        except (TypeError, ValueError):
            yield
            return
        with forced_implementation(op, names[way[1] % len(names)]):
            yield


@FUZZ
@given(data=st.data(), case=conv_cases(), way=implementations("forward"))
def test_conv2d(data, case, way):
    x_shape, w_shape, kwargs = case
    x, w = data.draw(arrays(x_shape)), data.draw(arrays(w_shape))
    bias = data.draw(st.none() | arrays((w_shape[0] if len(w_shape) == 4 else 1,)))
    with forced_pick(way, "conv2d", x, w, bias, **kwargs):
        check(lambda: convpool.conv2d(x, w, bias, **kwargs),
              lambda: ref.conv2d(x, w, bias, **kwargs))


@FUZZ
@given(data=st.data(), case=conv_cases(), way=implementations("grad_input"))
def test_conv2d_grad_input(data, case, way):
    x_shape, w_shape, kwargs = case
    gy = data.draw(arrays(conv_output_shape(x_shape, w_shape, kwargs)))
    w = data.draw(arrays(w_shape))
    with forced_pick(way, "conv2d_grad_input", gy, w, x_shape, **kwargs):
        check(lambda: convpool.conv2d_grad_input(gy, w, x_shape, **kwargs),
              lambda: ref.conv2d_grad_input(gy, w, x_shape, **kwargs))


@FUZZ
@given(data=st.data(), case=conv_cases(), way=implementations("grad_weight"))
def test_conv2d_grad_weight(data, case, way):
    x_shape, w_shape, kwargs = case
    x = data.draw(arrays(x_shape))
    gy = data.draw(arrays(conv_output_shape(x_shape, w_shape, kwargs)))
    with forced_pick(way, "conv2d_grad_weight", x, gy, w_shape, **kwargs):
        check(lambda: convpool.conv2d_grad_weight(x, gy, w_shape, **kwargs),
              lambda: ref.conv2d_grad_weight(x, gy, w_shape, **kwargs))


@FUZZ
@given(data=st.data(), shape=mostly(st.lists(mostly(st.integers(1, 5), st.just(0)), min_size=2,
                                             max_size=4),
                                    st.lists(st.integers(0, 5), max_size=5)).map(tuple))
def test_conv2d_grad_bias(data, shape):
    gy = data.draw(arrays(shape))
    check(lambda: convpool.conv2d_grad_bias(gy), lambda: ref.conv2d_grad_bias(gy))


@st.composite
def pool_cases(draw):
    shape = (draw(mostly(st.integers(1, 2), st.just(0))),
             draw(mostly(st.integers(1, 3), st.just(0))),
             draw(mostly(st.integers(2, 9), st.just(0))),
             draw(st.integers(2, 9)))[draw(st.sampled_from([0, 1])):]
    kernel = draw(mostly(st.integers(1, 3) | st.tuples(st.integers(1, 4), st.integers(1, 4)),
                         st.sampled_from([0, (2, -1)])))
    stride = draw(st.none() | pairs)
    # PyTorch's rule: explicit padding at most half the kernel; larger is refused
    padding = draw(mostly(st.integers(0, 1) | st.sampled_from(["valid", "same"]), paddings))
    return shape, kernel, stride, padding, draw(st.booleans())


@FUZZ
@given(data=st.data(), case=pool_cases(), dilation=pairs, return_indices=st.booleans())
def test_max_pool2d(data, case, dilation, return_indices):
    shape, kernel, stride, padding, ceil_mode = case
    x = data.draw(arrays(shape))
    args = (kernel, stride, padding, dilation, ceil_mode, return_indices)
    check(lambda: convpool.max_pool2d(x, *args), lambda: ref.max_pool2d(x, *args))


@FUZZ
@given(data=st.data(), case=pool_cases(), dilation=pairs,
       corrupt=st.sampled_from([None, None, "low", "high", "int32", "float"]))
def test_max_pool2d_grad_input(data, case, dilation, corrupt):
    shape, kernel, stride, padding, ceil_mode = case
    try:
        y, indices = convpool.max_pool2d(np.zeros(shape), kernel, stride, padding, dilation,
                                         ceil_mode, return_indices=True)
    except (TypeError, ValueError):
        y, indices = np.zeros(shape), np.zeros(shape, np.int64)  # some other plausible grad
    indices = indices.copy()
    if corrupt in ("low", "high") and indices.size:
        where = data.draw(st.integers(0, indices.size - 1))
        indices.reshape(-1)[where] = -1 if corrupt == "low" else shape[-1] * shape[-2]
    elif corrupt:
        indices = indices.astype(np.int32 if corrupt == "int32" else np.float64)
    gy = data.draw(arrays(y.shape))
    check(lambda: convpool.max_pool2d_grad_input(gy, indices, shape),
          lambda: ref.max_pool2d_grad_input(gy, indices, shape))


@FUZZ
@given(data=st.data(), case=pool_cases(), include=st.booleans(),
       divisor=st.none() | mostly(st.integers(1, 5) | st.integers(-3, -1), st.just(0)))
def test_avg_pool2d(data, case, include, divisor):
    shape, kernel, stride, padding, ceil_mode = case
    x = data.draw(arrays(shape))
    args = (kernel, stride, padding, ceil_mode, include, divisor)
    check(lambda: convpool.avg_pool2d(x, *args), lambda: ref.avg_pool2d(x, *args))


@FUZZ
@given(data=st.data(), case=pool_cases(), include=st.booleans(),
       divisor=st.none() | mostly(st.integers(1, 5) | st.integers(-3, -1), st.just(0)))
def test_avg_pool2d_grad_input(data, case, include, divisor):
    shape, kernel, stride, padding, ceil_mode = case
    args = (kernel, stride, padding, ceil_mode, include, divisor)
    try:
        out_shape = ref.avg_pool2d(np.zeros(shape), *args).shape
    except (TypeError, ValueError):
        out_shape = shape
    gy = data.draw(arrays(out_shape))
    check(lambda: convpool.avg_pool2d_grad_input(gy, shape, *args),
          lambda: ref.avg_pool2d_grad_input(gy, shape, *args))


global_shapes = mostly(st.lists(mostly(st.integers(1, 4), st.just(0)), min_size=3, max_size=4),
                       st.lists(st.integers(0, 4), max_size=5)).map(tuple)


@FUZZ
@given(data=st.data(), shape=global_shapes, keepdims=st.booleans(),
       mode=st.sampled_from(["avg", "max"]))
def test_global_pools(data, shape, keepdims, mode):
    x = data.draw(arrays(shape))
    compiled = getattr(convpool, f"global_{mode}_pool2d")
    oracle = getattr(ref, f"global_{mode}_pool2d")
    check(lambda: compiled(x, keepdims), lambda: oracle(x, keepdims))


@FUZZ
@given(data=st.data(), shape=global_shapes, keepdims=st.booleans(),
       mode=st.sampled_from(["avg", "max"]))
def test_global_pool_gradients(data, shape, keepdims, mode):
    gy = data.draw(arrays(shape[:-2] + ((1, 1) if keepdims else ())))
    if mode == "avg":
        check(lambda: convpool.global_avg_pool2d_grad_input(gy, shape),
              lambda: ref.global_avg_pool2d_grad_input(gy, shape))
    else:
        x = data.draw(arrays(shape))
        check(lambda: convpool.global_max_pool2d_grad_input(gy, x),
              lambda: ref.global_max_pool2d_grad_input(gy, x))


@FUZZ
@given(data=st.data(), shape=st.lists(mostly(st.integers(1, 6), st.just(0)), min_size=3,
                                      max_size=4).map(tuple),
       mode=mostly(st.sampled_from(["max", "avg"]), st.just("sum")), grad=st.booleans())
def test_channel_pool(data, shape, mode, grad):
    channels = shape[-3]
    divisors = [d for d in range(1, channels + 1) if channels % d == 0] or [1]
    size = data.draw(mostly(st.sampled_from(divisors), st.integers(0, 4)))
    x = data.draw(arrays(shape))
    if not grad:
        check(lambda: convpool.channel_pool(x, size, mode), lambda: ref.channel_pool(x, size, mode))
        return
    channels = shape[-3] // size if size and shape[-3] % size == 0 else shape[-3]
    gy = data.draw(arrays(shape[:-3] + (channels,) + shape[-2:]))
    check(lambda: convpool.channel_pool_grad_input(gy, x, size, mode),
          lambda: ref.channel_pool_grad_input(gy, x, size, mode))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_gives_the_contiguous_answer(layout, rng):
    """The layouts the fuzzer draws, each checked once on purpose (the fuzzer only samples
    them): a view and its contiguous copy give identical results everywhere."""
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    views = {
        "c": x, "fortran": np.asfortranarray(x),
        "reversed": np.ascontiguousarray(x[..., ::-1])[..., ::-1],
        "strided": np.repeat(x, 2, axis=-1)[..., ::2],
        "broadcast": np.broadcast_to(x[:1], x.shape), "readonly": x.copy(),
    }
    view = views[layout]
    if layout == "readonly":
        view.setflags(write=False)
    copy = np.ascontiguousarray(view)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    calls = [
        lambda a: convpool.conv2d(a, w, padding=1, padding_mode="reflect"),
        lambda a: convpool.conv2d_grad_weight(a, np.ones((2, 3, 7, 6), np.float32), w.shape,
                                              padding=1),
        lambda a: convpool.conv2d_grad_input(a[:, :3], w, (2, 4, 7, 6), padding=1),
        lambda a: convpool.max_pool2d(a, 3, 2, 1, return_indices=True),
        lambda a: convpool.avg_pool2d(a, 2, ceil_mode=True),
        lambda a: convpool.global_max_pool2d_grad_input(a[..., 0, 0], a),
        lambda a: convpool.channel_pool_grad_input(a[:, :2], a, 2),
    ]
    for call in calls:
        got, expected = call(view), call(copy)
        for g, e in zip(got if isinstance(got, tuple) else (got,),
                        expected if isinstance(expected, tuple) else (expected,), strict=True):
            np.testing.assert_array_equal(g, e)
