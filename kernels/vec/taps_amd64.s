//go:build amd64 && !purego

#include "textflag.h"

// func sumTapsAVX2(dst, src *float32, offs *int, w *float32, taps, n int, bias float32)
// n is a positive multiple of 8 and taps >= 1. Four 8-float running sums
// (32 outputs) stay in Y0-Y3 while every tap adds into them, then one sum at a
// time for the last n%32. Multiply and add are separate instructions, as in
// Axpy, so the result matches the portable loop bit for bit.
TEXT ·sumTapsAVX2(SB), NOSPLIT, $0-52
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ offs+16(FP), R9
	MOVQ w+24(FP), R10
	MOVQ taps+32(FP), R11
	MOVQ n+40(FP), CX
	VBROADCASTSS bias+48(FP), Y15
	MOVQ CX, R8
	SHRQ $5, CX
	JEQ  eights

loop32:
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y1
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y3
	XORQ    BX, BX

tap32:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DX
	VBROADCASTSS (R10)(BX*4), Y8
	VMULPS       (DX), Y8, Y4
	VADDPS       Y4, Y0, Y0
	VMULPS       32(DX), Y8, Y5
	VADDPS       Y5, Y1, Y1
	VMULPS       64(DX), Y8, Y6
	VADDPS       Y6, Y2, Y2
	VMULPS       96(DX), Y8, Y7
	VADDPS       Y7, Y3, Y3
	INCQ         BX
	CMPQ         BX, R11
	JNE          tap32
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $128, DI
	ADDQ         $128, SI
	DECQ         CX
	JNE          loop32

eights:
	ANDQ $31, R8
	SHRQ $3, R8
	JEQ  done

loop8:
	VMOVAPS Y15, Y0
	XORQ    BX, BX

tap8:
	MOVQ         (R9)(BX*8), AX
	VBROADCASTSS (R10)(BX*4), Y8
	VMULPS       (SI)(AX*4), Y8, Y4
	VADDPS       Y4, Y0, Y0
	INCQ         BX
	CMPQ         BX, R11
	JNE          tap8
	VMOVUPS      Y0, (DI)
	ADDQ         $32, DI
	ADDQ         $32, SI
	DECQ         R8
	JNE          loop8

done:
	VZEROUPPER
	RET

// func stride2AVX2(dst, src *float32, n int)
// dst[j] = src[2j] for j < n (a positive multiple of 8), reading src[0:2n]:
// SHUFPS picks elements 0 and 2 of each 4 from two vectors per 128-bit lane,
// and PERMPD puts the lanes' 64-bit halves back in order.
TEXT ·stride2AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX

loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSHUFPS $0x88, Y1, Y0, Y2
	VPERMPD $0xD8, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $64, SI
	ADDQ    $32, DI
	DECQ    CX
	JNE     loop
	VZEROUPPER
	RET
