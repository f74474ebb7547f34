"""convpool.dask: a net or kernel over a chunked dask.array gives what the whole array
gives in memory: bit for bit in float64, within rounding in float32, on the threaded
scheduler and on a dask.distributed LocalCluster of two worker processes."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import convpool  # noqa: E402
import convpool.dask as cd  # noqa: E402
from convpool import nn  # noqa: E402
from convpool.models import lenet5  # noqa: E402

SOBEL = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64)
SHAPE = (2000, 3000)  # 2000 is not a multiple of 256: the last row of chunks is 208 high
CHUNKS = 256


def sobel_layer(dtype) -> nn.Conv2d:
    layer = nn.Conv2d(1, 1, 3, padding="same", bias=False, dtype=dtype)
    layer.weight.data = SOBEL[None, None]
    return layer


def small_cnn(dtype) -> nn.Sequential:
    """'same' padding, a strided convolution, max and average pooling and a 'valid'
    convolution: total stride 8, output 2000x3000 -> 248x373."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same", dtype=dtype, seed=0), nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, dtype=dtype, seed=1), nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 3, 5, dtype=dtype, seed=2),
        nn.AvgPool2d(2),
    )


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return np.random.default_rng(0).random(SHAPE)


def in_memory(model, picture: np.ndarray) -> np.ndarray:
    return model.eval().forward(picture[None, None].astype(next(model.parameters()).dtype))[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sobel_picture_threads(picture, dtype):
    x = da.from_array(picture.astype(dtype), chunks=CHUNKS)
    result = cd.apply(sobel_layer(dtype), x)
    assert result.shape == SHAPE and result.dtype == dtype
    expected = convpool.conv2d(picture.astype(dtype), SOBEL.astype(dtype), padding="same")
    computed = result.compute(scheduler="threads")
    if dtype == np.float64:
        np.testing.assert_array_equal(computed, expected)
    else:
        np.testing.assert_allclose(computed, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cnn_picture_threads(picture, dtype):
    model = small_cnn(dtype)
    x = da.from_array(picture[None, None].astype(dtype), chunks=(1, 1, CHUNKS, CHUNKS))
    plan = cd.plan_picture(model, (1, *SHAPE), (x.chunks[2], x.chunks[3]))
    assert plan.stride == (8, 8)
    result = cd.apply(model, x)
    assert model.training  # the given net is not switched to evaluation mode
    expected = in_memory(model, picture)
    assert result.shape == (1, *expected.shape) == (1, 3, 248, 373)
    computed = result.compute(scheduler="threads")[0]
    if dtype == np.float64:
        np.testing.assert_array_equal(computed, expected)
    else:
        np.testing.assert_allclose(computed, expected, rtol=1e-5, atol=1e-6)


def test_reflect_padding_and_uneven_chunks():
    # Any padding mode is exact: blocks at the picture's true border have no halo there,
    # so the layer pads them as it pads the whole picture.
    picture = np.random.default_rng(1).random((1, 2, 150, 170))
    model = nn.Sequential(
        nn.Conv2d(2, 3, 5, padding=2, padding_mode="reflect", dtype=np.float64, seed=0),
        nn.MaxPool2d(3, stride=2, padding=1), nn.Sigmoid(),
        nn.Conv2d(3, 2, (3, 1), padding=(1, 0), dtype=np.float64, seed=1))
    x = da.from_array(picture, chunks=(1, 1, (40, 40, 70), (64, 100, 6)))
    np.testing.assert_array_equal(cd.apply(model, x).compute(scheduler="threads"),
                                  model.eval().forward(picture))


PADDING_MODES = ["zeros", "replicate", "reflect", "symmetric", "circular"]


def padded_cnn(mode: str) -> nn.Sequential:
    """Every window layer pads with ``mode`` (the pooling, which cannot, reads no padding):
    total stride 4, a 64x80 picture gives 16x20."""
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode, dtype=np.float64, seed=0), nn.ReLU(),
        nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode=mode, dtype=np.float64, seed=1),
        nn.MaxPool2d(2), nn.Tanh(),
        nn.Conv2d(4, 2, 5, padding=2, padding_mode=mode, dtype=np.float64, seed=2))


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_every_padding_mode_is_exact_over_a_chunked_picture(mode):
    picture = np.random.default_rng(3).random((64, 80))
    conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode=mode, dtype=np.float64, seed=4)
    x = da.from_array(picture, chunks=16)
    np.testing.assert_array_equal(cd.apply(conv, x).compute(scheduler="threads"),
                                  conv.eval().forward(picture[None, None])[0, 0])
    # a deeper net, uneven chunks (multiples of its stride 4), two pictures
    pictures = np.random.default_rng(5).random((2, 2, 64, 80))
    model = padded_cnn(mode)
    x = da.from_array(pictures, chunks=(1, 2, (24, 24, 16), (16, 32, 32)))
    np.testing.assert_array_equal(cd.apply(model, x).compute(scheduler="threads"),
                                  model.eval().forward(pictures))


