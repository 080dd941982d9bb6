"""Property-based tests of the four kernels of fastbp.kernels and fastbp.reference.

One composite strategy builds the arguments of one kernel call: random shapes (0 rows,
1 row, 1 column, widths up to 70), random layouts (C and Fortran order, transposed views,
slices with positive or negative steps, zero-stride broadcasts, read-only arrays, nested
lists), random dtypes (float32, float64, mixed between arguments, and bad ones: int,
bool, object, complex, float16, byte-swapped floats), random activations (valid names and
garbage, strings or not), random ``out=`` / ``bias_out=`` arrays (correct, wrong shape,
wrong dtype, non-contiguous, read-only, not an array, NaN-filled, or a view overlapping an
input), random ``scale`` (finite, nan, inf, not a number) and ``accumulate``.

The property, for both modules on fresh copies of the same arguments:

* the call either returns the result of ``fastbp.reference`` computed on clean
  C-contiguous copies of the inputs (taken before the call), within the dtype's
  tolerance of tests/conftest.py, or raises exactly ValueError or TypeError;
* the two modules agree: both succeed, or both raise the same exception type;
* no input is modified (unless ``out`` overlaps it by design), nor the buffer an input is
  a strided view into; a failing call leaves ``out`` and ``bias_out`` untouched;
* with ``out=`` the return value is ``out``; without it, a fresh array.

Values are drawn in [-10, 10] (sometimes on a 1/8 grid, which gives exact zeros and
exact matrix products) so that no legitimate overflow can separate the modules. Sums of
up to 70 such products can cancel, so the absolute tolerance of a sum is the table's
``ATOL + RTOL * (sum of the absolute values of its terms)`` -- the textbook bound on the
rounding error of a dot product, which RTOL (~80 ulps in float32, ~4500 in float64)
covers for 70 terms. A real bug (a wrong element, stride or activation) is far outside.
"""

