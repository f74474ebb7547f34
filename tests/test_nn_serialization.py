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


def test_loading_converts_to_the_models_dtype(tmp_path):
    model = nn.Sequential(nn.Dense(3, 2, seed=0))
    model.save(tmp_path / "m.npz")
    other = nn.Sequential(nn.Dense(3, 2, dtype=np.float64, seed=1))
    other.load(tmp_path / "m.npz")
    assert other[0].weight.data.dtype == np.float64
    np.testing.assert_array_equal(other[0].weight.data, model[0].weight.data)


def test_load_state_dict_checks_keys_and_shapes():
    model = nn.Sequential(nn.Dense(3, 2, seed=0), nn.ReLU(), nn.Dense(2, 1, seed=0))
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['2.bias'\], unexpected keys \['9.w'\]"):
        model.load_state_dict({**{k: v for k, v in state.items() if k != "2.bias"},
                               "9.w": np.zeros(1)})
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


def test_save_and_load_add_the_npz_suffix_the_same_way(tmp_path):
    model = lenet5(8, seed=1)
    model.save(tmp_path / "model")
    assert (tmp_path / "model.npz").exists()
    other = lenet5(8, seed=2)
    other.load(tmp_path / "model")
    assert np.array_equal(other[0].weight.data, model[0].weight.data)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        other.load(tmp_path / "missing")


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_damaged_npz_is_a_value_error_naming_the_file(tmp_path, damage):
    model = lenet5(8, seed=1)
    model.save(tmp_path / "model.npz")
    data = (tmp_path / "model.npz").read_bytes()
    (tmp_path / "model.npz").write_bytes(b"" if damage == "empty" else data[:len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.npz.*(empty|not a complete)"):
        model.load(tmp_path / "model.npz")


def test_a_failed_load_changes_nothing():
    model = lenet5(8, seed=0)
    before = model.state_dict()
    bad = {key: value + 1 for key, value in before.items()}
    last = list(bad)[-1]
    bad[last] = np.ones(3)
    with pytest.raises(ValueError, match="expected shape"):
        model.load_state_dict(bad)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key


def test_wrapped_pytorch_keys_and_buffers_load():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False, seed=0), nn.BatchNorm2d(2))
    state = {f"module.{k}": v + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model[1].running_var.tolist() == [2.0, 2.0]
    assert model[1].num_batches_tracked == 1 and model[1].num_batches_tracked.dtype == np.int64


def test_a_pytorch_file_without_torch_gets_a_clear_message(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    (tmp_path / "weights.pt").write_bytes(b"not read")
    with pytest.raises(ValueError, match="weights.pt.*PyTorch file.*needs torch"):
        lenet5(8).load(tmp_path / "weights.pt")


@pytest.mark.torch
def test_a_pytorch_file_loads_through_torch(tmp_path):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    torch.save(theirs.state_dict(), tmp_path / "weights.pt")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    ours.load(tmp_path / "weights.pt")
    assert np.array_equal(ours[0].weight.data, theirs[0].weight.detach().numpy())
