"""The convolution oracle (convpool.reference) against hand-worked examples, the formula
written out element by element, and central finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import assert_close
from convpool import reference as ref
from convpool.reference.geometry import padding_source

# Our padding modes under numpy.pad's names: numpy.pad is the independent check of the
# oracle's own padding formulas.
NUMPY_PAD_MODE = {"zeros": "constant", "replicate": "edge", "reflect": "reflect",
                  "symmetric": "symmetric", "circular": "wrap"}

SOBEL = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64)

# A 4 x 5 picture: dark top half, bright bottom half (a horizontal edge).
EDGE = np.array([[0] * 5, [0] * 5, [1] * 5, [1] * 5], dtype=np.float64)


# --- hand-worked examples ------------------------------------------------------------

def test_sobel_valid_finds_the_edge():
    # Each output row sees three picture rows: bottom row (1, 2, 1) minus top row (1, 2, 1).
    y = ref.conv2d(EDGE, SOBEL, padding="valid")
    assert_close(y, [[4, 4, 4], [4, 4, 4]], np.float64)


def test_sobel_same_with_zero_padding():
    # Border columns lose one of the (1, 2, 1) weights to the zero frame (3 instead of 4);
    # the last row sees the bright row above and the zero frame below: an edge of -4.
    y = ref.conv2d(EDGE, SOBEL, padding="same")
    expected = [
        [0, 0, 0, 0, 0],
        [3, 4, 4, 4, 3],
        [3, 4, 4, 4, 3],
        [-3, -4, -4, -4, -3],
    ]
    assert_close(y, expected, np.float64)


def test_sobel_same_with_replicate_padding_has_no_border_artifact():
    y = ref.conv2d(EDGE, SOBEL, padding=1, padding_mode="replicate")
    assert_close(y, [[0] * 5, [4] * 5, [4] * 5, [0] * 5], np.float64)


def test_sobel_on_uint8_picture_computes_in_float32():
    y = ref.conv2d((EDGE * 200).astype(np.uint8), SOBEL.astype(np.float32), padding="valid")
    assert_close(y, np.full((2, 3), 800.0), np.float32)


def test_bias_stride_dilation_by_hand():
    x = np.arange(16, dtype=np.float64).reshape(4, 4)
    # 2x2 kernel picking the top-left and bottom-right taps; dilation 2 makes them
    # x[i, j] and x[i + 2, j + 2]; stride 2 keeps (0, 0) only on a 4x4 picture.
    w = np.array([[1.0, 0.0], [0.0, 10.0]])
    y = ref.conv2d(x, w, bias=[0.5], stride=2, dilation=2)
    assert_close(y, [[0 + 10 * 10 + 0.5]], np.float64)
    y = ref.conv2d(x, w, dilation=2)
    assert_close(y, [[0 + 100, 1 + 110], [4 + 140, 5 + 150]], np.float64)


def test_channels_mix_as_the_formula_says():
    # z^q = sum_p W^{p,q} * z^p + b^q with 1x1 kernels: a matrix product over channels.
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    w = np.arange(4 * 3, dtype=np.float64).reshape(4, 3, 1, 1)
    b = np.array([1.0, -1.0, 0.5, 0.0])
    y = ref.conv2d(x, w, b)
    expected = np.einsum("qp,nphw->nqhw", w[:, :, 0, 0], x) + b[None, :, None, None]
    assert_close(y, expected, np.float64)


def test_groups_keep_channels_apart():
    # Two groups: output 0 sees input channel 0 only, output 1 input channel 1 only.
    x = np.stack([np.ones((3, 3)), 10 * np.ones((3, 3))])
    w = np.ones((2, 1, 3, 3))
    assert_close(ref.conv2d(x, w, groups=2), [[[9.0]], [[90.0]]], np.float64)
    assert_close(ref.conv2d(x, np.ones((2, 2, 3, 3))), [[[99.0]], [[99.0]]], np.float64)


# --- output sizes ---------------------------------------------------------------------

@pytest.mark.parametrize("kh, kw", [(1, 1), (3, 3), (2, 5), (7, 4)])
def test_valid_shrinks_by_kernel_size_minus_one(kh, kw):
    y = ref.conv2d(np.zeros((9, 8)), np.zeros((kh, kw)), padding="valid")
    assert y.shape == (9 - (kh - 1), 8 - (kw - 1))


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_same_gives_ceil_of_input_over_stride(kernel, stride, dilation):
    h, w = 7, 10
    y = ref.conv2d(np.zeros((h, w)), np.zeros((kernel, kernel)), padding="same",
                   stride=stride, dilation=dilation)
    assert y.shape == (-(-h // stride), -(-w // stride))


def test_same_keeps_shape_and_centres_odd_kernel():
    # A 3x3 kernel with a single 1 at its centre is the identity under 'same'.
    x = np.random.default_rng(0).standard_normal((5, 6))
    w = np.zeros((3, 3))
    w[1, 1] = 1
    assert_close(ref.conv2d(x, w, padding="same"), x, np.float64)


def test_same_even_kernel_puts_extra_pixel_bottom_right():
    # 2x2 kernel picking its top-left tap: with padding (0 before, 1 after) output
    # (i, j) reads x[i, j], so 'same' is the identity.
    x = np.random.default_rng(1).standard_normal((4, 5))
    w = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert_close(ref.conv2d(x, w, padding="same"), x, np.float64)


# --- the padding resolver -------------------------------------------------------------

@pytest.mark.parametrize(
    "padding, expected",
    [
        (0, ((0, 0), (0, 0))),
        (2, ((2, 2), (2, 2))),
        ((1, 3), ((1, 1), (3, 3))),
        ([1, 3], ((1, 1), (3, 3))),
        (((1, 2), (3, 0)), ((1, 2), (3, 0))),
        ([[0, 4], [2, 1]], ((0, 4), (2, 1))),
        (((1, 2), 3), ((1, 2), (3, 3))),
        ("valid", ((0, 0), (0, 0))),
        (np.int64(1), ((1, 1), (1, 1))),
    ],
)
def test_resolve_padding_forms(padding, expected):
    sides = ref.resolve_padding(padding, (8, 8), (3, 3), (1, 1), (1, 1))
    assert tuple(tuple(s) for s in sides) == expected


@pytest.mark.parametrize(
    "in_size, kernel, stride, dilation, expected",
    [
        (5, 3, 1, 1, (1, 1)),  # odd kernel: symmetric
        (5, 4, 1, 1, (1, 2)),  # even kernel: total 3, the extra pixel after
        (5, 2, 1, 1, (0, 1)),
        (6, 3, 2, 1, (0, 1)),  # out 3: (3 - 1) * 2 + 3 - 6 = 1
        (7, 3, 2, 1, (1, 1)),  # out 4: 3 * 2 + 3 - 7 = 2
        (5, 3, 1, 2, (2, 2)),  # dilated kernel spans 5
        (8, 1, 3, 1, (0, 0)),  # total would be -1: clipped to 0
        (4, 5, 1, 1, (2, 2)),  # kernel larger than the input
    ],
)
def test_resolve_padding_same(in_size, kernel, stride, dilation, expected):
    sides = ref.resolve_padding(
        "same", (in_size, 9), (kernel, 1), (stride, 1), (dilation, 1)
    )
    assert sides[0] == expected
    assert sides[1] == (0, 0)  # 1-wide kernel, stride 1 on the other axis


# --- padding modes, checked by hand on a one-row picture ------------------------------

ROW = np.array([[1.0, 2.0, 3.0, 4.0]])
PADDED_ROW = {
    "zeros": [0, 0, 1, 2, 3, 4, 0, 0],
    "replicate": [1, 1, 1, 2, 3, 4, 4, 4],
    "reflect": [3, 2, 1, 2, 3, 4, 3, 2],
    "symmetric": [2, 1, 1, 2, 3, 4, 4, 3],
    "circular": [3, 4, 1, 2, 3, 4, 1, 2],
}
# The gradient of that padding for grad_output = [1, 2, ..., 8]: each padded position's
# gradient goes to the pixel it copies (e.g. reflect: x[1] receives positions 1, 3 and 7).
ROW_GRADIENT = {
    "zeros": [3, 4, 5, 6],
    "replicate": [1 + 2 + 3, 4, 5, 6 + 7 + 8],
    "reflect": [3, 2 + 4 + 8, 1 + 5 + 7, 6],
    "symmetric": [2 + 3, 1 + 4, 5 + 8, 6 + 7],
    "circular": [3 + 7, 4 + 8, 1 + 5, 2 + 6],
}


@pytest.mark.parametrize("mode", sorted(PADDED_ROW))
def test_padding_mode_by_hand(mode):
    one = np.ones((1, 1))
    y = ref.conv2d(ROW, one, padding=((0, 0), (2, 2)), padding_mode=mode)
    assert_close(y, [PADDED_ROW[mode]], np.float64)
    # The same on a column (the height axis).
    y = ref.conv2d(ROW.T, one, padding=((2, 2), (0, 0)), padding_mode=mode)
    assert_close(y, np.array([PADDED_ROW[mode]]).T, np.float64)


@pytest.mark.parametrize("mode", sorted(ROW_GRADIENT))
def test_padding_mode_gradient_by_hand(mode):
    grad_y = np.arange(1.0, 9.0).reshape(1, 8)
    g = ref.conv2d_grad_input(grad_y, np.ones((1, 1)), (1, 4), padding=((0, 0), (2, 2)),
                              padding_mode=mode)
    assert_close(g, [ROW_GRADIENT[mode]], np.float64)


def _paddings_each_mode_can_make():
    """(mode, size, before, after): reflect needs padding < size, symmetric and circular
    padding <= size."""
    for mode in sorted(PADDED_ROW):
        for size, before, after in [(4, 2, 3), (3, 0, 2), (5, 1, 0), (2, 1, 1), (1, 0, 0),
                                    (4, 4, 4), (3, 3, 2), (6, 9, 7)]:
            limit = {"reflect": size - 1, "symmetric": size, "circular": size}.get(mode)
            if limit is None or max(before, after) <= limit:
                yield mode, size, before, after


@pytest.mark.parametrize("mode, size, before, after", list(_paddings_each_mode_can_make()))
def test_padding_source_reproduces_numpy_pad(mode, size, before, after):
    x = np.arange(1.0, size + 1)
    source = padding_source(size, before, after, mode)
    padded = np.where(source >= 0, x[source], 0.0)
    assert_close(padded, np.pad(x, (before, after), mode=NUMPY_PAD_MODE[mode]), np.float64)


# --- the formula, element by element --------------------------------------------------

def formula_conv2d(x, w, b, stride, sides, dilation, groups, mode):
    """y[n, q, i, j] = b[q] + sum_{p in group(q), s, t} w[q, p, s, t] *
    xpad[n, p, i*sy + s*dy, j*sx + t*dx], one output element at a time."""
    (sy, sx), (dy, dx) = stride, dilation
    xpad = np.pad(x, ((0, 0), (0, 0)) + sides, mode=NUMPY_PAD_MODE[mode])
    n_, c_in, hp, wp = xpad.shape
    c_out, cin_g, kh, kw = w.shape
    oh = (hp - dy * (kh - 1) - 1) // sy + 1
    ow = (wp - dx * (kw - 1) - 1) // sx + 1
    y = np.zeros((n_, c_out, oh, ow))
    cout_g = c_out // groups
    for n, q, i, j in itertools.product(range(n_), range(c_out), range(oh), range(ow)):
        total = b[q]
        for p, s, t in itertools.product(range(cin_g), range(kh), range(kw)):
            channel = (q // cout_g) * cin_g + p
            total += w[q, p, s, t] * xpad[n, channel, i * sy + s * dy, j * sx + t * dx]
        y[n, q, i, j] = total
    return y


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, sides, dilation, groups, mode",
    [
        ((2, 3, 5, 6), (4, 3, 3, 2), (1, 1), ((1, 1), (0, 2)), (1, 1), 1, "zeros"),
        ((1, 4, 6, 5), (6, 2, 2, 3), (2, 1), ((0, 1), (2, 1)), (1, 2), 2, "reflect"),
        ((1, 3, 5, 5), (3, 1, 3, 3), (2, 2), ((2, 2), (1, 1)), (2, 1), 3, "circular"),
        ((2, 2, 4, 7), (2, 2, 1, 4), (1, 3), ((3, 0), (1, 2)), (1, 1), 1, "symmetric"),
        ((1, 2, 4, 4), (2, 1, 2, 2), (1, 1), ((1, 2), (2, 1)), (1, 1), 2, "replicate"),
    ],
)
def test_oracle_matches_the_formula_element_by_element(x_shape, w_shape, stride, sides, dilation,
                                                        groups, mode):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = ref.conv2d(x, w, b, stride=stride, padding=sides, dilation=dilation, groups=groups,
                   padding_mode=mode)
    assert_close(y, formula_conv2d(x, w, b, stride, sides, dilation, groups, mode), np.float64)


# --- ranks, dtypes, out= --------------------------------------------------------------

def test_ranks_agree():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 1, 5, 6)), rng.standard_normal((1, 1, 3, 2))
    y4 = ref.conv2d(x, w, [0.5], padding=1)
    assert_close(ref.conv2d(x[0], w, [0.5], padding=1), y4[0], np.float64)
    assert_close(ref.conv2d(x[0, 0], w[0, 0], 0.5, padding=1), y4[0, 0], np.float64)
    g = rng.standard_normal(y4.shape)
    assert_close(ref.conv2d_grad_input(g[0, 0], w[0, 0], (5, 6), padding=1),
                 ref.conv2d_grad_input(g, w, x.shape, padding=1)[0, 0], np.float64)
    assert_close(ref.conv2d_grad_weight(x[0], g[0], w.shape, padding=1),
                 ref.conv2d_grad_weight(x, g, w.shape, padding=1), np.float64)
    assert ref.conv2d_grad_bias(g[0, 0]).shape == ()
    assert ref.conv2d_grad_bias(g[0]).shape == (1,)


@pytest.mark.parametrize(
    "x_dtype, w_dtype, expected",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float32, np.float64),
        (np.uint8, np.float32, np.float32),
        (np.uint8, np.uint8, np.float32),
        (np.int16, np.float32, np.float32),
        (np.int32, np.float32, np.float64),
        (np.int64, np.float64, np.float64),
    ],
)
def test_result_dtype_is_result_type_with_float32(x_dtype, w_dtype, expected):
    x = np.ones((1, 2, 4, 4), dtype=x_dtype)
    w = np.ones((3, 2, 3, 3), dtype=w_dtype)
    assert np.result_type(x, w, np.float32) == expected
    y = ref.conv2d(x, w)
    assert y.dtype == expected
    assert ref.conv2d_grad_input(y.astype(x_dtype), w, x.shape).dtype == np.result_type(
        x_dtype, w_dtype, np.float32)
    assert ref.conv2d_grad_weight(x, y.astype(w_dtype), w.shape).dtype == expected
    assert_close(y, np.full((1, 3, 2, 2), 18.0), expected)


def test_out_is_filled_and_returned():
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    out = np.full((1, 1, 2, 2), np.nan)
    assert ref.conv2d(x, w, out=out) is out
    assert_close(out, np.full((1, 1, 2, 2), 4.0), np.float64)


# --- finite differences ---------------------------------------------------------------

FD_CASES = {
    # name: (x shape, weight shape, keyword arguments)
    "pad-int": ((1, 2, 4, 5), (2, 2, 3, 3), dict(padding=1)),
    "pad-pair": ((2, 1, 4, 5), (2, 1, 2, 3), dict(padding=(2, 1))),
    "pad-sides": ((1, 2, 5, 4), (1, 2, 3, 2), dict(padding=((0, 2), (1, 0)))),
    "valid": ((1, 2, 5, 5), (3, 2, 3, 3), dict(padding="valid")),
    "same-odd": ((1, 1, 5, 6), (2, 1, 3, 5), dict(padding="same")),
    "same-even-stride2": ((1, 2, 5, 6), (2, 2, 2, 4), dict(padding="same", stride=2)),
    "same-dilation": ((1, 1, 6, 5), (1, 1, 3, 2), dict(padding="same", dilation=(2, 1))),
    "stride-axes": ((1, 2, 7, 6), (2, 2, 3, 2), dict(stride=(2, 3), padding=1)),
    "dilation-axes": ((1, 1, 6, 7), (2, 1, 2, 3), dict(dilation=(1, 2), padding=(1, 0))),
    "groups": ((1, 4, 4, 4), (6, 2, 2, 2), dict(groups=2, padding=1)),
    "depthwise": ((1, 3, 4, 5), (3, 1, 3, 3), dict(groups=3, padding="same")),
    "unbatched": ((2, 4, 5), (2, 2, 3, 3), dict(padding=1, padding_mode="reflect")),
    "picture": ((5, 6), (3, 4), dict(padding=((1, 2), (2, 0)), padding_mode="symmetric")),
}
for _mode in ("replicate", "reflect", "symmetric", "circular"):
    FD_CASES[f"mode-{_mode}"] = (
        (1, 2, 4, 5), (2, 2, 3, 2),
        dict(padding=((1, 2), (2, 1)), stride=(1, 2), padding_mode=_mode),
    )
    FD_CASES[f"mode-{_mode}-dilated"] = (
        (1, 1, 5, 4), (2, 1, 2, 2), dict(padding=((2, 1), (0, 3)), dilation=2, padding_mode=_mode)
    )


def numerical_gradient(loss, value: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``loss()`` with respect to each element of ``value``
    (changed in place and restored)."""
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        saved = value[index]
        value[index] = saved + eps
        plus = loss()
        value[index] = saved - eps
        minus = loss()
        value[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("case", sorted(FD_CASES))
def test_gradients_match_finite_differences(case):
    x_shape, w_shape, kwargs = FD_CASES[case]
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    # a picture's 2-D kernel takes a scalar bias (a 0-d array, so it can be nudged in place)
    b = rng.standard_normal(w_shape[0]) if len(w_shape) == 4 else np.array(rng.standard_normal())
    grad_y = rng.standard_normal(ref.conv2d(x, w, b, **kwargs).shape)

    def loss() -> float:
        # L = sum(y * grad_y): its gradient with respect to y is grad_y.
        return float(np.sum(ref.conv2d(x, w, b, **kwargs) * grad_y))

    analytic = {
        "x": ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs),
        "weight": ref.conv2d_grad_weight(x, grad_y, w.shape, **kwargs),
        "bias": ref.conv2d_grad_bias(grad_y),
    }
    for name, value in (("x", x), ("weight", w), ("bias", b)):
        numeric = numerical_gradient(loss, value)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-3, atol=1e-5,
                                   err_msg=f"gradient with respect to {name} ({case})")
