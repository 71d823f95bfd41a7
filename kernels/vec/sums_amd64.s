//go:build amd64 && !purego

#include "textflag.h"

// func rowMeansAVX2(dst, x *float32, rows, n int)
// rows, n >= 1; rows are back to back in x. Each row is summed in float64 as
// Sum does it: four 4-lane sums over the 16-float groups and a last 8-float
// group into the first two (sumF64AVX2), (s0 + s1) + (s2 + s3) lane by lane,
// then (l0 + l1) + (l2 + l3), then the last n%8 one at a time; divided by n
// and rounded to float32.
TEXT ·rowMeansAVX2(SB), NOSPLIT, $0-32
	MOVQ      dst+0(FP), DI
	MOVQ      x+8(FP), SI
	MOVQ      rows+16(FP), DX
	MOVQ      n+24(FP), R8
	CVTSQ2SD  R8, X10
	MOVQ      R8, R9
	SHRQ      $4, R9       // 16-float groups a row
	MOVQ      R8, R10
	ANDQ      $8, R10      // an 8-float group after them
	ANDQ      $7, R8       // the rest

row:
	VXORPD    Y11, Y11, Y11
	VXORPD    Y12, Y12, Y12
	VXORPD    Y13, Y13, Y13
	VXORPD    Y14, Y14, Y14
	MOVQ      R9, CX
	TESTQ     CX, CX
	JEQ       eight

group:
	VCVTPS2PD (SI), Y0
	VADDPD    Y0, Y11, Y11
	VCVTPS2PD 16(SI), Y1
	VADDPD    Y1, Y12, Y12
	VCVTPS2PD 32(SI), Y2
	VADDPD    Y2, Y13, Y13
	VCVTPS2PD 48(SI), Y3
	VADDPD    Y3, Y14, Y14
	ADDQ      $64, SI
	DECQ      CX
	JNE       group

eight:
	TESTQ     R10, R10
	JEQ       fold
	VCVTPS2PD (SI), Y0
	VADDPD    Y0, Y11, Y11
	VCVTPS2PD 16(SI), Y1
	VADDPD    Y1, Y12, Y12
	ADDQ      $32, SI

fold:
	VADDPD       Y12, Y11, Y11
	VADDPD       Y14, Y13, Y13
	VADDPD       Y13, Y11, Y11
	VEXTRACTF128 $1, Y11, X1
	VHADDPD      X11, X11, X0 // l0 + l1
	VHADDPD      X1, X1, X1   // l2 + l3
	VADDSD       X1, X0, X0
	MOVQ         R8, CX
	TESTQ        CX, CX
	JEQ          mean

rest:
	VCVTSS2SD (SI), X2, X2
	VADDSD    X2, X0, X0
	ADDQ      $4, SI
	DECQ      CX
	JNE       rest

mean:
	VDIVSD    X10, X0, X0
	VCVTSD2SS X0, X0, X0
	VMOVSS    X0, (DI)
	ADDQ      $4, DI
	DECQ      DX
	JNE       row
	VZEROUPPER
	RET
