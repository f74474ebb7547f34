"""The kernel registry: which implementation a call runs (convpool.implementation), that
the vector width of the SIMD level reaches the support predicates, and that forcing an
implementation that does not support a case raises instead of running another one."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import available_simd_levels, forced_implementation, simd_level
from convpool import _core

PUBLIC_OPERATIONS = [
    "conv2d", "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d", "max_pool2d_grad_input",
    "avg_pool2d", "avg_pool2d_grad_input", "global_avg_pool2d", "global_avg_pool2d_grad_input",
    "global_max_pool2d", "global_max_pool2d_grad_input", "channel_pool",
    "channel_pool_grad_input",
]


def f32(*shape):
    return np.ones(shape, np.float32)


def test_every_public_operation_has_a_list_ending_in_an_implementation_for_every_case():
    assert sorted(_core.operations()) == sorted(PUBLIC_OPERATIONS)
    for op in PUBLIC_OPERATIONS:
        names = _core.implementations(op)
        assert names and len(set(names)) == len(names), op
    for op in PUBLIC_OPERATIONS[:3]:
        # convolution lists hold both layouts: each ends in its every-case loop nest
        names = _core.implementations(op)
        assert [n for n in names if not n.startswith("nhwc_")][-1] == "direct"
        assert names[-1] == "nhwc_direct"


# (operation, arguments, keyword arguments, the implementation it runs at every SIMD level)
CHOICES = [
    ("conv2d", (f32(2, 48, 12, 12), f32(48, 48, 3, 3)), dict(padding=1), "winograd"),
    ("conv2d", (f32(2, 96, 29, 29), f32(96, 96, 3, 3)), dict(padding=1, stride=2), "winograd"),
    ("conv2d", (f32(2, 64, 29, 29), f32(64, 64, 3, 3)), dict(padding=1, stride=2), "blocked"),
    ("conv2d_grad_input", (f32(2, 48, 8, 8), f32(48, 48, 3, 3), (2, 48, 8, 8)), dict(padding=1),
     "winograd"),
    # Below 48 channels a side, Winograd can run a stride-1 layer but `blocked` is chosen.
    ("conv2d", (f32(2, 32, 12, 12), f32(32, 32, 3, 3)), dict(padding=1), "blocked"),
    ("conv2d_grad_input", (f32(2, 32, 8, 8), f32(32, 32, 3, 3), (2, 32, 8, 8)), dict(padding=1),
     "blocked"),
    ("conv2d_grad_weight", (f32(2, 16, 8, 8), f32(2, 16, 8, 8), (16, 16, 3, 3)), dict(padding=1),
     "winograd"),
    # Winograd's per-thread transformed sums leave L2 from ~128K channel pairs.
    ("conv2d_grad_weight", (f32(1, 512, 6, 6), f32(1, 512, 6, 6), (512, 512, 3, 3)),
     dict(padding=1), "blocked"),
    ("conv2d", (f32(2, 64, 9, 9), f32(32, 64, 1, 1)), {}, "pointwise"),
    ("conv2d", (f32(2, 8, 9, 70), f32(8, 1, 3, 3)), dict(groups=8, padding=1),
     "depthwise_rows"),
    ("conv2d_grad_input", (f32(2, 8, 9, 70), f32(8, 1, 3, 3), (2, 8, 9, 70)),
     dict(groups=8, padding=1), "depthwise_rows"),
    ("conv2d", (f32(2, 8, 9, 70), f32(8, 1, 3, 3)), dict(groups=8, padding=2, dilation=2),
     "plane"),
    ("conv2d", (f32(2, 8, 9, 9), f32(8, 1, 3, 3)), dict(groups=8, padding=1), "depthwise_lanes"),
    # One grey picture: a single channel would fill one lane of V.
    ("conv2d", (f32(1, 1, 28, 28), f32(1, 1, 3, 3)), dict(padding=1), "plane"),
    ("conv2d_grad_input", (f32(2, 8, 9, 9), f32(8, 1, 3, 3), (2, 8, 9, 9)),
     dict(groups=8, padding=1), "depthwise_lanes"),
    ("conv2d_grad_weight", (f32(2, 8, 9, 9), f32(2, 8, 9, 9), (8, 1, 3, 3)),
     dict(groups=8, padding=1), "depthwise_lanes"),
    ("conv2d", (f32(2, 8, 9, 140), f32(8, 1, 3, 3)), dict(groups=8, padding=1, stride=2),
     "depthwise_rows"),
    ("conv2d", (f32(2, 8, 9, 140), f32(8, 1, 3, 3)),
     dict(groups=8, padding=2, stride=2, dilation=2), "depthwise_strided"),
    ("conv2d_grad_weight", (f32(2, 8, 9, 140), f32(2, 8, 5, 70), (8, 1, 3, 3)),
     dict(groups=8, padding=1, stride=2), "depthwise_strided"),
    ("conv2d", (f32(1, 3, 35, 39), f32(16, 3, 11, 11)), dict(stride=4, padding=2),
     "few_channels"),
    ("conv2d_grad_input", (f32(1, 16, 8, 9), f32(16, 3, 11, 11), (1, 3, 35, 39)),
     dict(stride=4, padding=2), "few_channels"),
    ("conv2d", (np.ones((2, 16, 8, 8)), f32(16, 16, 3, 3)), dict(padding=1), "direct"),
    ("conv2d", (f32(2, 64, 30, 30), f32(32, 64, 3, 3)), dict(stride=3), "brgemm"),
    ("conv2d", (f32(2, 8, 9, 9), f32(32, 8, 3, 3)), dict(stride=3), "direct"),
    ("conv2d", (f32(1, 64, 16, 16), f32(32, 64, 3, 3)), dict(padding=3, dilation=3), "brgemm"),
    ("conv2d", (f32(1, 256, 7, 7), f32(256, 256, 1, 1)), {}, "pointwise"),
    ("conv2d_grad_input", (f32(1, 256, 7, 7), f32(256, 256, 1, 1), (1, 256, 7, 7)), {},
     "pointwise"),
    ("conv2d_grad_weight", (f32(1, 256, 7, 7), f32(1, 256, 7, 7), (256, 256, 1, 1)), {},
     "pointwise"),
    ("max_pool2d", (f32(2, 3, 8, 8), 2), {}, "rows"),
    ("avg_pool2d_grad_input", (f32(2, 3, 4, 4), (2, 3, 8, 8), 2), {}, "rows"),
    ("global_max_pool2d", (f32(2, 3, 8, 8),), {}, "planes"),
    ("channel_pool", (f32(2, 4, 8, 8), 2), {}, "channels"),
]


@pytest.mark.parametrize("op, args, kwargs, expected", CHOICES,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CHOICES)])
def test_implementation_names_the_one_a_call_runs(op, args, kwargs, expected):
    function = getattr(convpool, op)
    for level in available_simd_levels():
        with simd_level(level):
            assert convpool.implementation(op, *args, **kwargs) == expected, level
            assert expected in convpool.implementations(op, *args, **kwargs), level
            before = _core.implementation_runs(op, expected)
            function(*args, **kwargs)
            assert _core.implementation_runs(op, expected) == before + 1, level


def test_an_implementation_passed_by_when_choosing_still_runs_when_forced():
    # Winograd supports a 32-channel 3x3 layer, but the registry chooses `blocked` there.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 32, 12, 12)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    assert "winograd" in convpool.implementations("conv2d", x, w, padding=1)
    assert convpool.implementation("conv2d", x, w, padding=1) == "blocked"
    with forced_implementation("conv2d", "winograd"):
        forced = convpool.conv2d(x, w, padding=1)
    expected = convpool.reference.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    np.testing.assert_allclose(forced, expected, rtol=1e-4, atol=1e-4)


def test_the_vector_width_reaches_the_support_predicates():
    # Six output channels of one input channel: the blocked row tiles hold 2 x 6 <= V
    # floats only in a 16-float (AVX-512) vector; narrower builds take the plane filter.
    x, w = f32(1, 1, 28, 28), f32(6, 1, 5, 5)
    width = {"baseline": 4, "avx2": 8, "avx512": 16}
    for level in available_simd_levels():
        with simd_level(level):
            # (then the Python paths, slower here: the separable one, as a kernel of ones
            # is rank 1, and the FFT one, which supports every stride-1 case)
            expected = ((["blocked"] if width[level] >= 12 else [])
                        + ["plane", "direct", "separable", "fft"])
            assert convpool.implementations("conv2d", x, w, padding=2) == expected, level


def test_forcing_an_implementation_that_does_not_support_the_case_raises():
    x = f32(2, 16, 8, 8)
    with forced_implementation("conv2d", "winograd"):
        convpool.conv2d(x, f32(16, 16, 3, 3))  # supported: runs
        with pytest.raises(ValueError, match=r"conv2d: the forced implementation 'winograd' "
                                             r"does not support this case \(.*kernel 5"):
            convpool.conv2d(x, f32(16, 16, 5, 5))
        with pytest.raises(ValueError, match="'winograd' has no float64 kernel"):
            convpool.conv2d(x.astype(np.float64), f32(16, 16, 3, 3))
        with pytest.raises(ValueError, match="'winograd' does not support"):
            convpool.implementation("conv2d", x, f32(16, 16, 5, 5))
        assert convpool.implementation("conv2d", x, f32(16, 16, 3, 3)) == "winograd"


def test_forcing_follows_the_operation_not_the_other_passes():
    x, w = f32(2, 16, 14, 14), f32(16, 16, 5, 5)
    with forced_implementation("conv2d_grad_weight", "blocked"):
        assert convpool.implementation("conv2d", x, w) == "blocked"  # the default choice
        convpool.conv2d_grad_weight(x, f32(2, 16, 10, 10), w.shape)


def test_unknown_operations_and_implementations_are_refused():
    with pytest.raises(ValueError, match="op: expected one of"):
        convpool.implementation("conv3d", f32(1, 1, 3, 3), f32(1, 1, 3, 3))
    with pytest.raises(ValueError, match="unknown conv2d implementation 'fft'"):
        _core.force_implementation("conv2d", "fft")
    with pytest.raises(ValueError, match="unknown operation 'conv3d'"):
        _core.force_implementation("conv3d", "direct")
    with pytest.raises(TypeError, match="conv2d"):
        convpool.implementation("conv2d", f32(1, 1, 3, 3))  # weight missing


def test_implementation_checks_the_arguments_as_the_call_does():
    x, w = f32(2, 16, 8, 8), f32(16, 16, 3, 3)
    with pytest.raises(ValueError, match="stride"):
        convpool.implementation("conv2d", x, w, stride=0)
    with pytest.raises(ValueError, match="grad_output"):
        convpool.implementation("conv2d_grad_input", f32(2, 16, 5, 5), w, x.shape)
    with pytest.raises(TypeError, match="padding"):
        convpool.implementation("max_pool2d", x, 2, padding=1.5)


def test_lists_are_chosen_by_element_type_and_only_where_they_exist():
    axis = _core.WindowAxis(8, 4, 2, 2, 1, 0, 0)
    geometry = _core.PoolGeometry(2, axis, axis)
    for dtype in ("float32", "float64", "float16"):
        assert _core.chosen_implementation("max_pool2d", dtype, geometry) == "rows", dtype
    with pytest.raises(ValueError, match="max_pool2d_grad_input has no float16 kernels"):
        _core.chosen_implementation("max_pool2d_grad_input", "float16", geometry)
    with pytest.raises(ValueError, match="dtype: expected 'float32', 'float64' or 'float16', "
                                         "got 'int8'"):
        _core.supporting_implementations("max_pool2d", "int8", geometry)
    with pytest.raises(ValueError, match="got 'bfloat16'"):
        _core.implementation_runs("avg_pool2d", "rows", "bfloat16")