from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastbp import kernels, reference

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Every dtype the kernels must refuse with a TypeError (float16 and byte-swapped floats
# included: only native float32/float64 reach the nogil cores).
BAD_DTYPES = (
    np.dtype(np.int32), np.dtype(np.int64), np.dtype(bool), np.dtype(object),
    np.dtype(np.complex64), np.dtype(np.complex128), np.dtype(np.float16),
    np.dtype(">f4"), np.dtype(">f8"),
)
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
KERNELS = ("dense_forward", "activation_backward", "backward_delta", "weight_gradient")
INPUTS = {
    "dense_forward": ("A_prev", "W", "b"),
    "activation_backward": ("G", "A"),
    "backward_delta": ("delta", "W", "A_prev"),
    "weight_gradient": ("delta", "A_prev"),
}
MAX_WIDTH = 70

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    # `tol` is a pure function: sharing it between examples is safe.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)


def shapes_of(name, n, n_in, n_out):
    """The shape of every argument (and of out / bias_out) of a valid call."""
    if name == "dense_forward":
        return {"A_prev": (n, n_in), "W": (n_out, n_in), "b": (n_out,), "out": (n, n_out)}
    if name == "activation_backward":
        return {"G": (n, n_out), "A": (n, n_out), "out": (n, n_out)}
    if name == "backward_delta":
        return {"delta": (n, n_out), "W": (n_out, n_in), "A_prev": (n, n_in), "out": (n, n_in)}
    return {"delta": (n, n_out), "A_prev": (n, n_in), "out": (n_out, n_in),
            "bias_out": (n_out,)}


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class ArraySpec:
    """How to build one array argument. kind: array, list, none, str, scalar, alias."""

    kind: str = "array"
    shape: tuple = ()
    dtype: np.dtype = FLOAT_DTYPES[1]
    order: str = "C"             # memory order of the buffer the view is cut from
    transposed: bool = False     # a transposed view of a buffer of the transposed shape
    steps: tuple = ()            # slice steps per axis (negative: reversed)
    broadcast: bool = False      # zero stride along axis 0 (a read-only view)
    readonly: bool = False
    nan_fill: bool = False       # values NaN (only for out arrays that are overwritten)
    alias_of: str = ""           # kind="alias": a view into this argument's buffer
    alias_at: float = 0.0        # ... starting at this fraction of the free room


@dataclass(frozen=True)
class Recipe:
    """One kernel call, rebuilt identically (fresh arrays) by every call of build()."""

    name: str
    seed: int
    dims: tuple
    dtype: np.dtype
    quantize: bool
    inputs: dict = field(default_factory=dict)
    activation: object = "identity"
    omit_activation: bool = False
    out: ArraySpec = None        # None: out= not passed
    bias_out: ArraySpec = None   # weight_gradient only; None: not passed
    scale: object = None         # None: not passed
    accumulate: object = None    # None: not passed

    def build(self):
        """(args, kwargs) of the call, made from the seed: the same values every time."""
        rng = np.random.default_rng(self.seed)
        built = {}
        for arg, spec in self.inputs.items():
            built[arg] = build_value(spec, rng, self.quantize, built)
        args = [built[arg] for arg in INPUTS[self.name]]
        kwargs = {}
        if self.name != "weight_gradient" and not self.omit_activation:
            args.append(self.activation)
        if self.out is not None:
            built["out"] = kwargs["out"] = build_value(self.out, rng, self.quantize, built)
        if self.bias_out is not None:
            kwargs["bias_out"] = build_value(self.bias_out, rng, self.quantize, built)
        if self.scale is not None:
            kwargs["scale"] = self.scale
        if self.accumulate is not None:
            kwargs["accumulate"] = self.accumulate
        return args, kwargs


def random_values(rng, shape, dtype, quantize):
    """Values of moderate magnitude in [-10, 10] of the given dtype (any dtype), an array."""
    x = rng.uniform(-10, 10, shape)
    if quantize:
        x = np.round(x * 8) / 8
    if dtype == np.dtype(bool):
        x = x > 0
    elif dtype.kind in "iu":
        x = np.round(x)
    elif dtype.kind == "c":
        x = x + 1j * rng.uniform(-1, 1, shape)
    return np.array(x, dtype=dtype)  # shape () too: a writeable 0-d array, not a scalar


def lay_out(values, spec):
    """values (C order) placed in memory as spec says; padding between elements is NaN."""
    if values.ndim not in (1, 2):
        return np.array(values, dtype=spec.dtype)
    if spec.broadcast:
        view = np.broadcast_to(values[:1], values.shape)
        return view  # read-only by construction
    target = values.T if (spec.transposed and values.ndim == 2) else values
    steps = spec.steps[:target.ndim]
    big_shape = tuple(abs(s) * d for s, d in zip(steps, target.shape))
    fill = np.nan if spec.dtype.kind == "f" else 0
    big = np.full(big_shape, fill, dtype=spec.dtype, order=spec.order)
    view = big[tuple(slice(None, None, s) for s in steps)]
    assert view.shape == target.shape
    view[...] = target
    view = view.T if target is not values else view
    if spec.readonly:
        view.flags.writeable = False
    return view


def build_value(spec, rng, quantize, built):
    if spec.kind == "none":
        return None
    if spec.kind == "str":
        return "not an array"
    if spec.kind == "scalar":
        return 3.0
    if spec.kind == "alias":
        return alias_view(spec, built)
    values = random_values(rng, spec.shape, spec.dtype, quantize)
    if spec.nan_fill and spec.dtype.kind in "fcO":
        values[...] = np.nan
    if spec.kind == "list":
        return values.tolist()
    return lay_out(values, spec)


def alias_view(spec, built):
    """A C-contiguous view of shape spec.shape into the buffer of another argument."""
    source = built.get(spec.alias_of)
    size = int(np.prod(spec.shape))
    if not isinstance(source, np.ndarray) or not source.flags.c_contiguous \
            or not source.flags.writeable or source.size < size:
        return np.zeros(spec.shape, dtype=spec.dtype)  # no room: a plain (valid) array
    flat = source.reshape(-1)
    start = int(spec.alias_at * (source.size - size))
    return flat[start:start + size].reshape(spec.shape)


# ------------------------------------------------------------------------ strategies

dims = st.one_of(st.sampled_from([0, 1, 2, 3]), st.integers(0, MAX_WIDTH))
steps_1d = st.sampled_from([1, 1, 2, 3, -1, -2])


def corrupt_shape(draw, shape):
    how = draw(st.sampled_from(["grow", "shrink", "drop_axis", "add_axis", "scalar"]))
    if how == "drop_axis":
        return shape[:-1] if len(shape) > 1 else ()
    if how == "add_axis":
        return shape + (draw(st.integers(1, 2)),)
    if how == "scalar":
        return ()
    axis = draw(st.integers(0, max(len(shape) - 1, 0))) if shape else 0
    shape = list(shape) or [1]
    shape[axis] = shape[axis] + 1 if how == "grow" or shape[axis] == 0 else shape[axis] - 1
    return tuple(shape)


def layout(draw, ndim):
    """order, transposed, steps, broadcast (any layout holds the same values)."""
    return {
        "order": draw(st.sampled_from("CF")),
        "transposed": draw(st.booleans()) if ndim == 2 else False,
        "steps": tuple(draw(steps_1d) for _ in range(2)),
        "broadcast": draw(st.integers(0, 9)) == 0,
    }


def input_spec(draw, shape, dtype, faulty, optional=False):
    """An input argument: a float array in any layout; with faulty, maybe not.

    Without faulty the argument is valid (a list only where float64 is expected).
    """
    if not faulty:
        lists = dtype == FLOAT_DTYPES[1] and draw(st.integers(0, 7)) == 0
        kind = "list" if lists else "array"
        if optional and draw(st.integers(0, 4)) == 0:
            kind = "none"
    else:
        kind = draw(st.sampled_from(["array"] * 8 + ["list", "none", "str", "scalar"]))
        if kind == "none" and optional:
            kind = "str"
        which = draw(st.sampled_from(["ok"] * 4 + ["mixed", "bad"]))
        if which == "mixed":
            dtype = FLOAT_DTYPES[1] if dtype == FLOAT_DTYPES[0] else FLOAT_DTYPES[0]
        elif which == "bad":
            dtype = draw(st.sampled_from(BAD_DTYPES))
        if draw(st.integers(0, 5)) == 0:
            shape = corrupt_shape(draw, shape)
    return ArraySpec(kind=kind, shape=shape, dtype=dtype, readonly=draw(st.booleans()),
                     **layout(draw, len(shape)))


VALID_OUT_KINDS = ["omit", "None", "good", "good", "alias", "alias"]
INVALID_OUT_KINDS = ["wrong_shape", "wrong_dtype", "noncontig", "readonly", "list"]


def out_spec(draw, shape, dtype, alias_targets, may_be_nan, faulty):
    """out= / bias_out=: not passed, None, valid, overlapping an input, or (faulty) invalid.

    A non-contiguous out is sometimes still C-contiguous (a degenerate shape): valid.
    """
    kind = draw(st.sampled_from(VALID_OUT_KINDS + (INVALID_OUT_KINDS if faulty else [])))
    if kind == "omit":
        return None
    if kind == "None":
        return ArraySpec(kind="none")
    spec = ArraySpec(shape=shape, dtype=dtype, steps=(1, 1),
                     nan_fill=may_be_nan and draw(st.integers(0, 3)) == 0)
    if kind == "alias":
        return replace(spec, kind="alias", alias_of=draw(st.sampled_from(alias_targets)),
                       alias_at=draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 1)))
    if kind == "wrong_shape":
        new = corrupt_shape(draw, shape)
        if len(shape) == 2 and draw(st.booleans()):
            new = shape[::-1]  # the transposed shape (the same when square)
        return replace(spec, shape=new)
    if kind == "wrong_dtype":
        other = FLOAT_DTYPES[1] if dtype == FLOAT_DTYPES[0] else FLOAT_DTYPES[0]
        return replace(spec, dtype=draw(st.sampled_from((other,) + BAD_DTYPES)))
    if kind == "noncontig":
        # F order or a stepped view: non-contiguous unless the shape is degenerate.
        return replace(spec, **layout(draw, len(shape)))
    if kind == "readonly":
        return replace(spec, readonly=True)
    if kind == "list":
        return replace(spec, kind="list")
    return spec


