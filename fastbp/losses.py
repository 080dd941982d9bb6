"""Costs and the output error they give (BP1).

J = (1/n) sum_i C(a_i, y_i) + l2/2 sum_l ||W_l||^2, with per-sample costs

- ``mse``: the quadratic cost C = 1/2 ||a - y||^2;
- ``cross_entropy``: with a softmax output C = -sum_k y_k log a_k; with a sigmoid
  output the binary (multi-label) C = -sum_k [y_k log a_k + (1 - y_k) log(1 - a_k)].

The output error delta = dC/dz is ``(a - y) * act'(z)`` in general (BP1) and exactly
``a - y`` for the matching pairs below, where act' cancels (softmax + cross-entropy:
``a * sum(y) - y``, the same for target rows summing to 1).

With sample weights w_i the mean becomes the weighted mean, ``sum_i w_i C_i / sum_i w_i``
(per mini-batch during training, as scikit-learn normalises), and each row's error is
scaled by its weight.
"""

import numpy as np

LOSSES = ("mse", "cross_entropy")
OUTPUTS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")

# (output activation, loss) pairs whose output error is a - y without a derivative term.
MATCHING_PAIRS = {("identity", "mse"), ("softmax", "cross_entropy"),
                  ("sigmoid", "cross_entropy")}


def check_loss(output, loss):
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid losses are {', '.join(LOSSES)}")
    if loss == "cross_entropy" and output not in ("sigmoid", "softmax"):
        raise ValueError(
            f"loss='cross_entropy' needs output='softmax' or 'sigmoid' (probabilities), "
            f"got output={output!r}"
        )


def _row_weighted(scratch, factor, weights):
    """sum_i w_i sum_k factor_ik scratch_ik (scratch is overwritten)."""
    np.multiply(scratch, factor, out=scratch)
    return float(weights @ scratch.sum(axis=1))


def loss_sum(output, loss, A, Y, scratch, weights=None):
    """sum over the rows of C(a_i, y_i) (with ``weights`` (n,): of w_i C(a_i, y_i)),
    using ``scratch`` (shape of A) as workspace."""
    if loss == "mse":
        np.subtract(A, Y, out=scratch)
        if weights is None:
            return 0.5 * float(np.vdot(scratch, scratch))
        return 0.5 * _row_weighted(scratch, scratch, weights)
    # Probabilities are clipped away from 0 and 1 so that log stays finite (as
    # scikit-learn); NaN passes through np.clip, so that divergence shows.
    eps = np.finfo(A.dtype).eps
    if output == "softmax":
        np.clip(A, eps, None, out=scratch)
        np.log(scratch, out=scratch)
        if weights is None:
            return -float(np.vdot(Y, scratch))
        return -_row_weighted(scratch, Y, weights)
    np.clip(A, eps, 1 - eps, out=scratch)
    np.log(scratch, out=scratch)
    total = (float(np.vdot(Y, scratch)) if weights is None
             else _row_weighted(scratch, Y, weights))
    np.subtract(1, A, out=scratch)
    np.clip(scratch, eps, 1 - eps, out=scratch)
    np.log(scratch, out=scratch)
    total += (float(np.vdot(1 - Y, scratch)) if weights is None
              else _row_weighted(scratch, 1 - Y, weights))
    return -total


def output_error(output, loss, A, Y, out, backend, weights=None):
    """delta_L = dC/dz_L for each row (BP1), times the row's weight if ``weights`` (n,)
    are given, written into ``out``.

    softmax + cross-entropy: ``A * Y.sum(1) - Y``, which is ``A - Y`` when each target
    row sums to 1 (one-hot) and stays right for multi-hot or all-zero rows.
    """
    if output == "softmax" and loss == "cross_entropy":
        np.multiply(A, Y.sum(axis=1, keepdims=True), out=out)
        out -= Y
    else:
        np.subtract(A, Y, out=out)
    if (output, loss) not in MATCHING_PAIRS:
        backend.activation_backward(out, A, output, out)
    if weights is not None:
        out *= weights.astype(out.dtype, copy=False)[:, None]
    return out
