"""convpool inside JAX programs (``pip install convpool[jax]``).

``conv2d``, ``conv_transpose2d``, ``max_pool2d``, ``avg_pool2d``, ``channel_pool``, the
global and adaptive pools and ``max_unpool2d`` take JAX arrays (NCHW, as the rest of
convpool; ``conv2d``, ``max_pool2d``, ``avg_pool2d`` and the global pools also take
``layout="NHWC"``, run by convpool's channels-last kernels) and work under ``jax.jit``,
``jax.grad`` and ``jax.vmap``. Each pass is a ``jax.pure_callback`` into convpool's
compiled kernels; a ``jax.custom_vjp`` routes the backward pass to convpool's gradient
kernels. Shapes and arguments are checked when the function is traced, with convpool's own
messages.

Under ``vmap`` the mapped axes are folded into the batch axis when the kernel works sample
by sample (one kernel call for the whole mapped batch); a weight gradient or a vmapped
weight runs one call per mapped element. Inputs must be float32 or float64 (enable
``jax_enable_x64`` for the latter) on the CPU: the callbacks read host memory.

``import convpool`` never imports JAX: only this module does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as error:  # pragma: no cover - the tests skip without jax
    raise ImportError("convpool.jax needs JAX: pip install 'convpool[jax]'") from error

import convpool

from . import _transposed
from . import geometry as _geometry
from . import pool as _pool
from . import unpool as _unpool
from ._args import positive_int, positive_pair
from .adaptive_pool import _output_size as _adaptive_output_size
from .geometry import check_padding
from .layout import check_layout, from_nchw_shape, nchw_shape

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "channel_pool",
    "conv2d",
    "conv_transpose2d",
    "global_avg_pool2d",
    "global_max_pool2d",
    "max_pool2d",
    "max_unpool2d",
]

Padding = int | tuple | str
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------- callbacks and vmap

def _host_call(compute: Callable[..., np.ndarray], core_ndims: Sequence[int],
               sample_args: Sequence[int]) -> Callable[..., np.ndarray]:
    """``compute`` (NumPy arrays of ``core_ndims`` dimensions each) as a callback that also
    accepts the leading axes ``vmap`` adds (``vmap_method="expand_dims"``: size 1 for the
    arguments not mapped).

    When every mapped argument is one of ``sample_args`` - arguments whose first axis is the
    sample axis, as is the result's - the mapped axes are folded into that axis and
    ``compute`` runs once; otherwise it runs once per mapped element.
    """
    def callback(*arrays: np.ndarray) -> np.ndarray:
        lead_ndim = arrays[0].ndim - core_ndims[0]
        if lead_ndim == 0:
            return compute(*arrays)
        leads = [a.shape[:lead_ndim] for a in arrays]
        lead = np.broadcast_shapes(*leads)
        mapped = {i for i, shape in enumerate(leads) if math.prod(shape) != 1}
        if sample_args and mapped <= set(sample_args):
            folded = [
                np.broadcast_to(a, lead + a.shape[lead_ndim:]).reshape(
                    (-1,) + a.shape[lead_ndim + 1:])
                if i in sample_args else a.reshape(a.shape[lead_ndim:])
                for i, a in enumerate(arrays)
            ]
            result = compute(*folded)
            samples = result.shape[0] // max(math.prod(lead), 1)
            return result.reshape(lead + (samples,) + result.shape[1:])
        results = []
        for index in np.ndindex(*lead):
            # an argument not mapped along an axis has size 1 there: its element 0 serves all
            parts = [a[tuple(i if size > 1 else 0 for i, size in zip(index, a.shape[:lead_ndim],
                                                                       strict=True))]
                     for a in arrays]
            results.append(compute(*parts))
        return np.stack(results).reshape(lead + results[0].shape)

    return callback


def _call(compute, shape: tuple[int, ...], dtype, *args, core_ndims, sample_args=()):
    return jax.pure_callback(
        _host_call(compute, core_ndims, sample_args), jax.ShapeDtypeStruct(shape, dtype), *args,
        vmap_method="expand_dims",
    )


def _float_dtype(**arrays) -> np.dtype:
    """The one float dtype of the (non-None) arrays; TypeError otherwise."""
    dtypes = {name: np.dtype(a.dtype) for name, a in arrays.items() if a is not None}
    for name, dtype in dtypes.items():
        if dtype not in _FLOATS:
            raise TypeError(f"{name}: convpool computes in float32 or float64, got {dtype}")
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"dtype: the arrays must share one dtype, got {listed}")
    return next(iter(dtypes.values()))


def _padding(padding: object):
    """A hashable padding: ``"same"`` or ``((top, bottom), (left, right))``."""
    form = check_padding(padding)  # the form alone: no input size is needed
    return ((0, 0), (0, 0)) if form == "valid" else form


def _as_4d(x, name: str, ranks=(3, 4)):
    if x.ndim not in ranks:
        raise ValueError(f"{name}: expected {' or '.join(map(str, ranks))} dimensions, "
                         f"got shape {tuple(x.shape)}")
    return jnp.reshape(x, (1,) * (4 - x.ndim) + tuple(x.shape))


# ---------------------------------------------------------------- convolution

@dataclass(frozen=True)
class _ConvGeometry:
    stride: tuple[int, int]
    padding: object  # "same" or ((top, bottom), (left, right))
    dilation: tuple[int, int]
    groups: int
    padding_mode: str
    layout: str = "NCHW"

    @property
    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode, layout=self.layout)


def _conv_forward(x, weight, geometry: _ConvGeometry):
    """convpool.conv2d of 4-D arrays, as a callback (no bias)."""
    setup = _geometry.conv_geometry(nchw_shape(tuple(x.shape), geometry.layout),
                                    tuple(weight.shape), geometry.stride, geometry.padding,
                                    geometry.dilation, geometry.groups, geometry.padding_mode)
    return _call(lambda x, w: convpool.conv2d(x, w, **geometry.kwargs),
                 from_nchw_shape(setup.output_shape, geometry.layout), x.dtype, x, weight,
                 core_ndims=(4, 4), sample_args=(0,))


def _conv_input_grad(grad_output, weight, input_chw: tuple[int, ...], geometry: _ConvGeometry):
    """convpool.conv2d_grad_input of 4-D arrays, as a callback: the input is
    ``(N,) + input_chw`` with N that of ``grad_output``."""
    def compute(g, w):
        return convpool.conv2d_grad_input(g, w, (g.shape[0],) + input_chw, **geometry.kwargs)

    return _call(compute, (grad_output.shape[0],) + input_chw, grad_output.dtype, grad_output,
                 weight, core_ndims=(4, 4), sample_args=(0,))


def _conv_weight_grad(x, grad_output, weight_shape: tuple[int, ...], geometry: _ConvGeometry):
    """convpool.conv2d_grad_weight of 4-D arrays, as a callback (a sum over the samples:
    one call per mapped element under vmap)."""
    def compute(x, g):
        return convpool.conv2d_grad_weight(x, g, weight_shape, **geometry.kwargs)

    return _call(compute, weight_shape, x.dtype, x, grad_output, core_ndims=(4, 4))


@lru_cache(maxsize=256)
def _conv2d_vjp(geometry: _ConvGeometry):
    @jax.custom_vjp
    def conv(x, weight):
        return _conv_forward(x, weight, geometry)

    def forward(x, weight):
        return conv(x, weight), (x, weight)

    def backward(residuals, grad):
        x, weight = residuals
        return (_conv_input_grad(grad, weight, tuple(x.shape[1:]), geometry),
                _conv_weight_grad(x, grad, tuple(weight.shape), geometry))

    conv.defvjp(forward, backward)
    return conv


@dataclass(frozen=True)
class _TransposeGeometry:
    stride: tuple[int, int]
    sides: tuple[tuple[int, int], tuple[int, int]]
    output_padding: tuple[int, int]
    groups: int
    dilation: tuple[int, int]

    @property
    def kwargs(self) -> dict:
        return dict(stride=self.stride, sides=self.sides, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)


@lru_cache(maxsize=256)
def _conv_transpose2d_vjp(geometry: _TransposeGeometry):
    # convpool's transposed convolution and its gradient functions (per-side padding as a
    # crop of convpool's output, see convpool._transposed)
    @jax.custom_vjp
    def conv_transpose(x, weight):
        shape = _transposed.per_side(tuple(x.shape), tuple(weight.shape),
                                     **geometry.kwargs).output_shape
        return _call(lambda x, w: _transposed.conv_transpose2d(x, w, None, **geometry.kwargs),
                     shape, x.dtype, x, weight, core_ndims=(4, 4), sample_args=(0,))

    def forward(x, weight):
        return conv_transpose(x, weight), (x, weight)

    def backward(residuals, grad):
        x, weight = residuals
        input_chw = tuple(x.shape[1:])

        def input_grad(g, w):
            return _transposed.conv_transpose2d_grad_input(g, w, (g.shape[0],) + input_chw,
                                                           **geometry.kwargs)

        def weight_grad(x, g):  # a sum over the samples: one call per mapped element
            return _transposed.conv_transpose2d_grad_weight(x, g, tuple(weight.shape),
                                                            **geometry.kwargs)

        return (_call(input_grad, tuple(x.shape), grad.dtype, grad, weight, core_ndims=(4, 4),
                      sample_args=(0,)),
                _call(weight_grad, tuple(weight.shape), grad.dtype, x, grad, core_ndims=(4, 4)))

    conv_transpose.defvjp(forward, backward)
    return conv_transpose


def _add_bias(y, bias, c_out: int, layout: str = "NCHW"):
    if bias is None:
        return y
    if tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias: expected shape ({c_out},), got {tuple(bias.shape)}")
    return y + jnp.reshape(bias, (1, 1, 1, c_out) if layout == "NHWC" else (1, c_out, 1, 1))


def conv2d(x, weight, bias=None, stride: int | tuple[int, int] = 1, padding: Padding = 0,
           dilation: int | tuple[int, int] = 1, groups: int = 1, padding_mode: str = "zeros",
           layout: str = "NCHW"):
    """2-D convolution (correlation), as :func:`convpool.conv2d`: ``x`` ``(N, C_in, H, W)``,
    ``(C_in, H, W)`` or a picture ``(H, W)`` with a ``(kh, kw)`` weight; weight
    ``(C_out, C_in // groups, kh, kw)``; every padding form and mode. ``layout="NHWC"``:
    ``x`` and the result ``(N, H, W, C)`` or ``(H, W, C)``."""
    layout = check_layout(layout)
    x, weight = jnp.asarray(x), jnp.asarray(weight)
    bias = None if bias is None else jnp.asarray(bias)
    _float_dtype(x=x, weight=weight, bias=bias)
    rank = x.ndim
    if rank == 2:  # a picture and a 2-D kernel: one channel in, one out
        if weight.ndim != 2:
            raise ValueError(f"weight: expected (kh, kw) for a 2-D picture, got shape "
                             f"{tuple(weight.shape)}")
        x4, w4 = jnp.reshape(x, (1, 1) + x.shape), jnp.reshape(weight, (1, 1) + weight.shape)
        bias = None if bias is None else jnp.reshape(bias, (1,))
        layout = "NCHW"  # one channel: both layouts hold the picture alike
    else:
        x4, w4 = _as_4d(x, "x"), weight
        if w4.ndim != 4:
            raise ValueError(f"weight: expected (C_out, C_in // groups, kh, kw), got shape "
                             f"{tuple(weight.shape)}")
    geometry = _ConvGeometry(positive_pair(stride, "stride"), _padding(padding),
                             positive_pair(dilation, "dilation"), positive_int(groups, "groups"),
                             padding_mode, layout)
    y = _add_bias(_conv2d_vjp(geometry)(x4, w4), bias, w4.shape[0], layout)
    return jnp.reshape(y, y.shape[4 - rank:]) if rank > 2 else y[0, 0]


def conv_transpose2d(x, weight, bias=None, stride: int | tuple[int, int] = 1,
                     padding: int | tuple = 0, output_padding: int | tuple[int, int] = 0,
                     groups: int = 1, dilation: int | tuple[int, int] = 1):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``: weight
    ``(C_in, C_out // groups, kh, kw)``; ``padding`` an int, a pair or per side."""
    x, weight = jnp.asarray(x), jnp.asarray(weight)
    bias = None if bias is None else jnp.asarray(bias)
    _float_dtype(x=x, weight=weight, bias=bias)
    if isinstance(padding, str):
        raise ValueError(f"padding: a transposed convolution takes an int, (ph, pw) or "
                         f"((top, bottom), (left, right)), got {padding!r}")
    sides = _padding(padding)
    if isinstance(output_padding, int):
        output_padding = (output_padding, output_padding)
    output_padding = tuple(int(p) for p in output_padding)
    rank = x.ndim
    x4 = _as_4d(x, "x")
    geometry = _TransposeGeometry(positive_pair(stride, "stride"), sides, output_padding,
                                  positive_int(groups, "groups"),
                                  positive_pair(dilation, "dilation"))
    y = _conv_transpose2d_vjp(geometry)(x4, weight)
    y = _add_bias(y, bias, y.shape[1])
    return jnp.reshape(y, y.shape[4 - rank:])


# ---------------------------------------------------------------- pooling

def _single_input_vjp(forward_compute, backward_compute, backward_needs_x: bool):
    """A custom_vjp function of one 4-D input, both passes callbacks working sample by
    sample: ``forward_compute(x) -> (y_shape, compute)`` is evaluated at trace time;
    ``backward_compute(x_shape)`` gives the gradient's compute of ``(grad, x)`` or
    ``(grad,)``."""
    @jax.custom_vjp
    def pool(x):
        shape, compute = forward_compute(tuple(x.shape))
        return _call(compute, shape, x.dtype, x, core_ndims=(4,), sample_args=(0,))

    def forward(x):
        return pool(x), x

    def backward(x, grad):
        # x's shape is static here (even under vmap); its values only when the gradient
        # needs them
        compute = backward_compute(tuple(x.shape))
        args = (grad, x) if backward_needs_x else (grad,)
        core = (grad.ndim, 4) if backward_needs_x else (grad.ndim,)
        return (_call(compute, tuple(x.shape), grad.dtype, *args, core_ndims=core,
                      sample_args=tuple(range(len(args)))),)

    pool.defvjp(forward, backward)
    return pool


def _with_samples(shape: tuple[int, ...], samples: int) -> tuple[int, ...]:
    return (samples,) + tuple(shape[1:])


@lru_cache(maxsize=256)
def _max_pool2d_vjp(kernel, stride, padding, dilation, ceil_mode, layout="NCHW"):
    window = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                  ceil_mode=ceil_mode, layout=layout)

    def forward_compute(shape):
        setup = _geometry.pool_geometry(nchw_shape(shape, layout), kernel, stride, padding,
                                        dilation, ceil_mode)
        return (from_nchw_shape(setup.output_shape, layout),
                lambda x: convpool.max_pool2d(x, **window))

    def backward_compute(shape):
        def compute(grad, x):  # the indices found again: a forward pass costs less than them
            _, indices = convpool.max_pool2d(x, **window, return_indices=True)
            return convpool.max_pool2d_grad_input(grad, indices, x.shape, layout=layout)
        return compute

    return _single_input_vjp(forward_compute, backward_compute, backward_needs_x=True)