class StrSubclass(str):
    pass


valid_activations = st.one_of(
    st.sampled_from(ACTIVATIONS),
    st.sampled_from(ACTIVATIONS).map(np.str_),
    st.sampled_from(ACTIVATIONS).map(StrSubclass),
)
bad_activations = st.one_of(
    st.sampled_from(["", "ReLU", "relu ", "softmax2", "tanh\x00", "Identity", "sigmoid\n"]),
    st.text(max_size=12),
    st.sampled_from([None, 0, 3, 1.5, b"relu", ("relu",), ["relu"], np.int64(3), {"relu"},
                     object()]),
)

valid_scales = st.one_of(
    st.none(),  # not passed
    st.floats(-100, 100, allow_nan=False, allow_infinity=False),
    st.integers(-5, 5),
    st.sampled_from([0.0, -0.0, 1.0, 1 / 3, 1e-30, np.float32(0.25), np.float64(-3.0),
                     np.int64(2), np.int8(-1), np.float16(1.5), np.uint8(7)]),
)
bad_scales = st.sampled_from([np.nan, np.inf, -np.inf, np.float32("nan"), np.float64("-inf"),
                              True, False, np.True_, "1.0", 1 + 0j, np.complex64(1),
                              np.array(1.0), [1.0]])
valid_accumulates = st.sampled_from([None, True, False, np.True_, np.False_])
bad_accumulates = st.sampled_from([1, 0, "yes", 1.0, np.array(True)])


