"""The fused training engine: chunks of mini-batches trained entirely in compiled code.

One call of ``train_chunk`` runs batches ``[first, last)`` of an epoch without the
GIL: gather the batch's rows, forward pass, loss and output error (BP1), backward pass
(BP2) and the optimiser update, layer by layer, in buffers the caller allocated once
per fit. Python regains control only between chunks (progress bar, Ctrl-C).

Parallelism: BLAS runs single-threaded (the caller limits it with threadpoolctl once
per fit) and fastbp puts the cores to work itself with the blocked layer passes of
src/_layers.pxd: each matrix product split over an OpenMP ``prange``, every block one
micro-kernel product (src/ukernels/) or single-threaded gemm, followed by the fused
elementwise pass on the same block. Small
products stay serial. Block boundaries depend only on the shapes and the thread count,
so a run is bit-reproducible for a given thread count.

For plain SGD the update is folded into the weight-gradient product (the micro-kernel's
store, or gemm's alpha and beta):
``W := (1 - lr * l2) * W - (lr / m) * delta.T @ A_prev``,
after the layer's delta for the layer below has been computed with the old W; ``m`` is
the batch's size, or with sample weights its weight sum (the output error of each row
carries its weight, so no per-batch array is needed).
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.float cimport DBL_MIN, FLT_MIN
from libc.math cimport INFINITY, fabs, fabsf, isfinite, log, sqrt, sqrtf
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _activations cimport SOFTMAX, derivative_product_block
from _layers cimport (
    backward_delta_layer, forward_layer, n_blocks, weight_gradient_layer,
)

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTBP_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define FASTBP_PREFETCH(p) ((void)0)
    #endif
    """
    void prefetch "FASTBP_PREFETCH" (const void* p) noexcept nogil


# --- The micro-kernels' instruction set (fastbp/_isa.py sets every module's copy) ----

include "_isa.pxi"


# Codes shared with fastbp/engine.py.
LOSS_CODES = {"mse": 0, "cross_entropy": 1}
OPTIMIZER_CODES = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3}
TASK_CODES = {"regression": 0, "multiclass": 1, "binary": 2, "multilabel": 3}

cdef enum:
    MSE = 0
    CROSS_ENTROPY = 1

cdef enum:
    OPT_SGD = 0
    OPT_MOMENTUM = 1
    OPT_NESTEROV = 2
    OPT_ADAM = 3

cdef enum:
    TASK_REGRESSION = 0
    TASK_MULTICLASS = 1
    TASK_BINARY = 2
    TASK_MULTILABEL = 3

# The slots after the gradient in gradient_sum's buffer (shared with fastbp/engine.py).
REDUCED_SLOTS = 3
cdef enum:
    SLOT_LOSS = 0
    SLOT_CORRECT = 1
    SLOT_NORMALISER = 2

# Elementwise optimiser passes: elements per thread.
cdef Py_ssize_t MIN_ELEMENTS_PER_THREAD = 32768


cdef struct Layout:
    int n_layers
    Py_ssize_t* sizes      # n_layers + 1 widths, input first
    Py_ssize_t* w_off      # offset of W_l (sizes[l+1], sizes[l]) in params/grads
    Py_ssize_t* b_off      # offset of b_l, or -1 without biases
    Py_ssize_t* a_off      # offset of acts[l] (batch, sizes[l]) in the workspace
    Py_ssize_t* d_off      # offset of deltas[l] (batch, sizes[l]); d_off[0] unused
    Py_ssize_t t_off       # offset of the gathered targets (batch, sizes[-1])
    Py_ssize_t n_weights   # weights come first in params: [0, n_weights)
    Py_ssize_t n_params


cdef void _bias_gradient(const floating* delta, floating* out, Py_ssize_t m,
                         Py_ssize_t n_out, floating alpha, floating beta) noexcept nogil:
    """out := alpha * delta.sum(0) + beta * out  (BP3).

    Row by row, so that delta is read in memory order and the inner loop vectorises.
    """
    cdef Py_ssize_t r, j
    cdef const floating* row
    if beta != 1:
        for j in range(n_out):
            out[j] = beta * out[j] if beta != 0 else 0
    for r in range(m):
        row = delta + r * n_out
        for j in range(n_out):
            out[j] = out[j] + alpha * row[j]