@lru_cache(maxsize=256)
def _avg_pool2d_vjp(kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
                    layout="NCHW"):
    options = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                   count_include_pad=count_include_pad, divisor_override=divisor_override,
                   layout=layout)

    def forward_compute(shape):
        setup = _geometry.pool_geometry(nchw_shape(shape, layout), kernel, stride, padding, 1,
                                        ceil_mode)
        _pool._divisor(divisor_override)
        return (from_nchw_shape(setup.output_shape, layout),
                lambda x: convpool.avg_pool2d(x, **options))

    def backward_compute(shape):
        return lambda grad: convpool.avg_pool2d_grad_input(
            grad, _with_samples(shape, grad.shape[0]), **options)

    return _single_input_vjp(forward_compute, backward_compute, backward_needs_x=False)


@lru_cache(maxsize=256)
def _channel_pool_vjp(size, mode):
    def forward_compute(shape):
        _, out4, _, _ = _pool._channelpool_geometry(shape, size, mode, "x")
        return out4, lambda x: convpool.channel_pool(x, size, mode)

    def backward_compute(shape):
        return lambda grad, x: convpool.channel_pool_grad_input(grad, x, size, mode)

    return _single_input_vjp(forward_compute, backward_compute, backward_needs_x=True)


@lru_cache(maxsize=8)
def _global_pool_vjp(kind: str, layout: str = "NCHW"):
    def forward_compute(shape):
        n, c, _, _ = _pool._global_shape(nchw_shape(shape, layout), "x")
        if kind == "avg":
            return (n, c), lambda x: convpool.global_avg_pool2d(x, layout=layout)
        return (n, c), lambda x: convpool.global_max_pool2d(x, layout=layout)

    def backward_compute(shape):
        if kind == "avg":
            return lambda grad: convpool.global_avg_pool2d_grad_input(
                grad, _with_samples(shape, grad.shape[0]), layout=layout)
        return lambda grad, x: convpool.global_max_pool2d_grad_input(grad, x, layout=layout)

    return _single_input_vjp(forward_compute, backward_compute,
                             backward_needs_x=(kind == "max"))


