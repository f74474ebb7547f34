"""The Winograd path against the NumPy oracle where its output write order matters: output
planes whose size is a multiple of 4 KiB (32x32, 64x64: every plane starts on the same L1
set), output-channel tails of its channel blocks, blocks of tiles that span tile rows and
pictures, odd output sizes; forward (stride 1 and 2) and input gradient, forced, at one and
two threads. Also the non-finite repair's shortcut: all-finite outputs are left alone
only when they are all finite, whichever operand is scanned first."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, forced_implementation, simd_level
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# (batch, input channels, output channels, map size, stride)
ALIASED_PLANES = {
    "32x32-planes-64-channels": (1, 64, 64, 32, 1),
    "64x64-planes-tail-channels": (2, 16, 40, 64, 1),
    "32x32-planes-stride2": (2, 24, 48, 64, 2),
    "odd-map-many-blocks": (3, 17, 33, 13, 1),
}


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", ALIASED_PLANES.values(), ids=ALIASED_PLANES.keys())
def test_winograd_forward_matches_oracle_on_4k_planes(rng, case, threads) -> None:
    batch, c_in, c_out, size, stride = case
    x = rng.standard_normal((batch, c_in, size, size)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    convpool.set_num_threads(threads)
    expected = ref.conv2d(x, w, b, stride=stride, padding=1)
    with simd_level(available_simd_levels()[-1]):
        with forced_implementation("conv2d", "winograd"):
            got = convpool.conv2d(x, w, b, stride=stride, padding=1)
    assert_close(got, expected, np.float32, f"winograd forward {case}")


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", [c for c in ALIASED_PLANES.values() if c[4] == 1],
                         ids=[k for k, c in ALIASED_PLANES.items() if c[4] == 1])
def test_winograd_grad_input_matches_oracle_on_4k_planes(rng, case, threads) -> None:
    batch, c_in, c_out, size, _ = case
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    grad_y = rng.standard_normal((batch, c_out, size, size)).astype(np.float32)
    x_shape = (batch, c_in, size, size)
    convpool.set_num_threads(threads)
    expected = ref.conv2d_grad_input(grad_y, w, x_shape, padding=1)
    with simd_level(available_simd_levels()[-1]):
        with forced_implementation("conv2d_grad_input", "winograd"):
            got = convpool.conv2d_grad_input(grad_y, w, x_shape, padding=1)
    assert_close(got, expected, np.float32, f"winograd grad_input {case}")


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(1, 3), c_in=st.integers(16, 40), c_out=st.integers(16, 70),
       rows=st.integers(2, 40), cols=st.integers(2, 40), stride=st.sampled_from((1, 2)),
       padding=st.integers(0, 2), threads=st.sampled_from((1, 2)))
def test_winograd_forward_matches_oracle_on_any_shape(batch, c_in, c_out, rows, cols, stride,
                                                      padding, threads) -> None:
    rng = np.random.default_rng(c_in * 1000 + c_out * 10 + rows)
    x = rng.standard_normal((batch, c_in, rows + 2, cols + 2)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    kwargs = dict(stride=stride, padding=padding)
    convpool.set_num_threads(threads)
    expected = ref.conv2d(x, w, b, **kwargs)
    with forced_implementation("conv2d", "winograd"):
        got = convpool.conv2d(x, w, b, **kwargs)
    assert_close(got, expected, np.float32, f"winograd forward {x.shape} {w.shape} {kwargs}")


# The repair scans the smaller operand first: outputs when there are fewer outputs than
# weights (deep layers), else the weights. Both orders must still find the outputs that an
# inf weight reaches through the zero padding (where the direct sum skips the tap).
@pytest.mark.parametrize("size", (4, 40), ids=("fewer-outputs-than-weights",
                                              "more-outputs-than-weights"))
@pytest.mark.parametrize("implementation", ("winograd", "blocked"))
def test_an_inf_weight_in_the_padding_is_repaired_whichever_operand_is_scanned_first(
        rng, size, implementation) -> None:
    x = rng.standard_normal((1, 16, size, size)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    w[3, 5, 0, 0] = np.inf  # read through the padding by the first row and column
    expected = ref.conv2d(x, w, padding=1)
    with forced_implementation("conv2d", implementation):
        got = convpool.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(expected))
    finite = np.isfinite(expected)
    assert finite[:, 3].any() and not finite.all()
    assert_close(got[finite], expected[finite], np.float32, implementation)
    grad_y = rng.standard_normal((1, 24, size, size)).astype(np.float32)
    expected_gx = ref.conv2d_grad_input(grad_y, w, x.shape, padding=1)
    with forced_implementation("conv2d_grad_input", implementation):
        got_gx = convpool.conv2d_grad_input(grad_y, w, x.shape, padding=1)
    np.testing.assert_array_equal(np.isfinite(got_gx), np.isfinite(expected_gx))
    finite = np.isfinite(expected_gx)
    assert_close(got_gx[finite], expected_gx[finite], np.float32, implementation)
