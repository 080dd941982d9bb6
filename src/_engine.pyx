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
from libc.math cimport INFINITY, isfinite, log, sqrt, sqrtf
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _activations cimport SOFTMAX, derivative_product_block
from _layers cimport (
    backward_delta_layer, forward_layer, n_blocks, weight_gradient_layer,
)
from _ukernels cimport fb_get_isa, fb_isa_forced, fb_isa_supported, fb_set_isa

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

def _isa_set(int code):
    """Use ISA ``code`` (FB_ISA_* in src/ukernels/ukernels.h; -1: auto); False if unsupported."""
    return fb_set_isa(code) == 0


def _isa_state():
    """(the ISA code in use, whether it was forced)."""
    return fb_get_isa(), bool(fb_isa_forced())


def _isa_supported(int code):
    """Whether this CPU runs the micro-kernels of ISA ``code``."""
    return bool(fb_isa_supported(code))


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
                          double beta1, double beta2, double eps, int64_t t,
                          int n_threads) noexcept nogil:
    """One momentum/Nesterov/Adam step on the flat vectors (l2 * W added to the weights' gradients)."""
    cdef int nb = n_blocks(n_params, MIN_ELEMENTS_PER_THREAD, n_params, n_threads)
    cdef int blk
    if nb == 1:
        _optimizer_range(params, grads, state1, state2, 0, n_params, n_weights, optimizer, lr,
                         l2, momentum, beta1, beta2, eps, t)
        return
    for blk in prange(nb, schedule="static", num_threads=nb):
        _optimizer_range(params, grads, state1, state2, blk * n_params // nb,
                         (blk + 1) * n_params // nb, n_weights, optimizer, lr, l2, momentum,
                         beta1, beta2, eps, t)


cdef inline void _optimizer_range(floating* params, floating* grads, floating* state1,
                                  floating* state2, Py_ssize_t p0, Py_ssize_t p1,
                                  Py_ssize_t n_weights, int optimizer, double lr, double l2,
                                  double momentum, double beta1, double beta2, double eps,
                                  int64_t t) noexcept nogil:
    """The step on entries [p0, p1): weights (with the l2 term) and biases as two runs."""
    cdef Py_ssize_t split = min(max(p0, n_weights), p1)
    cdef double lr_t
    if l2 != 0:
        _add_l2(grads, params, p0, split, <floating> l2)
    if optimizer == OPT_ADAM:
        lr_t = lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        _adam(params, grads, state1, state2, p0, p1, <floating> lr_t, <floating> beta1,
              <floating> beta2, <floating> eps)
    else:
        _momentum(params, grads, state1, p0, p1, <floating> lr, <floating> momentum,
                  optimizer == OPT_NESTEROV)


# One plain loop per rule, branch-free inside, so that the compiler vectorises them.

cdef inline void _add_l2(floating* grads, const floating* params, Py_ssize_t p0,
                         Py_ssize_t p1, floating l2) noexcept nogil:
    """g += l2 * W  (the gradient of l2/2 ||W||^2)."""
    cdef Py_ssize_t p
    for p in range(p0, p1):
        grads[p] = grads[p] + l2 * params[p]


cdef inline void _adam(floating* params, const floating* grads, floating* m, floating* v,
                       Py_ssize_t p0, Py_ssize_t p1, floating lr_t, floating b1, floating b2,
                       floating eps) noexcept nogil:
    """m := b1 m + (1-b1) g; v := b2 v + (1-b2) g^2; W -= lr_t m / (sqrt(v) + eps)."""
    cdef Py_ssize_t p
    cdef floating g
    for p in range(p0, p1):
        g = grads[p]
        m[p] = b1 * m[p] + (1 - b1) * g
        v[p] = b2 * v[p] + (1 - b2) * (g * g)
        if floating is float:
            params[p] = params[p] - lr_t * m[p] / (sqrtf(v[p]) + eps)
        else:
            params[p] = params[p] - lr_t * m[p] / (sqrt(v[p]) + eps)


