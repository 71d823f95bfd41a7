//go:build amd64 && !purego

#include "textflag.h"
#include "maxv_amd64.h"


// COL: Y(out) = the max down r0, r1, r2 of the 8 floats at byte offset off.
#define COL(off, out) \
	VMOVUPS off(R12), Y0 \
	VMOVUPS off(DX), Y1 \
	MAXV(Y0, Y1, Y2) \
	VMOVUPS off(R8), Y1 \
	MAXV(Y2, Y1, out)

// BLOCK: 8 outputs at (R13) from the rows at (R12), (DX), (R8). The column
// maxima A = v[0:8], B = v[8:16], P = v[1:9], Q = v[9:17] (v from the
// block's first column); SHUFPS takes the even elements of A,B (columns 2j),
// of P,Q (2j+1), and the odd ones of P,Q (2j+2), all in the same lane order,
// so their max is put in column order by one PERMPD at the end, as
// stride2AVX2 does.
#define BLOCK \
	COL(0, Y3) \
	COL(32, Y4) \
	COL(4, Y5) \
	COL(36, Y6) \
	VSHUFPS $0x88, Y4, Y3, Y7 \
	VSHUFPS $0x88, Y6, Y5, Y8 \
	VSHUFPS $0xDD, Y6, Y5, Y9 \
	MAXV(Y7, Y8, Y10) \
	MAXV(Y10, Y9, Y11) \
	VPERMPD $0xD8, Y11, Y11 \
	VMOVUPS Y11, (R13)

// func max3s2RowsAVX2(dst, src *float32, n, rows, w, dstRow int)
// rows >= 1 output rows of n >= 8: output row i (at dst + i*dstRow) from
// the input rows 2i, 2i+1, 2i+2 (src + 2i*w, ...), reading each over [0,
// 2n+1). Blocks of 8 outputs, and one more ending at the row's last output
// when n is not a multiple of 8 (it overlaps the one before and writes the
// same values there).
TEXT ·max3s2RowsAVX2(SB), NOSPLIT, $0-48
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

row:
	MOVQ SI, R12
	LEAQ (SI)(BX*1), DX
	LEAQ (SI)(BX*2), R8
	MOVQ DI, R13
	MOVQ R9, CX
	SHRQ $3, CX

blocks:
	BLOCK
	ADDQ $64, R12
	ADDQ $64, DX
	ADDQ $64, R8
	ADDQ $32, R13
	DECQ CX
	JNE  blocks

	TESTQ $7, R9
	JEQ   next
	LEAQ  (SI)(R14*8), R12
	LEAQ  (R12)(BX*1), DX
	LEAQ  (R12)(BX*2), R8
	LEAQ  (DI)(R14*4), R13
	BLOCK

next:
	LEAQ (SI)(BX*2), SI
	ADDQ R11, DI
	DECQ R10
	JNE  row
	VZEROUPPER
	RET
