//go:build amd64 && !purego

#include "textflag.h"

// func rowsOpAVX512(dst, a, row *float32, rows, n int, mul bool)
//
// dst's rows (n floats each, one after another) = a's rows + row (or
// times row with mul): 16 floats a vector, the last partial one under the
// lane mask K1 (none when n is a multiple of 16: a store under an empty
// mask is slow on AMD's cores).
TEXT ·rowsOpAVX512(SB), NOSPLIT, $0-41
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ row+16(FP), BX
	MOVQ rows+24(FP), R9
	MOVQ n+32(FP), R10
	MOVBLZX mul+40(FP), R11
	MOVQ R10, CX
	ANDQ $15, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ R10, R12
	SHRQ $4, R12
	SHLQ $2, R10 // a row in bytes from here on
	TESTQ R9, R9
	JEQ rowsOp_done

rowsOp_row:
	XORQ DX, DX
	MOVQ R12, CX
	TESTQ CX, CX
	JEQ rowsOp_tail

rowsOp_full:
	VMOVUPS (SI)(DX*1), Z0
	TESTQ R11, R11
	JNE rowsOp_fullMul
	VADDPS (BX)(DX*1), Z0, Z0
	JMP rowsOp_fullStore

rowsOp_fullMul:
	VMULPS (BX)(DX*1), Z0, Z0

rowsOp_fullStore:
	VMOVUPS Z0, (DI)(DX*1)
	ADDQ $64, DX
	DECQ CX
	JNE rowsOp_full

rowsOp_tail:
	KORTESTW K1, K1
	JEQ rowsOp_next
	VMOVUPS.Z (SI)(DX*1), K1, Z0
	VMOVUPS.Z (BX)(DX*1), K1, Z1
	TESTQ R11, R11
	JNE rowsOp_tailMul
	VADDPS Z1, Z0, Z0
	JMP rowsOp_tailStore

rowsOp_tailMul:
	VMULPS Z1, Z0, Z0

rowsOp_tailStore:
	VMOVUPS Z0, K1, (DI)(DX*1)

rowsOp_next:
	ADDQ R10, SI
	ADDQ R10, DI
	DECQ R9
	JNE rowsOp_row

rowsOp_done:
	VZEROUPPER
	RET
