"""The 1-D and 3-D functions against PyTorch: convolution forward and autograd gradients
(input, weight, bias) for every padding mode PyTorch has, stride, dilation, groups; max
pooling values, indices and gradients; average pooling with ceil_mode, count_include_pad
and divisor_override; the layers against torch.nn."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close
from convpool import nn

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]

TORCH_PAD_MODE = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect",
                  "circular": "circular"}


def torch_conv(rank, xt, wt, bt, stride, padding, dilation, groups, mode):
    """PyTorch's convolution; explicit padding through F.pad for the non-zero modes."""
    conv = F.conv1d if rank == 1 else F.conv3d
    if mode == "zeros":
        return conv(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    pads = [padding] * rank if isinstance(padding, int) else list(padding)
    flat = []
    for p in reversed(pads):  # F.pad takes the last axis first
        flat += [p, p]
    padded = F.pad(xt, flat, mode=TORCH_PAD_MODE[mode])
    return conv(padded, wt, bt, stride=stride, dilation=dilation, groups=groups)


CASES = [
    (1, (2, 4, 20), (6, 2, 5), dict(stride=2, padding=2, dilation=1, groups=2)),
    (1, (3, 3, 17), (4, 3, 3), dict(stride=1, padding=3, dilation=3, groups=1)),
    (3, (2, 4, 6, 7, 8), (4, 4, 3, 3, 3), dict(stride=1, padding=1, dilation=1, groups=1)),
    (3, (1, 4, 7, 8, 6), (6, 2, 3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 1, 2),
                                               dilation=(1, 2, 1), groups=2)),
]


@pytest.mark.parametrize("mode", list(TORCH_PAD_MODE))
@pytest.mark.parametrize("rank, x_shape, w_shape, kwargs", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_and_gradients_match_pytorch(rank, x_shape, w_shape, kwargs, mode, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch_conv(rank, xt, wt, bt, mode=mode, **kwargs)
    gy = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(gy))
    name = f"conv{rank}d"
    args = dict(kwargs, padding_mode=mode)
    assert_close(getattr(convpool, name)(x, w, b, **args), yt.detach().numpy(), dtype, "y")
    assert_close(getattr(convpool, f"{name}_grad_input")(gy, w, x.shape, **args),
                 xt.grad.numpy(), dtype, "grad_input")
    assert_close(getattr(convpool, f"{name}_grad_weight")(x, gy, w.shape, **args),
                 wt.grad.numpy(), dtype, "grad_weight")
    assert_close(getattr(convpool, f"{name}_grad_bias")(gy), bt.grad.numpy(), dtype, "bias")


@pytest.mark.parametrize("rank", [1, 3])
def test_same_padding_matches_pytorch(rank):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 11) if rank == 1 else (2, 3, 5, 6, 7))
    w = rng.standard_normal((4, 3, 4) if rank == 1 else (4, 3, 2, 3, 4))
    conv = F.conv1d if rank == 1 else F.conv3d
    expected = conv(torch.tensor(x), torch.tensor(w), padding="same", dilation=2).numpy()
    got = getattr(convpool, f"conv{rank}d")(x, w, padding="same", dilation=2)
    assert_close(got, expected, np.float64)


POOLS = [
    (1, (2, 3, 21), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (2, 3, 16), dict(kernel_size=4, stride=3, padding=2, dilation=2)),
    (3, (2, 3, 8, 9, 10), dict(kernel_size=2)),
    (3, (1, 2, 7, 9, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (3, (2, 2, 6, 7, 8), dict(kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=(1, 1, 0),
                              dilation=(2, 1, 2))),
]


@pytest.mark.parametrize("rank, shape, kwargs", POOLS)
def test_max_pool_values_indices_and_gradient_match_pytorch(rank, shape, kwargs):
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, size=shape).astype(np.float32)  # ties: the first maximum wins
    xt = torch.tensor(x, requires_grad=True)
    pool = F.max_pool1d if rank == 1 else F.max_pool3d
    yt, it = pool(xt, return_indices=True, **kwargs)
    gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(gy))
    y, idx = getattr(convpool, f"max_pool{rank}d")(x, return_indices=True, **kwargs)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    grad = getattr(convpool, f"max_pool{rank}d_grad_input")(gy, idx, x.shape)
    assert_close(grad, xt.grad.numpy(), np.float32)


AVG_POOLS = [(*p, None) for p in POOLS if "dilation" not in p[2]] + [
    (*p, 5) for p in POOLS if "dilation" not in p[2] and p[0] == 3]  # F.avg_pool1d has none


@pytest.mark.parametrize("rank, shape, kwargs, divisor_override", AVG_POOLS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_and_gradient_match_pytorch(rank, shape, kwargs, count_include_pad,
                                             divisor_override):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    extra = dict(count_include_pad=count_include_pad)
    if divisor_override is not None:
        extra["divisor_override"] = divisor_override
    yt = (F.avg_pool1d if rank == 1 else F.avg_pool3d)(xt, **kwargs, **extra)
    gy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(gy))
    extra["divisor_override"] = divisor_override
    assert_close(getattr(convpool, f"avg_pool{rank}d")(x, **kwargs, **extra),
                 yt.detach().numpy(), np.float64)
    assert_close(getattr(convpool, f"avg_pool{rank}d_grad_input")(gy, x.shape, **kwargs, **extra),
                 xt.grad.numpy(), np.float64)


def test_layers_match_torch_nn():
    """A 1-D and a 3-D net with PyTorch's weights: outputs and every gradient."""
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    for rank, shape in ((1, (2, 3, 32)), (3, (2, 3, 12, 12, 10))):
        tnn = torch.nn
        tconv = tnn.Conv1d if rank == 1 else tnn.Conv3d
        tmax = tnn.MaxPool1d if rank == 1 else tnn.MaxPool3d
        tavg = tnn.AvgPool1d if rank == 1 else tnn.AvgPool3d
        theirs = tnn.Sequential(tconv(3, 4, 3, padding=1, padding_mode="reflect"), tnn.ReLU(),
                                tmax(2), tconv(4, 4, 3, stride=2, groups=2),
                                tavg(2, ceil_mode=True))
        ours = nn.Sequential(
            (nn.Conv1d if rank == 1 else nn.Conv3d)(3, 4, 3, padding=1, padding_mode="reflect"),
            nn.ReLU(), (nn.MaxPool1d if rank == 1 else nn.MaxPool3d)(2),
            (nn.Conv1d if rank == 1 else nn.Conv3d)(4, 4, 3, stride=2, groups=2),
            (nn.AvgPool1d if rank == 1 else nn.AvgPool3d)(2, ceil_mode=True))
        theirs = theirs.double()
        ours.astype(np.float64)
        ours.load_state_dict(theirs.state_dict())
        x = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        gy = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(gy))
        assert_close(ours.forward(x), yt.detach().numpy(), np.float64, f"{rank}-D forward")
        assert_close(ours.backward(gy), xt.grad.numpy(), np.float64, f"{rank}-D grad input")
        grads = {name: p.grad for name, p in ours.named_parameters()}
        for name, p in theirs.named_parameters():
            assert_close(grads[name], p.grad.numpy(), np.float64, f"{rank}-D {name}")
