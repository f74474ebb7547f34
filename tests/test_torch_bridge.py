"""convpool.torch: the operators against torch.nn.functional and convpool's NumPy-level
functions, their gradients by torch.autograd.gradcheck (float64), the operator contract
(torch.library.opcheck), torch.compile, zero-copy conversion, errors, and convert() on a
small CNN (same outputs, same parameter gradients, training with torch.optim)."""

from __future__ import annotations

import copy

import convpool
import numpy as np
import pytest
from conftest import assert_close
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
ct = pytest.importorskip("convpool.torch")
F = torch.nn.functional
nn = torch.nn

from convpool.torch import _tensors  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    # PyTorch warns that 'same' with an even kernel costs it a padded copy: not our concern
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]


def randn(*shape, dtype=torch.float64, seed=0, requires_grad=True):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=dtype, generator=generator).requires_grad_(requires_grad)


def gradcheck(function, *inputs):
    # fast mode: the Jacobian checked along random directions, a fraction of the calls
    assert torch.autograd.gradcheck(function, inputs, eps=1e-6, atol=1e-7, rtol=1e-6,
                                    fast_mode=True)


# ---------------------------------------------------------------- convolution

CONV_CASES = {
    # name: (x shape, weight shape, convpool.torch keywords, torch equivalent or None)
    "pad-int": ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding=1), dict(padding=1)),
    "stride-dilation": ((2, 3, 11, 10), (4, 3, 3, 2), dict(stride=(2, 1), dilation=(1, 2),
                                                        padding=(2, 1)),
                        dict(stride=(2, 1), dilation=(1, 2), padding=(2, 1))),
    "groups": ((2, 6, 6, 7), (9, 2, 3, 3), dict(groups=3, padding=1), dict(groups=3, padding=1)),
    "depthwise": ((2, 8, 9, 9), (8, 1, 3, 3), dict(groups=8, stride=2, padding=1),
                  dict(groups=8, stride=2, padding=1)),
    "same-stride1": ((1, 2, 6, 7), (3, 2, 4, 3), dict(padding="same"), dict(padding="same")),
    "same-stride2": ((2, 3, 9, 8), (4, 3, 3, 3), dict(padding="same", stride=2), None),
    "per-side": ((1, 3, 6, 7), (2, 3, 3, 3), dict(padding=((2, 0), (1, 3))), None),
    "replicate": ((1, 3, 6, 7), (2, 3, 3, 3), dict(padding=1, padding_mode="replicate"), None),
    "reflect": ((1, 3, 6, 7), (2, 3, 3, 2), dict(padding=(2, 1), padding_mode="reflect"), None),
    "circular": ((1, 3, 6, 7), (2, 3, 3, 3), dict(padding=2, padding_mode="circular"), None),
    "symmetric": ((1, 3, 6, 7), (2, 3, 3, 3), dict(padding=((1, 2), (2, 0)),
                                                   padding_mode="symmetric"), None),
    "unbatched": ((3, 6, 7), (2, 3, 3, 3), dict(padding=1), dict(padding=1)),
}


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv2d_matches_convpool_and_torch(case, dtype):
    x_shape, w_shape, kwargs, torch_kwargs = CONV_CASES[case]
    x, w = randn(*x_shape, dtype=dtype), randn(*w_shape, dtype=dtype, seed=1)
    b = randn(w_shape[0], dtype=dtype, seed=2)
    y = ct.conv2d(x, w, b, **kwargs)
    expected = convpool.conv2d(x.detach().numpy(), w.detach().numpy(), b.detach().numpy(),
                               **kwargs)
    assert y.dtype == dtype and y.is_contiguous()
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    assert_close(y.detach().numpy(), expected, np_dtype, case)
    if torch_kwargs is not None:
        assert_close(y.detach().numpy(), F.conv2d(x, w, b, **torch_kwargs).detach().numpy(),
                     np_dtype, case)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients_pass_gradcheck(case):
    x_shape, w_shape, kwargs, _ = CONV_CASES[case]
    gradcheck(lambda x, w, b: ct.conv2d(x, w, b, **kwargs),
              randn(*x_shape), randn(*w_shape, seed=1), randn(w_shape[0], seed=2))


@pytest.mark.parametrize("bias_shape", [(1,), ()])
def test_conv2d_of_a_picture_and_a_2d_kernel_is_differentiable(bias_shape):
    gradcheck(lambda x, w, b: ct.conv2d(x, w, b, padding="same", padding_mode="reflect"),
              randn(6, 7), randn(3, 3, seed=1), randn(*bias_shape, seed=2))


def test_conv2d_gradients_match_torch_autograd():
    x, w, b = randn(2, 4, 9, 9), randn(8, 2, 3, 3, seed=1), randn(8, seed=2)
    upstream = randn(2, 8, 5, 5, seed=3, requires_grad=False)
    mine = torch.autograd.grad((ct.conv2d(x, w, b, 2, 1, 1, 2) * upstream).sum(), (x, w, b))
    theirs = torch.autograd.grad((F.conv2d(x, w, b, 2, 1, 1, 2) * upstream).sum(), (x, w, b))
    for name, a, e in zip("xwb", mine, theirs, strict=True):
        assert_close(a.numpy(), e.numpy(), np.float64, name)