cdef inline double _clip(double a, double low, double high) noexcept nogil:
    """a clipped to [low, high]; NaN stays NaN, so that a diverged output shows in the loss."""
    if a < low:
        return low
    if a > high:
        return high
    return a


cdef double _output_error(const floating* A, const floating* Y, floating* delta,
                          Py_ssize_t m, Py_ssize_t k, int output, int loss,
                          bint matching, int task, const int64_t* labels,
                          const double* weights, const int64_t* order, Py_ssize_t start,
                          double* n_correct) noexcept nogil:
    """delta := w * dC/dz (BP1) for each row of weight w (1 without weights); returns the
    summed w * C and adds the weights of the correct predictions to n_correct.

    softmax + cross-entropy: dC/dz = A * sum(Y) - Y, which is A - Y for rows summing to 1.
    """
    cdef Py_ssize_t r, j, o, best, sample
    cdef double total = 0, row_loss, a, y, d, y_sum, w = 1
    cdef floating eps = 1.1920929e-07 if floating is float else 2.220446049250313e-16
    cdef int64_t label
    cdef bint row_ok
    for r in range(m):
        o = r * k
        sample = order[start + r] if order != NULL else start + r
        if weights != NULL:
            w = weights[sample]
        row_loss = 0
        y_sum = 0
        for j in range(o, o + k):
            a = A[j]
            y = Y[j]
            if loss == MSE:
                d = a - y
                row_loss += 0.5 * d * d
            elif output == SOFTMAX:
                y_sum += y
                if y != 0:
                    row_loss -= y * log(_clip(a, eps, INFINITY))
                elif a != a:
                    # A NaN output counts where its target is 0 too (0 * NaN, as in
                    # the NumPy backend): all-zero target rows must not hide divergence.
                    row_loss += a
            else:
                row_loss -= y * log(_clip(a, eps, 1 - eps))
                row_loss -= (1 - y) * log(_clip(1 - a, eps, 1 - eps))
            delta[j] = A[j] - Y[j]
        if loss == CROSS_ENTROPY and output == SOFTMAX and y_sum != 1:
            for j in range(o, o + k):
                delta[j] = A[j] * <floating> y_sum - Y[j]
        if not matching:
            derivative_product_block(delta, delta, A, k, r, r + 1, 0, k, output)
        if weights != NULL:
            for j in range(o, o + k):
                delta[j] = delta[j] * <floating> w
        total += w * row_loss
        if task == TASK_MULTICLASS:
            best = 0
            for j in range(1, k):
                if A[o + j] > A[o + best]:
                    best = j
            label = labels[sample]
            if best == label:
                n_correct[0] += w
        elif task == TASK_BINARY:
            label = labels[sample]
            if (A[o] > 0.5) == (label == 1):
                n_correct[0] += w
        elif task == TASK_MULTILABEL:
            row_ok = True
            for j in range(o, o + k):
                if (A[j] > 0.5) != (Y[j] > 0.5):
                    row_ok = False
            if row_ok:
                n_correct[0] += w
    return total


cdef double _batch_weight(const double* weights, const int64_t* order, Py_ssize_t start,
                          Py_ssize_t m) noexcept nogil:
    """The sum of the batch's sample weights."""
    cdef double total = 0
    cdef Py_ssize_t r
    for r in range(m):
        total += weights[order[start + r] if order != NULL else start + r]
    return total


cdef void _optimizer_step(floating* params, floating* grads, floating* state1,
                          floating* state2, Py_ssize_t n_weights, Py_ssize_t n_params,
                          int optimizer, double lr, double l2, double momentum,
                          double beta1, double beta2, double eps, int64_t t, double scale,
                          int n_threads) noexcept nogil:
    """One SGD/momentum/Nesterov/Adam step on the flat vectors with the gradient
    ``scale * grads`` (+ l2 * W for the weights), read in the same pass."""
    cdef int nb = n_blocks(n_params, MIN_ELEMENTS_PER_THREAD, n_params, n_threads)
    cdef int blk
    if nb == 1:
        _optimizer_range(params, grads, state1, state2, 0, n_params, n_weights, optimizer, lr,
                         l2, momentum, beta1, beta2, eps, t, scale)
        return
    for blk in prange(nb, schedule="static", num_threads=nb):
        _optimizer_range(params, grads, state1, state2, blk * n_params // nb,
                         (blk + 1) * n_params // nb, n_weights, optimizer, lr, l2, momentum,
                         beta1, beta2, eps, t, scale)


