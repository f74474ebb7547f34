"""One pass of one case, as a zero-argument call, for convpool and for each peer library.

Every call returns its outputs (the output, then the gradients) so that the suite can check
convpool against a peer once per case; timing ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .cases import Case, ConvCase

LIBRARIES = ("convpool", "torch", "opencv")


class Unavailable(Exception):
    """A library, or a function the case needs, is missing here; the message says which."""


@dataclass
class Runner:
    """A library running one case and pass on a given number of threads."""

    library: str
    threads: int
    call: Callable[[], tuple]
    set_threads: Callable[[int], None]
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.library

    def prepare(self) -> None:
        """Set this runner's thread count (runners of one library may differ in it)."""
        self.set_threads(self.threads)


def output_names(case: Case, pass_: str) -> tuple[str, ...]:
    if pass_ == "fwd":
        return ("output",)
    if isinstance(case, ConvCase):
        return ("output", "grad_input", "grad_weight", "grad_bias")
    return ("output", "grad_input")


def as_numpy(value: object) -> np.ndarray:
    """A NumPy view of an output of any library (PyTorch tensors are detached first)."""
    detach = getattr(value, "detach", None)
    return np.asarray(detach().numpy() if detach is not None else value)


def make_runner(library: str, case: Case, pass_: str, arrays: dict, threads: int) -> Runner:
    """The runner of ``library``, or :class:`Unavailable` saying why there is none."""
    makers = {"convpool": _convpool, "torch": _torch, "opencv": _opencv}
    call, set_threads = makers[library](case, pass_, arrays)
    return Runner(library, threads, call, set_threads)


def _convpool(case: Case, pass_: str, arrays: dict):
    import convpool

    if isinstance(case, ConvCase):
        return _convpool_conv(convpool, case, pass_, arrays), convpool.set_num_threads
    return _convpool_pool(convpool, case, pass_, arrays), convpool.set_num_threads


def _convpool_conv(cp, case: ConvCase, pass_: str, arrays: dict) -> Callable[[], tuple]:
    x, weight, bias, grad_output = (arrays[k] for k in ("x", "weight", "bias", "grad_output"))
    geometry = dict(stride=case.stride, padding=case.padding, groups=case.groups)

    def forward() -> tuple:
        return (cp.conv2d(x, weight, bias, **geometry),)

    def forward_backward() -> tuple:
        return (
            cp.conv2d(x, weight, bias, **geometry),
            cp.conv2d_grad_input(grad_output, weight, x.shape, **geometry),
            cp.conv2d_grad_weight(x, grad_output, weight.shape, **geometry),
            cp.conv2d_grad_bias(grad_output),
        )

    return forward if pass_ == "fwd" else forward_backward


def _convpool_pool(cp, case, pass_: str, arrays: dict) -> Callable[[], tuple]:
    pool_name = f"{case.mode}_pool2d"
    pool, grad_input = getattr(cp, pool_name), getattr(cp, f"{pool_name}_grad_input")
    x, grad_output = arrays["x"], arrays["grad_output"]
    geometry = dict(kernel_size=case.kernel, stride=case.stride, padding=case.padding)

    def forward() -> tuple:
        return (pool(x, **geometry),)

    def max_forward_backward() -> tuple:
        y, indices = pool(x, **geometry, return_indices=True)
        return y, grad_input(grad_output, indices, x.shape)

    def avg_forward_backward() -> tuple:
        return pool(x, **geometry), grad_input(grad_output, x.shape, **geometry)

    if pass_ == "fwd":
        return forward
    return max_forward_backward if case.mode == "max" else avg_forward_backward


def _import_torch():
    try:
        import torch
    except ImportError as error:
        raise Unavailable(f"PyTorch is not importable ({error})") from None
    return torch


def _torch(case: Case, pass_: str, arrays: dict):
    torch = _import_torch()
    functional = torch.nn.functional
    # Shared memory with the NumPy operands: both libraries read the same bytes.
    x = torch.from_numpy(arrays["x"].reshape(case.input_shape))
    grad_output = torch.from_numpy(arrays["grad_output"].reshape(case.output_shape))
    if isinstance(case, ConvCase):
        weight = torch.from_numpy(arrays["weight"].reshape(case.weight_shape))
        bias = torch.from_numpy(arrays["bias"])
        leaves = (x, weight, bias)

        def apply(x, weight, bias):
            return functional.conv2d(
                x, weight, bias, stride=case.stride, padding=case.padding, groups=case.groups
            )
    else:
        leaves = (x,)
        pool = functional.max_pool2d if case.mode == "max" else functional.avg_pool2d

        def apply(x):
            return pool(x, case.kernel, case.stride, case.padding)

    def forward() -> tuple:
        with torch.no_grad():
            return (apply(*leaves),)

    def forward_backward() -> tuple:
        for leaf in gradient_leaves:
            leaf.grad = None  # a fresh gradient each call, as a training step has
        y = apply(*gradient_leaves)
        y.backward(grad_output)
        return (y, *(leaf.grad for leaf in gradient_leaves))

    if pass_ == "fwd":
        return forward, torch.set_num_threads
    gradient_leaves = tuple(leaf.detach().requires_grad_() for leaf in leaves)
    return forward_backward, torch.set_num_threads


def _opencv(case: Case, pass_: str, arrays: dict):
    if not (isinstance(case, ConvCase) and case.picture and pass_ == "fwd"):
        raise Unavailable("OpenCV filter2D is a peer for the picture case's forward pass only")
    if case.stride != 1 or case.kernel % 2 == 0 or case.padding != case.kernel // 2:
        raise Unavailable("OpenCV filter2D computes odd 'same' filters with stride 1 only")
    try:
        import cv2
    except ImportError as error:
        raise Unavailable(f"OpenCV is not importable ({error})") from None
    x, kernel = arrays["x"], arrays["weight"]
    delta = float(arrays["bias"][0])

    def forward() -> tuple:
        # filter2D correlates (as conv2d does); BORDER_CONSTANT pads with zeros.
        return (cv2.filter2D(x, -1, kernel, delta=delta, borderType=cv2.BORDER_CONSTANT),)

    return forward, cv2.setNumThreads