@st.composite
def kernel_calls(draw, name):
    """One call of kernel `name`: valid (half of the time) or with one or more faults.

    Each argument has its own chance of being faulty in a faulty call, so that errors
    are both single and combined (which check fires first must not matter).
    """
    faulty = draw(st.booleans())

    def fault():
        return faulty and draw(st.integers(0, 3)) == 0

    n, n_in, n_out = draw(dims), draw(dims), draw(dims)
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    shapes = shapes_of(name, n, n_in, n_out)
    inputs = {arg: input_spec(draw, shapes[arg], dtype, fault(), optional=(arg == "b"))
              for arg in INPUTS[name]}
    recipe = Recipe(name=name, seed=draw(st.integers(0, 2**32 - 1)), dims=(n, n_in, n_out),
                    dtype=dtype, quantize=draw(st.booleans()), inputs=inputs)
    if name != "weight_gradient":
        recipe = replace(recipe,
                         activation=draw(bad_activations if fault() else valid_activations),
                         omit_activation=name == "dense_forward" and draw(st.booleans()))
    accumulate = None
    if name == "weight_gradient":
        accumulate = draw(bad_accumulates if fault() else valid_accumulates)
    overwritten = accumulate is None or accumulate is False or accumulate is np.False_
    out = out_spec(draw, shapes["out"], dtype, INPUTS[name], overwritten, fault())
    if accumulate is True or accumulate is np.True_:
        if not fault() and (out is None or out.kind == "none"):
            out = ArraySpec(shape=shapes["out"], dtype=dtype, steps=(1, 1))
    recipe = replace(recipe, out=out)
    if name == "weight_gradient":
        # bias_out overlapping out is an error: only a faulty call tries it.
        targets = ("delta", "A_prev", "out") if fault() else ("delta", "A_prev")
        bias_out = out_spec(draw, shapes["bias_out"], dtype, targets, overwritten, fault())
        scale = draw(bad_scales if fault() else valid_scales)
        recipe = replace(recipe, bias_out=bias_out, scale=scale, accumulate=accumulate)
    return overlap_sources(recipe)


