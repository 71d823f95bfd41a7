//go:build amd64 && !purego

#include "textflag.h"
#include "maxv_amd64.h"

// Two-slice loops, n a multiple of 8: four vectors per step, then one at a
// time. Each vector is loaded before it is stored and vectors go in
// ascending order, so b may start further on in dst (see Max).


// func maxAVX2(dst, a, b *float32, n int)
TEXT ·maxAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ CX, R8
	SHRQ $5, CX
	JEQ max_eights
max_loop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 0(DX), Y4
	MAXV(Y0, Y4, Y8)
	VMOVUPS Y8, 0(DI)
	VMOVUPS 32(SI), Y1
	VMOVUPS 32(DX), Y5
	MAXV(Y1, Y5, Y9)
	VMOVUPS Y9, 32(DI)
	VMOVUPS 64(SI), Y2
	VMOVUPS 64(DX), Y6
	MAXV(Y2, Y6, Y10)
	VMOVUPS Y10, 64(DI)
	VMOVUPS 96(SI), Y3
	VMOVUPS 96(DX), Y7
	MAXV(Y3, Y7, Y11)
	VMOVUPS Y11, 96(DI)
	ADDQ $128, DI
	ADDQ $128, SI
	ADDQ $128, DX
	DECQ CX
	JNE max_loop
max_eights:
	ANDQ $31, R8
	SHRQ $3, R8
	JEQ max_done
max_one:
	VMOVUPS 0(SI), Y0
	VMOVUPS 0(DX), Y4
	MAXV(Y0, Y4, Y8)
	VMOVUPS Y8, 0(DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ R8
	JNE max_one
max_done:
	VZEROUPPER
	RET

// func divAVX2(dst, a, b *float32, n int)
TEXT ·divAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JEQ div_done
div_loop:
	VMOVUPS 0(SI), Y0
	VDIVPS 0(DX), Y0, Y0
	VMOVUPS Y0, 0(DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ CX
	JNE div_loop
div_done:
	VZEROUPPER
	RET