cdef inline void _optimizer_range(floating* params, floating* grads, floating* state1,
                                  floating* state2, Py_ssize_t p0, Py_ssize_t p1,
                                  Py_ssize_t n_weights, int optimizer, double lr, double l2,
                                  double momentum, double beta1, double beta2, double eps,
                                  int64_t t, double scale) noexcept nogil:
    """The step on entries [p0, p1): weights (with the l2 term) and biases as two runs."""
    cdef Py_ssize_t split = min(max(p0, n_weights), p1)
    cdef double lr_t = lr
    if optimizer == OPT_ADAM:
        lr_t = lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    if split > p0:
        _rule(params, grads, state1, state2, p0, split, optimizer, lr_t, <floating> l2,
              momentum, beta1, beta2, eps, <floating> scale)
    if p1 > split:
        _rule(params, grads, state1, state2, split, p1, optimizer, lr_t, 0, momentum,
              beta1, beta2, eps, <floating> scale)


cdef inline void _rule(floating* params, const floating* grads, floating* state1,
                       floating* state2, Py_ssize_t p0, Py_ssize_t p1, int optimizer,
                       double lr, floating l2, double momentum, double beta1, double beta2,
                       double eps, floating scale) noexcept nogil:
    """The optimiser's rule on [p0, p1) with the gradient g = scale * grads + l2 * W."""
    if optimizer == OPT_SGD:
        _sgd(params, grads, p0, p1, <floating> lr, scale, l2)
    elif optimizer == OPT_ADAM:
        _adam(params, grads, state1, state2, p0, p1, <floating> lr, <floating> beta1,
              <floating> beta2, <floating> eps, scale, l2)
    else:
        _momentum(params, grads, state1, p0, p1, <floating> lr, <floating> momentum,
                  optimizer == OPT_NESTEROV, scale, l2)


# One plain loop per rule and case, branch-free inside, so that the compiler vectorises
# them. The gradient is read as g = scale * grads + l2 * W (scale is 1 and l2 0 for the
# biases on one process: x * 1 is exact, so those runs are bitwise as without them).

cdef inline void _sgd(floating* params, const floating* grads, Py_ssize_t p0, Py_ssize_t p1,
                      floating lr, floating scale, floating l2) noexcept nogil:
    """W -= lr g  (plain SGD when the update is not folded into the gemm)."""
    cdef Py_ssize_t p
    if l2 != 0:
        for p in range(p0, p1):
            params[p] = params[p] - lr * (scale * grads[p] + l2 * params[p])
    else:
        for p in range(p0, p1):
            params[p] = params[p] - lr * (scale * grads[p])


cdef inline floating _flush(floating x) noexcept nogil:
    """x, or 0 when x is subnormal: optimiser state that decays (Adam's moments, momentum's
    velocity where the gradient is 0) would otherwise pass through subnormal numbers, on
    which the CPU's arithmetic is ~100x slower (float32 Adam measured 2.3x slower per
    epoch). fastbp.optimizers does the same for backend="numpy". A NaN is kept (it
    compares false): flushed, it would hide a NaN gradient from the divergence check."""
    if floating is float:
        return 0 if fabsf(x) < FLT_MIN else x
    else:
        return 0 if fabs(x) < DBL_MIN else x