cdef inline void _momentum(floating* params, const floating* grads, floating* velocity,
                           Py_ssize_t p0, Py_ssize_t p1, floating lr, floating mu,
                           bint nesterov) noexcept nogil:
    """v := mu v - lr g; W += v (Nesterov: W += mu v - lr g)."""
    cdef Py_ssize_t p
    cdef floating v
    if nesterov:
        for p in range(p0, p1):
            v = mu * velocity[p] - lr * grads[p]
            velocity[p] = v
            params[p] = params[p] + (mu * v - lr * grads[p])
    else:
        for p in range(p0, p1):
            v = mu * velocity[p] - lr * grads[p]
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
    cdef Py_ssize_t bi, start, m, r, l, i, o
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
    cdef const floating* A_prev
    cdef const floating* b
    cdef floating* D
    cdef floating alpha, beta
    cdef int act
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
                # Gather the batch: shuffled rows are copied into the workspace, rows in
                # order are used where they are.
                if order_ptr != NULL:
                    _gather_rows(&X[0, 0], &T[0, 0], order_ptr + start, m, n_in, k,
                                 Wk + lay.a_off[0], Wk + lay.t_off, n_threads)
                    A0 = Wk + lay.a_off[0]
                    Tb = Wk + lay.t_off
                    # The next batch's rows are scattered in memory (DRAM): ask for them
                    # now, so they arrive while this batch computes.
                    if bi + 1 < last:
                        _prefetch_rows(&X[0, 0], &T[0, 0], labels_ptr, order_ptr + start + m,
                                       min(batch_size, n - start - m), n_in, k)
                else:
                    A0 = &X[start, 0]
                    Tb = &T[start, 0]

                # Forward pass.
                A_prev = A0
                for l in range(lay.n_layers):
                    act = output if l == lay.n_layers - 1 else hidden
                    b = P + lay.b_off[l] if lay.b_off[l] >= 0 else NULL
                    forward_layer(A_prev, P + lay.w_off[l], b, Wk + lay.a_off[l + 1], m,
                                  lay.sizes[l], lay.sizes[l + 1], act, n_threads)
                    A_prev = Wk + lay.a_off[l + 1]

                # Loss and output error (BP1); a non-finite loss stops before any update.
                batch_loss = _output_error(Wk + lay.a_off[lay.n_layers], Tb,
                                           Wk + lay.d_off[lay.n_layers], m, k, output, loss,
                                           matching, task, labels_ptr, weights_ptr, order_ptr,
                                           start, &n_correct)
                if not isfinite(batch_loss):
                    diverged_at = bi
                    break
                # With weights, the batch's weighted mean loss counts m times (the
                # epoch's loss is then scikit-learn's: the batches' means averaged by size).
                total_loss += batch_loss if weights_ptr == NULL else batch_loss * m / norm

                # Backward pass, top layer first: BP2 with the old W, then W's update.
                for l in range(lay.n_layers - 1, -1, -1):
                    i = lay.sizes[l]
                    o = lay.sizes[l + 1]
                    A_prev = A0 if l == 0 else Wk + lay.a_off[l]
                    D = Wk + lay.d_off[l + 1]
                    if l > 0:
                        backward_delta_layer(D, P + lay.w_off[l], A_prev, Wk + lay.d_off[l],
                                             m, i, o, hidden, n_threads)
                    if plain_sgd:
                        alpha = <floating> (-lr / norm)
                        beta = <floating> (1 - lr * l2)
                        weight_gradient_layer(D, A_prev, P + lay.w_off[l], m, i, o, alpha,
                                              beta, n_threads)
                        if lay.b_off[l] >= 0:
                            _bias_gradient(D, P + lay.b_off[l], m, o, alpha, 1)
                    else:
                        alpha = <floating> (1.0 / norm)
                        weight_gradient_layer(D, A_prev, G + lay.w_off[l], m, i, o, alpha,
                                              0, n_threads)
                        if lay.b_off[l] >= 0:
                            _bias_gradient(D, G + lay.b_off[l], m, o, alpha, 0)
                if not plain_sgd:
                    adam_t += 1
                    _optimizer_step(P, G, S1, S2, lay.n_weights, lay.n_params, optimizer, lr,
                                    l2, momentum, beta1, beta2, eps, adam_t, n_threads)
    finally:
        _free_layout(&lay)
    return total_loss, n_correct, adam_t, diverged_at


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

