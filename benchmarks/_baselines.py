"""The baselines of the training benchmarks: fastbp's training, written by hand.

Each baseline trains the same network from the same initial parameters on the same
batches, in the same order, with the same optimiser as ``fastbp.Network.fit(X, Y,
batch_size=..., shuffle=False)``, so that its time is the time of the same work:

- :class:`NumpyLoop`: the lean NumPy loop a user writes (matrix products, in-place
  activations, derivatives from the activation output, optimiser steps on each array),
  with no per-call checks. ``backend="numpy"`` runs the same algorithm through
  fastbp.reference's checked kernels; this loop is what a user's own script costs.
- :class:`JaxEpoch`: one whole epoch as one ``jax.jit`` function, ``lax.scan`` over
  the batches (a last, smaller batch is one more jitted step), gradients by
  ``jax.grad``, the optimiser written out as fastbp's. Compiled once, before timing.
- :class:`TorchEpoch`: an idiomatic PyTorch loop over batches made beforehand:
  ``nn.Sequential``, the loss, ``backward()``, ``torch.optim.SGD`` or ``Adam``.

Every one of them is checked against fastbp (same parameters after a short epoch,
float64) in tests/test_benchmarks.py. The optimisers, as fastbp's: SGD ``v = momentum v
- lr g; p += v`` (Nesterov ``p += momentum v - lr g``); Adam with the bias correction
folded into the step, ``p -= lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + eps)``.
PyTorch's Adam adds ``eps`` after the bias correction of ``sqrt(v)`` instead, which
differs only for gradients of the size of ``eps``. No L2 penalty (the benchmarks use
none).
"""

import dataclasses
import importlib.util

import numpy as np

import fastbp

HAVE_JAX = importlib.util.find_spec("jax") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None