cdef inline void _adam(floating* params, const floating* grads, floating* m, floating* v,
                       Py_ssize_t p0, Py_ssize_t p1, floating lr_t, floating b1, floating b2,
                       floating eps, floating scale, floating l2) noexcept nogil:
    """m := b1 m + (1-b1) g; v := b2 v + (1-b2) g^2; W -= lr_t m / (sqrt(v) + eps)."""
    cdef Py_ssize_t p
    cdef floating g
    if l2 != 0:
        for p in range(p0, p1):
            g = scale * grads[p] + l2 * params[p]
            m[p] = _flush(b1 * m[p] + (1 - b1) * g)
            v[p] = _flush(b2 * v[p] + (1 - b2) * (g * g))
            if floating is float:
                params[p] = params[p] - lr_t * m[p] / (sqrtf(v[p]) + eps)
            else:
                params[p] = params[p] - lr_t * m[p] / (sqrt(v[p]) + eps)
    else:
        for p in range(p0, p1):
            g = scale * grads[p]
            m[p] = _flush(b1 * m[p] + (1 - b1) * g)
            v[p] = _flush(b2 * v[p] + (1 - b2) * (g * g))
            if floating is float:
                params[p] = params[p] - lr_t * m[p] / (sqrtf(v[p]) + eps)
            else:
                params[p] = params[p] - lr_t * m[p] / (sqrt(v[p]) + eps)


cdef inline void _momentum(floating* params, const floating* grads, floating* velocity,
                           Py_ssize_t p0, Py_ssize_t p1, floating lr, floating mu,
                           bint nesterov, floating scale, floating l2) noexcept nogil:
    """v := mu v - lr g; W += v (Nesterov: W += mu v - lr g)."""
    cdef Py_ssize_t p
    cdef floating v, g
    if nesterov and l2 != 0:
        for p in range(p0, p1):
            g = scale * grads[p] + l2 * params[p]
            v = _flush(mu * velocity[p] - lr * g)
            velocity[p] = v
            params[p] = params[p] + (mu * v - lr * g)
    elif nesterov:
        for p in range(p0, p1):
            g = scale * grads[p]
            v = _flush(mu * velocity[p] - lr * g)
            velocity[p] = v
            params[p] = params[p] + (mu * v - lr * g)
    elif l2 != 0:
        for p in range(p0, p1):
            g = scale * grads[p] + l2 * params[p]
            v = _flush(mu * velocity[p] - lr * g)
            velocity[p] = v
            params[p] = params[p] + v
    else:
        for p in range(p0, p1):
            g = scale * grads[p]
            v = _flush(mu * velocity[p] - lr * g)
            velocity[p] = v
            params[p] = params[p] + v


