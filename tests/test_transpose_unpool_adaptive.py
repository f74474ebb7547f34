"""conv_transpose2d, max_unpool2d and adaptive pooling (and their gradients) against the
NumPy oracle, the oracle against finite differences, and everything against PyTorch."""

from __future__ import annotations

import convpool
import convpool.reference as ref
import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

TRANSPOSE_CASES = {
    # name: (x shape, weight shape, keyword arguments)
    "plain": ((2, 3, 5, 6), (3, 4, 3, 3), {}),
    "stride-pad": ((2, 3, 5, 6), (3, 2, 3, 3), dict(stride=2, padding=1)),
    "output-padding": ((1, 2, 4, 5), (2, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0),
                                                         output_padding=(1, 2))),
    "dilation": ((2, 2, 4, 4), (2, 3, 3, 2), dict(dilation=(2, 3), padding=1)),
    "dilation-output-padding": ((1, 2, 4, 4), (2, 2, 2, 2),
                                dict(dilation=3, output_padding=2)),
    "groups": ((2, 6, 4, 5), (6, 2, 3, 3), dict(groups=3, stride=2, padding=1)),
    "depthwise": ((1, 4, 5, 5), (4, 1, 2, 2), dict(groups=4, stride=2)),
    "unet-up": ((2, 8, 4, 4), (8, 4, 2, 2), dict(stride=2)),
    "unbatched": ((3, 4, 5), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_conv_transpose2d_and_gradients_match_the_oracle(case, dtype, rng):
    x_shape, w_shape, kwargs = TRANSPOSE_CASES[case]
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * kwargs.get("groups", 1)).astype(dtype)
    y = convpool.conv_transpose2d(x, w, b, **kwargs)
    assert_close(y, ref.conv_transpose2d(x, w, b, **kwargs), dtype, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(convpool.conv_transpose2d_grad_input(g, w, x.shape, **kwargs),
                 ref.conv_transpose2d_grad_input(g, w, x.shape, **kwargs), dtype, "grad_input")
    assert_close(convpool.conv_transpose2d_grad_weight(x, g, w.shape, **kwargs),
                 ref.conv_transpose2d_grad_weight(x, g, w.shape, **kwargs), dtype,
                 "grad_weight")


def test_conv_transpose2d_is_the_adjoint_of_conv2d(rng):
    """<conv2d(y, w), x> == <y, conv_transpose2d(x, w)> for the same geometry."""
    w = rng.standard_normal((5, 3, 3, 3))
    y = rng.standard_normal((2, 3, 9, 8))
    x = convpool.conv2d(y, w, stride=2, padding=1)
    probe = rng.standard_normal(x.shape)
    left = np.vdot(convpool.conv2d(y, w, stride=2, padding=1), probe)
    right = np.vdot(y, convpool.conv_transpose2d(probe, w, stride=2, padding=1,
                                                 output_padding=(0, 1)))
    assert np.isclose(left, right, rtol=1e-12)


def _finite_difference(function, array, direction, step=1e-6):
    return (function(array + step * direction) - function(array - step * direction)) / (2 * step)


def test_transpose_oracle_gradients_match_finite_differences(rng):
    kwargs = dict(stride=2, padding=1, output_padding=1, dilation=1, groups=2)
    x = rng.standard_normal((1, 4, 3, 3))
    w = rng.standard_normal((4, 1, 3, 3))
    g = rng.standard_normal(ref.conv_transpose2d(x, w, **kwargs).shape)
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    loss_x = lambda v: np.vdot(ref.conv_transpose2d(v, w, **kwargs), g)  # noqa: E731
    loss_w = lambda v: np.vdot(ref.conv_transpose2d(x, v, **kwargs), g)  # noqa: E731
    assert np.isclose(_finite_difference(loss_x, x, dx),
                      np.vdot(ref.conv_transpose2d_grad_input(g, w, x.shape, **kwargs), dx))
    assert np.isclose(_finite_difference(loss_w, w, dw),
                      np.vdot(ref.conv_transpose2d_grad_weight(x, g, w.shape, **kwargs), dw))


def test_conv_transpose2d_rejects_bad_arguments_naming_them():
    x = np.ones((1, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="weight"):
        convpool.conv_transpose2d(x, np.ones((3, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="output_padding"):
        convpool.conv_transpose2d(x, np.ones((2, 2, 3, 3), np.float32), stride=2,
                                  output_padding=2)
    with pytest.raises(ValueError, match="groups"):
        convpool.conv_transpose2d(x, np.ones((2, 2, 3, 3), np.float32), groups=3)
    with pytest.raises(ValueError, match="output height would be"):
        convpool.conv_transpose2d(x, np.ones((2, 2, 1, 1), np.float32), padding=3)
    with pytest.raises(ValueError, match="padding"):
        convpool.conv_transpose2d(x, np.ones((2, 2, 3, 3), np.float32), padding=-1)
    with pytest.raises(ValueError, match="bias"):
        convpool.conv_transpose2d(x, np.ones((2, 2, 3, 3), np.float32), np.ones(3))
    with pytest.raises(ValueError, match="grad_output"):
        convpool.conv_transpose2d_grad_input(np.ones((1, 2, 5, 5)), np.ones((2, 2, 3, 3)),
                                             x.shape)


UNPOOL_CASES = {
    "2x2": ((2, 3, 8, 6), dict(kernel_size=2)),
    "3x3-s2-p1": ((1, 2, 9, 7), dict(kernel_size=3, stride=2, padding=1)),
    "overlapping": ((1, 2, 6, 6), dict(kernel_size=3, stride=1)),
    "2x2-p1": ((2, 2, 7, 5), dict(kernel_size=2, padding=1)),
    "unbatched": ((3, 6, 4), dict(kernel_size=(2, 1))),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(UNPOOL_CASES))
def test_max_unpool2d_and_gradient_match_the_oracle(case, dtype, rng):
    shape, kwargs = UNPOOL_CASES[case]
    x = rng.standard_normal(shape).astype(dtype)
    pooled, indices = convpool.max_pool2d(x, return_indices=True, **kwargs)
    output_size = x.shape[-2:]
    y = convpool.max_unpool2d(pooled, indices, output_size=output_size, **kwargs)
    assert_close(y, ref.max_unpool2d(pooled, indices, output_size=output_size, **kwargs),
                 dtype, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(convpool.max_unpool2d_grad_input(g, indices),
                 ref.max_unpool2d_grad_input(g, indices), dtype, "grad_input")


def test_max_unpool2d_puts_each_maximum_back_in_place():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    pooled, indices = convpool.max_pool2d(x, 2, return_indices=True)
    y = convpool.max_unpool2d(pooled, indices, 2)
    expected = np.zeros_like(x)
    expected[0, 0, 1::2, 1::2] = x[0, 0, 1::2, 1::2]
    assert (y == expected).all()


def test_max_unpool2d_adds_values_whose_indices_repeat():
    x = np.array([[[[1.0, 2.0]]]], np.float32)
    y = convpool.max_unpool2d(x, np.array([[[[3, 3]]]]), (1, 2), output_size=(2, 2))
    assert y.tolist() == [[[[0.0, 0.0], [0.0, 3.0]]]]


def test_max_unpool2d_rejects_bad_indices_and_sizes():
    x = np.ones((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="indices"):
        convpool.max_unpool2d(x, np.full((1, 1, 2, 2), 16), 2)
    with pytest.raises(TypeError, match="indices"):
        convpool.max_unpool2d(x, np.zeros((1, 1, 2, 2), np.float32), 2)
    with pytest.raises(ValueError, match="output_size"):
        convpool.max_unpool2d(x, np.zeros((1, 1, 2, 2), np.int64), 2, output_size=(9, 4))
    with pytest.raises(ValueError, match="indices: expected the shape of x"):
        convpool.max_unpool2d(x, np.zeros((1, 1, 2, 3), np.int64), 2)


ADAPTIVE_CASES = {
    # name: (x shape, output_size)
    "divides": ((2, 3, 8, 12), (4, 3)),
    "global": ((2, 3, 7, 5), 1),
    "uneven": ((2, 3, 10, 7), (3, 4)),
    "larger-than-input": ((1, 2, 3, 4), (5, 7)),
    "keep-width": ((1, 2, 9, 6), (4, None)),
    "unbatched": ((3, 11, 13), 5),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(ADAPTIVE_CASES))
def test_adaptive_pooling_and_gradients_match_the_oracle(case, dtype, rng):
    shape, size = ADAPTIVE_CASES[case]
    x = rng.standard_normal(shape).astype(dtype)
    y = convpool.adaptive_avg_pool2d(x, size)
    assert_close(y, ref.adaptive_avg_pool2d(x, size), dtype, "avg")
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(convpool.adaptive_avg_pool2d_grad_input(g, x.shape),
                 ref.adaptive_avg_pool2d_grad_input(g, x.shape), dtype, "avg grad")
    y, indices = convpool.adaptive_max_pool2d(x, size, return_indices=True)
    y_ref, indices_ref = ref.adaptive_max_pool2d(x, size, return_indices=True)
    assert_close(y, y_ref, dtype, "max")
    assert (indices == indices_ref).all() and indices.dtype == np.int64
    assert_close(convpool.adaptive_max_pool2d_grad_input(g, indices, x.shape),
                 ref.adaptive_max_pool2d_grad_input(g, indices_ref, x.shape), dtype, "max grad")


def test_adaptive_max_pool2d_takes_the_first_maximum_and_the_first_nan():
    x = np.zeros((1, 1, 5, 5), np.float32)          # 5 -> 3: windows 0-2, 1-4, 3-5
    x[0, 0, 2, 1] = np.nan
    x[0, 0, 3, 3] = np.nan
    y, indices = convpool.adaptive_max_pool2d(x, 3, return_indices=True)
    _, expected = ref.adaptive_max_pool2d(x, 3, return_indices=True)
    assert (indices == expected).all()
    assert indices[0, 0, 1, 1] == 2 * 5 + 1          # both NaNs in the window: the first
    assert indices[0, 0, 0, 0] == 0                  # all zeros: the first pixel
    assert np.isnan(y[0, 0, 1, 1])


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), oh=st.integers(1, 9), ow=st.integers(1, 9))
def test_adaptive_pooling_matches_the_oracle_for_any_sizes(h, w, oh, ow):
    x = np.random.default_rng(h * 100 + w).standard_normal((2, 2, h, w))
    assert_close(convpool.adaptive_avg_pool2d(x, (oh, ow)), ref.adaptive_avg_pool2d(x, (oh, ow)),
                 np.float64)
    y, i = convpool.adaptive_max_pool2d(x, (oh, ow), return_indices=True)
    y_ref, i_ref = ref.adaptive_max_pool2d(x, (oh, ow), return_indices=True)
    assert_close(y, y_ref, np.float64)
    assert (i == i_ref).all()


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), k=st.integers(1, 4), s=st.integers(1, 3),
       d=st.integers(1, 3), p=st.integers(0, 2), op=st.integers(0, 2), g=st.sampled_from([1, 2]))
def test_conv_transpose2d_matches_the_oracle_for_any_geometry(h, w, k, s, d, p, op, g):
    if op >= max(s, d) or min(h, w) - 1 < 0 or min(
            (size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size in (h, w)) < 1:
        return  # refused (tested above): an output size below 1 on either axis
    rng = np.random.default_rng(h * 1000 + w * 100 + k * 10 + s)
    x = rng.standard_normal((2, 2 * g, h, w))
    weight = rng.standard_normal((2 * g, 3, k, k))
    kwargs = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    y = convpool.conv_transpose2d(x, weight, **kwargs)
    assert_close(y, ref.conv_transpose2d(x, weight, **kwargs), np.float64)
    grad = rng.standard_normal(y.shape)
    assert_close(convpool.conv_transpose2d_grad_input(grad, weight, x.shape, **kwargs),
                 ref.conv_transpose2d_grad_input(grad, weight, x.shape, **kwargs), np.float64)
    assert_close(convpool.conv_transpose2d_grad_weight(x, grad, weight.shape, **kwargs),
                 ref.conv_transpose2d_grad_weight(x, grad, weight.shape, **kwargs), np.float64)


def test_adaptive_pooling_rejects_bad_output_sizes():
    x = np.ones((1, 1, 4, 4))
    with pytest.raises(ValueError, match="output_size"):
        convpool.adaptive_avg_pool2d(x, 0)
    with pytest.raises(TypeError, match="output_size"):
        convpool.adaptive_max_pool2d(x, 2.5)
    with pytest.raises(ValueError, match="x"):
        convpool.adaptive_avg_pool2d(np.ones((4, 4)), 2)


# --- against PyTorch -------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_conv_transpose2d_and_gradients_match_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    x_shape, w_shape, kwargs = TRANSPOSE_CASES[case]
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * kwargs.get("groups", 1))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **kwargs)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    assert_close(convpool.conv_transpose2d(x, w, b, **kwargs), yt.detach().numpy(), np.float64)
    assert_close(convpool.conv_transpose2d_grad_input(g, w, x.shape, **kwargs),
                 xt.grad.numpy(), np.float64)
    assert_close(convpool.conv_transpose2d_grad_weight(x, g, w.shape, **kwargs),
                 wt.grad.numpy(), np.float64)
    assert_close(convpool.conv2d_grad_bias(g), bt.grad.numpy(), np.float64)


@pytest.mark.torch
@pytest.mark.parametrize("case", list(ADAPTIVE_CASES))
def test_adaptive_pooling_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, size = ADAPTIVE_CASES[case]
    x = rng.standard_normal(shape)
    for name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        xt = torch.tensor(x, requires_grad=True)
        yt = getattr(F, name)(xt, size)
        g = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(g))
        y = getattr(convpool, name)(x, size)
        assert_close(y, yt.detach().numpy(), np.float64, name)
        if name == "adaptive_avg_pool2d":
            grad = convpool.adaptive_avg_pool2d_grad_input(g, x.shape)
        else:
            _, indices = convpool.adaptive_max_pool2d(x, size, return_indices=True)
            assert (indices == F.adaptive_max_pool2d(torch.tensor(x), size,
                                                     return_indices=True)[1].numpy()).all()
            grad = convpool.adaptive_max_pool2d_grad_input(g, indices, x.shape)
        assert_close(grad, xt.grad.numpy(), np.float64, name + " grad")


@pytest.mark.torch
@pytest.mark.parametrize("case", ["2x2", "2x2-p1", "unbatched"])  # no repeated indices
def test_max_unpool2d_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, kwargs = UNPOOL_CASES[case]
    x = rng.standard_normal(shape)
    pooled, indices = convpool.max_pool2d(x, return_indices=True, **kwargs)
    pt = torch.tensor(pooled, requires_grad=True)
    yt = F.max_unpool2d(pt, torch.tensor(indices), output_size=x.shape[-2:], **kwargs)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    assert_close(convpool.max_unpool2d(pooled, indices, output_size=x.shape[-2:], **kwargs),
                 yt.detach().numpy(), np.float64)
    assert_close(convpool.max_unpool2d_grad_input(g, indices), pt.grad.numpy(), np.float64)
