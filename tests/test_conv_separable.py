"""The separable path (convpool.conv_separable): low-rank kernels as pairs of 1-D passes
in one compiled sweep, against the oracle, how it is chosen, forced and refused, and that
non-finite operands stay on the direct kernels.

Accuracy is judged element by element against ``S = sum |x| |w|`` over each output's
window (the scale of the direct sum's own rounding), as for the FFT path.
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import forced_implementation
from convpool import conv_separable, python_kernels
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conv_fft import assert_within_rounding

NAME = conv_separable.NAME


def gaussian(size: int, sigma: float | None = None) -> np.ndarray:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8 if sigma is None else sigma
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    return np.outer(g, g) / g.sum() ** 2


def kernels(rng, kh: int, kw: int) -> dict[str, tuple[np.ndarray, int]]:
    """Named (kernel, rank) pairs of shape (kh, kw)."""
    a, b, c, d = (rng.standard_normal(n) for n in (kh, kw, kh, kw))
    found = {"outer": (np.outer(a, b), 1), "sum_of_two": (np.outer(a, b) + np.outer(c, d), 2),
             "box": (np.ones((kh, kw)) / (kh * kw), 1)}
    if kh == kw:
        found["gaussian"] = (gaussian(kh), 1)
        found["dog"] = (gaussian(kh, kh / 6) - gaussian(kh, kh / 3), 2)
    return found


def sobel(size: int = 7) -> np.ndarray:
    """An extended Sobel kernel: a binomial smoothing times a derivative (rank 1)."""
    smooth = np.array([1.0])
    for _ in range(size - 1):
        smooth = np.convolve(smooth, [1.0, 1.0])
    derivative = np.convolve(np.array([1.0, 0.0, -1.0]),
                             np.convolve(*([np.ones(2)] * 2)) if size > 3 else [1.0])
    derivative = np.pad(derivative, (size - len(derivative)) // 2)
    return np.outer(smooth, derivative)


def forced_forward(x, w, b=None, **kwargs):
    with forced_implementation("conv2d", NAME):
        return convpool.conv2d(x, w, b, **kwargs)


def check_forward(x, w, b=None, where="", **kwargs):
    """The forced separable forward against the oracle in float64 on the same operands."""
    y = forced_forward(x, w, b, **kwargs)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    b64 = None if b is None else b.astype(np.float64)
    expected = ref.conv2d(x64, w64, b64, **kwargs)
    scale = ref.conv2d(np.abs(x64), np.abs(w64), None if b is None else np.abs(b64), **kwargs)
    assert_within_rounding(y, expected, scale, x.dtype, where)
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kh, kw", [(7, 7), (8, 6), (5, 9), (15, 15)])
def test_low_rank_kernels_match_the_oracle(rng, dtype, kh, kw):
    x = rng.standard_normal((1, 1, 40, 50)).astype(dtype)
    for label, (k, rank) in kernels(rng, kh, kw).items():
        w = k.astype(dtype)[None, None]
        assert conv_separable.factors(w[0, 0], dtype == np.float64).rank == rank, label
        check_forward(x, w, where=f"{label} {kh}x{kw}", padding="same")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sobel_and_bias_match_the_oracle(rng, dtype):
    x = rng.standard_normal((2, 1, 33, 29)).astype(dtype)
    w = sobel(7).astype(dtype)[None, None]
    b = np.array([0.5], dtype)
    check_forward(x, w, b, where="sobel", padding="same")


@pytest.mark.parametrize("kwargs", [
    dict(padding="same"), dict(padding=0), dict(padding=((5, 1), (0, 7))),
    dict(padding=3, stride=2), dict(padding=(4, 1), stride=(3, 2)),
    dict(padding="same", dilation=(2, 3)), dict(padding=((9, 0), (2, 11)), dilation=(1, 4),
                                               stride=(2, 1)),
    dict(padding=((30, 30), (0, 0)), stride=(3, 1)),  # bands of padding only
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [None, 3, 1])
def test_padding_stride_and_dilation_split_between_the_passes(rng, monkeypatch, kwargs,
                                                              dtype, chunk):
    """Also with units of work narrower than a row: chunks of output columns, down to one
    (each with its own margins of padding), and rows whose windows hold only padding."""
    monkeypatch.setattr(conv_separable, "CHUNK_COLUMNS", chunk)
    x = rng.standard_normal((2, 2, 37, 41)).astype(dtype)
    k = np.stack([kernels(rng, 7, 9)["sum_of_two"][0] for _ in range(4)])
    check_forward(x, k.astype(dtype)[:, None], where=str(kwargs), groups=2, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_channels_with_their_own_kernels_and_a_batch(rng, dtype):
    x = rng.standard_normal((3, 4, 30, 26)).astype(dtype)
    named = kernels(rng, 9, 9)
    w = np.stack([named[n][0] for n in ("gaussian", "outer", "sum_of_two", "dog")])
    w = w.astype(dtype)[:, None]
    b = rng.standard_normal(4).astype(dtype)
    check_forward(x, w, b, where="depthwise", padding="same", groups=4)


def test_an_intermediate_row_beyond_the_operands_size_is_refused(rng):
    """The sweep's intermediate row spans the columns the windows reach: a column dilation
    far wider than the picture would make it larger than the operands, and the direct
    kernels (which clip every tap to the input) serve the call."""
    x = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    w = gaussian(3).astype(np.float32)[None, None]
    kwargs = dict(padding=((1, 1), (200_000, 200_000)), dilation=(1, 200_000))
    assert NAME not in convpool.implementations("conv2d", x, w, **kwargs)
    with pytest.raises(ValueError, match="intermediate row"):
        forced_forward(x, w, **kwargs)
    np.testing.assert_allclose(convpool.conv2d(x, w, **kwargs),
                               ref.conv2d(x.astype(np.float64), w.astype(np.float64), **kwargs),
                               atol=1e-6)


def test_a_channel_multiplier_reads_each_input_plane_twice(rng):
    x = rng.standard_normal((2, 3, 25, 31)).astype(np.float32)
    w = np.stack([np.outer(*rng.standard_normal((2, 9))) for _ in range(6)])[:, None]
    check_forward(x, w.astype(np.float32), where="multiplier", padding=4, groups=3)


def test_a_channels_last_picture_as_one_plane_with_dilated_columns(rng):
    """An (H, W, C) picture filtered per channel is one (H, W*C) plane whose kernel is
    dilated by C along the columns: the geometry a channels-last layout hands down."""
    h, w, c = 30, 20, 3
    picture = rng.standard_normal((h, w, c)).astype(np.float32)
    k = gaussian(9).astype(np.float32)
    plane = picture.reshape(h, w * c)
    y = check_forward(plane, k, where="channels-last", padding=((4, 4), (4 * c, 4 * c)),
                      dilation=(1, c))
    per_channel = ref.conv2d(picture.transpose(2, 0, 1)[:, None].astype(np.float64),
                             k[None, None].astype(np.float64), padding="same")
    np.testing.assert_allclose(y.reshape(h, w, c), per_channel[:, 0].transpose(1, 2, 0),
                               atol=1e-5)


def test_out_argument_and_a_two_dimensional_picture(rng):
    x = rng.standard_normal((40, 40))
    k = gaussian(11)
    out = np.full((40, 40), np.nan)
    with forced_implementation("conv2d", NAME):
        result = convpool.conv2d(x, k, padding="same", out=out)
    assert result is out
    np.testing.assert_allclose(out, ref.conv2d(x, k, padding="same"), rtol=1e-12, atol=1e-13)


def test_implementation_names_separable_for_a_large_gaussian_and_the_call_runs_it(rng):
    x = rng.standard_normal((300, 400)).astype(np.float32)
    k = gaussian(31).astype(np.float32)
    assert convpool.implementation("conv2d", x, k, padding="same") == NAME
    assert convpool.implementations("conv2d", x, k, padding="same")[0] == NAME
    before = conv_separable.run_count("conv2d")
    y = convpool.conv2d(x, k, padding="same")
    assert conv_separable.run_count("conv2d") == before + 1
    np.testing.assert_allclose(y, ref.conv2d(x.astype(np.float64), k.astype(np.float64),
                                             padding="same"), atol=1e-5)


@pytest.mark.parametrize("size", [11, 15, 31, 63])
def test_large_gaussians_take_the_separable_path(rng, size):
    x = rng.standard_normal((3, 1, 500, 600)).astype(np.float32)
    k = gaussian(size).astype(np.float32)[None, None]
    assert convpool.implementation("conv2d", x, k, padding="same") == NAME


def test_full_rank_kernels_are_not_taken(rng):
    x = rng.standard_normal((1, 1, 300, 400)).astype(np.float32)
    for size in (11, 31):
        w = rng.standard_normal((1, 1, size, size)).astype(np.float32)
        assert convpool.implementation("conv2d", x, w, padding="same") != NAME
        assert NAME not in convpool.implementations("conv2d", x, w, padding="same")


def test_a_three_by_three_kernel_stays_on_the_compiled_kernels(rng):
    x = rng.standard_normal((1, 1, 500, 500)).astype(np.float32)
    w = gaussian(3).astype(np.float32)[None, None]
    assert convpool.implementation("conv2d", x, w, padding="same") != NAME
    # rank 1 of 3x3: 6 multiply-adds instead of 9, supported and listed after the compiled
    # kernels (before the FFT, which also supports it: the Python entries keep their order)
    assert convpool.implementations("conv2d", x, w, padding="same")[-2:] == [NAME, "fft"]


def test_several_input_channels_per_group_are_not_served(rng):
    x = rng.standard_normal((1, 2, 100, 100)).astype(np.float32)
    w = np.stack([gaussian(15)] * 2)[None].astype(np.float32)
    assert NAME not in convpool.implementations("conv2d", x, w, padding="same")
    with pytest.raises(ValueError, match=r"forced implementation 'separable' does not "
                                         r"support this case \(C_in / groups = 2"):
        forced_forward(x, w, padding="same")


def test_forcing_a_full_rank_kernel_raises(rng):
    x = rng.standard_normal((1, 1, 20, 20))
    w = rng.standard_normal((1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"forced implementation 'separable' does not "
                                         r"support this case \(the 5x5 kernels have rank 5"):
        forced_forward(x, w, padding="same")


@pytest.mark.parametrize("mode", ["reflect", "replicate", "symmetric", "circular"])
def test_non_zero_padding_modes_are_left_to_the_compiled_kernels(rng, mode):
    x = rng.standard_normal((1, 1, 300, 400)).astype(np.float32)
    w = gaussian(31).astype(np.float32)[None, None]
    assert convpool.implementation("conv2d", x, w, padding="same", padding_mode=mode) != NAME
    assert NAME not in convpool.implementations("conv2d", x, w, padding="same",
                                                padding_mode=mode)
    with pytest.raises(ValueError, match="non-zero padding mode"):
        forced_forward(x, w, padding="same", padding_mode=mode)
    # without padding the mode is moot, and the separable path serves the call
    assert convpool.implementation("conv2d", x, w, padding_mode=mode) == NAME


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_take_the_direct_kernels(rng, value):
    x = rng.standard_normal((1, 1, 300, 400)).astype(np.float32)
    x[0, 0, 150, 200] = value
    w = gaussian(31).astype(np.float32)[None, None]
    assert convpool.implementation("conv2d", x, w, padding="same") != NAME
    assert NAME not in convpool.implementations("conv2d", x, w, padding="same")
    before = conv_separable.run_count("conv2d")
    y = convpool.conv2d(x, w, padding="same")
    assert conv_separable.run_count("conv2d") == before
    bad = ~np.isfinite(y[0, 0])
    rows, cols = np.nonzero(bad)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (135, 165, 185, 215)
    assert bad.sum() == 31 * 31
    with pytest.raises(ValueError, match=r"forced implementation 'separable' does not "
                                         r"support this case \(an operand holds NaN"):
        forced_forward(x, w, padding="same")


def test_a_non_finite_weight_is_refused_without_a_factorisation(rng):
    x = rng.standard_normal((1, 1, 300, 400)).astype(np.float32)
    w = gaussian(31).astype(np.float32)[None, None]
    w[0, 0, 3, 4] = np.nan
    assert NAME not in convpool.implementations("conv2d", x, w, padding="same")
    with pytest.raises(ValueError, match="an operand holds NaN"):
        forced_forward(x, w, padding="same")


def test_values_near_overflow_are_refused(rng):
    x = np.full((1, 1, 40, 40), 3e37, np.float32)
    w = gaussian(15).astype(np.float32)[None, None] * 1e3
    with pytest.raises(ValueError, match="near overflow"):
        forced_forward(x, w, padding="same")


def test_a_forced_compiled_implementation_wins(rng):
    x = rng.standard_normal((1, 1, 300, 400)).astype(np.float32)
    w = gaussian(31).astype(np.float32)[None, None]
    with forced_implementation("conv2d", "direct"):
        assert convpool.implementation("conv2d", x, w, padding="same") == "direct"
        convpool.conv2d(x, w, padding="same")


def test_forcing_fft_on_a_separable_case_runs_the_fft(rng):
    x = rng.standard_normal((1, 1, 100, 100))
    w = gaussian(21)[None, None]
    with forced_implementation("conv2d", "fft"):
        assert convpool.implementation("conv2d", x, w, padding="same") == "fft"
        y = convpool.conv2d(x, w, padding="same")
    np.testing.assert_allclose(y, ref.conv2d(x, w, padding="same"), atol=1e-12)


def test_the_python_implementations_are_listed_in_order():
    assert python_kernels.NAMES == ("separable", "fft")
    assert python_kernels.by_name("separable") is conv_separable
    assert python_kernels.by_name("direct") is None


def test_forcing_an_unserved_operation_is_refused():
    with pytest.raises(ValueError, match="op: expected one of"):
        conv_separable.force("conv2d_grad_input", True)


def test_the_cost_model_takes_larger_kernels_once_it_takes_one():
    x = np.ones((1, 1, 1000, 1000), np.float32)

    def chosen(k):
        w = gaussian(k).astype(np.float32)[None, None]
        return convpool.implementation("conv2d", x, w, padding="same") == NAME
    choices = [chosen(k) for k in (3, 5, 7, 11, 15, 21, 31, 63)]
    assert choices == sorted(choices), choices
    assert not choices[0] and choices[-1], choices


@st.composite
def separable_cases(draw):
    kh, kw = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    rank = draw(st.integers(1, 2))
    if rank * (kh + kw) >= kh * kw:
        rank = 1
    if kh + kw >= kh * kw:
        kh, kw = kh + 2, kw + 2
    channels = draw(st.integers(1, 3))
    multiplier = draw(st.integers(1, 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    reach = [(k - 1) * d + 1 for k, d in zip((kh, kw), dilation, strict=True)]
    h = draw(st.integers(reach[0], reach[0] + 12))
    w = draw(st.integers(reach[1], reach[1] + 12))
    padding = ((draw(st.integers(0, kh)), draw(st.integers(0, kh))),
               (draw(st.integers(0, kw)), draw(st.integers(0, kw))))
    return dict(shape=(draw(st.integers(1, 2)), channels, h, w), kernel=(kh, kw),
                rank=rank, out_channels=channels * multiplier, stride=stride,
                dilation=dilation, padding=padding,
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2 ** 16)), bias=draw(st.booleans()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(separable_cases(), st.sampled_from([1, 2, 7, None]))
def test_separable_forward_matches_the_oracle_on_any_geometry(case, chunk):
    previous, conv_separable.CHUNK_COLUMNS = conv_separable.CHUNK_COLUMNS, chunk
    try:
        check_case(case)
    finally:
        conv_separable.CHUNK_COLUMNS = previous


def check_case(case):
    rng = np.random.default_rng(case["seed"])
    kh, kw = case["kernel"]
    c_out = case["out_channels"]
    terms = [np.einsum("qa,qb->qab", rng.standard_normal((c_out, kh)),
                       rng.standard_normal((c_out, kw))) for _ in range(case["rank"])]
    dtype = case["dtype"]
    w = sum(terms).astype(dtype)[:, None]
    x = rng.standard_normal(case["shape"]).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if case["bias"] else None
    check_forward(x, w, b, where=str(case), stride=case["stride"],
                  dilation=case["dilation"], padding=case["padding"],
                  groups=case["shape"][1])
