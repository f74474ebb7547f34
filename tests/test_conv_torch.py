"""convpool.conv2d and its three gradients against PyTorch (forward and autograd), for the
cases PyTorch can express: explicit padding through F.pad for every mode it has
('symmetric' it lacks), 'same' at stride 1, stride, dilation, groups."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = [
    pytest.mark.torch,
    # PyTorch warns that 'same' with an even kernel costs it a padded copy: not our concern
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]

TORCH_PAD_MODE = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect",
                  "circular": "circular"}


def pair(value):
    return value if isinstance(value, tuple) else (value, value)


def torch_conv2d(xt, wt, bt, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """The same convolution in PyTorch: its own padding where it has the form (symmetric
    zeros, 'same' at stride 1), F.pad followed by an unpadded convolution otherwise."""
    conv = dict(stride=stride, dilation=dilation, groups=groups)
    if padding == "same":
        assert pair(stride) == (1, 1) and padding_mode == "zeros"
        return F.conv2d(xt, wt, bt, padding="same", **conv)
    sides = convpool.resolve_padding(padding, tuple(xt.shape[2:]), tuple(wt.shape[2:]),
                                     pair(stride), pair(dilation))
    (top, bottom), (left, right) = sides
    if padding_mode == "zeros" and top == bottom and left == right:
        return F.conv2d(xt, wt, bt, padding=(top, left), **conv)
    padded = F.pad(xt, (left, right, top, bottom), mode=TORCH_PAD_MODE[padding_mode])
    return F.conv2d(padded, wt, bt, **conv)


CASES = {
    # name: (x shape, weight shape, keyword arguments)
    "pad-int": ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding=1)),
    "pad-pair": ((2, 3, 7, 8), (4, 3, 3, 2), dict(padding=(2, 1))),
    "same-odd": ((2, 3, 7, 8), (5, 3, 3, 5), dict(padding="same")),
    "same-even": ((1, 2, 6, 7), (3, 2, 4, 2), dict(padding="same")),
    "same-dilation": ((1, 2, 9, 8), (3, 2, 3, 2), dict(padding="same", dilation=(2, 3))),
    "stride": ((2, 3, 9, 10), (4, 3, 3, 3), dict(stride=(2, 3), padding=1)),
    "dilation": ((1, 3, 9, 10), (4, 3, 3, 2), dict(dilation=(2, 1), padding=(0, 2))),
    "groups": ((2, 6, 6, 7), (9, 2, 3, 3), dict(groups=3, padding=1)),
    "depthwise": ((2, 8, 9, 9), (8, 1, 3, 3), dict(groups=8, stride=2, padding=1)),
    "blocked-shapes": ((2, 16, 7, 19), (17, 16, 3, 3), dict(padding=1)),
    "replicate": ((2, 3, 6, 7), (4, 3, 3, 3), dict(padding=((1, 2), (0, 1)),
                                                   padding_mode="replicate")),
    "reflect": ((1, 4, 6, 7), (8, 4, 3, 2), dict(padding=((2, 1), (3, 0)), stride=2,
                                                 padding_mode="reflect")),
    "circular": ((2, 3, 5, 6), (4, 3, 2, 3), dict(padding=((1, 0), (2, 2)), dilation=(1, 2),
                                                  padding_mode="circular")),
    "zeros-sides": ((2, 3, 5, 6), (4, 3, 3, 3), dict(padding=((0, 2), (1, 0)))),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, dtype):
    x_shape, w_shape, kwargs = CASES[case]
    rng = np.random.default_rng(17)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    yt = torch_conv2d(xt, wt, bt, **kwargs)
    grad_y = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.from_numpy(grad_y))

    y = convpool.conv2d(x, w, b, **kwargs)
    assert_close(y, yt.detach().numpy(), dtype, f"{case} forward")
    assert_close(convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs), xt.grad.numpy(),
                 dtype, f"{case} grad_input")
    assert_close(convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs), wt.grad.numpy(),
                 dtype, f"{case} grad_weight")
    assert_close(convpool.conv2d_grad_bias(grad_y), bt.grad.numpy(), dtype, f"{case} grad_bias")
