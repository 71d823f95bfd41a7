//go:build amd64 && !purego

#include "textflag.h"

// STEP: four values at byte offset off of ref (SI) and test (DX), widened
// to float64, into the lane sums: Y8 ref^2, Y9 test^2, Y10 ref*test, Y11
// error^2, Y12 the largest |error|, Y13 the NaN flags (Y14: the sign mask
// cleared). The products of floats are exact; VMULPD then VADDPD rounds the
// error's square as the Go loop does.
#define STEP(off) \
	VCVTPS2PD off(SI), Y0 \
	VCVTPS2PD off(DX), Y1 \
	VMULPD Y0, Y0, Y2 \
	VADDPD Y2, Y8, Y8 \
	VMULPD Y1, Y1, Y2 \
	VADDPD Y2, Y9, Y9 \
	VMULPD Y1, Y0, Y2 \
	VADDPD Y2, Y10, Y10 \
	VSUBPD Y1, Y0, Y3 \
	VMULPD Y3, Y3, Y2 \
	VADDPD Y2, Y11, Y11 \
	VANDPD Y14, Y3, Y3 \
	VCMPPD $3, Y3, Y3, Y2 \
	VORPD Y2, Y13, Y13 \
	VMAXPD Y12, Y3, Y12

// func errorSumsAVX2(ref, test *float32, n int, l *[24]float64)
// n a multiple of 4 (> 0). A NaN error leaves its lane's maximum
// undefined; the flag makes the result NaN.
TEXT ·errorSumsAVX2(SB), NOSPLIT, $0-32
	MOVQ ref+0(FP), SI
	MOVQ test+8(FP), DX
	MOVQ n+16(FP), CX
	MOVQ l+24(FP), DI
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	VXORPD Y12, Y12, Y12
	VXORPD Y13, Y13, Y13
	MOVQ $0x7fffffffffffffff, AX
	VMOVQ AX, X14
	VPBROADCASTQ X14, Y14
	MOVQ CX, R8
	SHRQ $3, CX
	JEQ  errfour

errloop:
	STEP(0)
	STEP(16)
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ CX
	JNE  errloop

errfour:
	TESTQ $4, R8
	JEQ   errdone
	STEP(0)

errdone:
	VMOVUPD Y8, (DI)
	VMOVUPD Y9, 32(DI)
	VMOVUPD Y10, 64(DI)
	VMOVUPD Y11, 96(DI)
	VMOVUPD Y12, 128(DI)
	VMOVUPD Y13, 160(DI)
	VZEROUPPER
	RET
