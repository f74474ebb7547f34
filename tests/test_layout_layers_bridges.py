"""``layout="NHWC"`` on the nn pooling layers and on the PyTorch and JAX bridges: each
channels-last result (forward and gradient) is the NCHW result of the same call moved to
channels-last, and the nn layers match their oracle twins (which take no layout)."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close
from convpool import nn
from test_nn_layers import oracle_twin


def to_nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, -3, -1))


NHWC_POOLS = {
    "max-3x3-s2-p1": lambda layout: nn.MaxPool2d(3, stride=2, padding=1, layout=layout),
    "max-dilated-ceil": lambda layout: nn.MaxPool2d((2, 3), stride=2, dilation=2,
                                                    ceil_mode=True, layout=layout),
    "avg-same-exclude-pad": lambda layout: nn.AvgPool2d(3, stride=2, padding="same",
                                                        count_include_pad=False, layout=layout),
    "global-avg": lambda layout: nn.GlobalAvgPool2d(layout=layout),
    "global-avg-keepdims": lambda layout: nn.GlobalAvgPool2d(keepdims=True, layout=layout),
    "global-max-keepdims": lambda layout: nn.GlobalMaxPool2d(keepdims=True, layout=layout),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", NHWC_POOLS)
def test_nhwc_pooling_layer_is_the_nchw_layer_channels_last(case, dtype, rng):
    nchw, nhwc = NHWC_POOLS[case]("NCHW"), NHWC_POOLS[case]("NHWC")
    twin = oracle_twin(nhwc)  # the oracle takes no layout: the layer moves the axes for it
    x = rng.standard_normal((2, 6, 9, 7)).astype(dtype)
    y = nchw(x)
    y_nhwc = nhwc(to_nhwc(x))
    expected = y if y.ndim == 2 else to_nhwc(y)
    assert_close(y_nhwc, expected, dtype, f"{case} forward")
    assert_close(twin(to_nhwc(x)), expected, dtype, f"{case} oracle twin forward")
    assert nhwc.output_shape((9, 7, 6)) == y_nhwc.shape[1:]
    g = rng.standard_normal(y.shape).astype(dtype)
    g_nhwc = g if g.ndim == 2 else to_nhwc(g)
    expected_gx = to_nhwc(nchw.backward(g))
    assert_close(nhwc.backward(g_nhwc), expected_gx, dtype, f"{case} backward")
    assert_close(twin.backward(g_nhwc), expected_gx, dtype, f"{case} oracle twin backward")


def test_nhwc_max_pool_layer_runs_the_channels_last_kernel(rng):
    x = rng.standard_normal((1, 8, 8, 16)).astype(np.float32)
    convpool._core.force_implementation("max_pool2d", "nhwc")
    try:
        y = nn.MaxPool2d(2, layout="NHWC")(x)
    finally:
        convpool._core.force_implementation("max_pool2d", "")
    assert y.shape == (1, 4, 4, 16)


def test_nhwc_pooling_layers_in_a_net_trace_shapes_and_receptive_fields():
    net = nn.Sequential(nn.MaxPool2d(2, layout="NHWC"), nn.GlobalAvgPool2d(layout="NHWC"))
    x = np.zeros((3, 8, 6, 5), np.float32)
    assert net(x).shape == (3, 5)
    assert "layout='NHWC'" in repr(net)
    pool = nn.MaxPool2d(3, stride=2, padding=1, layout="NHWC")
    assert pool.output_shape((9, 7, 4)) == (5, 4, 4)


@pytest.mark.parametrize("layout", ["nhwc", "NWHC", None, 1])
def test_a_bad_layer_layout_is_named(layout):
    for make in (lambda: nn.MaxPool2d(2, layout=layout), lambda: nn.AvgPool2d(2, layout=layout),
                 lambda: nn.GlobalAvgPool2d(layout=layout),
                 lambda: nn.GlobalMaxPool2d(layout=layout)):
        with pytest.raises(ValueError, match="layout"):
            make()


# --- PyTorch -----------------------------------------------------------------------------

# each case: (convpool.torch, input, layout, weight, bias) -> result
TORCH_CASES = {
    "conv2d": lambda ct, x, lay, w, b: ct.conv2d(x, w, b, stride=2, padding=1, layout=lay),
    "conv2d-reflect": lambda ct, x, lay, w, b: ct.conv2d(x, w, None, padding=1,
                                                         padding_mode="reflect", layout=lay),
    "max_pool2d": lambda ct, x, lay, w, b: ct.max_pool2d(x, 3, 2, 1, layout=lay),
    "avg_pool2d": lambda ct, x, lay, w, b: ct.avg_pool2d(x, 2, layout=lay),
    "global_avg_pool2d": lambda ct, x, lay, w, b: ct.global_avg_pool2d(x, True, layout=lay),
    "global_max_pool2d": lambda ct, x, lay, w, b: ct.global_max_pool2d(x, layout=lay),
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_torch_functions_take_nhwc_tensors(case, rng):
    torch = pytest.importorskip("torch")
    ct = pytest.importorskip("convpool.torch")
    w = torch.from_numpy(rng.standard_normal((6, 4, 3, 3)))
    b = torch.from_numpy(rng.standard_normal(6))
    call = TORCH_CASES[case]
    x = torch.from_numpy(rng.standard_normal((2, 4, 7, 8))).requires_grad_()
    x_nhwc = x.detach().permute(0, 2, 3, 1).contiguous().requires_grad_()
    y, y_nhwc = call(ct, x, "NCHW", w, b), call(ct, x_nhwc, "NHWC", w, b)
    expected = y if y.dim() == 2 else y.permute(0, 2, 3, 1)
    assert_close(y_nhwc.detach().numpy(), expected.detach().numpy(), np.float64, case)
    g = torch.from_numpy(rng.standard_normal(tuple(expected.shape)))
    (y_nhwc * g).sum().backward()
    (expected * g).sum().backward()
    assert_close(x_nhwc.grad.numpy(), x.grad.permute(0, 2, 3, 1).numpy(), np.float64,
                 f"{case} input gradient")


def test_torch_nhwc_tensors_run_the_channels_last_kernels_and_stay_channels_last(rng):
    torch = pytest.importorskip("torch")
    ct = pytest.importorskip("convpool.torch")
    x = torch.from_numpy(rng.standard_normal((2, 8, 8, 16)).astype(np.float32))
    w = torch.from_numpy(rng.standard_normal((32, 16, 3, 3)).astype(np.float32))
    convpool._core.force_implementation("conv2d", "nhwc_blocked")  # refused on NCHW memory
    try:
        y = ct.conv2d(x, w, padding=1, layout="NHWC")
    finally:
        convpool._core.force_implementation("conv2d", "")
    assert y.shape == (2, 8, 8, 32) and y.is_contiguous()


def test_torch_max_pool2d_nhwc_indices_are_plane_indices(rng):
    torch = pytest.importorskip("torch")
    ct = pytest.importorskip("convpool.torch")
    x = torch.from_numpy(rng.standard_normal((1, 3, 6, 6)))
    _, indices = ct.max_pool2d(x, 2, return_indices=True)
    _, indices_nhwc = ct.max_pool2d(x.permute(0, 2, 3, 1), 2, return_indices=True,
                                    layout="NHWC")
    assert torch.equal(indices_nhwc, indices.permute(0, 2, 3, 1))
    with pytest.raises(ValueError, match="layout"):
        ct.max_pool2d(x, 2, layout="nhwc")


# --- JAX ---------------------------------------------------------------------------------

def test_jax_functions_take_nhwc_arrays_under_jit_and_grad(rng):
    jax = pytest.importorskip("jax")
    cj = pytest.importorskip("convpool.jax")
    import jax.numpy as jnp

    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)

    def net(x, w, layout):
        y = jax.nn.relu(cj.conv2d(x, w, b, stride=2, padding="same", layout=layout))
        y = cj.max_pool2d(y, 2, padding="same", layout=layout)
        y = cj.avg_pool2d(y, 2, ceil_mode=True, layout=layout)
        return (cj.global_avg_pool2d(y, layout=layout) ** 2).sum() + \
            cj.global_max_pool2d(y, keepdims=True, layout=layout).sum()

    loss, (gx, gw) = jax.jit(jax.value_and_grad(net, (0, 1)), static_argnums=2)(x, w, "NCHW")
    loss_nhwc, (gx_nhwc, gw_nhwc) = jax.jit(jax.value_and_grad(net, (0, 1)),
                                            static_argnums=2)(to_nhwc(x), w, "NHWC")
    assert_close(np.asarray(loss_nhwc), np.asarray(loss), np.float32, "loss")
    assert_close(np.asarray(gx_nhwc), to_nhwc(np.asarray(gx)), np.float32, "input gradient")
    assert_close(np.asarray(gw_nhwc), np.asarray(gw), np.float32, "weight gradient")
    keep = cj.global_avg_pool2d(jnp.asarray(to_nhwc(x)), keepdims=True, layout="NHWC")
    assert keep.shape == (2, 1, 1, 4)
    with pytest.raises(ValueError, match="layout"):
        cj.conv2d(x, w, layout="HWC")
