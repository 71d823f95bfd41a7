//go:build amd64 && !purego

#include "textflag.h"

// func accRowAVX2(acc *float64, x, dst *float32, n int, exclusive bool)
// n a multiple of 4: 4 lanes at a time, x widened to float64 (exact), added
// to acc, and acc (before the add when exclusive) rounded to float32 as Go
// converts (the rounding mode is MXCSR's nearest-even).
TEXT ·accRowAVX2(SB), NOSPLIT, $0-33
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dst+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBLZX exclusive+32(FP), AX
	SHRQ $2, CX
	JEQ accrow_done
	TESTQ AX, AX
	JNE accrow_excl
accrow_incl:
	VCVTPS2PD (SI), Y0
	VMOVUPD (DI), Y2
	VADDPD Y2, Y0, Y0
	VMOVUPD Y0, (DI)
	VCVTPD2PSY Y0, X1
	VMOVUPS X1, (DX)
	ADDQ $32, DI
	ADDQ $16, SI
	ADDQ $16, DX
	DECQ CX
	JNE accrow_incl
	JMP accrow_done
accrow_excl:
	VMOVUPD (DI), Y2
	VCVTPD2PSY Y2, X1
	VMOVUPS X1, (DX)
	VCVTPS2PD (SI), Y0
	VADDPD Y2, Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ $32, DI
	ADDQ $16, SI
	ADDQ $16, DX
	DECQ CX
	JNE accrow_excl
accrow_done:
	VZEROUPPER
	RET

// func widenAddAVX2(acc *float64, x *float32, n int)
// n a multiple of 8: acc[i] += float64(x[i]), eight lanes a step (the
// widening is exact, the add rounds as Go's).
TEXT ·widenAddAVX2(SB), NOSPLIT, $0-24
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ widenadd_done
widenadd_loop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VADDPD (DI), Y0, Y0
	VADDPD 32(DI), Y1, Y1
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $32, SI
	DECQ CX
	JNE widenadd_loop
widenadd_done:
	VZEROUPPER
	RET

// func accRowAVX512(acc *float64, x, dst *float32, n int, exclusive bool)
// accRowAVX2's operations on sixteen lanes a step (two vectors of eight
// float64), n a multiple of 16: the same bits.
TEXT ·accRowAVX512(SB), NOSPLIT, $0-33
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dst+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBLZX exclusive+32(FP), AX
	SHRQ $4, CX
	JEQ accrow512_done
	TESTQ AX, AX
	JNE accrow512_excl
accrow512_incl:
	VCVTPS2PD (SI), Z0
	VCVTPS2PD 32(SI), Z1
	VADDPD (DI), Z0, Z0
	VADDPD 64(DI), Z1, Z1
	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VCVTPD2PS Z0, Y2
	VCVTPD2PS Z1, Y3
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, 32(DX)
	ADDQ $128, DI
	ADDQ $64, SI
	ADDQ $64, DX
	DECQ CX
	JNE accrow512_incl
	JMP accrow512_done
accrow512_excl:
	VMOVUPD (DI), Z2
	VMOVUPD 64(DI), Z3
	VCVTPD2PS Z2, Y4
	VCVTPD2PS Z3, Y5
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	VCVTPS2PD (SI), Z0
	VCVTPS2PD 32(SI), Z1
	VADDPD Z2, Z0, Z0
	VADDPD Z3, Z1, Z1
	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	ADDQ $128, DI
	ADDQ $64, SI
	ADDQ $64, DX
	DECQ CX
	JNE accrow512_excl
accrow512_done:
	VZEROUPPER
	RET
