"""The benchmark cases, as a data table: a picture, LeNet, VGG and ResNet layers, 1x1,
depthwise and pooling shapes.

A case knows its geometry and how much work one pass does (floating-point operations for
a convolution, bytes moved for a pooling), so a median time becomes GFLOP/s or GB/s.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import ClassVar

from ..geometry import output_size

PASSES = ("fwd", "fwd+bwd")


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return output_size(size, kernel, stride, 1, padding, padding)


@dataclass(frozen=True)
class ConvCase:
    """A float32 convolution ``(N, C_in, H, W) -> C_out`` with a square kernel.

    ``picture`` cases filter a 2-D picture with a 2-D kernel (convpool is called with
    ``(H, W)`` arrays, and OpenCV ``filter2D`` joins as a peer). ``fma_bound`` marks the
    wide layers expected to run near the FMA peak (the 85 % target and the thread scaling).
    """

    kind: ClassVar[str] = "conv"
    unit: ClassVar[str] = "GFLOP/s"

    name: str
    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    picture: bool = False
    fma_bound: bool = False
    base: str = ""  # the main case a batch-sweep case was derived from

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (
            self.batch,
            self.out_channels,
            _out_size(self.height, self.kernel, self.stride, self.padding),
            _out_size(self.width, self.kernel, self.stride, self.padding),
        )

    def forward_flops(self) -> int:
        """``2 * N * C_out * OH * OW * (C_in / groups) * kh * kw`` (a multiply-add is 2)."""
        n, c_out, oh, ow = self.output_shape
        return 2 * n * c_out * oh * ow * (self.in_channels // self.groups) * self.kernel**2

    def work(self, pass_: str) -> int:
        """Floating-point operations of one pass. The input and weight gradients each cost
        what the forward costs; the bias gradient adds one addition per output element."""
        if pass_ == "fwd":
            return self.forward_flops()
        n, c_out, oh, ow = self.output_shape
        return 3 * self.forward_flops() + n * c_out * oh * ow

    def describe(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        text = f"{shape} -> {self.out_channels}, k{self.kernel}"
        text += f" s{self.stride}" if self.stride != 1 else ""
        text += f" p{self.padding}" if self.padding else ""
        text += f" g{self.groups}" if self.groups != 1 else ""
        return text

    def with_batch(self, batch: int) -> ConvCase:
        return dataclasses.replace(self, name=f"{self.name}-n{batch}", batch=batch, base=self.name)


@dataclass(frozen=True)
class PoolCase:
    """A float32 max or average pooling of ``(N, C, H, W)`` with a square window."""

    kind: ClassVar[str] = "pool"
    unit: ClassVar[str] = "GB/s"

    name: str
    mode: str  # "max" or "avg"
    batch: int
    channels: int
    height: int
    width: int
    kernel: int
    stride: int
    padding: int = 0
    base: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (
            self.batch,
            self.channels,
            _out_size(self.height, self.kernel, self.stride, self.padding),
            _out_size(self.width, self.kernel, self.stride, self.padding),
        )

    def work(self, pass_: str) -> int:
        """The fewest bytes one pass must read and write (float32 values, int64 indices).

        Forward reads the input and writes the output. Forward+backward of a max pool
        also writes the argmax indices, then reads them back with the output gradient and
        writes the input gradient; an average pool needs no indices.
        """
        n_in = 1
        for size in self.input_shape:
            n_in *= size
        n_out = 1
        for size in self.output_shape:
            n_out *= size
        if pass_ == "fwd":
            return 4 * (n_in + n_out)
        if self.mode == "max":
            return (4 * n_in + 12 * n_out) + (12 * n_out + 4 * n_in)
        return (4 * n_in + 4 * n_out) + (4 * n_out + 4 * n_in)

    def describe(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        text = f"{shape}, {self.mode} k{self.kernel} s{self.stride}"
        return text + (f" p{self.padding}" if self.padding else "")

    def with_batch(self, batch: int) -> PoolCase:
        return dataclasses.replace(self, name=f"{self.name}-n{batch}", batch=batch, base=self.name)


Case = ConvCase | PoolCase

MAIN_CASES: tuple[Case, ...] = (
    ConvCase("sobel-400x600", 1, 1, 400, 600, 1, 3, padding=1, picture=True),
    ConvCase("lenet-c1", 64, 1, 28, 28, 6, 5, padding=2),
    ConvCase("lenet-c2", 64, 6, 14, 14, 16, 5),
    ConvCase("vgg-c1", 4, 3, 224, 224, 64, 3, padding=1),
    ConvCase("res-64", 8, 64, 56, 56, 64, 3, padding=1, fma_bound=True),
    ConvCase("res-128", 8, 128, 28, 28, 128, 3, padding=1, fma_bound=True),
    ConvCase("res-256", 8, 256, 14, 14, 256, 3, padding=1, fma_bound=True),
    ConvCase("res-s2", 8, 64, 56, 56, 128, 3, stride=2, padding=1, fma_bound=True),
    ConvCase("pw-256-64", 8, 256, 56, 56, 64, 1),
    ConvCase("dw-32", 8, 32, 112, 112, 32, 3, padding=1, groups=32),
    PoolCase("max-2x2", "max", 8, 64, 112, 112, 2, 2),
    PoolCase("max-3x3s2", "max", 8, 64, 112, 112, 3, 2, padding=1),
    PoolCase("avg-2x2", "avg", 8, 64, 112, 112, 2, 2),
)

# A conv on a 1x1x8x8 picture does ~1000 flops: its time is the per-call overhead.
OVERHEAD_CASE = ConvCase("overhead-8x8", 1, 1, 8, 8, 1, 3, padding=1)

SWEEP_BASES = ("lenet-c2", "res-128")
SWEEP_BATCHES = (1, 2, 4, 8, 16, 32, 64)
QUICK_SWEEP_BATCHES = (1, 8, 64)

TRAINING_CASE = "lenet5-epoch"


def main_case(name: str) -> Case:
    """The main case called ``name``."""
    for case in MAIN_CASES:
        if case.name == name:
            return case
    raise ValueError(f"case: no main case is called {name!r}")


def sweep_cases(batches: tuple[int, ...]) -> list[Case]:
    """Each sweep base at each batch size: how the cost grows with the work."""
    return [main_case(base).with_batch(n) for base in SWEEP_BASES for n in batches]


def case_to_dict(case: Case) -> dict:
    return {"kind": case.kind, **dataclasses.asdict(case)}


def case_from_dict(data: dict) -> Case:
    fields = {key: value for key, value in data.items() if key != "kind"}
    return ConvCase(**fields) if data["kind"] == "conv" else PoolCase(**fields)


def selected(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``--cases`` selects ``name``: each pattern is a glob matched as a prefix, so
    ``res`` selects every res-* case (and their batch sweeps) and ``sobel`` the Sobel case."""
    return not patterns or any(fnmatch.fnmatchcase(name, p + "*") for p in patterns)
