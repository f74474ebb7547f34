"""One epoch of LeNet-5 training on random 28x28 images: convpool.nn against the same net in
PyTorch, same threads, same initial weights, same optimizer.

The epoch is cut into chunks that the two libraries train in turn (so machine drift hits
both); each library's epoch time is the sum of its chunks. convpool trains with
:func:`convpool.nn.train_epoch`, PyTorch with the usual loop. Besides wall time, each
library's process CPU time (all threads; spinning OpenMP threads count) and minor page
faults over its chunks are recorded: on a busy machine they say where wall time went.
"""

from __future__ import annotations

import contextlib
import resource
import time

import numpy as np

from .cases import TRAINING_CASE

EPOCH_IMAGES = 60_000
BATCH_SIZE = 64
CHUNKS = 10
LEARNING_RATE = 0.01
MOMENTUM = 0.9


def _have_threadpoolctl() -> bool:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


def _blas_threads(threads: int):
    """NumPy's BLAS (convpool's dense layers) limited to the suite's thread count while
    convpool trains, if threadpoolctl is there to do it; otherwise BLAS keeps its default."""
    if not _have_threadpoolctl():
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads, user_api="blas")


class _ConvpoolTrainer:
    def __init__(self, threads: int, seed: int) -> None:
        import convpool
        from convpool import nn
        from convpool.models import lenet5

        convpool.set_num_threads(threads)
        self.model = lenet5(seed=seed)
        self.loss = nn.CrossEntropyLoss()
        self.optimizer = nn.SGD(self.model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        self.train_epoch = nn.train_epoch
        self.threads = threads

    def train(self, x: np.ndarray, y: np.ndarray) -> float:
        with _blas_threads(self.threads):
            result = self.train_epoch(self.model, self.loss, self.optimizer, x, y, BATCH_SIZE,
                                      shuffle=False)
        return result.loss


class _TorchTrainer:
    def __init__(self, threads: int, state: dict[str, np.ndarray]) -> None:
        import torch

        from convpool.models import lenet5_torch

        self.torch = torch
        self.threads = threads
        # Without the final Softmax: CrossEntropyLoss takes logits (as train_epoch does).
        self.net = lenet5_torch()[:-1]
        self.net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        self.loss = torch.nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=LEARNING_RATE,
                                         momentum=MOMENTUM)

    def train(self, x: np.ndarray, y: np.ndarray) -> float:
        torch = self.torch
        torch.set_num_threads(self.threads)
        total = 0.0
        for start in range(0, len(x), BATCH_SIZE):
            xb = torch.from_numpy(x[start:start + BATCH_SIZE])
            yb = torch.from_numpy(y[start:start + BATCH_SIZE])
            self.optimizer.zero_grad()
            value = self.loss(self.net(xb), yb)
            value.backward()
            self.optimizer.step()
            total += value.item() * len(xb)
        return total / len(x)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure_training(images: int, threads: int, with_torch: bool, seed: int = 0) -> dict:
    """Seconds per library for ``images`` random images (projected to a 60000-image epoch
    in the report when fewer)."""
    record: dict = {"case": TRAINING_CASE, "images": images, "epoch_images": EPOCH_IMAGES,
                    "batch_size": BATCH_SIZE, "threads": threads,
                    "optimizer": f"SGD lr {LEARNING_RATE} momentum {MOMENTUM}",
                    "loss": "cross entropy", "runs": {}, "ratio": None, "note": ""}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((images, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, images)
    trainers = {"convpool": _ConvpoolTrainer(threads, seed)}
    initial_state = {k: np.array(v) for k, v in trainers["convpool"].model.state_dict().items()}
    trainers["convpool"].train(x[:BATCH_SIZE], y[:BATCH_SIZE])  # warm-up batch
    record["blas_threads_set"] = _have_threadpoolctl()
    if with_torch:
        try:
            trainers["torch"] = _TorchTrainer(threads, initial_state)
            trainers["torch"].train(x[:BATCH_SIZE], y[:BATCH_SIZE])
        except ImportError as error:
            record["note"] = f"PyTorch is not importable ({error}); convpool alone"
    chunk = max(BATCH_SIZE, -(-images // CHUNKS) // BATCH_SIZE * BATCH_SIZE)
    seconds = dict.fromkeys(trainers, 0.0)
    cpu_seconds = dict.fromkeys(trainers, 0.0)
    page_faults = dict.fromkeys(trainers, 0)
    losses = {}
    for index, start in enumerate(range(0, images, chunk)):
        order = list(trainers) if index % 2 == 0 else list(trainers)[::-1]
        for name in order:
            faults, cpu, begin = _minor_faults(), time.process_time(), time.perf_counter()
            losses[name] = trainers[name].train(x[start:start + chunk], y[start:start + chunk])
            seconds[name] += time.perf_counter() - begin
            cpu_seconds[name] += time.process_time() - cpu
            page_faults[name] += _minor_faults() - faults
    record["runs"] = {name: {"seconds": seconds[name], "cpu_seconds": cpu_seconds[name],
                             "page_faults": page_faults[name], "final_loss": losses[name]}
                      for name in trainers}
    if "torch" in seconds:
        record["ratio"] = seconds["torch"] / seconds["convpool"]
    if images < EPOCH_IMAGES:
        note = f"{images} images timed; epoch seconds projected to {EPOCH_IMAGES}"
        record["note"] = f"{record['note']}; {note}" if record["note"] else note
    return record