TRANSPOSE_CASES = {
    # name: (x shape, weight shape, keywords)
    "plain": ((2, 3, 5, 6), (3, 4, 3, 3), dict()),
    "stride-output-padding": ((2, 3, 5, 6), (3, 2, 3, 2), dict(stride=2, padding=1,
                                                               output_padding=(1, 0))),
    "groups-dilation": ((1, 4, 5, 5), (4, 3, 3, 3), dict(groups=2, dilation=2, padding=(1, 2))),
    "depthwise": ((2, 4, 6, 5), (4, 1, 3, 3), dict(groups=4, stride=2, padding=1,
                                                   output_padding=1)),
    "unbatched": ((3, 5, 6), (3, 2, 3, 3), dict(stride=(1, 2), padding=1)),
    # output_padding beyond the stride (dilation 3) and the bottom/right padding: rows and
    # columns no input reaches
    "output-padding-past-the-padding": ((2, 3, 4, 5), (3, 2, 2, 3),
                                        dict(dilation=3, padding=(1, 0), output_padding=2)),
}


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose2d_matches_torch(case):
    x_shape, w_shape, kwargs = TRANSPOSE_CASES[case]
    x, w = randn(*x_shape), randn(*w_shape, seed=1)
    b = randn(w_shape[1] * kwargs.get("groups", 1), seed=2)
    assert_close(ct.conv_transpose2d(x, w, b, **kwargs).detach().numpy(),
                 F.conv_transpose2d(x, w, b, **kwargs).detach().numpy(), np.float64, case)


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose2d_gradients_pass_gradcheck(case):
    x_shape, w_shape, kwargs = TRANSPOSE_CASES[case]
    gradcheck(lambda x, w, b: ct.conv_transpose2d(x, w, b, **kwargs), randn(*x_shape),
              randn(*w_shape, seed=1), randn(w_shape[1] * kwargs.get("groups", 1), seed=2))


def test_conv_transpose2d_takes_per_side_padding_as_the_adjoint_of_conv2d():
    # <conv2d(z, w), x> == <z, conv_transpose2d(x, w)> for the same geometry
    padding = ((2, 0), (1, 1))
    z, w = randn(2, 3, 8, 7, requires_grad=False), randn(4, 3, 3, 3, seed=1)
    x = randn(2, 4, 4, 4, seed=2, requires_grad=False)
    y = ct.conv2d(z, w, stride=2, padding=padding)
    assert y.shape == x.shape
    back = ct.conv_transpose2d(x, w, stride=2, padding=padding, output_padding=(1, 0))
    assert back.shape == z.shape
    assert torch.allclose((y * x).sum(), (z * back).sum(), rtol=1e-12)


def test_conv_transpose2d_refuses_output_padding_not_below_the_stride():
    with pytest.raises(ValueError, match="output_padding"):
        ct.conv_transpose2d(randn(1, 2, 4, 4), randn(2, 2, 3, 3), stride=2, output_padding=2)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_conv_transpose2d_refuses_a_bias_that_would_broadcast(device):
    x, w = torch.ones(1, 2, 4, 4, device=device), torch.ones(2, 3, 3, 3, device=device)
    with pytest.raises(ValueError, match=r"bias: expected shape \(3,\), got"):
        ct.conv_transpose2d(x, w, torch.ones(1, device=device))


# ---------------------------------------------------------------- pooling

MAX_CASES = {
    # name: (x shape, keywords, torch equivalent or None)
    "2x2": ((2, 3, 8, 9), dict(kernel_size=2), dict(kernel_size=2)),
    "3x3-s2-p1": ((2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1),
                  dict(kernel_size=3, stride=2, padding=1)),
    "ceil-dilation": ((1, 2, 10, 9), dict(kernel_size=(3, 2), stride=2, dilation=(2, 1),
                                          ceil_mode=True),
                      dict(kernel_size=(3, 2), stride=2, dilation=(2, 1), ceil_mode=True)),
    "same": ((1, 2, 7, 9), dict(kernel_size=3, stride=2, padding="same"), None),
    "per-side": ((1, 2, 7, 8), dict(kernel_size=3, stride=1, padding=((1, 0), (0, 1))), None),
    "unbatched": ((3, 8, 8), dict(kernel_size=2, stride=1), dict(kernel_size=2, stride=1)),
}


