"""The oracle on NaN and inf: every function and gradient puts them exactly where the
direct sum (or max, or mean) over the padded input puts them, worked out by hand here,
and where PyTorch puts them (when torch is installed). An oracle that spread a NaN
further could not check the compiled kernels on non-finite input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close
from convpool import reference as ref
from test_reference_conv import PADDED_ROW

NAN, INF = np.nan, np.inf
MODES = sorted(PADDED_ROW)


def where(mask: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(i) for i in index) for index in np.argwhere(mask)}


def assert_non_finite_at(result, nan=(), posinf=(), neginf=()):
    """NaN, +inf and -inf at exactly the given indices, finite elsewhere."""
    assert where(np.isnan(result)) == set(nan)
    assert where(np.isposinf(result)) == set(posinf)
    assert where(np.isneginf(result)) == set(neginf)


# --- convolution, by hand ---------------------------------------------------------------
# PADDED_ROW: the row 1 2 3 4 padded by two pixels each side in every mode. A 1x1 kernel of
# one over that padding returns the padded row itself, so a non-finite pixel must appear
# exactly at the padded positions that copy it, and a non-finite output gradient must
# reach exactly the one pixel its position copies (none for a zero of the padding).

ROW_PADDING = ((0, 0), (2, 2))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pixel", range(4))
def test_conv2d_non_finite_pixel_reaches_its_copies(mode, pixel):
    copies = {(0, k) for k, value in enumerate(PADDED_ROW[mode]) if value == pixel + 1}
    for bad, expected in ((NAN, dict(nan=copies)), (INF, dict(posinf=copies))):
        x = np.array([[1.0, 2.0, 3.0, 4.0]])
        x[0, pixel] = bad
        y = ref.conv2d(x, np.ones((1, 1)), padding=ROW_PADDING, padding_mode=mode)
        assert_non_finite_at(y, **expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("position", range(8))
def test_conv2d_grad_input_non_finite_reaches_only_the_copied_pixel(mode, position):
    source = PADDED_ROW[mode][position] - 1  # -1: a zero of the padding, copied from nothing
    copied = {(0, source)} if source >= 0 else set()
    for bad, expected in ((NAN, dict(nan=copied)), (-INF, dict(neginf=copied))):
        grad_y = np.ones((1, 8))
        grad_y[0, position] = bad
        g = ref.conv2d_grad_input(grad_y, np.ones((1, 1)), (1, 4), padding=ROW_PADDING,
                                  padding_mode=mode)
        assert_non_finite_at(g, **expected)


@pytest.mark.parametrize(
    "mode, output_pixel, reached_rows, reached_cols",
    [
        ("zeros", (0, 0), (0, 1), (0, 1)),       # a corner: 4 of the 9 taps read the plane
        ("zeros", (2, 3), (1, 2, 3), (2, 3, 4)),
        ("zeros", (5, 2), (4, 5), (1, 2, 3)),
        ("replicate", (0, 0), (0, 1), (0, 1)),   # the padding copies the edge pixels
        ("reflect", (0, 0), (0, 1), (0, 1)),     # ... or the second row and column
        ("circular", (0, 0), (5, 0, 1), (5, 0, 1)),  # ... or the far side
    ],
)
def test_one_nan_output_gradient_reaches_its_window_only(mode, output_pixel, reached_rows,
                                                         reached_cols):
    # 6x6 plane, 3x3 kernel, padding 1: output pixel (i, j) reads rows i-1..i+1 and columns
    # j-1..j+1 (through the padding mode)
    grad_y = np.ones((1, 1, 6, 6))
    grad_y[(0, 0, *output_pixel)] = NAN
    w = np.random.default_rng(0).uniform(0.5, 1.5, (1, 1, 3, 3))
    g = ref.conv2d_grad_input(grad_y, w, (1, 1, 6, 6), padding=1, padding_mode=mode)
    assert_non_finite_at(g, nan={(0, 0, r, c) for r in reached_rows for c in reached_cols})


def test_conv2d_non_finite_weight_and_bias():
    x = np.ones((1, 4))  # a row; kernel (1, 3), zero padding of 1 on each side
    # tap 0 of output 0 lands in the zero padding: no term (skipped, not inf * 0 = NaN),
    # so output 0 is 1 + 1; the other outputs hold inf * 1
    y = ref.conv2d(x, np.array([[INF, 1.0, 1.0]]), padding=((0, 0), (1, 1)))
    assert_non_finite_at(y, posinf={(0, 1), (0, 2), (0, 3)})
    assert y[0, 0] == 2.0
    y = ref.conv2d(x, np.array([[1.0, NAN, 1.0]]), padding=((0, 0), (1, 1)))
    assert_non_finite_at(y, nan={(0, j) for j in range(4)})
    # a bias reaches its own output channel only
    y = ref.conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), np.array([0.0, NAN]))
    assert_non_finite_at(y, nan={(0, 1, i, j) for i in range(2) for j in range(2)})


def test_conv2d_grad_input_non_finite_weight_reaches_the_pixels_its_tap_reads():
    # stride 2 with a 1x1 kernel reads columns 0, 2 and 4 only
    g = ref.conv2d_grad_input(np.ones((1, 3)), np.array([[NAN]]), (1, 5), stride=2)
    assert_non_finite_at(g, nan={(0, 0), (0, 2), (0, 4)})
    # kernel (1, 3), padding 1: tap 0 of output o reads pixel o - 1, so pixels 0..2
    g = ref.conv2d_grad_input(np.ones((1, 4)), np.array([[INF, 0.0, 0.0]]), (1, 4),
                              padding=((0, 0), (1, 1)))
    assert_non_finite_at(g, posinf={(0, 0), (0, 1), (0, 2)})


def test_conv2d_grad_weight_non_finite_pixel_reaches_the_taps_that_read_it():
    # 4x4 input, 3x3 kernel, no padding: the corner (3, 3) is read by tap (2, 2) of output
    # (1, 1) only
    for bad, kind in ((NAN, "nan"), (INF, "posinf")):
        x = np.zeros((1, 1, 4, 4))
        x[0, 0, 3, 3] = bad
        gw = ref.conv2d_grad_weight(x, np.ones((1, 1, 2, 2)), (1, 1, 3, 3))
        assert_non_finite_at(gw, **{kind: {(0, 0, 2, 2)}})
    # kernel (1, 3), padding 1 on a row of 4: pixel 3 is read by tap 1 of output 3 and by
    # tap 2 of output 2; tap 0 never reads it
    gw = ref.conv2d_grad_weight(np.array([[1.0, 1.0, 1.0, NAN]]), np.ones((1, 4)), (1, 3),
                                padding=((0, 0), (1, 1)))
    assert_non_finite_at(gw, nan={(0, 1), (0, 2)})
    assert gw[0, 0] == 3.0  # the zero padding, then pixels 0, 1 and 2


def test_conv2d_grad_weight_non_finite_output_gradient_reaches_the_taps_that_read_a_pixel():
    # A tap's sum holds a term grad_y[0] * (what that tap read for output 0) only where it
    # read a real pixel: tap 0 of output 0 lands in the zero padding and holds no term
    x = np.ones((1, 4))
    gw = ref.conv2d_grad_weight(x, np.array([[NAN, 1.0, 1.0, 1.0]]), (1, 3),
                                padding=((0, 0), (1, 1)))
    assert_non_finite_at(gw, nan={(0, 1), (0, 2)})
    assert gw[0, 0] == 3.0  # outputs 1..3 read pixels 0..2
    gw = ref.conv2d_grad_weight(x, np.array([[INF, 1.0, 1.0, 1.0]]), (1, 3),
                                padding=((0, 0), (1, 1)))
    assert_non_finite_at(gw, posinf={(0, 1), (0, 2)})


def test_conv2d_grad_bias_non_finite_stays_in_its_channel():
    grad_y = np.ones((2, 3, 2, 2))
    grad_y[1, 1, 0, 1] = NAN
    grad_y[0, 2, 1, 1] = -INF
    assert_non_finite_at(ref.conv2d_grad_bias(grad_y), nan={(1,)}, neginf={(2,)})


# --- pooling, by hand -------------------------------------------------------------------

def plane(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)[np.newaxis, np.newaxis]


PICTURE = plane([[1, 5, 2, -INF],
                 [3, NAN, 8, 6],
                 [7, 2, 1, INF],
                 [0, 6, -INF, 5]])


def test_max_pool2d_non_finite():
    # windows [1 5; 3 NaN], [2 -inf; 8 6], [7 2; 0 6], [1 inf; -inf 5]
    y, indices = ref.max_pool2d(PICTURE, 2, return_indices=True)
    assert_non_finite_at(y, nan={(0, 0, 0, 0)}, posinf={(0, 0, 1, 1)})
    np.testing.assert_array_equal(indices, [[[[5, 6], [8, 11]]]])
    # a window of -inf only is -inf; padding never wins, so it never adds a -inf or a 0
    y = ref.max_pool2d(plane([[-INF, -INF, 1.0]]), (1, 2), padding=(0, 1))
    assert_non_finite_at(y, neginf={(0, 0, 0, 0)})  # windows: padding -inf | -inf 1


def test_max_pool2d_grad_input_non_finite_reaches_the_winner_only():
    grad_y = np.array([[[[NAN, 1.0], [INF, 1.0]]]])
    g = ref.max_pool2d_grad_input(grad_y, np.array([[[[5, 6], [8, 11]]]]), (1, 1, 4, 4))
    assert_non_finite_at(g, nan={(0, 0, 1, 1)}, posinf={(0, 0, 2, 0)})


def test_avg_pool2d_non_finite():
    # window [1 inf; -inf 5] sums inf - inf = NaN
    y = ref.avg_pool2d(PICTURE, 2)
    assert_non_finite_at(y, nan={(0, 0, 0, 0), (0, 0, 1, 1)}, neginf={(0, 0, 0, 1)})
    # 3x3, stride 1, padding 1: the NaN at (1, 1) is in every window centred within one
    # pixel of it, the padding adds nothing
    x = np.ones((1, 1, 5, 5))
    x[0, 0, 1, 1] = NAN
    y = ref.avg_pool2d(x, 3, 1, 1)
    assert_non_finite_at(y, nan={(0, 0, i, j) for i in range(3) for j in range(3)})


def test_avg_pool2d_grad_input_non_finite_reaches_its_window_only():
    grad_y = np.ones((1, 1, 4, 4))
    grad_y[0, 0, 0, 0] = NAN  # window rows -1..1, columns -1..1: inside, rows and cols 0..1
    grad_y[0, 0, 3, 2] = INF  # rows 2..4 and columns 1..3, inside: rows 2..3, cols 1..3
    g = ref.avg_pool2d_grad_input(grad_y, (1, 1, 4, 4), 3, 1, 1)
    nan = {(0, 0, i, j) for i in range(2) for j in range(2)}
    assert_non_finite_at(g, nan=nan, posinf={(0, 0, i, j) for i in (2, 3) for j in (1, 2, 3)})


def test_global_pools_non_finite_stay_in_their_plane():
    x = np.ones((2, 3, 2, 2))
    x[0, 1, 1, 0] = NAN
    x[1, 2, 0, 0] = INF
    x[1, 0, 1, 1] = -INF
    expected = dict(nan={(0, 1)}, posinf={(1, 2)}, neginf={(1, 0)})
    assert_non_finite_at(ref.global_avg_pool2d(x), **expected)
    assert_non_finite_at(ref.global_max_pool2d(x), nan={(0, 1)}, posinf={(1, 2)})


def test_global_pool_gradients_non_finite():
    grad_y = np.array([[1.0, NAN], [INF, 1.0]])
    g = ref.global_avg_pool2d_grad_input(grad_y, (2, 2, 2, 2))
    plane_of = {(n, c, i, j) for n, c in ((0, 1),) for i in range(2) for j in range(2)}
    assert_non_finite_at(g, nan=plane_of,
                         posinf={(1, 0, i, j) for i in range(2) for j in range(2)})
    # max: to each plane's first maximum (its first NaN if it has one)
    x = np.arange(16.0).reshape(2, 2, 2, 2)
    x[0, 1, 0, 1] = x[0, 1, 1, 0] = NAN
    g = ref.global_max_pool2d_grad_input(grad_y, x)
    assert_non_finite_at(g, nan={(0, 1, 0, 1)}, posinf={(1, 0, 1, 1)})


def test_channel_pool_non_finite():
    x = np.ones((1, 4, 2, 2))
    x[0, 1, 1, 1] = NAN
    x[0, 2, 0, 0] = INF
    x[0, 3, 0, 0] = -INF
    assert_non_finite_at(ref.channel_pool(x, 2, "max"), nan={(0, 0, 1, 1)},
                         posinf={(0, 1, 0, 0)})
    assert_non_finite_at(ref.channel_pool(x, 2, "avg"), nan={(0, 0, 1, 1), (0, 1, 0, 0)})
    grad_y = np.ones((1, 2, 2, 2))
    grad_y[0, 0, 1, 0] = NAN
    x = np.arange(16.0).reshape(1, 4, 2, 2)  # channel 1 wins group 0, channel 3 group 1
    assert_non_finite_at(ref.channel_pool_grad_input(grad_y, x, 2, "max"), nan={(0, 1, 1, 0)})
    assert_non_finite_at(ref.channel_pool_grad_input(grad_y, x, 2, "avg"),
                         nan={(0, 0, 1, 0), (0, 1, 1, 0)})


# --- against PyTorch ----------------------------------------------------------------------

def sprinkle(rng, array, fraction=0.05):
    """``array`` with a few NaN, +inf and -inf entries."""
    array = array.copy()
    r = rng.random(array.shape)
    array[r < fraction] = NAN
    array[(r >= fraction) & (r < 2 * fraction)] = INF
    array[(r >= 2 * fraction) & (r < 3 * fraction)] = -INF
    return array


def assert_same_non_finite(actual, expected, where_):
    expected = np.asarray(expected)
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        np.testing.assert_array_equal(test(actual), test(expected), err_msg=f"{where_}: {name}")
    finite = np.isfinite(expected)
    assert_close(actual[finite], expected[finite], np.float64, where_)


# padding modes PyTorch has (it has no 'symmetric'), by their PyTorch names
TORCH_MODES = {"zeros": None, "replicate": "replicate", "reflect": "reflect",
               "circular": "circular"}
CONV_CASES = [
    ((2, 4, 7, 8), (6, 2, 3, 3), dict(stride=1, padding=((1, 1), (1, 1)), groups=2)),
    ((1, 3, 9, 7), (2, 3, 3, 2), dict(stride=(2, 1), padding=((2, 1), (0, 1)), dilation=(1, 2))),
]


def torch_conv(torch, x, w, b, kwargs, mode):
    """conv2d with ``kwargs`` in PyTorch: its own zero padding where it has the form, else
    F.pad first."""
    functional = torch.nn.functional
    (top, bottom), (left, right) = kwargs["padding"]
    args = dict(stride=kwargs["stride"], dilation=kwargs.get("dilation", 1),
                groups=kwargs.get("groups", 1))
    if TORCH_MODES[mode] is None and (top, left) == (bottom, right):
        return functional.conv2d(x, w, b, padding=(top, left), **args)
    x = functional.pad(x, (left, right, top, bottom), mode=TORCH_MODES[mode] or "constant")
    return functional.conv2d(x, w, b, **args)


@pytest.mark.parametrize("mode", sorted(TORCH_MODES))
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("operand", ["x", "weight", "bias", "grad_output"])
def test_conv2d_non_finite_as_torch(rng, case, mode, operand):
    torch = pytest.importorskip("torch")
    x_shape, w_shape, kwargs = CONV_CASES[case]
    if mode == "zeros" and operand in ("weight", "grad_output"):
        pytest.skip("PyTorch multiplies the zero padding (inf x 0 = NaN) where the direct sum "
                    "skips it: these cases are checked by hand above and against convpool's "
                    "direct loops in test_reliability_nonfinite.py")
    kwargs = dict(kwargs, padding_mode=mode)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    gy = rng.standard_normal(ref.conv2d(x, w, b, **kwargs).shape)
    if operand == "x":
        x = sprinkle(rng, x)
    elif operand == "weight":
        w = sprinkle(rng, w, 0.03)
    elif operand == "bias":
        b = sprinkle(rng, b, 0.2)
    else:
        gy = sprinkle(rng, gy)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch_conv(torch, xt, wt, bt, kwargs, mode)
    yt.backward(torch.tensor(gy))
    label = f"{operand} {mode} case {case}"
    assert_same_non_finite(ref.conv2d(x, w, b, **kwargs), yt.detach().numpy(),
                           f"{label}: forward")
    assert_same_non_finite(ref.conv2d_grad_input(gy, w, x.shape, **kwargs),
                           xt.grad.numpy(), f"{label}: grad_input")
    assert_same_non_finite(ref.conv2d_grad_weight(x, gy, w.shape, **kwargs),
                           wt.grad.numpy(), f"{label}: grad_weight")
    assert_same_non_finite(ref.conv2d_grad_bias(gy), bt.grad.numpy(), f"{label}: grad_bias")


POOL_WINDOWS = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), ceil_mode=True)]


def distinct_values(rng, shape):
    """Values with no ties, so that every maximum has one winner in both libraries."""
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)


@pytest.mark.parametrize("window", range(len(POOL_WINDOWS)))
def test_window_pooling_non_finite_as_torch(rng, window):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    kwargs = POOL_WINDOWS[window]
    torch_kwargs = dict(kwargs, stride=kwargs.get("stride", kwargs["kernel_size"]))
    x = sprinkle(rng, rng.standard_normal((2, 3, 9, 8)))
    y, indices = ref.max_pool2d(x, **kwargs, return_indices=True)
    yt, indices_t = functional.max_pool2d(torch.tensor(x), **torch_kwargs, return_indices=True)
    assert_same_non_finite(y, yt.numpy(), "max_pool2d")
    # PyTorch takes the last NaN of a window, convpool the first: compare the others
    np.testing.assert_array_equal(indices[~np.isnan(y)], indices_t.numpy()[~np.isnan(y)])
    assert_same_non_finite(ref.avg_pool2d(x, **kwargs),
                           functional.avg_pool2d(torch.tensor(x), **torch_kwargs).numpy(),
                           "avg_pool2d")
    # gradients: a non-finite grad_output over an input without ties
    finite_x = distinct_values(rng, x.shape)
    gy = sprinkle(rng, rng.standard_normal(y.shape))
    for name, pool in (("max", functional.max_pool2d), ("avg", functional.avg_pool2d)):
        xt = torch.tensor(finite_x, requires_grad=True)
        pool(xt, **torch_kwargs).backward(torch.tensor(gy))
        if name == "max":
            _, indices = ref.max_pool2d(finite_x, **kwargs, return_indices=True)
            g = ref.max_pool2d_grad_input(gy, indices, x.shape)
        else:
            g = ref.avg_pool2d_grad_input(gy, x.shape, **kwargs)
        assert_same_non_finite(g, xt.grad.numpy(), f"{name}_pool2d_grad_input")


def test_global_and_channel_pooling_non_finite_as_torch(rng):
    torch = pytest.importorskip("torch")
    x = sprinkle(rng, rng.standard_normal((2, 4, 5, 6)))
    xt = torch.tensor(x)
    assert_same_non_finite(ref.global_avg_pool2d(x), xt.mean((2, 3)).numpy(), "global avg")
    assert_same_non_finite(ref.global_max_pool2d(x), xt.amax((2, 3)).numpy(), "global max")
    groups = xt.reshape(2, 2, 2, 5, 6)
    assert_same_non_finite(ref.channel_pool(x, 2, "max"), groups.amax(2).numpy(), "channel max")
    assert_same_non_finite(ref.channel_pool(x, 2, "avg"), groups.mean(2).numpy(), "channel avg")
    finite_x = distinct_values(rng, x.shape)
    cases = {
        # name: (PyTorch's reduction, the oracle's gradient for grad_output gy)
        "global avg": (lambda t: t.mean((2, 3)),
                       lambda gy: ref.global_avg_pool2d_grad_input(gy, x.shape)),
        # max(dim) sends the gradient to the index of the maximum, as the direct rule says
        # (amax's gradient multiplies a 0/1 mask, which spreads a NaN)
        "global max": (lambda t: t.flatten(2).max(-1).values,
                       lambda gy: ref.global_max_pool2d_grad_input(gy, finite_x)),
        "channel max": (lambda t: t.reshape(2, 2, 2, 5, 6).max(2).values,
                        lambda gy: ref.channel_pool_grad_input(gy, finite_x, 2, "max")),
        "channel avg": (lambda t: t.reshape(2, 2, 2, 5, 6).mean(2),
                        lambda gy: ref.channel_pool_grad_input(gy, finite_x, 2, "avg")),
    }
    for name, (reduce, oracle_gradient) in cases.items():
        xt = torch.tensor(finite_x, requires_grad=True)
        yt = reduce(xt)
        gy = sprinkle(rng, rng.standard_normal(tuple(yt.shape)), 0.2)
        yt.backward(torch.tensor(gy))
        assert_same_non_finite(oracle_gradient(gy), xt.grad.numpy(), f"{name} gradient")