def test_circular_padding_wraps_only_the_chunked_axes():
    # H in one chunk: the second layer's zero padding along H is no obstacle (it has none
    # along W, where its 3x1 kernel reads no padding)
    picture = np.random.default_rng(6).random((1, 1, 30, 64))
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular", dtype=np.float64, seed=0),
        nn.Conv2d(2, 1, (3, 1), padding=((1, 1), (0, 0)), dtype=np.float64, seed=1))
    x = da.from_array(picture, chunks=(1, 1, 30, 16))
    plan = cd.plan_picture(model, (1, 30, 64), (x.chunks[2], x.chunks[3]))
    assert plan.periodic == (False, True)
    np.testing.assert_array_equal(cd.apply(model, x).compute(scheduler="threads"),
                                  model.eval().forward(picture))
    with pytest.raises(ValueError, match=r"circular.*chunked along H.*layer 1 \(Conv2d\).*"
                                         r"padding_mode='zeros'"):
        cd.apply(model, da.from_array(picture, chunks=(1, 1, 15, 16)))


@pytest.mark.parametrize(
    "layers, shape, reason",
    [
        ([nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), nn.Conv2d(1, 1, 3, padding=1)],
         (1, 64, 64), r"layer 1 \(Conv2d\).*pads with padding_mode='zeros'"),
        ([nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), nn.Conv2d(1, 1, 3)],
         (1, 64, 64), r"layer 1 .*output size 62 is not its input size 64 / stride 1"),
        ([nn.Conv2d(1, 1, 3, stride=2, padding=1, padding_mode="circular")],
         (1, 63, 63), r"layer 0 .*output size 32 is not its input size 63 / stride 2"),
        ([nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), nn.MaxPool2d(3, 2, 1)],
         (1, 64, 64), r"layer 1 \(MaxPool2d\).*pads"),
        ([nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), nn.AvgPool2d(2, ceil_mode=True)],
         (1, 63, 63), r"layer 1 \(AvgPool2d\).*output size 32 is not its input size 63"),
    ],
    ids=["then-zeros", "then-valid", "odd-size-stride-2", "pool-with-padding", "ceil-pool"],
)
def test_circular_padding_refused_where_wrapping_cannot_be_exact(layers, shape, reason):
    x = da.zeros((1, *shape), chunks=(1, 1, 16, 16))
    with pytest.raises(ValueError, match="padding_mode='circular' wraps the picture around.*"
                                         + reason):
        cd.apply(nn.Sequential(*layers), x)


@pytest.mark.parametrize("picture_dtype", [np.float64, np.uint8])
def test_result_has_the_dtype_and_values_of_forward(picture_dtype):
    # a float32 net computes a float64 picture in float64 (and a uint8 one in float32)
    pictures = (np.random.default_rng(7).random((4, 2, 64, 80)) * 200).astype(picture_dtype)
    convolutional = padded_cnn("zeros").astype(np.float32)
    dense = nn.Sequential(nn.Flatten(), nn.Dense(2 * 64 * 80, 3, seed=0))
    for model, chunks in ((convolutional, (2, 2, 32, (40, 40))), (convolutional, (1, 2, 64, 80)),
                          (dense, (4, 2, 64, 80))):
        expected = model.eval().forward(pictures)
        assert expected.dtype == np.result_type(picture_dtype, np.float32)
        result = cd.apply(model, da.from_array(pictures, chunks=chunks))
        assert result.dtype == expected.dtype, chunks
        computed = result.compute(scheduler="threads")
        assert computed.dtype == expected.dtype, chunks
        if expected.dtype == np.float64:
            np.testing.assert_array_equal(computed, expected, err_msg=str(chunks))
        else:  # float32: the kernels chosen for a block may sum in another order
            np.testing.assert_allclose(computed, expected, rtol=1e-5, atol=1e-6)