@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_matches_convpool_and_torch_with_indices(case):
    x_shape, kwargs, torch_kwargs = MAX_CASES[case]
    x = randn(*x_shape)
    y, indices = ct.max_pool2d(x, **kwargs, return_indices=True)
    expected, expected_indices = convpool.max_pool2d(x.detach().numpy(), **kwargs,
                                                     return_indices=True)
    assert_close(y.detach().numpy(), expected, np.float64, case)
    assert indices.dtype == torch.int64 and (indices.numpy() == expected_indices).all()
    assert torch.equal(ct.max_pool2d(x, **kwargs), y)
    if torch_kwargs is not None:
        theirs, their_indices = F.max_pool2d(x, **torch_kwargs, return_indices=True)
        assert torch.equal(y, theirs) and torch.equal(indices, their_indices)


@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_gradient_passes_gradcheck(case):
    _, kwargs, _ = MAX_CASES[case]
    gradcheck(lambda x: ct.max_pool2d(x, **kwargs), randn(*MAX_CASES[case][0]))


def test_max_pool2d_without_indices_finds_them_again_when_differentiated():
    # the operator a no-grad call uses, differentiated directly: it recomputes the indices
    x = randn(2, 3, 8, 8)
    gradcheck(lambda x: torch.ops.convpool.max_pool2d(x, [3, 3], [2, 2], [1, 1, 1, 1], False,
                                                       [1, 1], False), x)


