/* The "dot" micro-kernel, written once over the vector vocabulary of simd_<isa>.h and
 * instantiated by each <isa>_dot_<MR>x<NR>.c file (which sets DOT_MR, DOT_NR and
 * FB_KERNEL) for float and double:
 *
 *     C[r, j] := bias[j] + sum_p A[r, p] W[j, p]     r < mr <= DOT_MR, j < nr <= DOT_NR
 *
 * DOT_MR x DOT_NR vector accumulators run along p (both operands are contiguous along
 * p), the k % VL tail is a masked load, and each output is one horizontal sum. Rows and
 * columns short of a tile reuse the last valid row (never out of bounds) and are not
 * stored; smaller register tiles (2 or 1 rows, 4, 2 or 1 columns) are instantiated so
 * that edges waste little. No include guard: included once per dtype. */

FB_ALWAYS_INLINE void FB_KERNEL(dot_tile)(
    const int MR, const int NR, long k, const FB_T* a, long lda, const FB_T* w, long ldw,
    FB_T* c, long ldc, int mr, int nr, const FB_T* bias)
{
    V acc[DOT_MR][DOT_NR];
    const FB_T* ap[DOT_MR];
    const FB_T* wp[DOT_NR];
    long p = 0;
    int r, j;
#pragma GCC unroll 8
    for (r = 0; r < MR; r++)
        ap[r] = a + (long) (r < mr ? r : mr - 1) * lda;
#pragma GCC unroll 8
    for (j = 0; j < NR; j++)
        wp[j] = w + (long) (j < nr ? j : nr - 1) * ldw;
#pragma GCC unroll 8
    for (r = 0; r < MR; r++)
#pragma GCC unroll 8
        for (j = 0; j < NR; j++)
            acc[r][j] = V_ZERO();
    /* No alignment step here (unlike the broadcast kernel's panels): which lane of an
       accumulator a term lands in would then depend on the operands' addresses, and so
       would the rounding; results must depend on the data only (resumes, reruns are
       bit-identical). */
    for (; p + VL <= k; p += VL) {
        V av[DOT_MR];
#pragma GCC unroll 8
        for (r = 0; r < MR; r++)
            av[r] = V_LOADU(ap[r] + p);
#pragma GCC unroll 8
        for (j = 0; j < NR; j++) {
            V wv = V_LOADU(wp[j] + p);
#pragma GCC unroll 8
            for (r = 0; r < MR; r++)
                acc[r][j] = V_FMA(av[r], wv, acc[r][j]);
        }
    }
    if (p < k) {
        VM tail = V_MASK((int) (k - p));
        V av[DOT_MR];
#pragma GCC unroll 8
        for (r = 0; r < MR; r++)
            av[r] = V_MLOAD(tail, ap[r] + p);
#pragma GCC unroll 8
        for (j = 0; j < NR; j++) {
            V wv = V_MLOAD(tail, wp[j] + p);
#pragma GCC unroll 8
            for (r = 0; r < MR; r++)
                acc[r][j] = V_FMA(av[r], wv, acc[r][j]);
        }
    }
#pragma GCC unroll 8
    for (r = 0; r < MR; r++) {
        if (r >= mr)
            break;
#pragma GCC unroll 8
        for (j = 0; j < NR; j++) {
            FB_T s;
            if (j >= nr)
                break;
            s = V_REDUCE(acc[r][j]);
            c[r * ldc + j] = bias ? s + bias[j] : s;
        }
    }
}

#define FB_DOT_CALL(MRV, NRV) \
    FB_KERNEL(dot_tile)(MRV, NRV, k, a, lda, w, ldw, c, ldc, mr, nr, bias)
#define FB_DOT_COLUMNS(MRV)                                                 \
    do {                                                                    \
        if (nrc == DOT_NR) FB_DOT_CALL(MRV, DOT_NR);                        \
        else if (nrc == 4) FB_DOT_CALL(MRV, 4);                             \
        else if (nrc == 2) FB_DOT_CALL(MRV, 2);                             \
        else FB_DOT_CALL(MRV, 1);                                           \
    } while (0)

FB_HIDDEN void FB_KERNEL(dot)(long k, const FB_T* a, long lda, const FB_T* w, long ldw,
                              FB_T* c, long ldc, int mr, int nr, const FB_T* bias)
{
    /* The smallest instantiated tile that covers (mr, nr). DOT_NR >= 4, DOT_MR >= 2. */
    int mrc = mr > 2 ? DOT_MR : mr;
    int nrc = nr > 4 ? DOT_NR : (nr > 2 ? 4 : nr);
    if (mrc == DOT_MR) FB_DOT_COLUMNS(DOT_MR);
    else if (mrc == 2) FB_DOT_COLUMNS(2);
    else FB_DOT_COLUMNS(1);
}

#undef FB_DOT_CALL
#undef FB_DOT_COLUMNS
