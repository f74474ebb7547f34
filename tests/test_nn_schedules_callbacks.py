"""AdamW, SGD's weight decay and the learning-rate schedules against torch.optim, and
fit's callbacks (best weights, early stopping)."""

from __future__ import annotations

import numpy as np
import pytest
from convpool import nn


def _quadratic_steps(optimizer_pair, steps, rng, scheduler_pair=None):
    """Run both optimizers on the same quadratic; returns both parameter tracks."""
    torch = pytest.importorskip("torch")
    ours_param, theirs_param, ours, theirs = optimizer_pair
    ours_schedule, theirs_schedule = scheduler_pair or (None, None)
    target = rng.standard_normal(ours_param.shape)
    rates = []
    for _ in range(steps):
        ours_param.grad = 2 * (ours_param.data - target)
        ours.step()
        theirs.zero_grad()
        ((theirs_param - torch.from_numpy(target)) ** 2).sum().backward()
        theirs.step()
        if ours_schedule is not None:
            ours_schedule.step()
            theirs_schedule.step()
            rates.append((ours.lr, theirs.param_groups[0]["lr"]))
        np.testing.assert_allclose(ours_param.data, theirs_param.detach().numpy(), rtol=1e-9,
                                   atol=1e-12)
    return rates


def _pair(optimizer, torch_optimizer, rng, **kwargs):
    torch = pytest.importorskip("torch")
    start = rng.standard_normal((3, 4))
    ours_param = nn.Parameter((3, 4), np.float64, lambda g, s, d: start.copy(), 0, "w")
    theirs_param = torch.tensor(start, requires_grad=True)
    return (ours_param, theirs_param, optimizer([ours_param], **kwargs),
            torch_optimizer([theirs_param], **kwargs))


@pytest.mark.torch
@pytest.mark.parametrize("name, kwargs", [
    ("AdamW", dict(lr=0.05, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, weight_decay=0.5)),
])
def test_optimizer_with_weight_decay_matches_torch(name, kwargs, rng):
    torch = pytest.importorskip("torch")
    pair = _pair(getattr(nn, name), getattr(torch.optim, name), rng, **kwargs)
    _quadratic_steps(pair, 20, rng)


@pytest.mark.torch
@pytest.mark.parametrize("name, kwargs, optimizer", [
    ("StepLR", dict(step_size=3, gamma=0.5), "SGD"),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), "SGD"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=20), "SGD"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=20, pct_start=0.25), "Adam"),
])
def test_schedule_matches_torch(name, kwargs, optimizer, rng):
    torch = pytest.importorskip("torch")
    extra = dict(momentum=0.9) if optimizer == "SGD" else {}
    pair = _pair(getattr(nn, optimizer), getattr(torch.optim, optimizer), rng, lr=0.05, **extra)
    schedules = (getattr(nn, name)(pair[2], **kwargs),
                 getattr(torch.optim.lr_scheduler, name)(pair[3], **kwargs))
    rates = _quadratic_steps(pair, 19 if name == "OneCycleLR" else 15, rng, schedules)
    for ours, theirs in rates:
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_schedules_check_their_arguments():
    optimizer = nn.SGD([nn.Parameter((1,), np.float32, lambda g, s, d: np.ones(s), 0, "w")])
    with pytest.raises(ValueError, match="step_size"):
        nn.StepLR(optimizer, 0)
    with pytest.raises(ValueError, match="pct_start"):
        nn.OneCycleLR(optimizer, 0.1, 10, pct_start=1.5)
    schedule = nn.OneCycleLR(optimizer, 0.1, 2)
    schedule.step()
    schedule.step()
    with pytest.raises(ValueError, match="past total_steps"):
        schedule.step()
    with pytest.raises(TypeError, match="optimizer"):
        nn.StepLR("sgd", 1)


def _problem(rng):
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return x, y


def test_best_weights_restores_the_best_epoch(rng):
    x, y = _problem(rng)
    model = nn.Sequential(nn.Dense(4, 2, seed=0))
    best = nn.BestWeights(monitor="val_loss")
    states = []

    class Record:
        def on_epoch_end(self, epoch, history, model):
            states.append(model.state_dict())

    # A learning rate large enough to make the validation loss go up and down.
    history = nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model, lr=5.0), x, y, epochs=8,
                     batch_size=60, validation_data=(x[:20], y[:20]), verbose=0,
                     callbacks=[best, Record()])
    best_epoch = int(np.argmin(history.val_loss)) + 1
    assert best.best_epoch == best_epoch
    for key, value in model.state_dict().items():
        assert np.array_equal(value, states[best_epoch - 1][key])


def test_early_stopping_stops_after_patience_epochs_without_improvement(rng):
    x, y = _problem(rng)
    model = nn.Sequential(nn.Dense(4, 2, seed=0))
    stop = nn.EarlyStopping(monitor="loss", patience=2, min_delta=10.0)  # never improves
    history = nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model, lr=0.1), x, y, epochs=20,
                     verbose=0, callbacks=[stop])
    assert len(history) == 3 and stop.stopped_epoch == 3 and stop.best_epoch == 1
    with pytest.raises(ValueError, match="validation_data"):
        nn.fit(model, nn.CrossEntropyLoss(), nn.SGD(model, lr=0.1), x, y, epochs=2, verbose=0,
               callbacks=[nn.EarlyStopping()])
    with pytest.raises(ValueError, match="monitor"):
        nn.EarlyStopping(monitor="val_acc")


def test_fit_steps_an_epoch_schedule_once_per_epoch(rng):
    x, y = _problem(rng)
    model = nn.Sequential(nn.Dense(4, 2, seed=0))
    optimizer = nn.SGD(model, lr=1.0)
    nn.fit(model, nn.CrossEntropyLoss(), optimizer, x, y, epochs=4, batch_size=16, verbose=0,
           scheduler=nn.StepLR(optimizer, 1, gamma=0.5))
    assert optimizer.lr == 1.0 / 16
