//go:build amd64 && !purego

#include "textflag.h"

// func gemvAVX2(y, x, a *float32, k, lda, n int)
// y[j] += sum_i x[i]*a[i*lda+j] for j < n (a multiple of 8), k >= 1: blocks
// of 64 columns in eight accumulators (enough independent FMA chains to hide
// the latency), then single vectors of 8.
TEXT ·gemvAVX2(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ a+16(FP), DX
	MOVQ k+24(FP), CX
	MOVQ lda+32(FP), R8
	SHLQ $2, R8
	MOVQ n+40(FP), R9
gemv_block64:
	CMPQ R9, $64
	JLT gemv_block8
	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ CX, R12
gemv_rows64:
	VBROADCASTSS (R10), Y15
	VFMADD231PS 0(R11), Y15, Y0
	VFMADD231PS 32(R11), Y15, Y1
	VFMADD231PS 64(R11), Y15, Y2
	VFMADD231PS 96(R11), Y15, Y3
	VFMADD231PS 128(R11), Y15, Y4
	VFMADD231PS 160(R11), Y15, Y5
	VFMADD231PS 192(R11), Y15, Y6
	VFMADD231PS 224(R11), Y15, Y7
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ R12
	JNE gemv_rows64
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, R9
	JMP gemv_block64
gemv_block8:
	CMPQ R9, $8
	JLT gemv_done
	VMOVUPS 0(DI), Y0
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ CX, R12
gemv_rows8:
	VBROADCASTSS (R10), Y15
	VFMADD231PS 0(R11), Y15, Y0
	ADDQ $4, R10
	ADDQ R8, R11
	DECQ R12
	JNE gemv_rows8
	VMOVUPS Y0, 0(DI)
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, R9
	JMP gemv_block8
gemv_done:
	VZEROUPPER
	RET
