//go:build amd64 && !purego

#include "textflag.h"

// HSUM: Y(out) = (r[x] + r[x+1]) + r[x+2] for the 8 x at (base).
#define HSUM(base, out) \
	VMOVUPS (base), out \
	VADDPS 4(base), out, out \
	VADDPS 8(base), out, out

// BLOCK: 8 outputs at (R13) + R8 from the rows at (R12), (DX) and one
// row (BX bytes) further, + R8, and the divisors at (R11) + R8: the three
// row sums added in order, then divided.
#define BLOCK \
	LEAQ (R12)(R8*1), AX \
	HSUM(AX, Y0) \
	LEAQ (DX)(R8*1), AX \
	HSUM(AX, Y1) \
	ADDQ BX, AX \
	HSUM(AX, Y2) \
	VADDPS Y1, Y0, Y0 \
	VADDPS Y2, Y0, Y0 \
	VDIVPS (R11)(R8*1), Y0, Y0 \
	VMOVUPS Y0, (R13)(R8*1)

// func avg3RowsAVX2(dst, src, div *float32, n, rows, srcRow, dstRow, divRow int)
// rows >= 1 output rows of n >= 8: Avg3x3Rows' sums, blocks of 8 outputs
// and one more ending at the row's last output when n is not a multiple
// of 8 (it overlaps the one before and writes the same values there).
TEXT ·avg3RowsAVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ div+16(FP), R10
	MOVQ n+24(FP), R9
	MOVQ rows+32(FP), R14
	MOVQ srcRow+40(FP), BX
	SHLQ $2, BX
	MOVQ dstRow+48(FP), CX
	SHLQ $2, CX
	MOVQ CX, dstRow+48(FP) // in bytes from here on
	MOVQ divRow+56(FP), CX
	SHLQ $2, CX
	MOVQ CX, divRow+56(FP)

row:
	MOVQ SI, R12
	LEAQ (SI)(BX*1), DX
	MOVQ DI, R13
	MOVQ R10, R11
	XORQ R8, R8 // the block's byte offset
	MOVQ R9, CX
	SHRQ $3, CX

blocks:
	BLOCK
	ADDQ $32, R8
	DECQ CX
	JNE  blocks

	TESTQ $7, R9
	JEQ   next
	MOVQ  R9, R8
	SUBQ  $8, R8
	SHLQ  $2, R8 // (n-8)*4: the last block
	BLOCK

next:
	ADDQ BX, SI
	ADDQ dstRow+48(FP), DI
	ADDQ divRow+56(FP), R10
	DECQ R14
	JNE  row
	VZEROUPPER
	RET
