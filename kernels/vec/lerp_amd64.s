//go:build amd64 && !purego

#include "textflag.h"

// func lerp64AVX2(dst, a, b *float32, n int, wa, wb float64)
// Eight floats a step (n a multiple of 8), widened to float64 four at a
// time: (0 + wa*a) + wb*b, each operation rounded (no FMA), then narrowed.
TEXT ·lerp64AVX2(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         a+8(FP), SI
	MOVQ         b+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSD wa+32(FP), Y14
	VBROADCASTSD wb+40(FP), Y15
	VXORPD       Y13, Y13, Y13
	SHRQ         $3, CX
	JEQ          done

loop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VCVTPS2PD (DX), Y2
	VCVTPS2PD 16(DX), Y3
	VMULPD    Y14, Y0, Y0
	VMULPD    Y14, Y1, Y1
	VMULPD    Y15, Y2, Y2
	VMULPD    Y15, Y3, Y3
	VADDPD    Y0, Y13, Y0
	VADDPD    Y1, Y13, Y1
	VADDPD    Y2, Y0, Y0
	VADDPD    Y3, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VMOVUPS   X0, (DI)
	VMOVUPS   X1, 16(DI)
	ADDQ      $32, SI
	ADDQ      $32, DX
	ADDQ      $32, DI
	DECQ      CX
	JNE       loop

done:
	VZEROUPPER
	RET
