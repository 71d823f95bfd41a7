//go:build amd64 && !purego

#include "textflag.h"

// func quadsAVX2(dst, x *float32, perm *int32, w0, w1, w2, w3 *float32, n, row int)
// n a multiple of 8: eight points a step. The two values of a row of a
// point's square are adjacent, so each row is two gathers of four 8-byte
// pairs (points 0, 1, 4, 5 from perm's first four offsets, 2, 3, 6, 7 from
// the next four), split by VSHUFPS into the left and right values of points
// 0..7 in order. The weighted values are summed left, right, lower left,
// lower right; VMULPS and VADDPS round as Go's scalar float32 arithmetic.
TEXT ·quadsAVX2(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ perm+16(FP), BX
	MOVQ w0+24(FP), R8
	MOVQ w1+32(FP), R9
	MOVQ w2+40(FP), R10
	MOVQ w3+48(FP), R11
	MOVQ n+56(FP), CX
	MOVQ row+64(FP), DX
	LEAQ (SI)(DX*4), R12
	SHRQ $3, CX
	JEQ quads_done
quads_loop:
	VMOVDQU (BX), X0
	VMOVDQU 16(BX), X6
	VPCMPEQD Y1, Y1, Y1
	VGATHERDPD Y1, (SI)(X0*4), Y2
	VPCMPEQD Y1, Y1, Y1
	VGATHERDPD Y1, (SI)(X6*4), Y3
	VPCMPEQD Y1, Y1, Y1
	VGATHERDPD Y1, (R12)(X0*4), Y4
	VPCMPEQD Y1, Y1, Y1
	VGATHERDPD Y1, (R12)(X6*4), Y5
	VSHUFPS $0x88, Y3, Y2, Y7
	VSHUFPS $0xDD, Y3, Y2, Y8
	VSHUFPS $0x88, Y5, Y4, Y9
	VSHUFPS $0xDD, Y5, Y4, Y10
	VMULPS (R8), Y7, Y7
	VMULPS (R9), Y8, Y8
	VADDPS Y8, Y7, Y7
	VMULPS (R10), Y9, Y9
	VADDPS Y9, Y7, Y7
	VMULPS (R11), Y10, Y10
	VADDPS Y10, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, BX
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
	DECQ CX
	JNE quads_loop
quads_done:
	VZEROUPPER
	RET
