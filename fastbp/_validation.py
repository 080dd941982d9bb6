"""Input checks shared by fastbp.kernels and fastbp.reference.

Both modules call the same checks, so the compiled kernels and their NumPy twins
accept the same inputs and raise the same errors. Every message names the argument,
what was expected and what came. The nogil cores never see unchecked input.
"""

import math
import numbers
import os

import numpy as np

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# BLAS (LP64, as SciPy's) takes dimensions as C int.
BLAS_INT_MAX = 2**31 - 1


def check_activation(activation, name="activation"):
    if not isinstance(activation, str):
        raise TypeError(
            f"{name} must be a str, one of {', '.join(ACTIVATIONS)}; "
            f"got {type(activation).__name__} {activation!r}"
        )
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown {name} {activation!r}; valid activations are {', '.join(ACTIVATIONS)}"
        )
    return activation


def check_array(name, X, ndim):
    """X as a C-contiguous float32/float64 array of rank ndim (copied only if needed)."""
    if X is None:
        raise TypeError(f"{name} must be a float32 or float64 array, got None")
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {X.dtype} "
            "(convert it explicitly, e.g. X.astype(np.float32))"
        )
    if X.ndim != ndim:
        shape = "(n_samples, n_features)" if ndim == 2 else "(n_features,)"
        raise ValueError(f"{name} must be {ndim}-D with shape {shape}, got shape {X.shape}")
    if any(d > BLAS_INT_MAX for d in X.shape):
        raise ValueError(f"{name} has shape {X.shape}: BLAS takes at most {BLAS_INT_MAX} "
                         "rows or columns per dimension; split the batch")
    return np.ascontiguousarray(X)


def check_same_dtype(**arrays):
    """All arrays share one dtype: no silent up-casting in the hot path."""
    named = [(name, a) for name, a in arrays.items() if a is not None]
    first_name, first = named[0]
    for name, a in named[1:]:
        if a.dtype != first.dtype:
            raise TypeError(
                f"{name} has dtype {a.dtype} but {first_name} has dtype {first.dtype}; "
                "all inputs must share one dtype (float32 or float64)"
            )
    return first.dtype


def check_dim(name, actual, expected, what):
    if actual != expected:
        raise ValueError(f"{name} has {actual} {what} but {expected} were expected")