def train_chunk(const floating[:, ::1] X,         # IN (n, n_in) training inputs
                const floating[:, ::1] T,         # IN (n, k) targets
                const int64_t[::1] labels,        # IN (n,) class labels, or empty
                const double[::1] weights,        # IN (n,) sample weights, or empty: all 1
                const int64_t[::1] order,         # IN (n,) sample order, or empty: in order
                floating[::1] params,             # IN/OUT flat weights then biases
                floating[::1] grads,              # OUT scratch, same layout
                floating[::1] state1,             # IN/OUT velocity or Adam m (or empty)
                floating[::1] state2,             # IN/OUT Adam v (or empty)
                floating[::1] work,               # workspace: acts, deltas, targets
                const Py_ssize_t[::1] layout,     # see _read_layout
                int hidden, int output, int loss, bint matching, int task,
                int optimizer, double lr, double l2, double momentum,
                double beta1, double beta2, double eps, int64_t adam_t,
                Py_ssize_t batch_size, Py_ssize_t first, Py_ssize_t last, int n_threads):
    """Train batches [first, last) of an epoch.

    Returns (summed loss, n_correct, adam_t, diverged_at): diverged_at is the index of
    the first batch whose loss is not finite (its update is not applied and the chunk
    stops there), or -1.

    With weights, each row's loss, error and correct prediction count with its weight,
    and a batch's gradient is normalised by the batch's weight sum instead of its size
    (scikit-learn's rule). The loss returned is then the sum over batches of m times the
    batch's weighted mean loss, n_correct the weight of the correct predictions. A batch
    whose weights sum to 0 is skipped (no update).
    """
    cdef Layout lay
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], k = T.shape[1]
    cdef Py_ssize_t bi, start, m
    cdef double total_loss = 0, batch_loss, n_correct = 0, norm
    cdef Py_ssize_t diverged_at = -1
    cdef const int64_t* order_ptr = &order[0] if order.shape[0] > 0 else NULL
    cdef const int64_t* labels_ptr = &labels[0] if labels.shape[0] > 0 else NULL
    cdef const double* weights_ptr = &weights[0] if weights.shape[0] > 0 else NULL
    cdef floating* P = &params[0]
    cdef floating* G = &grads[0]
    cdef floating* S1 = &state1[0] if state1.shape[0] > 0 else NULL
    cdef floating* S2 = &state2[0] if state2.shape[0] > 0 else NULL
    cdef floating* Wk = &work[0]
    cdef const floating* A0
    cdef const floating* Tb
    cdef bint plain_sgd = optimizer == OPT_SGD

    _read_layout(&lay, layout)
    try:
        with nogil:
            for bi in range(first, last):
                start = bi * batch_size
                m = min(batch_size, n - start)
                # The gradient's normaliser: the batch's size, or its weight sum.
                norm = m
                if weights_ptr != NULL:
                    norm = _batch_weight(weights_ptr, order_ptr, start, m)
                    if norm == 0:
                        continue
                _load_batch(&lay, &X[0, 0], &T[0, 0], labels_ptr, order_ptr, Wk, n, n_in, k,
                            start, m, min(batch_size, n - start - m) if bi + 1 < last else 0,
                            &A0, &Tb, n_threads)
                # Plain SGD: the update is folded into the weight-gradient gemm, W :=
                # (1 - lr l2) W - (lr / norm) delta.T A_prev; the others get the mean
                # gradient.
                if plain_sgd:
                    batch_loss = _batch_pass(&lay, A0, Tb, P, P, Wk, m, hidden, output, loss,
                                             matching, task, labels_ptr, weights_ptr,
                                             order_ptr, start, &n_correct,
                                             <floating> (-lr / norm),
                                             <floating> (1 - lr * l2), 1, 0, n_threads)
                else:
                    batch_loss = _batch_pass(&lay, A0, Tb, P, G, Wk, m, hidden, output, loss,
                                             matching, task, labels_ptr, weights_ptr,
                                             order_ptr, start, &n_correct,
                                             <floating> (1.0 / norm), 0, 0, 0, n_threads)
                # A non-finite loss stops before any update.
                if not isfinite(batch_loss):
                    diverged_at = bi
                    break
                # With weights, the batch's weighted mean loss counts m times (the
                # epoch's loss is then scikit-learn's: the batches' means averaged by size).
                total_loss += batch_loss if weights_ptr == NULL else batch_loss * m / norm
                if not plain_sgd:
                    adam_t += 1
                    _optimizer_step(P, G, S1, S2, lay.n_weights, lay.n_params, optimizer, lr,
                                    l2, momentum, beta1, beta2, eps, adam_t, 1.0, n_threads)
    finally:
        _free_layout(&lay)
    return total_loss, n_correct, adam_t, diverged_at


