//go:build amd64 && !purego

#include "textflag.h"

// func addEveryOtherAVX2(dst, x *float32, n int)
// dst[2i] += x[i] for i < n (a multiple of 8): eight x a step, interleaved
// with -0 (x + -0 is x for every x, -0 included) into two vectors that add
// onto 16 floats of dst.
TEXT ·addEveryOtherAVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	SHRQ         $3, CX
	JEQ          done
	VBROADCASTSS negzero<>(SB), Y7

loop:
	VMOVUPS    (SI), Y0
	VUNPCKLPS  Y7, Y0, Y1       // x0 -0 x1 -0 | x4 -0 x5 -0
	VUNPCKHPS  Y7, Y0, Y2       // x2 -0 x3 -0 | x6 -0 x7 -0
	VPERM2F128 $0x20, Y2, Y1, Y3 // x0 .. x3 interleaved
	VPERM2F128 $0x31, Y2, Y1, Y4 // x4 .. x7 interleaved
	VMOVUPS    (DI), Y5
	VMOVUPS    32(DI), Y6
	VADDPS     Y3, Y5, Y5       // dst first, as the scalar += (a NaN's payload)
	VADDPS     Y4, Y6, Y6
	VMOVUPS    Y5, (DI)
	VMOVUPS    Y6, 32(DI)
	ADDQ       $32, SI
	ADDQ       $64, DI
	DECQ       CX
	JNE        loop

done:
	VZEROUPPER
	RET

DATA negzero<>+0(SB)/4, $0x80000000
GLOBL negzero<>(SB), RODATA|NOPTR, $4