@lru_cache(maxsize=256)
def _adaptive_avg_pool2d_vjp(output_size: tuple[int, int]):
    def forward_compute(shape):
        return shape[:2] + output_size, lambda x: convpool.adaptive_avg_pool2d(x, output_size)

    def backward_compute(shape):
        return lambda grad: convpool.adaptive_avg_pool2d_grad_input(
            grad, _with_samples(shape, grad.shape[0]))

    return _single_input_vjp(forward_compute, backward_compute, backward_needs_x=False)


@lru_cache(maxsize=256)
def _adaptive_max_pool2d_vjp(output_size: tuple[int, int]):
    def forward_compute(shape):
        return shape[:2] + output_size, lambda x: convpool.adaptive_max_pool2d(x, output_size)

    def backward_compute(shape):
        def compute(grad, x):  # the indices found again, as max_pool2d's
            _, indices = convpool.adaptive_max_pool2d(x, output_size, return_indices=True)
            return convpool.adaptive_max_pool2d_grad_input(grad, indices, x.shape)
        return compute

    return _single_input_vjp(forward_compute, backward_compute, backward_needs_x=True)


def _index_dtype() -> np.dtype:
    """int64 under ``jax_enable_x64``, else int32 (JAX's own integers)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


@lru_cache(maxsize=256)
def _max_unpool2d_vjp(kernel, stride, padding, output_size):
    window = dict(kernel_size=kernel, stride=stride, padding=padding, output_size=output_size)

    # linear in x; the indices are integers and get no gradient
    @jax.custom_vjp
    def unpool(x, indices):
        size = _unpool.max_unpool2d_output_size(tuple(x.shape[-2:]), **window)
        # the callbacks receive jax Arrays; convpool's index checks want NumPy arrays
        return _call(lambda x, i: convpool.max_unpool2d(x, np.asarray(i), **window),
                     tuple(x.shape[:2]) + tuple(size), x.dtype, x, indices, core_ndims=(4, 4),
                     sample_args=(0, 1))

    def forward(x, indices):
        return unpool(x, indices), indices

    def backward(indices, grad):
        x_grad = _call(lambda g, i: convpool.max_unpool2d_grad_input(g, np.asarray(i)),
                       tuple(indices.shape), grad.dtype, grad, indices, core_ndims=(4, 4),
                       sample_args=(0, 1))
        return x_grad, np.zeros(indices.shape, dtype=jax.dtypes.float0)

    unpool.defvjp(forward, backward)
    return unpool


def _pool_input(x):
    x = jnp.asarray(x)
    _float_dtype(x=x)
    return x, _as_4d(x, "x")


def _window(kernel_size, stride):
    kernel = positive_pair(kernel_size, "kernel_size")
    return kernel, kernel if stride is None else positive_pair(stride, "stride")


def _user_rank(y, rank: int):
    return jnp.reshape(y, y.shape[4 - rank:])


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def max_pool2d(x, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: Padding = 0, dilation: int | tuple[int, int] = 1,
               ceil_mode: bool = False, layout: str = "NCHW"):
    """2-D max pooling, as :func:`convpool.max_pool2d` (without indices): the gradient goes
    to each window's first maximum (or first NaN). ``layout="NHWC"``: ``x`` and the result
    channels last."""
    layout = check_layout(layout)
    x, x4 = _pool_input(x)
    kernel, stride = _window(kernel_size, stride)
    pool = _max_pool2d_vjp(kernel, stride, _padding(padding), positive_pair(dilation, "dilation"),
                           _flag(ceil_mode, "ceil_mode"), layout)
    return _user_rank(pool(x4), x.ndim)


def avg_pool2d(x, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None, layout: str = "NCHW"):
    """2-D average pooling, as :func:`convpool.avg_pool2d`; ``layout`` as :func:`max_pool2d`."""
    layout = check_layout(layout)
    x, x4 = _pool_input(x)
    kernel, stride = _window(kernel_size, stride)
    pool = _avg_pool2d_vjp(kernel, stride, _padding(padding), _flag(ceil_mode, "ceil_mode"),
                           _flag(count_include_pad, "count_include_pad"), divisor_override,
                           layout)
    return _user_rank(pool(x4), x.ndim)


def channel_pool(x, size: int, mode: str = "max"):
    """Max or mean over groups of ``size`` consecutive channels, as
    :func:`convpool.channel_pool`."""
    x, x4 = _pool_input(x)
    return _user_rank(_channel_pool_vjp(positive_int(size, "size"), mode)(x4), x.ndim)


def _global(kind: str, x, keepdims: bool, layout: str):
    layout = check_layout(layout)
    x, x4 = _pool_input(x)
    y = _global_pool_vjp(kind, layout)(x4)  # (N, C)
    y = y if x.ndim == 4 else y[0]
    if not _flag(keepdims, "keepdims"):
        return y
    return y[..., None, None, :] if layout == "NHWC" else y[..., None, None]


def global_avg_pool2d(x, keepdims: bool = False, layout: str = "NCHW"):
    """Mean of each plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    (``(N, 1, 1, C)`` with ``layout="NHWC"``, where ``x`` is ``(N, H, W, C)``)."""
    return _global("avg", x, keepdims, layout)


def global_max_pool2d(x, keepdims: bool = False, layout: str = "NCHW"):
    """Maximum of each plane, as :func:`global_avg_pool2d`."""
    return _global("max", x, keepdims, layout)


def _adaptive_input(x, output_size):
    x, x4 = _pool_input(x)
    if min(x4.shape[-2:]) < 1:
        raise ValueError(f"x: H and W must be >= 1, got shape {tuple(x.shape)}")
    return x, x4, _adaptive_output_size(output_size, tuple(x4.shape[-2:]))


def adaptive_avg_pool2d(x, output_size: int | tuple):
    """Adaptive average pooling, as :func:`convpool.adaptive_avg_pool2d`: output ``i``
    averages rows ``floor(i * H / out)`` to ``ceil((i + 1) * H / out)``, columns likewise;
    ``output_size`` an int, a pair, or a pair with None (keep that axis)."""
    x, x4, size = _adaptive_input(x, output_size)
    return _user_rank(_adaptive_avg_pool2d_vjp(size)(x4), x.ndim)


def adaptive_max_pool2d(x, output_size: int | tuple, return_indices: bool = False):
    """Adaptive max pooling, as :func:`convpool.adaptive_max_pool2d`; the gradient goes to
    each window's first maximum (or first NaN). With ``return_indices`` also the flat index
    of each maximum in its ``H * W`` plane (int64 under ``jax_enable_x64``, else int32),
    which carries no gradient."""
    x, x4, size = _adaptive_input(x, output_size)
    y = _user_rank(_adaptive_max_pool2d_vjp(size)(x4), x.ndim)
    if not _flag(return_indices, "return_indices"):
        return y

    def indices(x):
        return convpool.adaptive_max_pool2d(x, size, return_indices=True)[1].astype(
            _index_dtype())

    # stop_gradient: the indices are piecewise constant in x, and a callback has no JVP
    found = _call(indices, tuple(x4.shape[:2]) + size, _index_dtype(),
                  jax.lax.stop_gradient(x4), core_ndims=(4,), sample_args=(0,))
    return y, _user_rank(found, x.ndim)


def max_unpool2d(x, indices, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
                 output_size: tuple[int, ...] | None = None):
    """Max unpooling, as :func:`convpool.max_unpool2d`: each value of ``x`` goes to the
    position its integer index names in its output plane, zeros elsewhere (repeated indices
    add up). Differentiable in ``x``."""
    x, x4 = _pool_input(x)
    indices = jnp.asarray(indices)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"indices: expected an integer array (as max_pool2d returns), got "
                        f"{indices.dtype}")
    if tuple(indices.shape) != tuple(x.shape):
        raise ValueError(f"indices: expected the shape of x {tuple(x.shape)}, got "
                         f"{tuple(indices.shape)}")
    kernel, stride = _window(kernel_size, stride)
    pads = padding if isinstance(padding, (tuple, list)) else (padding, padding)
    size = None if output_size is None else tuple(int(s) for s in output_size)[-2:]
    unpool = _max_unpool2d_vjp(kernel, stride, tuple(pads), size)
    return _user_rank(unpool(x4, jnp.reshape(indices, x4.shape)), x.ndim)