def gradient_sum(const floating[:, ::1] X,        # IN (n, n_in) this process's inputs
                 const floating[:, ::1] T,        # IN (n, k) targets
                 const int64_t[::1] labels,       # IN (n,) class labels, or empty
                 const double[::1] weights,       # IN (n,) sample weights, or empty: all 1
                 const int64_t[::1] order,        # IN (n,) sample order, or empty: in order
                 const floating[::1] params,      # IN flat weights then biases
                 floating[::1] buffer,            # OUT (n_params + REDUCED_SLOTS,)
                 floating[::1] work,              # workspace: acts, deltas, targets
                 const Py_ssize_t[::1] layout,    # see _read_layout
                 int hidden, int output, int loss, bint matching, int task,
                 Py_ssize_t batch_size, Py_ssize_t step, bint first_layer, int n_threads):
    """One step of a data-parallel fit, before the reduction: this process's rows
    ``[step * batch_size, (step + 1) * batch_size)`` of its epoch order (possibly none).

    Without ``first_layer`` (and with more than one layer), layer 0's weight and bias
    gradient are left out (their entries are not written): ``first_layer_gradient``
    computes them next, while the rest of the buffer may already be being reduced.

    ``buffer[:n_params]`` := the gradient of the summed loss over those rows (no L2
    term: it is added once, after the reduction); then the slots ``buffer[n_params +
    SLOT_LOSS]`` := the summed loss, ``SLOT_CORRECT`` := correct predictions and
    ``SLOT_NORMALISER`` := the rows' count (what the reduced gradient is divided by).
    With weights, each row's loss, gradient and correct prediction count with its
    weight, and the normaliser is the rows' weight sum.
    Summing these buffers over processes gives the step's whole gradient and totals.
    Returns the number of rows used.
    """
    cdef Layout lay
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], k = T.shape[1]
    cdef Py_ssize_t start = step * batch_size, m, p
    cdef double batch_loss = 0, n_correct = 0, norm
    cdef const int64_t* order_ptr = &order[0] if order.shape[0] > 0 else NULL
    cdef const int64_t* labels_ptr = &labels[0] if labels.shape[0] > 0 else NULL
    cdef const double* weights_ptr = &weights[0] if weights.shape[0] > 0 else NULL
    cdef floating* B = &buffer[0]
    cdef floating* Wk = &work[0]
    cdef const floating* A0
    cdef const floating* Tb

    m = min(batch_size, n - start) if start < n else 0
    norm = m
    _read_layout(&lay, layout)
    try:
        with nogil:
            if m > 0 and weights_ptr != NULL:
                norm = _batch_weight(weights_ptr, order_ptr, start, m)
            if m > 0:
                _load_batch(&lay, &X[0, 0], &T[0, 0], labels_ptr, order_ptr, Wk, n, n_in, k,
                            start, m, 0, &A0, &Tb, n_threads)
                # params is only read (target B is not params): the cast drops const.
                batch_loss = _batch_pass(&lay, A0, Tb, <floating*> &params[0], B, Wk, m,
                                         hidden, output, loss, matching, task, labels_ptr,
                                         weights_ptr, order_ptr, start, &n_correct, 1, 0, 0,
                                         0 if first_layer or lay.n_layers == 1 else 1,
                                         n_threads)
            else:
                for p in range(lay.n_params):
                    B[p] = 0
            B[lay.n_params + SLOT_LOSS] = <floating> batch_loss
            B[lay.n_params + SLOT_CORRECT] = <floating> n_correct
            B[lay.n_params + SLOT_NORMALISER] = <floating> norm
    finally:
        _free_layout(&lay)
    return m


def first_layer_gradient(const floating[:, ::1] X,    # IN (n, n_in) this process's inputs
                         const int64_t[::1] order,   # IN (n,) sample order, or empty
                         floating[::1] buffer,       # IN/OUT gradient_sum's buffer
                         floating[::1] work,         # workspace, as gradient_sum left it
                         const Py_ssize_t[::1] layout,
                         Py_ssize_t batch_size, Py_ssize_t step, int n_threads):
    """Layer 0's weight and bias gradient sums of the step that ``gradient_sum(...,
    first_layer=False)`` just computed (its deltas are still in the workspace)."""
    cdef Layout lay
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1]
    cdef Py_ssize_t start = step * batch_size, m
    cdef floating* B = &buffer[0]
    cdef floating* Wk = &work[0]
    cdef const floating* A0
    m = min(batch_size, n - start) if start < n else 0
    _read_layout(&lay, layout)
    try:
        with nogil:
            if m > 0 and lay.n_layers > 1:
                # gradient_sum gathered shuffled rows into the workspace.
                A0 = Wk + lay.a_off[0] if order.shape[0] > 0 else &X[start, 0]
                weight_gradient_layer(Wk + lay.d_off[1], A0, B + lay.w_off[0], m,
                                      lay.sizes[0], lay.sizes[1], 1, 0, n_threads)
                if lay.b_off[0] >= 0:
                    _bias_gradient(Wk + lay.d_off[1], B + lay.b_off[0], m, lay.sizes[1], 1,
                                   0)
    finally:
        _free_layout(&lay)


