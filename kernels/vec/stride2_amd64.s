//go:build amd64 && !purego

#include "textflag.h"
#include "maxv_amd64.h"

// PAIRS: Y(out) = the sums of the pairs (v[2j], v[2j+1]) of the 16 floats at
// (base), in SHUFPS's lane order (the even and the odd elements taken the
// same way; one PERMPD puts the result in order, as stride2AVX2 does).
#define PAIRS(base, out) \
	VMOVUPS (base), Y0 \
	VMOVUPS 32(base), Y1 \
	VSHUFPS $0x88, Y1, Y0, Y2 \
	VSHUFPS $0xDD, Y1, Y0, Y3 \
	VADDPS Y3, Y2, out

// BLOCK: 8 outputs at (R13) from the rows at (R12) and (DX): the pair sums
// of each row, their sum, times a quarter (Y15).
#define BLOCK \
	PAIRS(R12, Y4) \
	PAIRS(DX, Y5) \
	VADDPS Y5, Y4, Y4 \
	VMULPS Y15, Y4, Y4 \
	VPERMPD $0xD8, Y4, Y4 \
	VMOVUPS Y4, (R13)

// func avg2s2RowsAVX2(dst, src *float32, n, rows, w, dstRow int)
// rows >= 1 output rows of n >= 8: output row i (at dst + i*dstRow) from
// the input rows 2i and 2i+1 (src + 2i*w, + w), reading each over [0, 2n).
// Blocks of 8 outputs, and one more ending at the row's last output when n
// is not a multiple of 8 (it overlaps the one before and writes the same
// values there).
TEXT ·avg2s2RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), R9
	MOVQ rows+24(FP), R10
	MOVQ w+32(FP), BX
	SHLQ $2, BX
	MOVQ dstRow+40(FP), R11
	SHLQ $2, R11
	MOVQ R9, R14
	SUBQ $8, R14 // n-8: where the last block starts
	MOVL $0x3e800000, AX // 0.25
	MOVL AX, X15
	VBROADCASTSS X15, Y15

row:
	MOVQ SI, R12
	LEAQ (SI)(BX*1), DX
	MOVQ DI, R13
	MOVQ R9, CX
	SHRQ $3, CX

blocks:
	BLOCK
	ADDQ $64, R12
	ADDQ $64, DX
	ADDQ $32, R13
	DECQ CX
	JNE  blocks

	TESTQ $7, R9
	JEQ   next
	LEAQ  (SI)(R14*8), R12
	LEAQ  (R12)(BX*1), DX
	LEAQ  (DI)(R14*4), R13
	BLOCK

next:
	LEAQ (SI)(BX*2), SI
	ADDQ R11, DI
	DECQ R10
	JNE  row
	VZEROUPPER
	RET


// MBLOCK: 8 outputs at (R13) from the rows at (R12) and (DX): the max down
// each of the 16 columns, then of each even column and the odd one after
// it (SHUFPS takes the even and the odd ones in the same lane order; one
// PERMPD puts the result in order).
#define MBLOCK \
	VMOVUPS (R12), Y0 \
	VMOVUPS 32(R12), Y1 \
	VMOVUPS (DX), Y2 \
	VMOVUPS 32(DX), Y3 \
	MAXV(Y0, Y2, Y4) \
	MAXV(Y1, Y3, Y5) \
	VSHUFPS $0x88, Y5, Y4, Y6 \
	VSHUFPS $0xDD, Y5, Y4, Y7 \
	MAXV(Y6, Y7, Y8) \
	VPERMPD $0xD8, Y8, Y8 \
	VMOVUPS Y8, (R13)

// func max2s2RowsAVX2(dst, src *float32, n, rows, w, dstRow int)
// avg2s2RowsAVX2's loops with MBLOCK: rows >= 1 output rows of n >= 8, the
// last block of a row overlapping the one before when n is not a multiple
// of 8.
TEXT ·max2s2RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), R9
	MOVQ rows+24(FP), R10
	MOVQ w+32(FP), BX
	SHLQ $2, BX
	MOVQ dstRow+40(FP), R11
	SHLQ $2, R11
	MOVQ R9, R14
	SUBQ $8, R14 // n-8: where the last block starts

mrow:
	MOVQ SI, R12
	LEAQ (SI)(BX*1), DX
	MOVQ DI, R13
	MOVQ R9, CX
	SHRQ $3, CX

mblocks:
	MBLOCK
	ADDQ $64, R12
	ADDQ $64, DX
	ADDQ $32, R13
	DECQ CX
	JNE  mblocks

	TESTQ $7, R9
	JEQ   mnext
	LEAQ  (SI)(R14*8), R12
	LEAQ  (R12)(BX*1), DX
	LEAQ  (DI)(R14*4), R13
	MBLOCK

mnext:
	LEAQ (SI)(BX*2), SI
	ADDQ R11, DI
	DECQ R10
	JNE  mrow
	VZEROUPPER
	RET

// TWICE: the 8 floats at (R12), each twice side by side (UNPCK within the
// 128-bit lanes, then the lanes put in order, as double2AVX2 does), to the
// 16 floats at (R13) and at (R13)(BX*1).
#define TWICE \
	VMOVUPS (R12), Y0 \
	VUNPCKLPS Y0, Y0, Y1 \
	VUNPCKHPS Y0, Y0, Y2 \
	VPERM2F128 $0x20, Y2, Y1, Y3 \
	VPERM2F128 $0x31, Y2, Y1, Y4 \
	VMOVUPS Y3, (R13) \
	VMOVUPS Y4, 32(R13) \
	VMOVUPS Y3, (R13)(BX*1) \
	VMOVUPS Y4, 32(R13)(BX*1)

// func double2RowsAVX2(dst, src *float32, n, rows, srcRow, dstRow int)
// rows >= 1 input rows of n >= 8: input row i (at src + i*srcRow) doubled
// into the output rows 2i and 2i+1 (at dst + 2i*dstRow and one row on).
// Blocks of 8 inputs, and one more ending at the row's last input when n is
// not a multiple of 8 (it overlaps the one before and writes the same
// values there).
TEXT ·double2RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), R9
	MOVQ rows+24(FP), R10
	MOVQ srcRow+32(FP), R11
	SHLQ $2, R11
	MOVQ dstRow+40(FP), BX
	SHLQ $2, BX
	MOVQ R9, R14
	SUBQ $8, R14 // n-8: where the last block starts

drow:
	MOVQ SI, R12
	MOVQ DI, R13
	MOVQ R9, CX
	SHRQ $3, CX

dblocks:
	TWICE
	ADDQ $32, R12
	ADDQ $64, R13
	DECQ CX
	JNE  dblocks

	TESTQ $7, R9
	JEQ   dnext
	LEAQ  (SI)(R14*4), R12
	LEAQ  (DI)(R14*8), R13
	TWICE

dnext:
	ADDQ R11, SI
	LEAQ (DI)(BX*2), DI
	DECQ R10
	JNE  drow
	VZEROUPPER
	RET