def overlap_sources(recipe):
    """Make the input an aliasing out / bias_out views into a plain C-contiguous array.

    An out can only be a view into the memory of a C-contiguous, writeable input of the
    same dtype: this gives the alias a buffer to overlap (else it is a separate array).
    """
    inputs = dict(recipe.inputs)
    for spec in (recipe.out, recipe.bias_out):
        if spec is not None and spec.kind == "alias" and spec.alias_of in inputs:
            inputs[spec.alias_of] = replace(
                inputs[spec.alias_of], order="C", transposed=False, steps=(1, 1),
                broadcast=False, readonly=False)
    return replace(recipe, inputs=inputs)


# ---------------------------------------------------------------------- the property


def call(module, recipe):
    """Run the kernel of `module` on freshly built arguments; record what happened."""
    args, kwargs = recipe.build()
    arrays = [x for x in list(args) + list(kwargs.values()) if isinstance(x, np.ndarray)]
    before = {id(x): x.copy() for x in arrays}
    roots = {id(r): (r, r.copy()) for r in map(root_of, arrays)}
    try:
        result = getattr(module, recipe.name)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the type is the property under test
        outcome = type(exc)
        result = exc
    else:
        outcome = None
    return {"args": args, "kwargs": kwargs, "before": before, "roots": roots,
            "outcome": outcome, "result": result}


def root_of(x):
    while isinstance(x.base, np.ndarray):
        x = x.base
    return x