def test_batch_chunks_model_and_function():
    rng = np.random.default_rng(2)
    digits = rng.random((50, 1, 8, 8), dtype=np.float32)
    model = lenet5(8, seed=0)
    x = da.from_array(digits, chunks=(16, 1, 8, 8))
    result = cd.apply(model, x)
    assert result.shape == (50, 10) and result.chunks == ((16, 16, 16, 2), (10,))
    # float32 dense layers: BLAS may sum in another order for another batch size
    np.testing.assert_allclose(result.compute(scheduler="threads"), nn.predict(model, digits),
                               rtol=1e-5, atol=1e-7)
    pool = functools.partial(convpool.max_pool2d, kernel_size=2)
    pooled = cd.apply(pool, x)
    assert pooled.shape == (50, 1, 4, 4)
    np.testing.assert_array_equal(pooled.compute(scheduler="threads"),
                                  convpool.max_pool2d(digits, kernel_size=2))


def test_local_cluster_processes():
    distributed = pytest.importorskip("distributed")
    # The picture is made on the workers (a seeded dask random array), so the graph
    # stays small; the in-memory reference is the same array, computed once.
    x = da.random.RandomState(0).random_sample(SHAPE, chunks=CHUNKS)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        picture = x.compute()
        cnn = small_cnn(np.float64)
        images = x[None, None].rechunk((1, 1, CHUNKS, CHUNKS))
        batch = x.reshape(10, 1, 200, 3000).rechunk((5, 1, 200, 3000))
        pool = functools.partial(convpool.max_pool2d, kernel_size=3, stride=2)
        cnn_result, sobel_result, pooled = client.compute(
            [cd.apply(cnn, images), cd.apply(sobel_layer(np.float32), x.astype(np.float32)),
             cd.apply(pool, batch)],
            sync=True)
    np.testing.assert_array_equal(cnn_result[0], in_memory(cnn, picture))
    np.testing.assert_allclose(
        sobel_result,
        convpool.conv2d(picture.astype(np.float32), SOBEL.astype(np.float32), padding="same"),
        rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        pooled, convpool.max_pool2d(picture.reshape(10, 1, 200, 3000), kernel_size=3, stride=2))


def test_chunkings_that_cannot_be_exact():
    model = small_cnn(np.float64)
    picture = da.zeros((1, 1, 300, 300), chunks=(1, 1, 100, 150))
    with pytest.raises(ValueError, match="multiples of the net's total stride 8"):
        cd.apply(model, picture)
    with pytest.raises(ValueError, match="smaller than the halo"):
        cd.apply(model, da.zeros((1, 1, 300, 300), chunks=(1, 1, (8, 292), 300)))
    with pytest.raises(ValueError, match="owns no output pixel"):
        cd.apply(model, da.zeros((1, 1, 300, 300), chunks=(1, 1, (96, 184, 20), 300)))
    strided_same = nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding depends on the picture's size"):
        cd.apply(strided_same, da.zeros((1, 1, 100, 101), chunks=(1, 1, 50, 101)))
    with pytest.raises(ValueError, match="fully convolutional"):
        cd.apply(lenet5(8, seed=0), da.zeros((4, 1, 8, 8), chunks=(4, 1, 4, 8)))
    with pytest.raises(ValueError, match="a function has no receptive field"):
        cd.apply(np.abs, da.zeros((300, 300), chunks=100))


