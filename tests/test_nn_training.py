"""Training on real digits (scikit-learn's 8x8 set) and the training helpers."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest
from convpool import nn
from convpool.models import lenet5

datasets = pytest.importorskip("convpool.datasets")


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return datasets.load_digits(test_size=0.2, seed=0)


def test_lenet5_learns_the_digits(digits):
    model = lenet5(8, seed=0)
    loss = nn.CrossEntropyLoss()
    before = nn.evaluate(model, loss, digits.x_test, digits.y_test)
    history = nn.fit(model, loss, nn.Adam(model.parameters(), lr=2e-3), digits.x_train,
                     digits.y_train, epochs=3, batch_size=32, seed=0, verbose=0,
                     validation_data=(digits.x_test, digits.y_test))
    after = nn.evaluate(model, loss, digits.x_test, digits.y_test)
    assert len(history) == 3 and len(history.val_accuracy) == 3
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert after.loss < 0.5 * before.loss
    assert before.accuracy < 0.3  # chance is 0.1
    assert after.accuracy > 0.85, after
    assert history.val_accuracy[-1] == pytest.approx(after.accuracy)


def test_fit_is_reproducible_with_a_seed(digits):
    results = []
    for _ in range(2):
        model = lenet5(8, seed=3)
        history = nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model.parameters(), lr=0.05,
                         momentum=0.9), digits.x_train[:256], digits.y_train[:256], epochs=2,
                         batch_size=64, seed=5, verbose=0)
        results.append((history.loss, model[0].weight.data.copy()))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


def test_softmax_output_trains_on_logits(digits, rng):
    model = lenet5(8, seed=0)
    assert isinstance(model[-1], nn.Softmax)
    loss = nn.CrossEntropyLoss()
    assert nn.training.training_net(model, loss)[-1] is model[-2]
    assert nn.training.training_net(model, nn.MSELoss()) is model
    result = nn.train_epoch(model, loss, nn.Adam(model.parameters()), digits.x_train[:64],
                            digits.y_train[:64], 32, seed=0)
    assert result.samples == 64 and 0 <= result.accuracy <= 1
    probabilities = nn.predict(model, digits.x_test[:10], batch_size=4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_evaluate_restores_the_mode_and_predict_batches(digits):
    model = lenet5(8, seed=0)
    model.train()
    nn.evaluate(model, nn.CrossEntropyLoss(), digits.x_test[:10], digits.y_test[:10], 3)
    assert model.training and model[0].training
    model.eval()
    whole = model(digits.x_test[:7])
    np.testing.assert_allclose(nn.predict(model, digits.x_test[:7], batch_size=3), whole,
                               rtol=1e-6)
    assert not model.training


def test_regression_targets_have_no_accuracy(rng):
    model = nn.Sequential(nn.Dense(3, 1, seed=0))
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    history = nn.fit(model, nn.MSELoss(), nn.SGD(model, lr=0.1), x, y, epochs=20, batch_size=8,
                     verbose=0)
    assert history.accuracy[-1] is None
    assert history.loss[-1] < 1e-3 * history.loss[0]


def test_training_helpers_check_their_arguments(rng):
    model = nn.Sequential(nn.Dense(3, 2, seed=0))
    optimizer = nn.SGD(model.parameters(), lr=0.1)
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="one target per sample"):
        nn.train_epoch(model, nn.CrossEntropyLoss(), optimizer, x, np.zeros(3, int))
    with pytest.raises(ValueError, match="batch_size"):
        nn.train_epoch(model, nn.CrossEntropyLoss(), optimizer, x, np.zeros(4, int), 0)
    with pytest.raises(ValueError, match="epochs"):
        nn.fit(model, nn.CrossEntropyLoss(), optimizer, x, np.zeros(4, int), epochs=0)


def test_without_tqdm_progress_is_one_line_per_epoch(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == "tqdm":
            raise ImportError("no tqdm here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    monkeypatch.delitem(sys.modules, "tqdm", raising=False)
    model = nn.Sequential(nn.Dense(2, 2, seed=0))
    x = np.zeros((10, 2), np.float32)
    nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model, lr=0.1), x, np.zeros(10, int),
           epochs=2, batch_size=4)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "loss" in lines[0] and "acc" in lines[0]


@pytest.mark.parametrize("verbose", [0, 2])
def test_verbosity_levels(verbose, capsys):
    model = nn.Sequential(nn.Dense(2, 2, seed=0))
    x = np.zeros((10, 2), np.float32)
    nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model, lr=0.1), x, np.zeros(10, int),
           epochs=3, batch_size=4, verbose=verbose, validation_data=(x, np.zeros(10, int)))
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == (0 if verbose == 0 else 3)
    assert len(captured.out.splitlines()) == (0 if verbose == 0 else 3)
    with pytest.raises(ValueError, match="verbose"):
        nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model, lr=0.1), x, np.zeros(10, int),
               verbose=3)


def test_fit_and_evaluate_refuse_zero_samples():
    model = nn.Sequential(nn.Dense(2, 2, seed=0))
    empty = np.zeros((0, 2), np.float32)
    with pytest.raises(ValueError, match="at least one sample"):
        nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model, lr=0.1), empty,
               np.zeros(0, int), verbose=0)
    with pytest.raises(ValueError, match="at least one sample"):
        nn.evaluate(model, nn.CrossEntropyLoss(), empty, np.zeros(0, int))


def test_an_epoch_result_reads_as_accuracy_count_and_loss():
    assert str(nn.EpochResult(loss=0.5, accuracy=0.75, samples=4, seconds=1.0)) == \
        "accuracy: 0.7500 (3 of 4), loss: 0.5000"
    assert str(nn.EpochResult(loss=0.25, accuracy=None, samples=4, seconds=1.0)) == \
        "loss: 0.2500"
