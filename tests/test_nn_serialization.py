"""save/load of parameters as .npz, and loading PyTorch state dicts."""

from __future__ import annotations

import numpy as np
import pytest
from convpool import nn
from convpool.models import lenet5


def test_save_then_load_restores_every_parameter(tmp_path, rng):
    model = lenet5(8, seed=1)
    model.save(tmp_path / "lenet.npz")
    other = lenet5(8, seed=2)
    assert not np.array_equal(other[0].weight.data, model[0].weight.data)
    other.load(tmp_path / "lenet.npz")
    for (name, p), (_, q) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        assert np.array_equal(p.data, q.data), name
        assert q.data.dtype == np.float32
    with np.load(tmp_path / "lenet.npz") as archive:
        assert sorted(archive.files) == sorted(name for name, _ in model.named_parameters())


def test_functions_and_dtype_conversion(tmp_path):
    model = nn.Sequential(nn.Dense(3, 2, seed=0))
    nn.save(model, tmp_path / "m.npz")
    other = nn.Sequential(nn.Dense(3, 2, dtype=np.float64, seed=1))
    nn.load(other, tmp_path / "m.npz")
    assert other[0].weight.data.dtype == np.float64
    np.testing.assert_array_equal(other[0].weight.data, model[0].weight.data)


def test_load_state_dict_checks_keys_and_shapes():
    model = nn.Sequential(nn.Dense(3, 2, seed=0), nn.ReLU(), nn.Dense(2, 1, seed=0))
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['2.bias'\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "2.bias"})
    with pytest.raises(ValueError, match="unexpected keys"):
        model.load_state_dict({**state, "9.weight": np.zeros(1)})
    with pytest.raises(ValueError, match=r"state\['0.weight'\]: expected shape \(2, 3\)"):
        model.load_state_dict({**state, "0.weight": np.zeros((3, 2))})
    partial = {"0.bias": np.array([5.0, 6.0])}
    model.load_state_dict(partial, strict=False)
    np.testing.assert_array_equal(model[0].bias.data, [5.0, 6.0])


@pytest.mark.torch
def test_pytorch_state_dict_loads_into_the_same_sequential(rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    ours = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Dense(32, 3))
    ours.load_state_dict(theirs.state_dict())  # torch tensors are accepted as they are
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-5, atol=1e-6)