def test_max_pool2d_computes_indices_only_when_a_gradient_needs_them(monkeypatch):
    calls = []
    real = convpool.max_pool2d

    def spy(*args, **kwargs):
        calls.append(kwargs.get("return_indices", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(convpool, "max_pool2d", spy)
    x = randn(1, 2, 6, 6)
    with torch.no_grad():
        ct.max_pool2d(x, 2)
    ct.max_pool2d(x, 2)
    assert calls == [False, True]


AVG_CASES = {
    "2x2": ((2, 3, 8, 9), dict(kernel_size=2), True),
    "3x3-s2-p1": ((2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1), True),
    "exclude-pad-ceil": ((1, 2, 9, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                             count_include_pad=False), True),
    "divisor": ((1, 2, 8, 8), dict(kernel_size=(2, 3), stride=(2, 1), divisor_override=5), True),
    "same": ((1, 2, 7, 9), dict(kernel_size=3, stride=2, padding="same"), False),
    "per-side": ((1, 2, 7, 8), dict(kernel_size=2, padding=((1, 0), (0, 1))), False),
    "unbatched": ((3, 8, 8), dict(kernel_size=2), True),
}


@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_matches_convpool_and_torch(case):
    x_shape, kwargs, torch_has_it = AVG_CASES[case]
    x = randn(*x_shape)
    y = ct.avg_pool2d(x, **kwargs)
    assert_close(y.detach().numpy(), convpool.avg_pool2d(x.detach().numpy(), **kwargs),
                 np.float64, case)
    if torch_has_it:
        assert_close(y.detach().numpy(), F.avg_pool2d(x, **kwargs).detach().numpy(), np.float64,
                     case)


@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_gradient_passes_gradcheck(case):
    x_shape, kwargs, _ = AVG_CASES[case]
    gradcheck(lambda x: ct.avg_pool2d(x, **kwargs), randn(*x_shape))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_channel_pool_matches_convpool_and_passes_gradcheck(mode):
    x = randn(2, 6, 4, 5)
    assert_close(ct.channel_pool(x, 3, mode).detach().numpy(),
                 convpool.channel_pool(x.detach().numpy(), 3, mode), np.float64, mode)
    gradcheck(lambda x: ct.channel_pool(x, 3, mode), x)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools_match_torch_and_pass_gradcheck(keepdims):
    x = randn(2, 3, 5, 4)
    dims = dict(dim=(-2, -1), keepdim=keepdims)
    assert torch.allclose(ct.global_avg_pool2d(x, keepdims), x.mean(**dims), rtol=1e-12)
    assert torch.equal(ct.global_max_pool2d(x, keepdims), x.amax(**dims))
    gradcheck(lambda x: ct.global_avg_pool2d(x, keepdims), x)
    gradcheck(lambda x: ct.global_max_pool2d(x, keepdims), x)
    gradcheck(lambda x: ct.global_max_pool2d(x, keepdims), randn(3, 5, 4, seed=3))


ADAPTIVE_CASES = {
    # name: (x shape, output_size)
    "divides": ((2, 3, 8, 6), (4, 3)),
    "does-not-divide": ((2, 3, 7, 9), (3, 4)),
    "overlapping-windows": ((1, 2, 5, 7), (3, 4)),  # 5 -> 3: windows share a row
    "larger-than-input": ((1, 2, 3, 4), (5, 6)),
    "keep-an-axis": ((2, 2, 7, 5), (None, 2)),
    "int": ((2, 2, 7, 5), 3),
    "unbatched": ((3, 7, 6), (2, 4)),
}


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_matches_torch_and_passes_gradcheck(case):
    x_shape, size = ADAPTIVE_CASES[case]
    x = randn(*x_shape)
    assert_close(ct.adaptive_avg_pool2d(x, size).detach().numpy(),
                 F.adaptive_avg_pool2d(x, size).detach().numpy(), np.float64, case)
    gradcheck(lambda x: ct.adaptive_avg_pool2d(x, size), x)


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
def test_adaptive_max_pool2d_matches_torch_with_indices_and_passes_gradcheck(case):
    x_shape, size = ADAPTIVE_CASES[case]
    x = randn(*x_shape)
    y, indices = ct.adaptive_max_pool2d(x, size, return_indices=True)
    expected, expected_indices = F.adaptive_max_pool2d(x, size, return_indices=True)
    assert torch.equal(y, expected) and torch.equal(indices, expected_indices)
    assert indices.dtype == torch.int64 and not indices.requires_grad
    assert torch.equal(ct.adaptive_max_pool2d(x, size), expected)
    gradcheck(lambda x: ct.adaptive_max_pool2d(x, size), x)
    gradcheck(lambda x: ct.adaptive_max_pool2d(x, size, return_indices=True)[0], x)


UNPOOL_CASES = {
    # name: (x shape, kernel, stride, padding, output_size); windows that do not overlap,
    # so that no two values share an index (there PyTorch keeps one, convpool adds)
    "2x2": ((2, 3, 8, 6), 2, None, 0, None),
    "odd-size-back": ((2, 3, 9, 7), 2, None, 0, (9, 7)),
    "3x2-padding": ((1, 2, 9, 8), (3, 2), (3, 2), (1, 0), (9, 8)),
    "stride-above-kernel": ((1, 2, 9, 9), 2, 3, 0, (9, 9)),
    "unbatched": ((3, 6, 6), 3, None, 0, None),
}


@pytest.mark.parametrize("case", UNPOOL_CASES)
def test_max_unpool2d_matches_torch_and_passes_gradcheck(case):
    x_shape, kernel, stride, padding, output_size = UNPOOL_CASES[case]
    pooled, indices = F.max_pool2d(randn(*x_shape, requires_grad=False), kernel, stride, padding,
                                   return_indices=True)
    pooled.requires_grad_()
    args = (kernel, stride, padding, output_size)
    assert_close(ct.max_unpool2d(pooled, indices, *args).detach().numpy(),
                 F.max_unpool2d(pooled, indices, *args).detach().numpy(), np.float64, case)
    gradcheck(lambda x: ct.max_unpool2d(x, indices, *args), pooled)


def test_max_unpool2d_inverts_convpools_own_max_pool2d():
    x = randn(2, 3, 8, 8, requires_grad=False)
    pooled, indices = ct.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(ct.max_unpool2d(pooled, indices, 2),
                       F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2))


def test_new_pools_refuse_bad_arguments_naming_them():
    x = randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match="output_size: must be >= 1"):
        ct.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(TypeError, match="output_size"):
        ct.adaptive_max_pool2d(x, 1.5)
    with pytest.raises(TypeError, match="indices: expected an int64 tensor"):
        ct.max_unpool2d(x, torch.zeros(1, 2, 4, 4, dtype=torch.int32), 2)
    with pytest.raises(ValueError, match="indices: expected the shape of x"):
        ct.max_unpool2d(x, torch.zeros(1, 2, 4, 3, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match="output_size"):
        ct.max_unpool2d(x, torch.zeros(1, 2, 4, 4, dtype=torch.int64), 2, output_size=(12, 8))
    with pytest.raises(ValueError, match="indices: value 99"):
        ct.max_unpool2d(x, torch.full((1, 2, 4, 4), 99, dtype=torch.int64), 2)


# ---------------------------------------------------------------- the operators

OPCHECK_CALLS = {
    "conv2d": lambda: (randn(2, 4, 7, 6), randn(6, 2, 3, 3, seed=1), randn(6, seed=2),
                       [2, 1], [1, 0, 1, 2], False, [1, 1], 2, "reflect"),
    "conv_transpose2d": lambda: (randn(2, 4, 5, 5), randn(4, 3, 3, 3, seed=1), None,
                                 [2, 2], [1, 1, 1, 1], [1, 0], [1, 1], 1),
    "max_pool2d": lambda: (randn(2, 3, 7, 8), [3, 3], [2, 2], [0, 0, 0, 0], True, [1, 1],
                           False),
    "max_pool2d_with_indices": lambda: (randn(2, 3, 8, 8), [2, 2], [2, 2], [0, 0, 0, 0], False,
                                        [1, 1], True),
    "avg_pool2d": lambda: (randn(2, 3, 8, 8), [3, 3], [2, 2], [1, 1, 1, 1], False, True, False,
                           None),
    "channel_pool": lambda: (randn(2, 6, 3, 3), 2, "max"),
    "global_avg_pool2d": lambda: (randn(2, 3, 4, 4), True),
    "global_max_pool2d": lambda: (randn(2, 3, 4, 4), False),
    "adaptive_avg_pool2d": lambda: (randn(2, 3, 7, 6), [3, 4]),
    "adaptive_max_pool2d": lambda: (randn(2, 3, 7, 6), [3, 4]),
    "max_unpool2d": lambda: (randn(2, 3, 3, 4), F.max_pool2d(randn(2, 3, 7, 9), 2,
                                                              return_indices=True)[1],
                             [2, 2], [2, 2], [0, 0], [7, 9]),
}


@pytest.mark.parametrize("name", OPCHECK_CALLS)
def test_operator_passes_opcheck(name):
    # schema, fake kernel against the real one, autograd registration, AOT dispatch with
    # dynamic shapes
    result = torch.library.opcheck(getattr(torch.ops.convpool, name), OPCHECK_CALLS[name]())
    assert set(result.values()) == {"SUCCESS"}, result


def test_fake_kernels_propagate_shapes_on_the_meta_device():
    x = torch.empty(8, 16, 33, 31, device="meta")
    w = torch.empty(32, 1, 3, 3, device="meta")
    y = ct.conv2d(torch.empty(8, 32, 33, 31, device="meta"), w, stride=2, padding="same",
                  groups=32)
    assert y.shape == (8, 32, 17, 16) and y.device.type == "meta"
    assert ct.max_pool2d(x, 3, 2, 1, ceil_mode=True).shape == (8, 16, 17, 16)
    assert ct.conv_transpose2d(x, torch.empty(16, 4, 3, 3, device="meta"), stride=2,
                               padding=1, output_padding=1).shape == (8, 4, 66, 62)
    assert ct.adaptive_avg_pool2d(x, (5, None)).shape == (8, 16, 5, 31)
    y, indices = ct.adaptive_max_pool2d(x, 7, return_indices=True)
    assert y.shape == indices.shape == (8, 16, 7, 7) and indices.dtype == torch.int64
    assert ct.max_unpool2d(y, indices, 2, output_size=(15, 14)).shape == (8, 16, 15, 14)


def test_fake_kernels_refuse_what_the_real_ones_refuse():
    x = torch.empty(1, 3, 4, 4, device="meta")
    with pytest.raises(ValueError, match="groups"):
        ct.conv2d(x, torch.empty(4, 3, 3, 3, device="meta"), groups=2)
    with pytest.raises(ValueError, match="kernel_size"):
        ct.max_pool2d(x, 5)


def test_torch_compile_traces_forward_and_backward_through_the_operators():
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = []

    def record(graph_module, _inputs):
        graphs.append(str(graph_module.code))
        return make_boxed_func(graph_module.forward)

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.AvgPool2d(2)).double()
    expected_model = copy.deepcopy(model)
    ct.convert(model)
    compiled = torch.compile(model, backend=aot_autograd(fw_compiler=record, bw_compiler=record),
                             fullgraph=True)
    x = randn(2, 3, 8, 8)
    y = compiled(x)
    y.sum().backward()
    expected = expected_model(x)
    expected.sum().backward()
    assert torch.allclose(y, expected, rtol=1e-12)
    for mine, theirs in zip(model.parameters(), expected_model.parameters(), strict=True):
        assert torch.allclose(mine.grad, theirs.grad, rtol=1e-10)
    forward_graph, backward_graph = graphs
    assert "convpool.conv2d" in forward_graph and "convpool.avg_pool2d" in forward_graph
    assert "convpool.conv2d_grad_weight" in backward_graph
    assert "convpool.max_pool2d_grad_input" in backward_graph


