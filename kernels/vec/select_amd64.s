//go:build amd64 && !purego

#include "textflag.h"

// func selectXYAVX2(dst *float32, c *bool, x *float32, xstep int, y *float32, ystep int, n int)
// n a multiple of 8; x and y advance xstep and ystep bytes per 8 floats (32
// for a run, 0 for a scalar held as 8 copies). Where c's byte is 0 the lane
// takes y, else x: a blend of the bits, no branch.
TEXT ·selectXYAVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ c+8(FP), SI
	MOVQ x+16(FP), R8
	MOVQ xstep+24(FP), R10
	MOVQ y+32(FP), R9
	MOVQ ystep+40(FP), R11
	MOVQ n+48(FP), CX
	VPXOR Y10, Y10, Y10
	SHRQ $3, CX
	JEQ selectXY_done
selectXY_loop:
	VPMOVZXBD (SI), Y0
	VPCMPEQD Y10, Y0, Y0
	VMOVUPS (R8), Y1
	VMOVUPS (R9), Y2
	VBLENDVPS Y0, Y2, Y1, Y3
	VMOVUPS Y3, (DI)
	ADDQ $8, SI
	ADDQ $32, DI
	ADDQ R10, R8
	ADDQ R11, R9
	DECQ CX
	JNE selectXY_loop
selectXY_done:
	VZEROUPPER
	RET