# (output, loss) pairs whose output error is a - y (as fastbp.losses.MATCHING_PAIRS).
_MATCHING = {("identity", "mse"), ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy")}


@dataclasses.dataclass(frozen=True)
class Training:
    """What one epoch trains: the network, the loss, the batches and the optimiser."""

    sizes: tuple
    hidden: str = "sigmoid"
    output: str = "sigmoid"
    loss: str = "mse"
    batch_size: int = 10
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        if self.hidden not in ("sigmoid", "relu", "tanh"):
            raise ValueError(f"hidden must be sigmoid, relu or tanh, got {self.hidden!r}")
        if (self.output, self.loss) not in (("sigmoid", "mse"), ("softmax", "cross_entropy")):
            raise ValueError(f"output/loss must be sigmoid/mse or softmax/cross_entropy, got "
                             f"{self.output}/{self.loss}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be sgd or adam, got {self.optimizer!r}")

    def network(self, dtype, seed=0):
        """A fresh fastbp.Network of this training (its initial parameters are the ones
        every baseline starts from)."""
        return fastbp.Network(list(self.sizes), activation=self.hidden, output=self.output,
                              loss=self.loss, dtype=dtype, seed=seed)

    def fit_kwargs(self):
        """The arguments of ``Network.fit`` for one epoch of this training, in order."""
        return dict(epochs=1, batch_size=self.batch_size, learning_rate=self.learning_rate,
                    optimizer=self.optimizer, momentum=self.momentum, nesterov=self.nesterov,
                    beta1=self.beta1, beta2=self.beta2, eps=self.eps, shuffle=False)

    def initial_parameters(self, dtype, seed=0):
        """(weights, biases): copies of fastbp's initial parameters for this seed."""
        net = self.network(dtype, seed)
        return [W.copy() for W in net.weights], [b.copy() for b in net.biases]


def training_flops(sizes, samples):
    """The matrix-product FLOPs of one epoch: per sample and layer of shape (out, in),
    forward 2 in out, weight gradient 2 in out, and the backpropagated error 2 in out
    for every layer but the first (training does not need the input's). Bias, activation
    and optimiser work are not counted."""
    per_sample = 0
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        per_sample += (4 if layer == 0 else 6) * n_in * n_out
    return per_sample * samples


def one_hot(labels, n_classes, dtype):
    T = np.zeros((len(labels), n_classes), dtype)
    T[np.arange(len(labels)), labels] = 1
    return T


# ----- the lean NumPy loop -----------------------------------------------------------------


def _activate(Z, name):
    """act(Z) in place."""
    if name == "sigmoid":
        np.negative(Z, out=Z)
        np.exp(Z, out=Z)
        Z += 1
        np.reciprocal(Z, out=Z)
    elif name == "relu":
        np.maximum(Z, 0, out=Z)
    elif name == "tanh":
        np.tanh(Z, out=Z)
    else:  # softmax
        Z -= Z.max(axis=1, keepdims=True)
        np.exp(Z, out=Z)
        Z /= Z.sum(axis=1, keepdims=True)


def _times_derivative(G, A, name):
    """G *= act'(z), from the activation output A, in place."""
    if name == "sigmoid":
        G *= A
        G *= 1 - A
    elif name == "relu":
        G *= A > 0
    elif name == "tanh":
        G *= 1 - A * A
    else:
        raise ValueError(f"no derivative product for {name!r}")


class NumpyLoop:
    """The lean NumPy training loop: fastbp's algorithm as a user writes it."""

    def __init__(self, training, weights, biases):
        self.training = training
        self.weights = [np.array(W) for W in weights]
        self.biases = [np.array(b) for b in biases]
        params = self.weights + self.biases
        if training.optimizer == "adam":
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
            self.t = 0
        elif training.momentum > 0:
            self.velocity = [np.zeros_like(p) for p in params]

    def epoch(self, X, T):
        """One epoch over the rows of X (targets T, one-hot for softmax), in order."""
        tr = self.training
        n_layers = len(self.weights)
        with np.errstate(over="ignore"):  # exp(-z) of a very negative z: inf, sigmoid 0
            for start in range(0, X.shape[0], tr.batch_size):
                x = X[start:start + tr.batch_size]
                y = T[start:start + tr.batch_size]
                m = x.shape[0]
                acts = [x]
                for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
                    z = acts[-1] @ W.T
                    z += b
                    _activate(z, tr.output if layer == n_layers - 1 else tr.hidden)
                    acts.append(z)
                delta = acts[-1] - y
                if (tr.output, tr.loss) not in _MATCHING:
                    _times_derivative(delta, acts[-1], tr.output)
                grad_w, grad_b = [None] * n_layers, [None] * n_layers
                for layer in range(n_layers - 1, -1, -1):
                    grad_w[layer] = delta.T @ acts[layer]
                    grad_w[layer] /= m
                    grad_b[layer] = delta.mean(axis=0)
                    if layer > 0:
                        delta = delta @ self.weights[layer]
                        _times_derivative(delta, acts[layer], tr.hidden)
                self._step(grad_w + grad_b)

    def _step(self, grads):
        tr = self.training
        params = self.weights + self.biases
        if tr.optimizer == "adam":
            self.t += 1
            lr_t = tr.learning_rate * np.sqrt(1 - tr.beta2 ** self.t) / (1 - tr.beta1 ** self.t)
            for p, g, m, v in zip(params, grads, self.m, self.v):
                m *= tr.beta1
                m += (1 - tr.beta1) * g
                v *= tr.beta2
                v += (1 - tr.beta2) * g * g
                p -= lr_t * m / (np.sqrt(v) + tr.eps)
        elif tr.momentum > 0:
            for p, g, v in zip(params, grads, self.velocity):
                v *= tr.momentum
                v -= tr.learning_rate * g
                if tr.nesterov:
                    p += tr.momentum * v - tr.learning_rate * g
                else:
                    p += v
        else:
            for p, g in zip(params, grads):
                p -= tr.learning_rate * g


# ----- JAX -----------------------------------------------------------------------------------


def _jax():
    import jax

    # float64 needs x64 mode; float32 arrays stay float32 (every array here is typed).
    jax.config.update("jax_enable_x64", True)
    return jax


class JaxEpoch:
    """One epoch as one compiled JAX function (``lax.scan`` over the batches)."""

    def __init__(self, training, weights, biases, X, T):
        jax = _jax()
        import jax.numpy as jnp

        self.training = tr = training
        dtype = X.dtype
        n = X.shape[0]
        full = n // tr.batch_size
        rest = n - full * tr.batch_size
        # The batches, laid out once (not timed): (full, batch, features) and the rest.
        self.Xb = jnp.asarray(X[:full * tr.batch_size].reshape(full, tr.batch_size, -1))
        self.Tb = jnp.asarray(T[:full * tr.batch_size].reshape(full, tr.batch_size, -1))
        self.X_rest = jnp.asarray(X[full * tr.batch_size:]) if rest else None
        self.T_rest = jnp.asarray(T[full * tr.batch_size:]) if rest else None
        params = ([jnp.asarray(W) for W in weights], [jnp.asarray(b) for b in biases])
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        if tr.optimizer == "adam":
            state = (zeros, zeros, jnp.zeros((), dtype))  # m, v, t
        else:
            state = zeros  # velocity (unused without momentum)
        self.params, self.state = self.initial = params, state
        act = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "tanh": jnp.tanh}[tr.hidden]
        one = dtype.type(1)

        def loss(params, x, y):
            a = x
            Ws, bs = params
            for W, b in zip(Ws[:-1], bs[:-1]):
                a = act(a @ W.T + b)
            z = a @ Ws[-1].T + bs[-1]
            if tr.loss == "mse":
                return 0.5 * jnp.sum((jax.nn.sigmoid(z) - y) ** 2) / x.shape[0]
            return -jnp.sum(y * jax.nn.log_softmax(z)) / x.shape[0]

        grad = jax.grad(loss)
        lr, mu = dtype.type(tr.learning_rate), dtype.type(tr.momentum)
        b1, b2, eps = dtype.type(tr.beta1), dtype.type(tr.beta2), dtype.type(tr.eps)

        def step(carry, batch):
            params, state = carry
            g = grad(params, *batch)
            if tr.optimizer == "adam":
                m, v, t = state
                t = t + one
                lr_t = lr * jnp.sqrt(one - b2 ** t) / (one - b1 ** t)
                m = jax.tree_util.tree_map(lambda m, g: b1 * m + (one - b1) * g, m, g)
                v = jax.tree_util.tree_map(lambda v, g: b2 * v + (one - b2) * g * g, v, g)
                params = jax.tree_util.tree_map(
                    lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + eps), params, m, v)
                state = (m, v, t)
            elif tr.momentum > 0:
                state = jax.tree_util.tree_map(lambda v, g: mu * v - lr * g, state, g)
                if tr.nesterov:
                    params = jax.tree_util.tree_map(lambda p, v, g: p + mu * v - lr * g,
                                                    params, state, g)
                else:
                    params = jax.tree_util.tree_map(lambda p, v: p + v, params, state)
            else:
                params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, g)
            return (params, state), None

        def scan_epoch(params, state, Xb, Tb):
            (params, state), _ = jax.lax.scan(step, (params, state), (Xb, Tb))
            return params, state

        def last_step(params, state, x, y):
            return step((params, state), (x, y))[0]

        # Compiled here, once: timing sees only the run.
        self._scan = jax.jit(scan_epoch).lower(params, state, self.Xb, self.Tb).compile()
        self._last = (jax.jit(last_step).lower(params, state, self.X_rest, self.T_rest)
                      .compile() if rest else None)

    def reset(self):
        """Back to the initial parameters and optimiser state (the compiled code stays)."""
        self.params, self.state = self.initial

    def epoch(self):
        """Train one epoch; waits for the result (JAX dispatches asynchronously)."""
        params, state = self._scan(self.params, self.state, self.Xb, self.Tb)
        if self._last is not None:
            params, state = self._last(params, state, self.X_rest, self.T_rest)
        self.params, self.state = _jax().block_until_ready((params, state))

    @property
    def weights(self):
        return [np.asarray(W) for W in self.params[0]]

    @property
    def biases(self):
        return [np.asarray(b) for b in self.params[1]]


