"""Gradient-descent updates on the flat parameter buffer of a Network.

A Network keeps all its weights and biases in one contiguous vector, and their
gradients in another of the same layout, so an optimiser step is a few whole-vector
operations with no per-layer Python loop and no allocation: exactly what a compiled
loop would do. The update rules follow scikit-learn's SGD and Adam optimisers.
"""

import copy
import numbers

import numpy as np

OPTIMIZERS = ("sgd", "adam")


def _check_real(name, value, low, high=None, low_open=False, high_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = (")" if high_open else "]") if high is not None else ")"
        raise ValueError(f"{name} must be in {lo}{low}, {high if high is not None else 'inf'}{hi}, "
                         f"got {value!r}")
    return float(value)


class SGD:
    """params += v, v = momentum * v - lr * g (Nesterov: params += momentum * v - lr * g)."""

    name = "sgd"

    def __init__(self, params, learning_rate, momentum=0.0, nesterov=False):
        self.learning_rate = _check_real("learning_rate", learning_rate, 0, low_open=True)
        # [0, 1] as scikit-learn: 1 is undamped momentum, legal if rarely wise.
        self.momentum = _check_real("momentum", momentum, 0, 1, high_open=False)
        self.nesterov = bool(nesterov)
        self.velocity = np.zeros_like(params) if self.momentum > 0 else None

    def step(self, params, grads):
        lr = params.dtype.type(self.learning_rate)
        if self.velocity is None:
            # grads is scratch once the step has begun: scale it in place, then add.
            np.multiply(grads, -lr, out=grads)
            params += grads
            return
        mu = params.dtype.type(self.momentum)
        v = self.velocity
        v *= mu
        np.multiply(grads, -lr, out=grads)
        v += grads
        _flush_subnormal(v)
        if self.nesterov:
            # params += momentum * v - lr * g, without a temporary: grads holds -lr * g.
            params += grads
            np.multiply(v, mu, out=grads)
            params += grads
        else:
            params += v


def _flush_subnormal(state):
    """Set the subnormal entries of optimiser state to 0, as the compiled engine does
    (state that decays would otherwise pass through subnormal numbers, ~100x slower)."""
    state[np.abs(state) < np.finfo(state.dtype).tiny] = 0


class Adam:
    """Adam (Kingma & Ba) with bias correction folded into the step size."""

    name = "adam"

    def __init__(self, params, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
        self.learning_rate = _check_real("learning_rate", learning_rate, 0, low_open=True)
        self.beta1 = _check_real("beta1", beta1, 0, 1)
        self.beta2 = _check_real("beta2", beta2, 0, 1)
        self.eps = _check_real("eps", eps, 0, low_open=True)
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.scratch = np.empty_like(params)
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        dt = params.dtype.type
        b1, b2 = dt(self.beta1), dt(self.beta2)
        lr_t = dt(self.learning_rate * np.sqrt(1 - self.beta2 ** self.t)
                  / (1 - self.beta1 ** self.t))
        s = self.scratch
        self.m *= b1
        np.multiply(grads, 1 - b1, out=s)
        self.m += s
        _flush_subnormal(self.m)
        self.v *= b2
        np.multiply(grads, grads, out=grads)
        grads *= 1 - b2
        self.v += grads
        _flush_subnormal(self.v)
        np.sqrt(self.v, out=s)
        s += dt(self.eps)
        np.divide(self.m, s, out=s)
        s *= -lr_t
        params += s


# The hyper-parameters a resumed optimiser must keep (its state was built with them).
FIXED_ON_RESUME = {"sgd": ("momentum", "nesterov"), "adam": ("beta1", "beta2", "eps")}


def make_optimizer(name, params, learning_rate, momentum=0.0, nesterov=False,
                   beta1=0.9, beta2=0.999, eps=1e-8, previous=None):
    """The optimiser ``name``; every hyper-parameter is checked, used by it or not
    (as scikit-learn does), so a typo never passes silently.

    With ``previous`` (fit(resume=True)), a copy of it that shares its state (velocity,
    Adam moments and step count) and takes the new learning rate: no new state is
    allocated. Its other hyper-parameters must be unchanged.
    """
    _check_real("momentum", momentum, 0, 1, high_open=False)
    _check_real("beta1", beta1, 0, 1)
    _check_real("beta2", beta2, 0, 1)
    _check_real("eps", eps, 0, low_open=True)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid optimizers are "
                         f"{', '.join(OPTIMIZERS)}")
    if previous is not None:
        if previous.name != name:
            raise ValueError(f"resume=True continues the previous fit's {previous.name!r} "
                             f"optimiser; got optimizer={name!r}")
        given = {"momentum": float(momentum), "nesterov": bool(nesterov),
                 "beta1": float(beta1), "beta2": float(beta2), "eps": float(eps)}
        for key in FIXED_ON_RESUME[name]:
            if getattr(previous, key) != given[key]:
                raise ValueError(f"resume=True keeps the optimiser's {key}="
                                 f"{getattr(previous, key)!r}; got {key}={given[key]!r}")
        resumed = copy.copy(previous)
        resumed.learning_rate = _check_real("learning_rate", learning_rate, 0, low_open=True)
        return resumed
    if name == "sgd":
        return SGD(params, learning_rate, momentum, nesterov)
    return Adam(params, learning_rate, beta1, beta2, eps)