def optimizer_update(floating[::1] params,       # IN/OUT flat weights then biases
                     floating[::1] grads,        # IN summed gradient
                     floating[::1] state1,       # IN/OUT velocity or Adam m (or empty)
                     floating[::1] state2,       # IN/OUT Adam v (or empty)
                     Py_ssize_t n_weights, int optimizer, double lr, double l2,
                     double momentum, double beta1, double beta2, double eps,
                     int64_t adam_t, double scale, int n_threads):
    """One optimiser step with the gradient ``scale * grads + l2 * W`` (L2 on the
    weights, the first n_weights entries, only), in one pass over the vectors; grads is
    only read. Returns Adam's new step count."""
    cdef Py_ssize_t n_params = params.shape[0]
    cdef floating* S1 = &state1[0] if state1.shape[0] > 0 else NULL
    cdef floating* S2 = &state2[0] if state2.shape[0] > 0 else NULL
    with nogil:
        adam_t += 1
        _optimizer_step(&params[0], &grads[0], S1, S2, n_weights, n_params, optimizer, lr,
                        l2, momentum, beta1, beta2, eps, adam_t, scale, n_threads)
    return adam_t


cdef void _load_batch(const Layout* lay, const floating* X, const floating* T,
                      const int64_t* labels, const int64_t* order, floating* Wk,
                      Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t k, Py_ssize_t start,
                      Py_ssize_t m, Py_ssize_t next_m, const floating** A0,
                      const floating** Tb, int n_threads) noexcept nogil:
    """Point A0 and Tb at the batch's rows [start, start + m) of the epoch order.

    Shuffled rows are copied into the workspace; rows in order are used where they are.
    The next batch's next_m rows are prefetched.
    """
    if order != NULL:
        _gather_rows(X, T, order + start, m, n_in, k, Wk + lay.a_off[0], Wk + lay.t_off,
                     n_threads)
        A0[0] = Wk + lay.a_off[0]
        Tb[0] = Wk + lay.t_off
        # The next batch's rows are scattered in memory (DRAM): ask for them now, so
        # they arrive while this batch computes.
        if next_m > 0:
            _prefetch_rows(X, T, labels, order + start + m, next_m, n_in, k)
    else:
        A0[0] = X + start * n_in
        Tb[0] = T + start * k


cdef double _batch_pass(const Layout* lay, const floating* A0, const floating* Tb,
                        floating* P, floating* target, floating* Wk, Py_ssize_t m,
                        int hidden, int output, int loss, bint matching, int task,
                        const int64_t* labels, const double* weights, const int64_t* order,
                        Py_ssize_t start, double* n_correct, floating alpha, floating beta,
                        floating bias_beta, Py_ssize_t lowest, int n_threads) noexcept nogil:
    """Forward pass, loss and output error (BP1), backward pass (BP2) of one batch,
    down to layer ``lowest`` (0: every layer; 1 leaves layer 0's gradient to
    _first_layer_gradient, e.g. while the others are being reduced).

    With ``weights`` (per sample, or NULL) each row's loss and error carry its weight.
    Each layer's weight gradient goes to ``target`` (the layout of P):
    ``W_t := alpha * delta.T @ A_prev + beta * W_t``, ``b_t := alpha * sum(delta) +
    bias_beta * b_t``, after the layer's delta for the layer below was computed with
    P's W, so target may be P itself (plain SGD's folded update). Returns the summed
    loss; a non-finite loss returns at once, before anything is written to target.
    """
    cdef Py_ssize_t l, i, o
    cdef const floating* A_prev
    cdef const floating* b
    cdef floating* D
    cdef int act
    cdef double batch_loss

    # Forward pass.
    A_prev = A0
    for l in range(lay.n_layers):
        act = output if l == lay.n_layers - 1 else hidden
        b = P + lay.b_off[l] if lay.b_off[l] >= 0 else NULL
        forward_layer(A_prev, P + lay.w_off[l], b, Wk + lay.a_off[l + 1], m,
                      lay.sizes[l], lay.sizes[l + 1], act, n_threads)
        A_prev = Wk + lay.a_off[l + 1]

    # Loss and output error (BP1).
    batch_loss = _output_error(Wk + lay.a_off[lay.n_layers], Tb,
                               Wk + lay.d_off[lay.n_layers], m, lay.sizes[lay.n_layers],
                               output, loss, matching, task, labels, weights, order, start,
                               n_correct)
    if not isfinite(batch_loss):
        return batch_loss

    # Backward pass, top layer first: BP2 with P's W, then W's gradient (or update).
    for l in range(lay.n_layers - 1, lowest - 1, -1):
        i = lay.sizes[l]
        o = lay.sizes[l + 1]
        A_prev = A0 if l == 0 else Wk + lay.a_off[l]
        D = Wk + lay.d_off[l + 1]
        if l > 0:
            backward_delta_layer(D, P + lay.w_off[l], A_prev, Wk + lay.d_off[l],
                                 m, i, o, hidden, n_threads)
        weight_gradient_layer(D, A_prev, target + lay.w_off[l], m, i, o, alpha, beta,
                              n_threads)
        if lay.b_off[l] >= 0:
            _bias_gradient(D, target + lay.b_off[l], m, o, alpha, bias_beta)
    return batch_loss


