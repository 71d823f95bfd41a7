//go:build amd64 && !purego

#include "textflag.h"

// ARGSTEP(cmp): 8 lanes of ArgBest at DI (best), SI (ids), DX (row): the
// mask is row <cmp> best (an ordered predicate: false with a NaN), and
// best and ids take row and j (Y15) where it is set.
#define ARGSTEP(cmp) \
	VMOVUPS (DX), Y0 \
	VMOVUPS (DI), Y1 \
	VCMPPS cmp, Y1, Y0, Y2 \
	VBLENDVPS Y2, Y0, Y1, Y1 \
	VMOVUPS Y1, (DI) \
	VMOVDQU (SI), Y3 \
	VBLENDVPS Y2, Y15, Y3, Y3 \
	VMOVDQU Y3, (SI) \
	ADDQ $32, DX \
	ADDQ $32, DI \
	ADDQ $32, SI

// func argBestAVX2(best *float32, ids *int32, row *float32, n int, j int32, pred int)
// n is a multiple of 8. pred: 0 >, 1 >=, 2 <, 3 <= (argbest.go); the
// predicates are _CMP_GT_OQ, _CMP_GE_OQ, _CMP_LT_OQ and _CMP_LE_OQ.
TEXT ·argBestAVX2(SB), NOSPLIT, $0-48
	MOVQ best+0(FP), DI
	MOVQ ids+8(FP), SI
	MOVQ row+16(FP), DX
	MOVQ n+24(FP), CX
	MOVL j+32(FP), R8
	VMOVD R8, X15
	VPBROADCASTD X15, Y15
	MOVQ pred+40(FP), AX
	SHRQ $3, CX
	JEQ argbest_done
	CMPQ AX, $1
	JEQ argbest_ge
	CMPQ AX, $2
	JEQ argbest_lt
	CMPQ AX, $3
	JEQ argbest_le
argbest_gt:
	ARGSTEP($0x1e)
	DECQ CX
	JNE argbest_gt
	JMP argbest_done
argbest_ge:
	ARGSTEP($0x1d)
	DECQ CX
	JNE argbest_ge
	JMP argbest_done
argbest_lt:
	ARGSTEP($0x11)
	DECQ CX
	JNE argbest_lt
	JMP argbest_done
argbest_le:
	ARGSTEP($0x12)
	DECQ CX
	JNE argbest_le
argbest_done:
	VZEROUPPER
	RET