# ---------------------------------------------------------------- tensors and errors

def test_tensors_and_arrays_share_memory():
    t = torch.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1)  # non-contiguous
    array = _tensors.to_array(t)
    assert array.ctypes.data == t.data_ptr() and array.strides == tuple(
        s * t.element_size() for s in t.stride())
    result = np.ones((2, 3))
    assert _tensors.to_tensor(result).data_ptr() == result.ctypes.data


def test_channels_last_and_strided_inputs_give_the_contiguous_results():
    x, w = randn(2, 8, 9, 10, requires_grad=False), randn(8, 1, 3, 3, seed=1)
    expected = ct.conv2d(x, w, padding=1, groups=8)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(ct.conv2d(channels_last, w, padding=1, groups=8), expected)
    wide = randn(2, 8, 9, 20, requires_grad=False)
    assert torch.equal(ct.max_pool2d(wide[..., ::2], 2), ct.max_pool2d(wide[..., ::2].clone(), 2))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.float16, torch.int32])
def test_unsupported_dtypes_are_a_type_error_naming_the_argument(dtype):
    with pytest.raises(TypeError, match="input: convpool computes in float32 or float64"):
        ct.max_pool2d(torch.ones(1, 1, 4, 4, dtype=dtype), 2)


def test_mixed_dtypes_are_a_type_error():
    with pytest.raises(TypeError, match="x torch.float32, weight torch.float64"):
        ct.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3, dtype=torch.float64))


def test_a_tensor_off_the_cpu_is_a_clear_error():
    with pytest.raises(ValueError, match=r"x: convpool's kernels run on the CPU; got a tensor "
                                         r"on meta \(move it with .cpu\(\)\)"):
        _tensors.check_tensor(torch.ones(1, device="meta"), "x")
    with pytest.raises(ValueError, match="dense"):
        ct.max_pool2d(torch.ones(1, 1, 4, 4).to_sparse(), 2)