cdef void _gather_rows(const floating* X, const floating* T, const int64_t* rows,
                       Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t k, floating* X_out,
                       floating* T_out, int n_threads) noexcept nogil:
    """Copy the samples rows[0:m] of X and T into the batch buffers.

    The rows are scattered in memory: two threads keep more reads in flight than one.
    """
    cdef int nb = n_blocks(m * n_in, MIN_ELEMENTS_PER_THREAD, m, n_threads)
    cdef int blk
    cdef Py_ssize_t r
    if nb == 1:
        _gather_range(X, T, rows, 0, m, n_in, k, X_out, T_out)
        return
    for blk in prange(nb, schedule="static", num_threads=nb):
        _gather_range(X, T, rows, blk * m // nb, (blk + 1) * m // nb, n_in, k, X_out, T_out)


cdef inline void _gather_range(const floating* X, const floating* T, const int64_t* rows,
                               Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t n_in, Py_ssize_t k,
                               floating* X_out, floating* T_out) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(r0, r1):
        memcpy(X_out + r * n_in, X + rows[r] * n_in, n_in * sizeof(floating))
        memcpy(T_out + r * k, T + rows[r] * k, k * sizeof(floating))


cdef inline void _prefetch_rows(const floating* X, const floating* T, const int64_t* labels,
                                const int64_t* rows, Py_ssize_t m, Py_ssize_t n_in,
                                Py_ssize_t k) noexcept nogil:
    """Prefetch the samples rows[0:m]: their X and T rows and labels, a cache line at a time."""
    cdef Py_ssize_t r, byte
    cdef const char* row
    cdef Py_ssize_t row_bytes = n_in * sizeof(floating)
    for r in range(m):
        prefetch(T + rows[r] * k)
        if labels != NULL:
            prefetch(labels + rows[r])
        row = <const char*> (X + rows[r] * n_in)
        for byte in range(0, row_bytes, 64):
            prefetch(row + byte)


cdef int _read_layout(Layout* lay, const Py_ssize_t[::1] layout) except -1:
    """layout = [L, sizes (L+1), w_off (L), b_off (L), a_off (L+1), d_off (L+1), t_off,
    n_weights, n_params], as written by fastbp/engine.py."""
    cdef int L = <int> layout[0]
    cdef Py_ssize_t pos = 1, l
    lay.n_layers = L
    lay.sizes = <Py_ssize_t*> malloc((5 * L + 3) * sizeof(Py_ssize_t))
    if lay.sizes == NULL:
        raise MemoryError()
    lay.w_off = lay.sizes + (L + 1)
    lay.b_off = lay.w_off + L
    lay.a_off = lay.b_off + L
    lay.d_off = lay.a_off + (L + 1)
    for l in range(5 * L + 3):
        lay.sizes[l] = layout[pos + l]
    pos += 5 * L + 3
    lay.t_off = layout[pos]
    lay.n_weights = layout[pos + 1]
    lay.n_params = layout[pos + 2]
    return 0


cdef void _free_layout(Layout* lay) noexcept:
    free(lay.sizes)
    lay.sizes = NULL

