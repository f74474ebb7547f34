"""convpool.viz: each plot renders (Agg) to a valid PNG of the expected size that is not
blank, and wrong arguments are refused."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
from convpool import nn, viz  # noqa: E402
from convpool.models import lenet5  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, figure, dpi=100) -> np.ndarray:
    """A PNG whose pixel size is the figure's size times dpi, with real content."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(path)
    width, height = figure.get_size_inches() * dpi
    assert pixels.shape[:2] == (round(height), round(width))
    rgb = pixels[..., :3]
    # Not blank: many distinct colours, and far from all-white.
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20
    assert rgb.mean() < 0.99
    return pixels


def test_kernels_of_a_net(tmp_path):
    model = lenet5(8, seed=0)
    path = tmp_path / "kernels.png"
    figure = viz.plot_kernels(model, layer=1, max_kernels=24, path=path, dpi=80)
    pixels = check_png(path, figure, dpi=80)
    assert pixels.shape[1] > pixels.shape[0]  # 6 input channels across, 4 rows down
    assert len(figure.axes) == 4 * 6 + 1  # the kernels and the colour bar


def test_kernels_of_a_weight_array(tmp_path):
    weight = np.array([[[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]]], dtype=np.float32)
    path = tmp_path / "sobel.png"
    check_png(path, viz.plot_kernels(weight, path=path))


def test_feature_maps(tmp_path):
    model = lenet5(8, seed=0)
    x = np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)
    path = tmp_path / "maps.png"
    figure = viz.plot_feature_maps(model, x, max_maps=6, path=path)
    check_png(path, figure)
    # input + conv, tanh, pool, conv, tanh, pool: seven rows of six maps
    assert len(figure.axes) == 7 * 6
    assert not model.training


def test_history(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 40)
    model = lenet5(8, seed=0)
    history = nn.fit(model, nn.CrossEntropyLoss(), nn.Adam(model.parameters()), x, y,
                     epochs=3, batch_size=20, validation_data=(x[:10], y[:10]),
                     verbose=0)
    path = tmp_path / "history.png"
    figure = viz.plot_history(history, path=path)
    check_png(path, figure)
    loss_axis, accuracy_axis = figure.axes
    assert len(loss_axis.lines) == 2 and len(accuracy_axis.lines) == 2


def test_returns_a_figure_without_writing(tmp_path):
    from matplotlib.figure import Figure

    figure = viz.plot_kernels(np.ones((2, 1, 3, 3)))
    assert isinstance(figure, Figure)
    assert list(tmp_path.iterdir()) == []


def test_wrong_arguments():
    with pytest.raises(ValueError, match="layer"):
        viz.plot_kernels(lenet5(8, seed=0), layer=2)
    with pytest.raises(ValueError, match="model_or_weight"):
        viz.plot_kernels(np.ones((3, 3)))
    with pytest.raises(ValueError, match="x: expected one picture"):
        viz.plot_feature_maps(lenet5(8, seed=0), np.ones((1, 1, 8, 8)))
    with pytest.raises(TypeError, match="history"):
        viz.plot_history({"loss": [1.0]})
    with pytest.raises(ValueError, match="no epoch"):
        viz.plot_history(nn.History())


def test_feature_maps_example(tmp_path):
    import importlib.util
    from pathlib import Path

    pytest.importorskip("sklearn")
    script = Path(__file__).resolve().parents[1] / "examples" / "feature_maps.py"
    spec = importlib.util.spec_from_file_location("feature_maps_example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    output, kernels, history = (tmp_path / name for name in ("maps.png", "k.png", "h.png"))
    assert example.main(["--data", "digits", "--epochs", "1", "--output", str(output),
                         "--kernels", str(kernels), "--history", str(history)]) == 0
    for path in (output, kernels, history):
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert matplotlib.image.imread(path)[..., :3].std() > 0.05
