"""convpool.jax: each function and its gradients against jax.lax (conv_general_dilated, with
lhs_dilation for the transposed convolution, and reduce_window), under jax.jit, jax.grad and
jax.vmap (mapped inputs, mapped weights, nested maps, per-example gradients)."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close

jax = pytest.importorskip("jax")
cj = pytest.importorskip("convpool.jax")
jnp = jax.numpy
lax = jax.lax

JNP_PAD_MODE = {"zeros": "constant", "replicate": "edge", "reflect": "reflect",
                "symmetric": "symmetric", "circular": "wrap"}


def normal(shape, seed=0, dtype=np.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def close(actual, expected, where=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert_close(actual, expected.astype(actual.dtype), actual.dtype, where)


def pair(value):
    return value if isinstance(value, tuple) else (value, value)


def lax_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    sides = convpool.resolve_padding(padding, x.shape[-2:], w.shape[-2:], pair(stride),
                                     pair(dilation))
    x = jnp.pad(x, ((0, 0), (0, 0), *sides), mode=JNP_PAD_MODE[padding_mode])
    y = lax.conv_general_dilated(x, w, pair(stride), "VALID", rhs_dilation=pair(dilation),
                                 feature_group_count=groups,
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y if b is None else y + b[None, :, None, None]


def gradients(function, *args):
    """Gradients of a fixed random projection of ``function``'s output, for every argument."""
    y = function(*args)
    direction = normal(y.shape, seed=99, dtype=y.dtype)
    return jax.grad(lambda *a: (function(*a) * direction).sum(), argnums=range(len(args)))(*args)


def check_against(mine, theirs, *args):
    """``mine`` under jit, and its gradients under jit(grad), against ``theirs`` (jitted too:
    compiling costs less than running JAX's operations one by one)."""
    close(jax.jit(mine)(*args), jax.jit(theirs)(*args), "forward")
    for i, (actual, expected) in enumerate(zip(
            jax.jit(lambda *a: gradients(mine, *a))(*args),
            jax.jit(lambda *a: gradients(theirs, *a))(*args), strict=True)):
        close(actual, expected, f"gradient {i}")


CONV_CASES = {
    # name: (x shape, weight shape, keywords)
    "pad-int": ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding=1)),
    "stride-dilation": ((2, 3, 11, 10), (4, 3, 3, 2), dict(stride=(2, 1), dilation=(1, 2),
                                                           padding=(2, 1))),
    "groups": ((2, 6, 6, 7), (9, 2, 3, 3), dict(groups=3, padding=1)),
    "depthwise": ((2, 8, 9, 9), (8, 1, 3, 3), dict(groups=8, stride=2, padding=1)),
    "same-stride2": ((2, 3, 9, 8), (4, 3, 4, 3), dict(padding="same", stride=2)),
    "per-side-reflect": ((1, 3, 6, 7), (2, 3, 3, 3), dict(padding=((2, 0), (1, 2)),
                                                          padding_mode="reflect")),
    "symmetric": ((1, 3, 6, 7), (2, 3, 3, 2), dict(padding=1, padding_mode="symmetric")),
    "circular": ((1, 3, 6, 7), (2, 3, 3, 3), dict(padding=2, padding_mode="circular")),
    "replicate": ((1, 3, 6, 7), (2, 3, 3, 3), dict(padding=(1, 2), padding_mode="replicate")),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_and_its_gradients_match_lax(case):
    x_shape, w_shape, kwargs = CONV_CASES[case]
    check_against(lambda x, w, b: cj.conv2d(x, w, b, **kwargs),
                  lambda x, w, b: lax_conv2d(x, w, b, **kwargs),
                  normal(x_shape), normal(w_shape, 1), normal(w_shape[:1], 2))


def test_conv2d_in_float64_matches_lax_to_float64_precision():
    with jax.enable_x64(True):
        x, w = normal((2, 4, 8, 8), dtype=np.float64), normal((4, 2, 3, 3), 1, np.float64)
        y = jax.jit(lambda x, w: cj.conv2d(x, w, padding="same", groups=2))(x, w)
        assert y.dtype == jnp.float64
        check_against(lambda x, w: cj.conv2d(x, w, stride=2, padding=1, groups=2),
                      lambda x, w: lax_conv2d(x, w, stride=2, padding=1, groups=2), x, w)