def same_content(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def clean(x):
    """A C-contiguous float copy of an argument (lists become float64 arrays)."""
    if x is None or not isinstance(x, (np.ndarray, list)):
        return x
    return np.array(x, order="C", copy=True)


def abs_vjp(Gm, A, activation):
    """Size of the terms of G * act'(A) for |G| <= Gm: bounds the rounding error."""
    A = np.abs(A)
    if activation == "sigmoid":
        return Gm * A * (1 + A)
    if activation == "tanh":
        return Gm * (1 + A * A)
    if activation == "softmax":
        return A * (Gm + (Gm * A).sum(axis=1, keepdims=True))
    return Gm


def error_scale(recipe, clean_args, clean_kwargs):
    """{"out": ..., "bias_out": ...}: the sum of |terms| of each result element."""
    a = [np.abs(np.asarray(x, dtype=np.float64)) if isinstance(x, np.ndarray) else x
         for x in clean_args]
    act = str(recipe.activation) if not recipe.omit_activation else "identity"
    if recipe.name == "dense_forward":
        A_prev, W, b = a[:3]
        Z = A_prev @ W.T + (0 if b is None else b)
        if act == "softmax":  # softmax's Jacobian: |d softmax| <= 2 max |dz| of the row
            Z = 2 * np.broadcast_to(Z.max(axis=1, keepdims=True, initial=0), Z.shape)
        return {"out": Z}
    if recipe.name == "activation_backward":
        return {"out": abs_vjp(a[0], a[1], act)}
    if recipe.name == "backward_delta":
        delta, W, A_prev = a[:3]
        return {"out": abs_vjp(delta @ W, A_prev, act)}
    delta, A_prev = a
    scale = abs(float(clean_kwargs.get("scale", 1.0)))
    accumulate = bool(clean_kwargs.get("accumulate", False))
    out0 = clean_kwargs.get("out")
    bias0 = clean_kwargs.get("bias_out")
    bounds = {"out": scale * (delta.T @ A_prev)}
    if accumulate:
        bounds["out"] = bounds["out"] + np.abs(out0.astype(np.float64))
    if bias0 is not None:
        bounds["bias_out"] = scale * delta.sum(axis=0)
        if accumulate:
            bounds["bias_out"] = bounds["bias_out"] + np.abs(bias0.astype(np.float64))
    return bounds


def assert_close(got, expected, bound, tol, what):
    assert isinstance(got, np.ndarray), f"{what}: got {type(got).__name__}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    t = tol(expected.dtype)
    got64, exp64 = got.astype(np.float64), expected.astype(np.float64)
    atol = t["atol"] + t["rtol"] * bound
    with np.errstate(invalid="ignore"):
        ok = (np.abs(got64 - exp64) <= atol + t["rtol"] * np.abs(exp64)) | (
            (got64 == exp64) | (np.isnan(got64) & np.isnan(exp64)))
    if not ok.all():
        bad = np.argwhere(~ok)[:5]
        detail = ", ".join(f"{tuple(i)}: {got64[tuple(i)]!r} vs {exp64[tuple(i)]!r} "
                           f"(atol {np.broadcast_to(atol, got.shape)[tuple(i)]:.3g})"
                           for i in bad)
        raise AssertionError(f"{what}: {(~ok).sum()} of {ok.size} elements differ: {detail}")


def check_untouched(run, skip_sharing_with):
    """Every argument array, and the buffer it is a view into, is as before the call."""
    arrays = [x for x in list(run["args"]) + list(run["kwargs"].values())
              if isinstance(x, np.ndarray)]
    sharing = [x for x in skip_sharing_with if isinstance(x, np.ndarray)]
    for x in arrays:
        if any(np.shares_memory(x, s) for s in sharing):
            continue
        assert same_content(x, run["before"][id(x)]), "an argument was modified"
    for root, snapshot in run["roots"].values():
        if any(np.shares_memory(root, s) for s in sharing):
            continue
        assert same_content(root, snapshot), "the buffer behind a strided argument was modified"


def check_one_module(run, recipe, expected, bounds, tol, module_name):
    kwargs = run["kwargs"]
    out, bias_out = kwargs.get("out"), kwargs.get("bias_out")
    result = run["result"]
    if out is not None:
        assert result is out, f"{module_name}: with out=, the return value must be out"
    else:
        assert isinstance(result, np.ndarray)
        for x in run["args"]:
            if isinstance(x, np.ndarray):
                assert not np.shares_memory(result, x), \
                    f"{module_name}: a fresh result must not share memory with an input"
    assert_close(result, expected["out"], bounds["out"], tol, f"{module_name} result")
    if bias_out is not None:
        assert_close(bias_out, expected["bias_out"], bounds["bias_out"], tol,
                     f"{module_name} bias_out")
    # Only out and bias_out (and what they overlap by design) may have changed.
    check_untouched(run, [out, bias_out])


def expected_results(recipe):
    """The reference on clean C-contiguous copies of the same arguments (built afresh)."""
    args, kwargs = recipe.build()
    clean_args = [clean(x) for x in args]
    clean_kwargs = {k: clean(v) for k, v in kwargs.items()}
    result = getattr(reference, recipe.name)(*clean_args, **clean_kwargs)
    expected = {"out": result}
    if clean_kwargs.get("bias_out") is not None:
        expected["bias_out"] = clean_kwargs["bias_out"]
    return expected, error_scale(recipe, clean_args, clean_kwargs)


def check_property(recipe, tol):
    runs = {m.__name__: call(m, recipe) for m in (kernels, reference)}
    outcomes = {name: run["outcome"] for name, run in runs.items()}
    for name, run in runs.items():
        if run["outcome"] is not None:
            assert run["outcome"] in (ValueError, TypeError), (
                f"{name} raised {run['outcome'].__name__}: {run['result']!r}")
    assert outcomes["fastbp.kernels"] is outcomes["fastbp.reference"], (
        f"the modules disagree: kernels -> {runs['fastbp.kernels']['result']!r}, "
        f"reference -> {runs['fastbp.reference']['result']!r}")
    event(f"outcome: {getattr(outcomes['fastbp.kernels'], '__name__', 'returned')}")
    if outcomes["fastbp.kernels"] is not None:
        for run in runs.values():  # a rejected call writes nothing, out included
            check_untouched(run, [])
        return
    for key in ("out", "bias_out"):
        spec = getattr(recipe, key)
        if spec is not None:
            event(f"returned with {key} {spec.kind}{' (NaN-filled)' if spec.nan_fill else ''}")
    kw = runs["fastbp.kernels"]["kwargs"]
    for key in ("out", "bias_out"):
        if isinstance(kw.get(key), np.ndarray) and any(
                isinstance(x, np.ndarray) and np.shares_memory(kw[key], x)
                for x in runs["fastbp.kernels"]["args"]):
            event(f"returned with {key} overlapping an input")
    if any(not isinstance(x, np.ndarray) or not x.flags.c_contiguous
           for x in runs["fastbp.kernels"]["args"][:len(INPUTS[recipe.name])] if x is not None):
        event("returned with a non-contiguous or non-array input")
    expected, bounds = expected_results(recipe)
    for name, run in runs.items():
        check_one_module(run, recipe, expected, bounds, tol, name)


@pytest.mark.parametrize("name", KERNELS)
@SETTINGS
@given(data=st.data())
def test_kernel_matches_clean_reference_or_raises_value_or_type_error(name, data, tol):
    check_property(data.draw(kernel_calls(name), label="call"), tol)


# A fixed slice of the input space, every time: valid calls with every activation and
# both dtypes, so that the property above is never only exercised on error paths.


@pytest.mark.parametrize("name", KERNELS)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=0, max_side=MAX_WIDTH),
       dtype=st.sampled_from(FLOAT_DTYPES), activation=st.sampled_from(ACTIVATIONS),
       seed=st.integers(0, 2**32 - 1))