def check_out(name, out, shape, dtype):
    """out is a C-contiguous, writeable ndarray of exactly this shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray), got strides {out.strides}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable, got a read-only array")
    return out


def check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be a real number, got {type(scale).__name__} {scale!r}")
    # Convert first, then check: a huge int, a Fraction or a long double above the
    # float64 range are real numbers too, and what the kernels use is the float.
    try:
        value = float(scale)
    except OverflowError:
        value = float("inf")
    if not math.isfinite(value):
        raise ValueError(f"scale must be finite (as a float64), got {scale}")
    return value


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


# --- one checker per kernel: both modules call these, so their contracts are one ---


def check_dense_forward(A_prev, W, b, activation, out):
    check_activation(activation)
    A_prev = check_array("A_prev", A_prev, 2)
    W = check_array("W", W, 2)
    if b is not None:
        b = check_array("b", b, 1)
    dtype = check_same_dtype(A_prev=A_prev, W=W, b=b)
    if W.shape[1] != A_prev.shape[1]:
        raise ValueError(
            f"W has {W.shape[1]} columns (inputs) but A_prev has {A_prev.shape[1]} features; "
            "W must have shape (n_out, n_in)"
        )
    if b is not None:
        check_dim("b", b.shape[0], W.shape[0], "entries (W has that many rows)")
    shape = (A_prev.shape[0], W.shape[0])
    if out is not None:
        check_out("out", out, shape, dtype)
    return A_prev, W, b, shape, dtype


def check_activation_backward(G, A, activation, out):
    check_activation(activation)
    G = check_array("G", G, 2)
    A = check_array("A", A, 2)
    dtype = check_same_dtype(G=G, A=A)
    if G.shape != A.shape:
        raise ValueError(f"G has shape {G.shape} but A has shape {A.shape}; they must match")
    if out is not None:
        check_out("out", out, G.shape, dtype)
    return G, A, dtype


def check_backward_delta(delta, W, A_prev, activation, out):
    check_activation(activation)
    delta = check_array("delta", delta, 2)
    W = check_array("W", W, 2)
    A_prev = check_array("A_prev", A_prev, 2)
    dtype = check_same_dtype(delta=delta, W=W, A_prev=A_prev)
    if delta.shape[1] != W.shape[0]:
        raise ValueError(
            f"delta has {delta.shape[1]} columns but W has {W.shape[0]} rows (outputs); "
            "delta must have shape (n, n_out) for W of shape (n_out, n_in)"
        )
    shape = (delta.shape[0], W.shape[1])
    if A_prev.shape != shape:
        raise ValueError(f"A_prev must have shape {shape} (n, n_in), got {A_prev.shape}")
    if out is not None:
        check_out("out", out, shape, dtype)
    return delta, W, A_prev, shape, dtype


def check_weight_gradient(delta, A_prev, out, bias_out, scale, accumulate):
    delta = check_array("delta", delta, 2)
    A_prev = check_array("A_prev", A_prev, 2)
    dtype = check_same_dtype(delta=delta, A_prev=A_prev)
    if delta.shape[0] != A_prev.shape[0]:
        raise ValueError(
            f"delta has {delta.shape[0]} rows (samples) but A_prev has {A_prev.shape[0]}"
        )
    scale = check_scale(scale)
    accumulate = check_bool("accumulate", accumulate)
    shape = (delta.shape[1], A_prev.shape[1])
    if out is not None:
        check_out("out", out, shape, dtype)
    elif accumulate:
        raise ValueError("accumulate=True adds into out, so out= must be given")
    if bias_out is not None:
        check_out("bias_out", bias_out, (delta.shape[1],), dtype)
        if out is not None and np.may_share_memory(out, bias_out):
            raise ValueError("bias_out overlaps out; they must be separate arrays")
    return delta, A_prev, shape, dtype, scale, accumulate


# ----- Network and fit arguments ------------------------------------------------

def check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_nonnegative(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_sample_weight(sample_weight, n, name="sample_weight"):
    """``sample_weight`` as a new float64 array of shape (n,), or None if it is None.

    The weights must be numbers (not booleans), one per sample, finite, >= 0, and not
    all zero; the array returned is a copy, so the caller's is never modified.
    """
    if sample_weight is None:
        return None
    w = sample_weight if isinstance(sample_weight, np.ndarray) else np.asarray(sample_weight)
    if w.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of numbers, one weight per sample, got "
                        f"dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one weight per row of X), got "
                         f"shape {w.shape}")
    w = np.array(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (w < 0).any():
        raise ValueError(f"{name} must be >= 0, got a weight of {float(w.min())!r}")
    with np.errstate(over="ignore"):
        total = w.sum()
    if total == 0:
        raise ValueError(f"{name} is all zeros: at least one sample needs a positive weight")
    if not np.isfinite(total):
        raise ValueError(f"{name} sums to {total}: the weights are too large")
    return w


def all_finite(X):
    """No NaN or inf in X. A finite sum proves it without a boolean temporary the size of
    X; only an infinite or NaN sum (or an overflowing one) needs the elementwise check."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = X.sum()
    return bool(np.isfinite(total)) or bool(np.isfinite(X).all())


def check_output_path(name, path, example):
    """``path`` (str or os.PathLike) as a str for a file to write, its folder existing;
    None stays None. Checked before any work starts, so a typo fails at once."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got "
                        f"{type(path).__name__} {path!r}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{name} {path!r} is in a folder that does not exist: {folder!r}")
    if os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is a folder; give a file name such as {example}")
    return path