# ----- PyTorch -------------------------------------------------------------------------------


class TorchEpoch:
    """An idiomatic PyTorch training loop over batches made beforehand."""

    def __init__(self, training, weights, biases, X, T):
        import torch

        self.training = tr = training
        layers = []
        hidden = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
        for layer, (W, b) in enumerate(zip(weights, biases)):
            linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.from_numpy(W).dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if layer < len(weights) - 1:
                layers.append(hidden[tr.hidden]())
        if tr.loss == "mse":
            layers.append(torch.nn.Sigmoid())  # softmax is inside cross_entropy
        self.model = torch.nn.Sequential(*layers)
        params = self.model.parameters()
        if tr.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=tr.learning_rate,
                                              betas=(tr.beta1, tr.beta2), eps=tr.eps)
        else:
            self.optimizer = torch.optim.SGD(params, lr=tr.learning_rate, momentum=tr.momentum,
                                             nesterov=tr.nesterov)
        # Targets: one-hot rows for the quadratic cost, class indices for cross-entropy.
        targets = (torch.from_numpy(T) if tr.loss == "mse"
                   else torch.from_numpy(T.argmax(axis=1)))
        self.batches = list(zip(torch.from_numpy(X).split(tr.batch_size),
                                targets.split(tr.batch_size)))

    def epoch(self):
        import torch

        model, optimizer, mse = self.model, self.optimizer, self.training.loss == "mse"
        for x, y in self.batches:
            optimizer.zero_grad()
            out = model(x)
            if mse:
                loss = 0.5 * ((out - y) ** 2).sum() / x.shape[0]
            else:
                loss = torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            optimizer.step()

    @property
    def weights(self):
        return [m.weight.detach().numpy().copy() for m in self.model
                if hasattr(m, "weight")]

    @property
    def biases(self):
        return [m.bias.detach().numpy().copy() for m in self.model if hasattr(m, "bias")]