def test_valid_c_contiguous_calls_always_succeed(name, shape, dtype, activation, seed, tol):
    n, n_in, n_out = shape
    shapes = shapes_of(name, n, n_in, n_out)
    recipe = Recipe(
        name=name, seed=seed, dims=shape, dtype=dtype, quantize=False,
        inputs={arg: ArraySpec(shape=shapes[arg], dtype=dtype, steps=(1, 1))
                for arg in INPUTS[name]},
        activation=activation,
    )
    runs = {m.__name__: call(m, recipe) for m in (kernels, reference)}
    for name_, run in runs.items():
        assert run["outcome"] is None, f"{name_} rejected a valid call: {run['result']!r}"
    check_property(recipe, tol)


def test_the_strategy_builds_valid_and_invalid_calls():
    """The composite strategy reaches both sides of the property, for every kernel."""
    for name in KERNELS:
        seen = set()

        @settings(max_examples=60, database=None, deadline=None)
        @given(kernel_calls(name))
        def draw(recipe):
            seen.add(call(reference, recipe)["outcome"])

        draw()
        assert None in seen and (seen & {ValueError, TypeError}), (name, seen)


# ------------------------------------------------------------- scale: any finite real
# check_scale once called np.isfinite on the scale itself: NumPy cannot take isfinite of
# a Python int beyond int64 or of a Fraction, and a long double above the float64 range
# passed as finite before float() turned it into inf.


@pytest.mark.parametrize("module", [kernels, reference], ids=["kernels", "reference"])
@pytest.mark.parametrize("scale", [10**20, -(2**64), Fraction(1, 3)],
                         ids=["int-1e20", "int-minus-2**64", "Fraction"])
def test_weight_gradient_accepts_every_finite_real_scale(module, scale, tol):
    rng = np.random.default_rng(0)
    delta, A_prev = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    got = module.weight_gradient(delta, A_prev, scale=scale)
    np.testing.assert_allclose(got, float(scale) * (delta.T @ A_prev), **tol(np.float64))


@pytest.mark.skipif(np.finfo(np.longdouble).max <= np.finfo(np.float64).max,
                    reason="long double is float64 here: 1e4000 is already inf")
@pytest.mark.parametrize("module", [kernels, reference], ids=["kernels", "reference"])
def test_weight_gradient_rejects_a_scale_that_overflows_float(module):
    delta, A_prev = np.ones((2, 3)), np.ones((2, 4))
    with pytest.raises(ValueError, match="scale must be finite"):
        module.weight_gradient(delta, A_prev, scale=np.longdouble("1e4000"))