def test_conv2d_takes_unbatched_inputs_and_pictures():
    x, w = normal((3, 6, 7)), normal((2, 3, 3, 3), 1)
    close(cj.conv2d(x, w, padding=1), lax_conv2d(x[None], w, padding=1)[0])
    picture, kernel = normal((6, 7)), normal((3, 3), 1)
    close(cj.conv2d(picture, kernel, padding="same"),
          lax_conv2d(picture[None, None], kernel[None, None], padding="same")[0, 0])


TRANSPOSE_CASES = {
    "plain": ((2, 3, 5, 6), (3, 4, 3, 3), dict()),
    "stride-output-padding": ((2, 3, 5, 6), (3, 2, 3, 2), dict(stride=2, padding=1,
                                                               output_padding=(1, 0))),
    "groups-dilation": ((1, 4, 5, 5), (4, 3, 3, 3), dict(groups=2, dilation=2,
                                                         padding=((1, 0), (2, 1)))),
    "output-padding-past-the-padding": ((2, 3, 4, 5), (3, 2, 2, 3),
                                        dict(dilation=3, padding=((0, 1), (1, 0)),
                                             output_padding=2)),
}


def lax_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """PyTorch's definition in lax: the input dilated by the stride, convolved with the
    flipped kernel (weight (C_in, C_out // groups, kh, kw) regrouped to OIHW), padded by
    dilation * (k - 1) minus the padding (negative: cropped), plus output_padding after."""
    stride, dilation, output_padding = pair(stride), pair(dilation), pair(output_padding)
    sides = convpool.resolve_padding(padding, (1, 1), (1, 1), (1, 1), (1, 1))
    c_in, c_out_g, kh, kw = w.shape
    oihw = (w.reshape(groups, c_in // groups, c_out_g, kh, kw).transpose(0, 2, 1, 3, 4)
            .reshape(groups * c_out_g, c_in // groups, kh, kw)[:, :, ::-1, ::-1])
    lax_padding = [(dilation[a] * (k - 1) - sides[a][0],
                    dilation[a] * (k - 1) - sides[a][1] + output_padding[a])
                   for a, k in enumerate((kh, kw))]
    y = lax.conv_general_dilated(x, oihw, (1, 1), lax_padding, lhs_dilation=stride,
                                 rhs_dilation=dilation, feature_group_count=groups,
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y if b is None else y + b[None, :, None, None]


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose2d_and_its_gradients_match_lax(case):
    x_shape, w_shape, kwargs = TRANSPOSE_CASES[case]
    c_out = w_shape[1] * kwargs.get("groups", 1)
    check_against(lambda x, w, b: cj.conv_transpose2d(x, w, b, **kwargs),
                  lambda x, w, b: lax_conv_transpose2d(x, w, b, **kwargs),
                  normal(x_shape), normal(w_shape, 1), normal((c_out,), 2))


POOL_CASES = {
    # name: (kernel, stride, padding)
    "2x2": (2, None, 0),
    "3x3-s2-p1": (3, 2, 1),
    "3x2-s1-per-side": ((3, 2), 1, ((1, 0), (0, 1))),
    "same-s2": (3, 2, "same"),
}


def lax_window(x, kernel, stride, padding, init, op):
    kernel = pair(kernel)
    stride = kernel if stride is None else pair(stride)
    sides = convpool.resolve_padding(padding, x.shape[-2:], kernel, stride, (1, 1))
    return lax.reduce_window(x, init, op, (1, 1, *kernel), (1, 1, *stride),
                             ((0, 0), (0, 0), *sides))


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool2d_and_its_gradient_match_reduce_window(case):
    kernel, stride, padding = POOL_CASES[case]
    check_against(lambda x: cj.max_pool2d(x, kernel, stride, padding),
                  lambda x: lax_window(x, kernel, stride, padding, -jnp.inf, lax.max),
                  normal((2, 3, 9, 8)))


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_and_its_gradient_match_reduce_window(case, count_include_pad):
    kernel, stride, padding = POOL_CASES[case]

    def reference(x):
        total = lax_window(x, kernel, stride, padding, 0.0, lax.add)
        if count_include_pad:
            return total / np.prod(np.broadcast_to(kernel, 2))
        # reduce_window pads with the initial value 0: a window of ones counts its pixels
        return total / lax_window(jnp.ones_like(x), kernel, stride, padding, 0.0, lax.add)

    check_against(lambda x: cj.avg_pool2d(x, kernel, stride, padding,
                                          count_include_pad=count_include_pad),
                  reference, normal((2, 3, 9, 8)))


def test_avg_and_max_pool2d_options_match_convpool():
    x = normal((2, 3, 10, 9))
    close(cj.avg_pool2d(x, 3, 2, 1, ceil_mode=True, divisor_override=7),
          convpool.avg_pool2d(np.asarray(x), 3, 2, 1, ceil_mode=True, divisor_override=7))
    close(cj.max_pool2d(x, 3, 2, dilation=2, ceil_mode=True),
          convpool.max_pool2d(np.asarray(x), 3, 2, dilation=2, ceil_mode=True))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_channel_pool_and_its_gradient_match_jnp(mode):
    reduce = jnp.max if mode == "max" else jnp.mean
    check_against(lambda x: cj.channel_pool(x, 3, mode),
                  lambda x: reduce(x.reshape(2, 2, 3, 4, 5), axis=2), normal((2, 6, 4, 5)))


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools_and_their_gradients_match_jnp(keepdims):
    x = normal((2, 3, 5, 4))
    check_against(lambda x: cj.global_avg_pool2d(x, keepdims),
                  lambda x: x.mean(axis=(-2, -1), keepdims=keepdims), x)
    check_against(lambda x: cj.global_max_pool2d(x, keepdims),
                  lambda x: x.max(axis=(-2, -1), keepdims=keepdims), x)
    check_against(lambda x: cj.global_max_pool2d(x, keepdims),
                  lambda x: x.max(axis=(-2, -1), keepdims=keepdims), x[0])


def jnp_adaptive_pool(x, output_size, reduce):
    """PyTorch's window rule in plain jnp: output (i, j) reduces rows floor(i * H / oh) to
    ceil((i + 1) * H / oh) and columns likewise."""
    h, w = x.shape[-2:]
    oh, ow = pair(output_size)
    oh, ow = (h if oh is None else oh), (w if ow is None else ow)

    def window(i, size, out):
        return (i * size) // out, -((-(i + 1) * size) // out)

    rows = []
    for i in range(oh):
        top, bottom = window(i, h, oh)
        row = []
        for j in range(ow):
            left, right = window(j, w, ow)
            row.append(reduce(x[..., top:bottom, left:right], axis=(-2, -1)))
        rows.append(jnp.stack(row, axis=-1))
    return jnp.stack(rows, axis=-2)


ADAPTIVE_CASES = {
    # name: (x shape, output_size)
    "divides": ((2, 3, 8, 6), (4, 3)),
    "does-not-divide": ((2, 3, 7, 9), (3, 4)),
    "overlapping-windows": ((1, 2, 5, 7), (3, 4)),
    "larger-than-input": ((1, 2, 3, 4), (5, 6)),
    "keep-an-axis": ((2, 2, 7, 5), (None, 2)),
    "unbatched": ((3, 7, 6), 3),
}


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_adaptive_pools_and_their_gradients_match_the_window_rule_in_jnp(case, mode):
    x_shape, size = ADAPTIVE_CASES[case]
    mine = cj.adaptive_avg_pool2d if mode == "avg" else cj.adaptive_max_pool2d
    reduce = jnp.mean if mode == "avg" else jnp.max
    check_against(lambda x: mine(x, size), lambda x: jnp_adaptive_pool(x, size, reduce),
                  normal(x_shape))


def test_adaptive_max_pool2d_indices_are_convpools_and_carry_no_gradient():
    x = normal((2, 3, 7, 9))
    y, indices = jax.jit(lambda x: cj.adaptive_max_pool2d(x, (3, 4), return_indices=True))(x)
    expected, expected_indices = convpool.adaptive_max_pool2d(np.asarray(x), (3, 4),
                                                              return_indices=True)
    close(y, expected)
    assert indices.dtype == jnp.int32 and np.array_equal(indices, expected_indices)
    with jax.enable_x64(True):
        assert cj.adaptive_max_pool2d(x, 2, return_indices=True)[1].dtype == jnp.int64
    # the value at each index is the maximum
    flat = np.asarray(x).reshape(2, 3, -1)
    assert np.array_equal(np.take_along_axis(flat, np.asarray(indices).reshape(2, 3, -1), -1),
                          np.asarray(y).reshape(2, 3, -1))
    grad = jax.grad(lambda x: cj.adaptive_max_pool2d(x, (3, 4), return_indices=True)[0].sum())(x)
    close(grad, jax.grad(lambda x: jnp_adaptive_pool(x, (3, 4), jnp.max).sum())(x))


def jnp_max_unpool2d(x, indices, output_hw):
    """Each value at its flat index of the output plane, zeros elsewhere."""
    lead = x.shape[:-2]
    flat = jnp.zeros(lead + (output_hw[0] * output_hw[1],), x.dtype)
    flat = jnp.put_along_axis(flat, indices.reshape(lead + (-1,)), x.reshape(lead + (-1,)),
                              axis=-1, inplace=False)
    return flat.reshape(lead + tuple(output_hw))


UNPOOL_CASES = {
    # name: (x shape, kernel, stride, padding, output_size); non-overlapping windows
    "2x2": ((2, 3, 8, 6), 2, None, 0, None),
    "odd-size-back": ((2, 3, 9, 7), 2, None, 0, (9, 7)),
    "3x2-padding": ((1, 2, 9, 8), (3, 2), (3, 2), (1, 0), (9, 8)),
    "unbatched": ((3, 6, 6), 3, None, 0, None),
}


@pytest.mark.parametrize("case", UNPOOL_CASES)
def test_max_unpool2d_and_its_gradient_match_a_scatter_in_jnp(case):
    x_shape, kernel, stride, padding, output_size = UNPOOL_CASES[case]
    pooled, indices = convpool.max_pool2d(np.asarray(normal(x_shape)), kernel, stride, padding,
                                          return_indices=True)
    indices = jnp.asarray(indices.astype(np.int32))
    hw = output_size or x_shape[-2:]
    check_against(lambda x: cj.max_unpool2d(x, indices, kernel, stride, padding, output_size),
                  lambda x: jnp_max_unpool2d(x, indices, hw), jnp.asarray(pooled))


def test_new_pools_pass_a_float64_gradient_check():
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        x = normal((2, 3, 7, 9), dtype=np.float64)
        check_grads(lambda x: cj.adaptive_avg_pool2d(x, (3, 4)), (x,), order=1, modes=("rev",))
        check_grads(lambda x: cj.adaptive_max_pool2d(x, (3, 4)), (x,), order=1, modes=("rev",))
        pooled, indices = convpool.max_pool2d(np.asarray(x), 2, return_indices=True)
        check_grads(lambda p: cj.max_unpool2d(p, jnp.asarray(indices), 2, output_size=(7, 9)),
                    (jnp.asarray(pooled),), order=1, modes=("rev",))


def test_max_unpool2d_refuses_float_or_misshapen_indices():
    x = normal((1, 2, 3, 3))
    with pytest.raises(TypeError, match="indices: expected an integer array"):
        cj.max_unpool2d(x, x, 2)
    with pytest.raises(ValueError, match="indices: expected the shape of x"):
        cj.max_unpool2d(x, jnp.zeros((1, 2, 3, 2), jnp.int32), 2)
    with pytest.raises(ValueError, match="output_size"):
        cj.max_unpool2d(x, jnp.zeros((1, 2, 3, 3), jnp.int32), 2, output_size=(12, 6))


# ---------------------------------------------------------------- vmap

def conv(x, w):
    return cj.conv2d(x, w, stride=2, padding="same", groups=2)


def reference_conv(x, w):
    if x.ndim == 3:  # unbatched, as convpool takes it
        return reference_conv(x[None], w)[0]
    return lax_conv2d(x, w, stride=2, padding="same", groups=2)


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (1, None)])
def test_vmap_of_conv2d_and_its_gradients_matches_lax(in_axes):
    x, w = normal((3, 2, 4, 7, 6)), normal((3, 4, 2, 3, 3), 1)
    x = x if in_axes[0] is not None else x[0]
    x = jnp.moveaxis(x, 0, 1) if in_axes[0] == 1 else x
    w = w if in_axes[1] is not None else w[0]
    check_against(jax.vmap(conv, in_axes), jax.vmap(reference_conv, in_axes), x, w)


def test_nested_vmap_over_unbatched_inputs_matches_lax():
    x, w = normal((2, 3, 4, 7, 6)), normal((4, 2, 3, 3), 1)
    def nested(f):
        return jax.vmap(jax.vmap(f, (0, None)), (0, None))

    check_against(nested(conv), nested(reference_conv), x, w)


def test_per_example_weight_gradients_match_lax():
    x, w = normal((5, 1, 4, 7, 6)), normal((4, 2, 3, 3), 1)

    def per_example(f):
        return jax.jit(jax.vmap(jax.grad(lambda w, x: (f(x, w) ** 2).sum()), (None, 0)))

    close(per_example(conv)(w, x), per_example(reference_conv)(w, x))


def test_vmap_of_pooling_gradients_matches_reduce_window():
    x = normal((3, 2, 3, 9, 8))
    mine = jax.vmap(lambda x: cj.max_pool2d(x, 3, 2, 1) + cj.avg_pool2d(x, 3, 2, 1))
    theirs = jax.vmap(lambda x: lax_window(x, 3, 2, 1, -jnp.inf, lax.max)
                      + lax_window(x, 3, 2, 1, 0.0, lax.add) / 9)
    check_against(mine, theirs, x)


def test_vmap_of_the_new_pools_and_their_gradients_matches_jnp():
    x = normal((3, 2, 3, 9, 8))
    pooled, indices = convpool.max_pool2d(np.asarray(x).reshape(6, 3, 9, 8), 2,
                                          return_indices=True)
    pooled = jnp.asarray(pooled.reshape(3, 2, 3, 4, 4))
    indices = jnp.asarray(indices.reshape(3, 2, 3, 4, 4).astype(np.int32))
    check_against(jax.vmap(lambda x: cj.adaptive_avg_pool2d(x, (2, 3))
                           + cj.adaptive_max_pool2d(x, (2, 3))),
                  jax.vmap(lambda x: jnp_adaptive_pool(x, (2, 3), jnp.mean)
                           + jnp_adaptive_pool(x, (2, 3), jnp.max)), x)
    # mapped values and indices, and mapped values with one set of indices
    check_against(lambda p: jax.vmap(lambda p, i: cj.max_unpool2d(p, i, 2, output_size=(9, 8)))(
                      p, indices),
                  lambda p: jax.vmap(lambda p, i: jnp_max_unpool2d(p, i, (9, 8)))(p, indices),
                  pooled)
    check_against(jax.vmap(lambda p: cj.max_unpool2d(p, indices[0], 2, output_size=(9, 8))),
                  jax.vmap(lambda p: jnp_max_unpool2d(p, indices[0], (9, 8))), pooled)


def test_vmap_of_the_input_gradient_calls_the_kernel_once(monkeypatch):
    calls = []
    real = convpool.conv2d_grad_input
    monkeypatch.setattr(convpool, "conv2d_grad_input",
                        lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    x, w = normal((5, 2, 4, 7, 6)), normal((4, 2, 3, 3), 1)
    jax.vmap(jax.grad(lambda x: (conv(x, w) ** 2).sum()))(x)
    assert calls == [(10, 4, 4, 3)]  # the 5 mapped batches of 2 folded into one of 10


# ---------------------------------------------------------------- errors

def test_integer_inputs_are_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="x: convpool computes in float32 or float64"):
        cj.max_pool2d(jnp.ones((1, 1, 4, 4), jnp.int32), 2)


def test_mixed_dtypes_are_a_type_error():
    with jax.enable_x64(True), pytest.raises(TypeError, match="x float32, weight float64"):
        cj.conv2d(jnp.ones((1, 1, 4, 4), jnp.float32), jnp.ones((1, 1, 3, 3), jnp.float64))


def test_bad_geometry_is_refused_when_traced_with_convpools_message():
    with pytest.raises(ValueError, match="groups"):
        jax.jit(lambda x, w: cj.conv2d(x, w, groups=2))(jnp.ones((1, 3, 4, 4)),
                                                        jnp.ones((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="padding_mode"):
        cj.conv2d(jnp.ones((1, 1, 4, 4)), jnp.ones((1, 1, 3, 3)), padding=1,
                  padding_mode="edge")
    with pytest.raises(ValueError, match="output_padding"):
        cj.conv_transpose2d(jnp.ones((1, 2, 4, 4)), jnp.ones((2, 2, 3, 3)), stride=2,
                            output_padding=2)
