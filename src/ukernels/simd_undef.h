/* Forget the vector vocabulary of the previous (ISA, dtype) pass. */
#undef FB_T
#undef FB_SFX
#undef VL
#undef V
#undef VM
#undef V_ZERO
#undef V_LOADU
#undef V_STOREU
#undef V_MASK
#undef V_MLOAD
#undef V_MSTORE
#undef V_SET1
#undef V_FMA
#undef V_MUL
#undef V_SUB
#undef V_REDUCE
#undef V_SELECT_GT0