def test_arrays_are_refused_with_a_type_error():
    with pytest.raises(TypeError, match="input: expected a torch.Tensor, got ndarray"):
        ct.avg_pool2d(np.ones((1, 1, 4, 4)), 2)


def test_convpool_errors_reach_the_caller_unchanged():
    with pytest.raises(ValueError, match="padding_mode"):
        ct.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3), padding=1, padding_mode="edge")
    with pytest.raises(ValueError, match="padding"):
        ct.max_pool2d(torch.ones(1, 1, 8, 8), 2, padding=2)


# ---------------------------------------------------------------- layers and convert()

class SmallCNN(nn.Module):
    """Every layer convert() maps, with the options that change the kernels' work."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.ReLU(),   # depthwise
            nn.Conv2d(8, 12, 1), nn.ReLU(),                                  # pointwise
            nn.MaxPool2d(3, stride=2, padding=1), nn.Tanh(),
            nn.Conv2d(12, 12, 3, padding=2, dilation=2, padding_mode="replicate"), nn.ReLU(),
            nn.ConvTranspose2d(12, 6, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(6, 16, 3, padding="same", padding_mode="circular"), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))

    def forward(self, x):
        return self.head(self.features(x))


CONVERTED = {nn.Conv2d: ct.Conv2d, nn.ConvTranspose2d: ct.ConvTranspose2d,
             nn.MaxPool2d: ct.MaxPool2d, nn.AvgPool2d: ct.AvgPool2d,
             nn.AdaptiveAvgPool2d: ct.AdaptiveAvgPool2d,
             nn.AdaptiveMaxPool2d: ct.AdaptiveMaxPool2d, nn.MaxUnpool2d: ct.MaxUnpool2d}


def converted_pair(dtype):
    torch.manual_seed(0)
    original = SmallCNN().to(dtype)
    return original, ct.convert(copy.deepcopy(original))


def test_convert_swaps_every_mapped_layer_and_keeps_its_parameters():
    model = SmallCNN()
    parameters = list(model.parameters())
    keys = list(model.state_dict())
    torch_types = [type(m) for m in model.modules()]
    assert ct.convert(model) is model
    for torch_type, module in zip(torch_types, model.modules(), strict=True):
        assert type(module) is CONVERTED.get(torch_type, torch_type)
        assert isinstance(module, torch_type)
    assert all(a is b for a, b in zip(parameters, model.parameters(), strict=True))
    assert list(model.state_dict()) == keys
    ct.revert(model)
    assert [type(m) for m in model.modules()] == torch_types


def test_convert_leaves_subclasses_with_their_own_forward_alone():
    class Doubled(nn.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    model = nn.Sequential(Doubled(1, 1, 3))
    assert type(ct.convert(model)[0]) is Doubled


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_converted_cnn_gives_the_outputs_and_parameter_gradients_of_the_original(dtype):
    original, converted = converted_pair(dtype)
    x = randn(3, 3, 16, 14, dtype=dtype, requires_grad=False)
    target = torch.tensor([0, 3, 1])
    outputs = []
    for model in (original, converted):
        y = model(x)
        F.cross_entropy(y, target).backward()
        outputs.append(y.detach().numpy())
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert_close(outputs[1], outputs[0], np_dtype, "output")
    for (name, mine), theirs in zip(converted.named_parameters(), original.parameters(),
                                    strict=True):
        assert_close(mine.grad.numpy(), theirs.grad.numpy(), np_dtype, name)


def test_converted_cnn_trains_with_a_torch_optimizer_as_the_original():
    original, converted = converted_pair(torch.float64)
    x = randn(8, 3, 12, 12, requires_grad=False)
    target = torch.arange(8) % 5
    losses = {}
    for name, model in (("original", original), ("converted", converted)):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses[name] = []
        for _ in range(5):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), target)
            loss.backward()
            optimizer.step()
            losses[name].append(loss.item())
    assert losses["converted"][-1] < losses["converted"][0]
    np.testing.assert_allclose(losses["converted"], losses["original"], rtol=1e-9)
    for mine, theirs in zip(converted.parameters(), original.parameters(), strict=True):
        assert torch.allclose(mine, theirs, rtol=1e-8, atol=1e-10)


def test_converted_layers_handle_output_size_and_return_indices():
    torch.manual_seed(0)
    transpose = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1).double()
    pool = nn.MaxPool2d(2, return_indices=True)
    x = randn(1, 4, 5, 5, requires_grad=False)
    expected = transpose(x, output_size=[10, 10])
    expected_pool = pool(x)
    ct.convert(transpose)
    ct.convert(pool)
    assert torch.allclose(transpose(x, output_size=[10, 10]), expected, rtol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(pool(x), expected_pool, strict=True))


def test_converted_adaptive_pools_of_any_size_run_on_convpool(monkeypatch):
    calls = []
    for name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        real = getattr(convpool, name)
        monkeypatch.setattr(convpool, name,
                            lambda *a, real=real, name=name, **k: calls.append(name)
                            or real(*a, **k))
    x = randn(1, 2, 7, 6, requires_grad=False)
    average = ct.convert(nn.AdaptiveAvgPool2d((2, 4)))
    maximum = ct.convert(nn.AdaptiveMaxPool2d((3, None), return_indices=True))
    assert_close(average(x).numpy(), F.adaptive_avg_pool2d(x, (2, 4)).numpy(), np.float64,
                 "average")
    y, indices = maximum(x)
    expected, expected_indices = F.adaptive_max_pool2d(x, (3, None), return_indices=True)
    assert torch.equal(y, expected) and torch.equal(indices, expected_indices)
    assert calls == ["adaptive_avg_pool2d", "adaptive_max_pool2d"]
    global_max = ct.convert(nn.AdaptiveMaxPool2d(1))
    assert torch.equal(global_max(x), F.adaptive_max_pool2d(x, 1))


class EncoderDecoder(nn.Module):
    """Adaptive pools of sizes that do and do not divide the input, and max unpooling at
    the pooling's indices (with output_size, so odd sizes come back)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.mix = nn.Conv2d(6, 6, 3, padding=1)
        self.average = nn.AdaptiveAvgPool2d((3, 5))
        self.maximum = nn.AdaptiveMaxPool2d((2, None))
        self.head = nn.Linear(6 * 3 * 5 + 6 * 2 * 3, 4)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        pooled, indices = self.pool(y)
        y = torch.tanh(self.mix(self.unpool(pooled, indices, output_size=y.shape)))
        small = self.maximum(self.average(y)[..., :3])
        return self.head(torch.cat([self.average(y).flatten(1), small.flatten(1)], 1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_converted_net_with_adaptive_pools_and_unpooling_matches_the_original(dtype):
    torch.manual_seed(0)
    original = EncoderDecoder().to(dtype)
    converted = ct.convert(copy.deepcopy(original))
    assert type(converted.unpool) is ct.MaxUnpool2d
    assert type(converted.average) is ct.AdaptiveAvgPool2d
    assert type(converted.maximum) is ct.AdaptiveMaxPool2d
    x = randn(2, 3, 11, 9, dtype=dtype, requires_grad=False)
    target = torch.tensor([1, 3])
    outputs = []
    for model in (original, converted):
        y = model(x)
        F.cross_entropy(y, target).backward()
        outputs.append(y.detach().numpy())
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert_close(outputs[1], outputs[0], np_dtype, "output")
    for (name, mine), theirs in zip(converted.named_parameters(), original.parameters(),
                                    strict=True):
        assert_close(mine.grad.numpy(), theirs.grad.numpy(), np_dtype, name)


def test_torch_compile_traces_the_adaptive_pools_and_unpooling():
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = []

    def record(graph_module, _inputs):
        graphs.append(str(graph_module.code))
        return make_boxed_func(graph_module.forward)

    torch.manual_seed(0)
    original = EncoderDecoder().double()
    converted = ct.convert(copy.deepcopy(original))
    compiled = torch.compile(converted, fullgraph=True,
                             backend=aot_autograd(fw_compiler=record, bw_compiler=record))
    x = randn(2, 3, 9, 8, requires_grad=False)
    y, expected = compiled(x), original(x)
    y.sum().backward()
    expected.sum().backward()
    assert torch.allclose(y, expected, rtol=1e-12)
    for mine, theirs in zip(converted.parameters(), original.parameters(), strict=True):
        assert torch.allclose(mine.grad, theirs.grad, rtol=1e-10)
    forward_graph, backward_graph = graphs
    for name in ("adaptive_avg_pool2d", "adaptive_max_pool2d", "max_unpool2d"):
        assert f"convpool.{name}" in forward_graph
    for name in ("adaptive_avg_pool2d_grad_input", "max_unpool2d_grad_input"):
        assert f"convpool.{name}" in backward_graph


# ---------------------------------------------------------------- eager and dispatcher paths

DISPATCHED = {
    "conv2d": lambda: (randn(2, 4, 7, 6), randn(6, 2, 3, 3, seed=1), randn(6, seed=2),
                       [2, 1], [1, 0, 1, 2], False, [1, 1], 2, "replicate"),
    "conv_transpose2d": lambda: (randn(2, 4, 5, 5), randn(4, 3, 3, 3, seed=1),
                                 randn(3, seed=2), [2, 2], [1, 1, 1, 1], [1, 0], [1, 1], 1),
    "max_pool2d_with_indices": lambda: (randn(2, 3, 8, 8), [3, 3], [2, 2], [1, 1, 1, 1], False,
                                        [1, 1], False),
    "avg_pool2d": lambda: (randn(2, 3, 8, 8), [3, 3], [2, 2], [0, 0, 0, 0], True, False, False,
                           None),
}


@pytest.mark.parametrize("name", DISPATCHED)
def test_the_dispatcher_path_gives_the_eager_paths_values_and_gradients(name):
    # plain eager calls skip torch's dispatcher; tracing goes through torch.ops.convpool
    from convpool.torch import _ops

    args = DISPATCHED[name]()
    tensors = [a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
    results = []
    for run in (lambda *a: _ops.call(name, *a), getattr(torch.ops.convpool, name)):
        output = run(*args)
        y = output[0] if isinstance(output, tuple) else output
        results.append((y, torch.autograd.grad((y * y).sum(), tensors)))
    (y_eager, g_eager), (y_dispatched, g_dispatched) = results
    assert torch.equal(y_eager, y_dispatched)
    assert all(torch.equal(a, b) for a, b in zip(g_eager, g_dispatched, strict=True))
    gradcheck(lambda *t: getattr(torch.ops.convpool, name)(*t, *args[len(t):])[0]
              if name.endswith("indices") else getattr(torch.ops.convpool, name)(
                  *t, *args[len(t):]), *args[:1 if name.endswith(("indices", "pool2d")) else 2])


@pytest.mark.parametrize("path", ["eager", "dispatcher"])
def test_second_derivatives_are_refused_not_silently_wrong(path):
    x, w = randn(1, 2, 5, 5), randn(3, 2, 3, 3, seed=1)
    geometry = ([1, 1], [0, 0, 0, 0], False, [1, 1], 1, "zeros")
    conv = ct.conv2d if path == "eager" else (
        lambda x, w: torch.ops.convpool.conv2d(x, w, None, *geometry))
    with pytest.raises(RuntimeError, match="convpool.conv2d: second derivatives are not "):
        torch.autograd.grad(conv(x, w).pow(2).sum(), x, create_graph=True)


# ---------------------------------------------------------------- fake kernels, any geometry

def outcome(function, device):
    """The output shapes of ``function(device)``, or "refused" (convpool's ValueError,
    PyTorch's RuntimeError)."""
    try:
        result = function(device)
    except (ValueError, RuntimeError) as error:
        assert type(error) is ValueError or function.__name__ == "torch_call", error
        return "refused"
    results = result if isinstance(result, tuple) else (result,)
    return [(tuple(r.shape), r.dtype) for r in results]


paddings = st.one_of(st.integers(0, 2), st.just("same"), st.just("valid"),
                     st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                               st.tuples(st.integers(0, 2), st.integers(0, 2))))


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 3), per_group=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.integers(1, 2),
       padding=paddings, mode=st.sampled_from(["zeros", "reflect", "circular"]))
