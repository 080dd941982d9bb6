/* The "bcast" micro-kernel, written once over the vector vocabulary of simd_<isa>.h and
 * instantiated by each <isa>_bcast_<MR>x<NR>.c file (which sets BCAST_MR, BCAST_NV, the
 * number of vectors per tile row, and FB_KERNEL) for float and double:
 *
 *     acc[r, c] = sum_p a[r*rs_a + p*cs_a] * B[p*ldb + c]   r < mr <= BCAST_MR, c < nr
 *     C[r, c] := acc * act'(act_prev[r, c])    if act_prev (BP2's derivative product)
 *     C[r, c] := alpha acc + beta C            otherwise (C not read when beta == 0)
 *
 * Each step over p broadcasts one a per row against BCAST_NV vectors of B's row p.
 * Columns short of the tile are masked loads and stores; rows short of it reuse the
 * last valid row and are not stored; tiles of 4, 2, 1 rows and of one vector are
 * instantiated for the edges. act_prev has C's leading dimension. No include guard. */

FB_ALWAYS_INLINE V FB_KERNEL(derivative)(V g, V x, int activation)
{
    switch (activation) {
    case FB_SIGMOID:
        return V_MUL(V_MUL(g, x), V_SUB(V_SET1(1), x));
    case FB_TANH:
        return V_MUL(g, V_SUB(V_SET1(1), V_MUL(x, x)));
    case FB_RELU:  /* a product, not a select: NaN and inf in g stay visible */
        return V_MUL(g, V_SELECT_GT0(x, V_SET1(1), V_ZERO()));
    case FB_LEAKY_RELU:
        return V_MUL(g, V_SELECT_GT0(x, V_SET1(1), V_SET1((FB_T) FB_LEAKY_SLOPE)));
    default:
        return g;
    }
}

FB_ALWAYS_INLINE void FB_KERNEL(bcast_tile)(
    const int MR, const int NV, long k, const FB_T* a, long rs_a, long cs_a, const FB_T* b,
    long ldb, FB_T* c, long ldc, int mr, int nr, FB_T alpha, FB_T beta,
    const FB_T* act_prev, int activation)
{
    V acc[BCAST_MR][BCAST_NV];
    const FB_T* ar[BCAST_MR];
    VM mask[BCAST_NV];
    int lanes[BCAST_NV];
    long p;
    int r, h;
#pragma GCC unroll 8
    for (r = 0; r < MR; r++)
        ar[r] = a + (long) (r < mr ? r : mr - 1) * rs_a;
#pragma GCC unroll 8
    for (h = 0; h < NV; h++) {
        int n = nr - h * VL;
        lanes[h] = n < 0 ? 0 : (n > VL ? VL : n);
        mask[h] = V_MASK(lanes[h]);
    }
#pragma GCC unroll 8
    for (r = 0; r < MR; r++)
#pragma GCC unroll 8
        for (h = 0; h < NV; h++)
            acc[r][h] = V_ZERO();
    if (nr == NV * VL) {
        for (p = 0; p < k; p++) {
            const FB_T* bp = b + p * ldb;
            long pa = p * cs_a;
            V bv[BCAST_NV];
#pragma GCC unroll 8
            for (h = 0; h < NV; h++)
                bv[h] = V_LOADU(bp + h * VL);
#pragma GCC unroll 8
            for (r = 0; r < MR; r++) {
                V s = V_SET1(ar[r][pa]);
#pragma GCC unroll 8
                for (h = 0; h < NV; h++)
                    acc[r][h] = V_FMA(s, bv[h], acc[r][h]);
            }
        }
    } else {
        for (p = 0; p < k; p++) {
            const FB_T* bp = b + p * ldb;
            long pa = p * cs_a;
            V bv[BCAST_NV];
#pragma GCC unroll 8
            for (h = 0; h < NV; h++)
                bv[h] = V_MLOAD(mask[h], bp + h * VL);
#pragma GCC unroll 8
            for (r = 0; r < MR; r++) {
                V s = V_SET1(ar[r][pa]);
#pragma GCC unroll 8
                for (h = 0; h < NV; h++)
                    acc[r][h] = V_FMA(s, bv[h], acc[r][h]);
            }
        }
    }
    if (nr == NV * VL && act_prev == 0) {
        /* Whole-vector rows, no derivative: the weight gradient's usual tile. */
        V va = V_SET1(alpha), vb = V_SET1(beta);
#pragma GCC unroll 8
        for (r = 0; r < MR; r++) {
            if (r >= mr)
                break;
            if (beta != 0) {
#pragma GCC unroll 8
                for (h = 0; h < NV; h++) {
                    FB_T* cp = c + r * ldc + h * VL;
                    V_STOREU(cp, V_FMA(vb, V_LOADU(cp), V_MUL(va, acc[r][h])));
                }
            } else {
#pragma GCC unroll 8
                for (h = 0; h < NV; h++)
                    V_STOREU(c + r * ldc + h * VL, V_MUL(va, acc[r][h]));
            }
        }
        return;
    }
#pragma GCC unroll 8
    for (r = 0; r < MR; r++) {
        if (r >= mr)
            break;
#pragma GCC unroll 8
        for (h = 0; h < NV; h++) {
            FB_T* cp = c + r * ldc + h * VL;
            V v = acc[r][h];
            int full = lanes[h] == VL;
            if (lanes[h] == 0)
                break;
            if (act_prev) {
                const FB_T* xp = act_prev + r * ldc + h * VL;
                v = FB_KERNEL(derivative)(v, full ? V_LOADU(xp) : V_MLOAD(mask[h], xp),
                                          activation);
            } else {
                v = V_MUL(V_SET1(alpha), v);
                if (beta != 0)
                    v = V_FMA(V_SET1(beta), full ? V_LOADU(cp) : V_MLOAD(mask[h], cp), v);
            }
            if (full)
                V_STOREU(cp, v);
            else
                V_MSTORE(cp, mask[h], v);
        }
    }
}

#define FB_BCAST_CALL(MRV, NVV)                                                 \
    FB_KERNEL(bcast_tile)(MRV, NVV, k, a, rs_a, cs_a, b, ldb, c, ldc, mr, nr,   \
                          alpha, beta, act_prev, activation)
#define FB_BCAST_VECTORS(MRV)                                                   \
    do {                                                                        \
        if (nvc == BCAST_NV) FB_BCAST_CALL(MRV, BCAST_NV);                      \
        else FB_BCAST_CALL(MRV, 1);                                             \
    } while (0)

FB_HIDDEN void FB_KERNEL(bcast)(long k, const FB_T* a, long rs_a, long cs_a, const FB_T* b,
                                long ldb, FB_T* c, long ldc, int mr, int nr, FB_T alpha,
                                FB_T beta, const FB_T* act_prev, int activation)
{
    /* The smallest instantiated tile that covers (mr, nr). BCAST_MR >= 4. */
    int mrc = mr > 4 ? BCAST_MR : (mr > 2 ? 4 : mr);
    int nvc = nr <= VL ? 1 : BCAST_NV;
    if (mrc == BCAST_MR) FB_BCAST_VECTORS(BCAST_MR);
    else if (mrc == 4) FB_BCAST_VECTORS(4);
    else if (mrc == 2) FB_BCAST_VECTORS(2);
    else FB_BCAST_VECTORS(1);
}

#undef FB_BCAST_CALL
#undef FB_BCAST_VECTORS