def test_wrong_arguments():
    with pytest.raises(TypeError, match="array: expected a dask.array"):
        cd.apply(sobel_layer(np.float64), np.zeros((10, 10)))
    with pytest.raises(TypeError, match="model_or_function"):
        cd.apply("sobel", da.zeros((10, 10)))
    with pytest.raises(ValueError, match=r"array: expected \(N, C, H, W\)"):
        cd.apply(sobel_layer(np.float64), da.zeros((1, 10, 10)))


def test_import_convpool_does_not_import_dask():
    code = ("import sys, convpool; assert 'dask' not in sys.modules; "
            "assert convpool.dask.apply and 'dask' not in sys.modules; "
            "import convpool.viz; assert 'dask' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tasks_carry_the_net_without_its_saved_arrays(picture):
    import pickle

    model = small_cnn(np.float64)
    model.forward(picture[None, None])  # the layers now hold the picture and their maps
    runner = cd._ModelRunner(model)
    copy = pickle.loads(pickle.dumps(runner))
    assert len(pickle.dumps(runner)) < 100_000
    assert model[0]._input is not None and copy.model[0]._input is None
    np.testing.assert_array_equal(copy(picture[None, None, :40, :40]),
                                  model.eval().forward(picture[None, None, :40, :40]))


def test_throughput_benchmark_runs_and_checks(capsys):
    from convpool.bench import dask_picture

    results = dask_picture.measure(96, 128, chunk=32, repeats=1, cluster=False)
    assert set(results["rows"]) == {"in memory", "dask threads"}
    for row in results["rows"].values():
        assert row["seconds"] > 0 and row["max_abs_difference"] <= 1e-5
    assert dask_picture.main(["--height", "64", "--width", "96", "--chunk", "32",
                              "--repeats", "1", "--no-cluster"]) == 0
    assert "Mpixel/s" in capsys.readouterr().out


def random_window_net(rng: np.random.Generator, channels: int) -> nn.Sequential:
    """1-3 convolutions of random kernel, stride, padding and padding mode (half the nets
    one mode throughout), activations and now and then a max pooling, in float64."""
    layers = []
    one_mode = str(rng.choice(PADDING_MODES)) if rng.random() < 0.5 else None
    for index in range(int(rng.integers(1, 4))):
        kernel = int(rng.integers(1, 4))
        out_channels = int(rng.integers(1, 3))
        layers.append(nn.Conv2d(channels, out_channels, kernel, stride=int(rng.integers(1, 3)),
                                padding=int(rng.integers(0, kernel)),
                                padding_mode=one_mode or str(rng.choice(PADDING_MODES)),
                                dtype=np.float64, seed=index))
        layers.append(nn.Tanh())
        if rng.random() < 0.3:
            layers.append(nn.MaxPool2d(2))
        channels = out_channels
    return nn.Sequential(*layers)


def test_random_nets_and_chunkings_are_exact_or_refused():
    """Whatever the padding modes, strides and chunks: the in-memory result bit for bit,
    or a ValueError before anything runs."""
    rng = np.random.default_rng(8)
    computed = {"circular": 0, "other": 0}
    refused = 0
    for _ in range(60):
        channels = int(rng.integers(1, 3))
        size = 4 * rng.integers(6, 17, 2) + rng.integers(0, 4, 2) * (rng.random() < 0.5)
        pictures = rng.random((1, channels, int(size[0]), int(size[1])))
        model = random_window_net(rng, channels)
        try:
            expected = model.eval().forward(pictures)
        except ValueError:
            continue  # a net this picture cannot go through at all
        chunks = tuple(int(rng.choice([8, 12, 16, 20, 32])) for _ in range(2))
        x = da.from_array(pictures, chunks=(1, channels, *chunks))
        try:
            result = cd.apply(model, x)
        except ValueError as error:
            assert str(error)
            refused += 1
            continue
        np.testing.assert_array_equal(result.compute(scheduler="sync"), expected,
                                      err_msg=repr(model))
        circular = any(getattr(layer, "padding_mode", "") == "circular" for layer in model)
        computed["circular" if circular else "other"] += 1
    # the test means something only if both kinds of net ran, and not everything was refused
    assert computed["circular"] >= 4 and computed["other"] >= 10, (computed, refused)