def test_fake_conv2d_gives_the_real_shapes_or_the_same_refusal(groups, per_group, size, kernel,
                                                               stride, dilation, padding, mode):
    def run(device):
        x = torch.zeros(2, groups * per_group[0], *size, device=device)
        w = torch.zeros(groups * per_group[1], per_group[0], *kernel, device=device)
        return ct.conv2d(x, w, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, padding_mode=mode)

    assert outcome(run, "meta") == outcome(run, "cpu")


@settings(max_examples=40, deadline=None)
@given(size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), padding=paddings,
       dilation=st.integers(1, 2), ceil_mode=st.booleans(), pool=st.sampled_from(["max", "avg"]))
def test_fake_pooling_gives_the_real_shapes_or_the_same_refusal(size, kernel, stride, padding,
                                                                dilation, ceil_mode, pool):
    def run(device):
        x = torch.zeros(2, 3, *size, device=device, requires_grad=device == "cpu")
        if pool == "max":
            return ct.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode,
                                 return_indices=True)
        return ct.avg_pool2d(x, kernel, stride, padding, ceil_mode)

    assert outcome(run, "meta") == outcome(run, "cpu")


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 2), size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), dilation=st.integers(1, 2),
       extra=st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_conv_transpose2d_shapes_match_torch_on_cpu_and_meta(groups, size, kernel, stride,
                                                             padding, dilation, extra):
    output_padding = tuple(e % max(s, dilation) for e, s in zip(extra, stride, strict=True))
    # an empty output: PyTorch returns one or refuses depending on its backend
    assume(all((i - 1) * s - 2 * p + dilation * (k - 1) + e + 1 >= 1 for i, s, p, k, e in
               zip(size, stride, padding, kernel, output_padding, strict=True)))

    def run(function, device):
        x = torch.zeros(1, 2 * groups, *size, device=device)
        w = torch.zeros(2 * groups, 3, *kernel, device=device)
        return function(x, w, None, stride, padding, output_padding, groups, dilation)

    def torch_call(device):
        return run(F.conv_transpose2d, device)

    expected = outcome(torch_call, "cpu")
    assert outcome(lambda device: run(ct.conv_transpose2d, device), "cpu") == expected
    assert outcome(lambda device: run(ct.conv_transpose2d, device), "meta") == expected
