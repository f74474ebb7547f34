"""convpool.geometry: the one place the library states its size rules. The output size is
checked against windows counted one by one; the checks that need no input size (what
layers call at construction) against the errors the functions raise."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from convpool import geometry
from hypothesis import given
from hypothesis import strategies as st


def counted_windows(in_size, kernel, stride, dilation, before, after, ceil_mode):
    """Windows counted one by one: each start o * stride (in padded coordinates) whose
    window ends inside the padded input; with ceil_mode, when pixels remain after the last
    such window, one more that hangs past the padding, if it starts inside the input or the
    padding before it (PyTorch)."""
    padded, extent = before + in_size + after, dilation * (kernel - 1) + 1
    count = 0
    while count * stride + extent <= padded:
        count += 1
    if ceil_mode and (count - 1) * stride + extent < padded and count * stride < before + in_size:
        count += 1
    return count


@given(st.integers(1, 30), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 3), st.integers(0, 3), st.booleans())
def test_output_size_counts_the_windows(in_size, kernel, stride, dilation, before, after,
                                        ceil_mode):
    if ceil_mode:  # pooling's rounding, on pooling's paddings (at most kernel_size // 2)
        before, after = min(before, kernel // 2), min(after, kernel // 2)
    if dilation * (kernel - 1) + 1 > in_size + before + after:
        assert geometry.output_size(in_size, kernel, stride, dilation, before, after) < 1
        return
    assert geometry.output_size(in_size, kernel, stride, dilation, before, after, ceil_mode) == \
        counted_windows(in_size, kernel, stride, dilation, before, after, ceil_mode)


def test_checks_that_need_no_input_size():
    assert geometry.check_padding("same") == "same"
    assert geometry.check_padding(2) == ((2, 2), (2, 2))
    assert geometry.check_padding((1, (0, 2))) == ((1, 1), (0, 2))
    with pytest.raises(ValueError, match="padding: expected an int"):
        geometry.check_padding("full")
    with pytest.raises(TypeError, match="padding: height must be an int"):
        geometry.check_padding((1.5, 1))
    assert geometry.check_padding_mode("reflect") == "reflect"
    with pytest.raises(ValueError, match="padding_mode: expected one of"):
        geometry.check_padding_mode("edge")
    with pytest.raises(ValueError, match=r"kernel_size // 2 = 1"):
        geometry.check_pool_padding((2, 0), (3, 3))
    assert geometry.check_pool_padding("same", (3, 3)) == "same"
    with pytest.raises(ValueError, match=r"groups: 3 must divide in_channels \(4\)"):
        geometry.check_groups(4, 6, 3)


def test_padding_mode_limits_need_the_input_size():
    geometry.check_padding_mode_limits("symmetric", ((3, 3), (0, 0)), (3, 5))
    with pytest.raises(ValueError, match="padding 3 on the height axis needs padding < input"):
        geometry.check_padding_mode_limits("reflect", ((3, 3), (0, 0)), (3, 5))


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(padding="same", stride=2),
                                    dict(padding=((0, 2), (1, 0)), dilation=2, groups=2)])
def test_conv_geometry_gives_the_shapes_of_the_call(kwargs):
    x, w = np.ones((2, 4, 9, 11), np.float32), np.ones((6, 4 // kwargs.get("groups", 1), 3, 3))
    g = geometry.conv_geometry(x.shape, w.shape, kwargs.get("stride", 1), kwargs["padding"],
                               kwargs.get("dilation", 1), kwargs.get("groups", 1), "zeros")
    assert convpool.conv2d(x, w, **kwargs).shape == g.output_shape
    rows = g.kernel_geometry.rows
    assert (rows.in_size, rows.out_size, rows.pad_before, rows.pad_after) == \
        (9, g.output_shape[2], *g.sides[0])


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                    dict(kernel_size=2, dilation=2, padding="same")])
def test_pool_geometry_gives_the_shapes_of_the_call(kwargs):
    x = np.ones((2, 3, 10, 7), np.float32)
    g = geometry.pool_geometry(x.shape, kwargs["kernel_size"], kwargs.get("stride"),
                               kwargs["padding"], kwargs.get("dilation", 1),
                               kwargs.get("ceil_mode", False))
    assert convpool.max_pool2d(x, **kwargs).shape == g.output_shape


@pytest.mark.parametrize("dilation", [1, 2, 3, 5])
def test_a_window_wholly_in_the_padding_is_found_wherever_it_is(dilation):
    # in 2, kernel 2, padding 1: with dilation d the taps of window o are o*s - 1 and
    # o*s - 1 + d; each window that holds neither 0 nor 1 must be refused.
    for stride in (1, 2, 3):
        for ceil_mode in (False, True):
            out = geometry.output_size(2, 2, stride, dilation, 1, 1, ceil_mode)
            if out < 1:
                continue
            holes = [o for o in range(out)
                     if not {o * stride - 1, o * stride - 1 + dilation} & {0, 1}]
            arguments = ((1, 1, 2, 2), 2, stride, 1, dilation, ceil_mode)
            if holes:
                with pytest.raises(ValueError, match=f"output position {holes[0]} lies "
                                                     "entirely in the padding"):
                    geometry.pool_geometry(*arguments)
            else:
                geometry.pool_geometry(*arguments)


# --- every rank ---------------------------------------------------------------------------

def test_padding_forms_of_every_rank():
    assert geometry.check_padding(1, rank=1) == ((1, 1),)
    assert geometry.check_padding((1, 2), rank=1) == ((1, 2),)  # 1-D: (before, after)
    assert geometry.check_padding((3,), rank=1) == ((3, 3),)
    assert geometry.check_padding((1, (0, 2), 3), rank=3) == ((1, 1), (0, 2), (3, 3))
    with pytest.raises(ValueError, match=r"padding: expected an int, \(pd, ph, pw\)"):
        geometry.check_padding((1, 1), rank=3)
    with pytest.raises(TypeError, match="padding: depth must be an int"):
        geometry.check_padding((1.0, 1, 1), rank=3)
    assert geometry.resolve_padding("same", (7,), (4,), (1,), (1,)) == ((1, 2),)
    with pytest.raises(ValueError, match="kernel_size // 2 = 1"):
        geometry.check_pool_padding((0, 2, 0), (3, 3, 3))
    with pytest.raises(ValueError, match="padding 4 on the length axis needs padding < input"):
        geometry.check_padding_mode_limits("reflect", ((4, 0),), (4,))


def test_sizes_of_every_rank():
    assert geometry.positive_ints(2, 3, "stride") == (2, 2, 2)
    assert geometry.positive_ints((5,), 1, "kernel_size") == (5,)
    with pytest.raises(ValueError, match=r"stride: expected an int or 3 ints, got \(1, 2\)"):
        geometry.positive_ints((1, 2), 3, "stride")
    with pytest.raises(ValueError, match="output depth would be 0"):
        geometry.output_sizes((2, 5, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1), ((0, 0),) * 3)


@pytest.mark.parametrize("rank", [1, 3])
def test_conv_and_pool_geometry_of_1d_and_3d_give_the_shapes_of_the_calls(rank):
    x = np.ones((2, 4) + (7,) * rank, np.float32)
    w = np.ones((6, 2) + (3,) * rank, np.float32)
    g = geometry.conv_geometry(x.shape, w.shape, 2, "same", 1, 2, "reflect", rank=rank)
    conv = getattr(convpool, f"conv{rank}d")
    assert conv(x, w, stride=2, padding="same", groups=2, padding_mode="reflect").shape == \
        g.output_shape == (2, 6) + (4,) * rank
    p = geometry.pool_geometry(x.shape, 3, 2, 1, 1, True, rank=rank)
    assert getattr(convpool, f"max_pool{rank}d")(x, 3, 2, 1, ceil_mode=True).shape == \
        p.output_shape


def test_a_window_wholly_in_the_padding_is_refused_in_1d_as_in_2d():
    # in 2, kernel 2, padding 1, dilation 3: window 0 reads -1 and 2, both padding
    with pytest.raises(ValueError, match="length: the window of output position 0 lies "
                                         "entirely in the padding"):
        convpool.max_pool1d(np.ones((1, 1, 2)), 2, 3, 1, dilation=3)


def test_the_library_and_the_oracle_each_state_the_output_size_rule_once():
    # The floor division that counts windows, ``... // stride + 1``, stands in exactly one
    # module of the library and one of the oracle; every other place calls them. (Other
    # ``n // 2 + 1`` counts, such as a real FFT's half spectrum, are not this rule.)
    import pathlib
    import re

    package = pathlib.Path(convpool.__file__).parent
    rule = re.compile(r"//\s*\(?\w*stride\w*(\[\w+\])?\)?\s*\+\s*1\b")
    places = {str(path.relative_to(package)) for path in package.rglob("*.py")
              if rule.search(path.read_text())}
    assert places == {"geometry.py", "reference/geometry.py"}
