//go:build amd64 && !purego

#include "textflag.h"

// The 3x3 stride-2 max of max3s2EdgesAVX512, sixteen outputs a block: the
// column maxima of the three rows over input columns c..c+32 (c the block's
// first window start) as four vectors A = [c, c+16), B = [c+16, c+32),
// C = [c+1, c+17), D = [c+17, c+33), then VPERMT2PS takes columns c+2j
// (even lanes of A:B), c+2j+1 (even of C:D) and c+2j+2 (odd of C:D) in
// output order, and the max of those three is the output: down, then across
// in order, as max3s2RowsAVX2 takes it (the same bits). Columns outside the
// row load as -inf (masked loads: nothing is read there), the max of a
// window over the columns it has.

// M512(x, y, m): Z(m) = max(x, y) as Max defines it: VMAXPS gives x when
// either is NaN or both are zeros, and y is put back where it is NaN.
#define M512(x, y, m) \
	VMAXPS x, y, m \
	VCMPPS $3, y, y, K6 \
	VMOVAPS y, K6, m

// COLF(off, out): Z(out) = the max down the rows at SI, R8, R9 of the 16
// floats at column AX, byte offset off.
#define COLF(off, out) \
	VMOVUPS off(SI)(AX*4), Z0 \
	VMOVUPS off(R8)(AX*4), Z1 \
	M512(Z0, Z1, Z2) \
	VMOVUPS off(R9)(AX*4), Z1 \
	M512(Z2, Z1, out)

// COLM(off, k, out): COLF with the lanes k leaves out as -inf (Z30).
#define COLM(off, k, out) \
	VMOVAPS Z30, Z0 \
	VMOVUPS off(SI)(AX*4), k, Z0 \
	VMOVAPS Z30, Z1 \
	VMOVUPS off(R8)(AX*4), k, Z1 \
	M512(Z0, Z1, Z2) \
	VMOVAPS Z30, Z1 \
	VMOVUPS off(R9)(AX*4), k, Z1 \
	M512(Z2, Z1, out)

// ACROSS: Z11 = the outputs from the column maxima Z3 (A), Z4 (B), Z5 (C),
// Z6 (D).
#define ACROSS \
	VMOVAPS   Z3, Z7 \
	VPERMT2PS Z4, Z29, Z7 \
	VMOVAPS   Z5, Z8 \
	VPERMT2PS Z6, Z29, Z8 \
	VMOVAPS   Z5, Z9 \
	VPERMT2PS Z6, Z28, Z9 \
	M512(Z7, Z8, Z10) \
	M512(Z10, Z9, Z11)

// LANEMASK(add, k): k = the lanes i with 0 <= c + add_i < w (Z26 = c, Z27 = w).
#define LANEMASK(add, k) \
	VPADDD  add, Z26, Z25 \
	VPCMPUD $1, Z27, Z25, k

DATA max3iota<>+0(SB)/4, $0
DATA max3iota<>+4(SB)/4, $1
DATA max3iota<>+8(SB)/4, $2
DATA max3iota<>+12(SB)/4, $3
DATA max3iota<>+16(SB)/4, $4
DATA max3iota<>+20(SB)/4, $5
DATA max3iota<>+24(SB)/4, $6
DATA max3iota<>+28(SB)/4, $7
DATA max3iota<>+32(SB)/4, $8
DATA max3iota<>+36(SB)/4, $9
DATA max3iota<>+40(SB)/4, $10
DATA max3iota<>+44(SB)/4, $11
DATA max3iota<>+48(SB)/4, $12
DATA max3iota<>+52(SB)/4, $13
DATA max3iota<>+56(SB)/4, $14
DATA max3iota<>+60(SB)/4, $15
GLOBL max3iota<>(SB), RODATA|NOPTR, $64

// func max3s2EdgesAVX512(dst, src *float32, rows, n, w, x0, dr1, dr2, srcRow, dstRow int)
// rows >= 1 output rows of n >= 1 outputs: output row i (at dst + i*dstRow)
// from the input rows at src + i*srcRow, + dr1 and + dr2 (floats), each w
// floats from column 0, output j from columns x0+2j .. x0+2j+2 of them.
TEXT ·max3s2EdgesAVX512(SB), NOSPLIT, $0-80
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rows+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ w+32(FP), R11
	MOVQ x0+40(FP), R10
	MOVQ srcRow+64(FP), R12
	SHLQ $2, R12
	MOVQ dstRow+72(FP), R13
	SHLQ $2, R13

	VMOVDQU32    max3iota<>(SB), Z31 // lane i: i
	MOVL         $16, AX
	VPBROADCASTD AX, Z0
	VPADDD       Z31, Z0, Z24        // i + 16
	MOVL         $1, AX
	VPBROADCASTD AX, Z0
	VPADDD       Z31, Z0, Z23        // i + 1
	VPADDD       Z24, Z0, Z22        // i + 17
	VPADDD       Z31, Z31, Z29       // 2i: columns c+2j of A:B, c+2j+1 of C:D
	VPADDD       Z29, Z0, Z28        // 2i+1: columns c+2j+2 of C:D
	VPBROADCASTD R11, Z27            // w
	VPBROADCASTD CX, Z21             // n
	MOVL         $0xff800000, AX
	VPBROADCASTD AX, Z30             // -inf

row:
	MOVQ dr1+48(FP), R8
	LEAQ (SI)(R8*4), R8
	MOVQ dr2+56(FP), R9
	LEAQ (SI)(R9*4), R9
	XORQ R14, R14                    // j

block:
	LEAQ  (R10)(R14*2), AX           // c = x0 + 2j
	TESTQ AX, AX
	JL    masked
	LEAQ  33(AX), BX
	CMPQ  BX, R11
	JG    masked
	LEAQ  16(R14), BX
	CMPQ  BX, CX
	JG    masked
	COLF(0, Z3)
	COLF(64, Z4)
	COLF(4, Z5)
	COLF(68, Z6)
	ACROSS
	VMOVUPS Z11, (DI)(R14*4)
	JMP     next

masked:
	VPBROADCASTD AX, Z26
	LANEMASK(Z31, K1)
	LANEMASK(Z24, K2)
	LANEMASK(Z23, K3)
	LANEMASK(Z22, K4)
	COLM(0, K1, Z3)
	COLM(64, K2, Z4)
	COLM(4, K3, Z5)
	COLM(68, K4, Z6)
	ACROSS
	VPBROADCASTD R14, Z26
	VPADDD       Z31, Z26, Z25
	VPCMPUD      $1, Z21, Z25, K5    // outputs j+i < n
	VMOVUPS      Z11, K5, (DI)(R14*4)

next:
	ADDQ $16, R14
	CMPQ R14, CX
	JLT  block
	ADDQ R12, SI
	ADDQ R13, DI
	DECQ DX
	JNE  row
	VZEROUPPER
	RET
