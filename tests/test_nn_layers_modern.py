"""The layers beyond LeNet against PyTorch (values, gradients, batch-norm statistics and
state-dict entries), their declared geometry in summaries and dask, and inference mode."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from convpool import nn
from convpool.models import resnet18, unet


# --- batch norm ---------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("options", [
    {}, dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
    dict(eps=1e-3, momentum=0.3)], ids=["default", "cumulative", "no-affine", "no-stats",
                                        "eps-momentum"])
def test_batchnorm2d_matches_pytorch_over_steps_and_modes(options, rng):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.BatchNorm2d(3, **options).double()
    ours = nn.BatchNorm2d(3, dtype=np.float64, **options)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if ours.affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-0.5, 0.5)
        ours.load_state_dict(theirs.state_dict())
    for step in range(3):
        x = rng.standard_normal((4, 3, 5, 6)) * (step + 1) + step
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        g = rng.standard_normal(x.shape)
        yt.backward(torch.tensor(g))
        ours.zero_grad()
        y = ours.forward(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
        if ours.affine:
            np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-9)
            np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-9)
            theirs.weight.grad = theirs.bias.grad = None
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12,
                                   err_msg=key)
    theirs.eval()
    ours.eval()
    x = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(ours.forward(x), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_batchnorm2d_checks_its_input_and_arguments():
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm2d(3, momentum=2)
    with pytest.raises(ValueError, match="num_features=3"):
        nn.BatchNorm2d(3).forward(np.ones((2, 4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm2d(3).forward(np.ones((1, 3, 1, 1), np.float32))


# --- the other layers against torch.nn --------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("name", ["ConvTranspose2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
                                  "Upsample", "ReLU6", "Hardswish", "Identity"])
def test_layer_matches_pytorch_forward_and_backward(name, rng):
    torch = pytest.importorskip("torch")
    pairs = {
        "ConvTranspose2d": (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                               groups=2, dtype=np.float64, seed=0),
                            torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                     output_padding=1, groups=2)),
        "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d((3, 5)), torch.nn.AdaptiveAvgPool2d((3, 5))),
        "AdaptiveMaxPool2d": (nn.AdaptiveMaxPool2d(3), torch.nn.AdaptiveMaxPool2d(3)),
        "Upsample": (nn.Upsample((2, 3)), torch.nn.Upsample(scale_factor=(2, 3))),
        "ReLU6": (nn.ReLU6(), torch.nn.ReLU6()),
        "Hardswish": (nn.Hardswish(), torch.nn.Hardswish()),
        "Identity": (nn.Identity(), torch.nn.Identity()),
    }
    ours, theirs = pairs[name]
    theirs = theirs.double()
    if ours.num_parameters():
        ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((2, 4, 7, 8)) * 4
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.forward(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for key, parameter in dict(ours.named_parameters()).items():
        np.testing.assert_allclose(parameter.grad, dict(theirs.named_parameters())[key].grad,
                                   rtol=1e-10, err_msg=key)
    assert ours.output_shape(x.shape[1:]) == tuple(yt.shape[1:])


@pytest.mark.torch
def test_conv_transpose2d_initialises_as_pytorch():
    layer = nn.ConvTranspose2d(8, 4, 3, groups=2, seed=0)
    bound = 1 / np.sqrt(4 // 2 * 9)
    assert layer.weight.shape == (8, 2, 3, 3)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > bound / 2


def test_max_unpool_layer_reads_the_indices_of_its_pooling_layer(rng):
    pool = nn.MaxPool2d(2)
    net = nn.Sequential(pool, nn.MaxUnpool2d(2, indices_from=pool))
    x = rng.standard_normal((1, 2, 5, 4))
    with nn.inference_mode():
        y = net.eval()(x)
    assert y.shape == x.shape
    assert np.count_nonzero(y) == 2 * 2 * 2
    assert np.isin(y[y != 0], x).all()
    with pytest.raises(ValueError, match="indices_from"):
        nn.MaxUnpool2d(2).forward(x)


def test_residual_and_concat_name_their_children_and_check_shapes():
    body = nn.Sequential({"conv1": nn.Conv2d(2, 2, 3, padding=1), "bn1": nn.BatchNorm2d(2)})
    block = nn.Residual(body, nn.Sequential(nn.Conv2d(2, 2, 1)), nn.ReLU(), body_name=None,
                        shortcut_name="downsample")
    assert list(block.state_dict())[:3] == ["conv1.weight", "conv1.bias", "bn1.weight"]
    assert "downsample.0.weight" in block.state_dict()
    with pytest.raises(ValueError, match="body output"):
        nn.Residual(nn.Conv2d(2, 3, 1)).output_shape((2, 4, 4))
    both = nn.Concat({"a": nn.Conv2d(2, 3, 1), "b": nn.Identity()})
    assert both.output_shape((2, 4, 4)) == (5, 4, 4)
    assert list(both.state_dict()) == ["a.weight", "a.bias"]
    with pytest.raises(ValueError, match="differ in H or W"):
        nn.Concat(nn.Identity(), nn.MaxPool2d(2)).output_shape((2, 4, 4))


# --- geometry: summary and dask -------------------------------------------------------
class Undeclared(nn.Layer):
    """A user layer that declares no geometry."""

    def forward(self, x):
        return x

    def backward(self, grad_output, *, needs_input_grad=True):
        return grad_output


def test_a_layer_without_geometry_shows_unknown_in_the_summary():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), Undeclared(), nn.ReLU())
    summary = model.summary((1, 8, 8), show=False)
    assert summary.rows[0].receptive_field.size == (3, 3)
    assert summary.rows[1].output_shape is None and summary.rows[2].receptive_field is None
    assert summary.receptive_field is None
    assert "unknown" in str(summary) and "?" in str(summary)


def test_dask_refuses_a_layer_without_geometry():
    da = pytest.importorskip("dask.array")
    import convpool.dask

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64), Undeclared())
    picture = da.zeros((1, 1, 32, 32), chunks=(1, 1, 16, 16))
    with pytest.raises(ValueError, match="model_or_function"):
        convpool.dask.apply(model, picture)
    with pytest.raises(NotImplementedError, match="declares no output_shape"):
        convpool.dask.apply(model, da.zeros((4, 1, 8, 8), chunks=(2, 1, 8, 8)))


def test_resnet18_summary_has_torchvisions_435_pixel_receptive_field():
    summary = resnet18().summary((3, 224, 224), show=False)
    assert summary.total_parameters == 11_689_512
    layer4 = [row for row in summary.rows if row.name == "layer4.1"][0]
    assert layer4.output_shape == (512, 7, 7)
    assert layer4.receptive_field.size == (435, 435) and layer4.receptive_field.jump == (32, 32)
    assert summary.rows[-1].output_shape == (1000,) and summary.rows[-1].receptive_field.is_global


def test_dask_runs_a_residual_net_over_picture_chunks_exactly():
    da = pytest.importorskip("dask.array")
    import convpool.dask

    g = np.random.default_rng(0)
    f64 = dict(dtype=np.float64, seed=g)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, **f64), nn.BatchNorm2d(4, dtype=np.float64), nn.ReLU(),
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, **f64), nn.ReLU(),
                                  nn.Conv2d(4, 4, 3, padding=1, **f64)), None, nn.ReLU()),
        nn.Concat(nn.Identity(), nn.Conv2d(4, 2, 5, padding=2, **f64))).eval()
    assert model.summary((1, 48, 40), show=False).receptive_field.size == (11, 11)
    picture = g.standard_normal((48, 40))
    result = convpool.dask.apply(model, da.from_array(picture, chunks=16)).compute()
    assert np.array_equal(result, model.forward(picture[None, None])[0])


def test_unet_keeps_the_picture_size_and_its_field_has_a_period():
    model = unet(1, 3, width=4, depth=2, seed=0)
    summary = model.summary((1, 16, 12), show=False)
    assert summary.output_shape == (3, 16, 12)
    assert summary.rows[-1].receptive_field.period == (4, 4)
    assert summary.receptive_field is None  # units not all alike: dask must not tile it
    x = np.random.default_rng(1).standard_normal((2, 1, 16, 12)).astype(np.float32)
    y = model.forward(x)
    assert y.shape == (2, 3, 16, 12)
    grad = model.backward(np.ones_like(y))
    assert grad.shape == x.shape and all(p.grad is not None for p in model.parameters())


def test_unet_learns_to_segment_bright_squares():
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 16, 16)).astype(np.float32) * 0.3
    y = np.zeros((32, 16, 16), np.int64)
    for i in range(32):
        r, c = rng.integers(0, 10, 2)
        x[i, 0, r:r + 6, c:c + 6] += 0.7
        y[i, r:r + 6, c:c + 6] = 1

    class PixelLoss(nn.CrossEntropyLoss):
        """Cross entropy per pixel: (N, C, H, W) scores as (N H W, C) rows."""

        def forward(self, output, target):
            self._shape = output.shape
            rows = output.transpose(0, 2, 3, 1).reshape(-1, output.shape[1])
            return super().forward(rows, target.reshape(-1))

        def backward(self):
            n, c, h, w = self._shape
            return super().backward().reshape(n, h, w, c).transpose(0, 3, 1, 2)

    model = unet(1, 2, width=4, depth=2, seed=0)
    loss = PixelLoss()
    nn.fit(model, loss, nn.Adam(model, lr=0.02), x, y, epochs=15, batch_size=8, verbose=0)
    predicted = nn.predict(model, x).argmax(axis=1)
    assert (predicted == y).mean() > 0.95


# --- inference mode ---------------------------------------------------------------------
def _extra_bytes_of_forward(model, x) -> int:
    tracemalloc.start()
    try:
        model.forward(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_inference_mode_keeps_no_activations_on_resnet18():
    model = resnet18(10, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((4, 3, 128, 128)).astype(np.float32)
    largest = 4 * 64 * 64 * 64 * 4   # the stem convolution's output, bytes
    with nn.inference_mode():
        expected = model.forward(x)  # parameters materialised outside the measurement
        peak = _extra_bytes_of_forward(model, x)
    assert peak <= 3 * largest, f"inference forward peaked at {peak / largest:.2f}x"
    kept = [name for name, layer in model.named_layers()
            for attribute in ("_input", "_output", "_indices", "_saved")
            if isinstance(getattr(layer, attribute, None), (np.ndarray, tuple))]
    assert kept == []
    # Outside inference mode an evaluation forward keeps what backward needs, so the
    # measurement above can tell the difference.
    assert _extra_bytes_of_forward(model, x) > 3 * largest
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match="inference_mode"):
        with nn.inference_mode():
            model.forward(x[:1])
        model.backward(np.ones((1, 10), np.float32))


def test_inference_mode_is_per_thread_and_nests():
    import threading

    seen = []
    with nn.inference_mode():
        with nn.inference_mode():
            assert nn.is_inference_mode()
        assert nn.is_inference_mode()
        thread = threading.Thread(target=lambda: seen.append(nn.is_inference_mode()))
        thread.start()
        thread.join()
    assert not nn.is_inference_mode() and seen == [False]


def test_residual_in_inference_mode_never_writes_into_its_input():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    block = nn.Residual(nn.Flatten(start_dim=0, end_dim=-1), nn.Flatten(start_dim=0, end_dim=-1))
    before = x.copy()
    with nn.inference_mode():
        y = nn.Residual(nn.Identity()).forward(x)
        z = block.forward(x)
    assert np.array_equal(x, before)
    assert np.array_equal(y, 2 * x) and np.array_equal(z, 2 * x.ravel())


@pytest.mark.parametrize("inner", [
    dict(padding=1, padding_mode="circular"), dict(padding="same", stride=2)],
    ids=["circular", "same-stride"])
def test_dask_refuses_a_block_whose_padding_is_tied_to_the_whole_picture(inner):
    da = pytest.importorskip("dask.array")
    import convpool.dask

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64),
                          nn.Residual(nn.Conv2d(2, 2, 3, dtype=np.float64, **inner),
                                      nn.Conv2d(2, 2, 1, stride=inner.get("stride", 1),
                                                dtype=np.float64)))
    summary = model.summary((1, 32, 32), show=False)
    assert summary.rows[-1].receptive_field.period == (32, 32)
    assert summary.receptive_field is None
    with pytest.raises(ValueError, match="model_or_function"):
        convpool.dask.apply(model, da.zeros((32, 32), chunks=16))
