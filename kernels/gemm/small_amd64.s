//go:build amd64 && !purego

#include "textflag.h"

// func smallAVX512(k int, a0, a1, a2, a3, b *float32, ldb int, c *float32, ldc, rows int, m0, m1 uint16, acc bool)
//
// Four rows of C, 32 columns (m0 and m1 mask the two 16-column halves):
// C[r][j] = sum over p of a_r[p] * B[p][j] (+ C[r][j] when acc), a chain
// of FMAs from zero in ascending p, as the tile kernels sum. A's rows are
// read in place (a0..a3, repeated for fewer rows), B's row p at b + p*ldb;
// only the first rows rows are stored.
TEXT ·smallAVX512(SB), NOSPLIT, $0-85
	MOVQ k+0(FP), CX
	MOVQ a0+8(FP), AX
	MOVQ a1+16(FP), SI
	MOVQ a2+24(FP), R8
	MOVQ a3+32(FP), R9
	MOVQ b+40(FP), BX
	MOVQ ldb+48(FP), R10
	SHLQ $2, R10
	MOVWLZX m0+80(FP), R11
	KMOVW R11, K1
	MOVWLZX m1+82(FP), R11
	KMOVW R11, K2
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	TESTQ CX, CX
	JEQ smallAVX512_store
	TESTQ R11, R11
	JNE smallAVX512_loop
	// 16 columns or fewer: the second half's loads and FMAs left out.
smallAVX512_loop16:
	VMOVUPS.Z 0(BX), K1, Z16
	VBROADCASTSS 0(AX), Z18
	VFMADD231PS Z16, Z18, Z0
	VBROADCASTSS 0(SI), Z19
	VFMADD231PS Z16, Z19, Z2
	VBROADCASTSS 0(R8), Z20
	VFMADD231PS Z16, Z20, Z4
	VBROADCASTSS 0(R9), Z21
	VFMADD231PS Z16, Z21, Z6
	ADDQ $4, AX
	ADDQ $4, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ R10, BX
	DECQ CX
	JNE smallAVX512_loop16
	JMP smallAVX512_store16
smallAVX512_loop:
	VMOVUPS.Z 0(BX), K1, Z16
	VMOVUPS.Z 64(BX), K2, Z17
	VBROADCASTSS 0(AX), Z18
	VFMADD231PS Z16, Z18, Z0
	VFMADD231PS Z17, Z18, Z1
	VBROADCASTSS 0(SI), Z19
	VFMADD231PS Z16, Z19, Z2
	VFMADD231PS Z17, Z19, Z3
	VBROADCASTSS 0(R8), Z20
	VFMADD231PS Z16, Z20, Z4
	VFMADD231PS Z17, Z20, Z5
	VBROADCASTSS 0(R9), Z21
	VFMADD231PS Z16, Z21, Z6
	VFMADD231PS Z17, Z21, Z7
	ADDQ $4, AX
	ADDQ $4, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ R10, BX
	DECQ CX
	JNE smallAVX512_loop
	JMP smallAVX512_store
smallAVX512_store16:
	MOVQ c+56(FP), DI
	MOVQ ldc+64(FP), DX
	SHLQ $2, DX
	MOVQ rows+72(FP), CX
	MOVBLZX acc+84(FP), R8
	TESTQ R8, R8
	JEQ smallAVX512_over16
	VMOVUPS.Z 0(DI), K1, Z16
	VADDPS Z16, Z0, Z0
	VMOVUPS Z0, K1, 0(DI)
	CMPQ CX, $2
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS.Z 0(DI), K1, Z16
	VADDPS Z16, Z2, Z2
	VMOVUPS Z2, K1, 0(DI)
	CMPQ CX, $3
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS.Z 0(DI), K1, Z16
	VADDPS Z16, Z4, Z4
	VMOVUPS Z4, K1, 0(DI)
	CMPQ CX, $4
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS.Z 0(DI), K1, Z16
	VADDPS Z16, Z6, Z6
	VMOVUPS Z6, K1, 0(DI)
	JMP smallAVX512_done
smallAVX512_over16:
	VMOVUPS Z0, K1, 0(DI)
	CMPQ CX, $2
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS Z2, K1, 0(DI)
	CMPQ CX, $3
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS Z4, K1, 0(DI)
	CMPQ CX, $4
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS Z6, K1, 0(DI)
	JMP smallAVX512_done
smallAVX512_store:
	MOVQ c+56(FP), DI
	MOVQ ldc+64(FP), DX
	SHLQ $2, DX
	MOVQ rows+72(FP), CX
	MOVBLZX acc+84(FP), R8
	TESTQ R8, R8
	JEQ smallAVX512_over
	VMOVUPS.Z 0(DI), K1, Z16
	VMOVUPS.Z 64(DI), K2, Z17
	VADDPS Z16, Z0, Z0
	VADDPS Z17, Z1, Z1
	VMOVUPS Z0, K1, 0(DI)
	VMOVUPS Z1, K2, 64(DI)
	CMPQ CX, $2
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS.Z 0(DI), K1, Z16
	VMOVUPS.Z 64(DI), K2, Z17
	VADDPS Z16, Z2, Z2
	VADDPS Z17, Z3, Z3
	VMOVUPS Z2, K1, 0(DI)
	VMOVUPS Z3, K2, 64(DI)
	CMPQ CX, $3
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS.Z 0(DI), K1, Z16
	VMOVUPS.Z 64(DI), K2, Z17
	VADDPS Z16, Z4, Z4
	VADDPS Z17, Z5, Z5
	VMOVUPS Z4, K1, 0(DI)
	VMOVUPS Z5, K2, 64(DI)
	CMPQ CX, $4
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS.Z 0(DI), K1, Z16
	VMOVUPS.Z 64(DI), K2, Z17
	VADDPS Z16, Z6, Z6
	VADDPS Z17, Z7, Z7
	VMOVUPS Z6, K1, 0(DI)
	VMOVUPS Z7, K2, 64(DI)
	JMP smallAVX512_done
smallAVX512_over:
	VMOVUPS Z0, K1, 0(DI)
	VMOVUPS Z1, K2, 64(DI)
	CMPQ CX, $2
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS Z2, K1, 0(DI)
	VMOVUPS Z3, K2, 64(DI)
	CMPQ CX, $3
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS Z4, K1, 0(DI)
	VMOVUPS Z5, K2, 64(DI)
	CMPQ CX, $4
	JLT smallAVX512_done
	ADDQ DX, DI
	VMOVUPS Z6, K1, 0(DI)
	VMOVUPS Z7, K2, 64(DI)
smallAVX512_done:
	VZEROUPPER
	RET

// func smallAVX2(k int, a0, a1, a2, a3, b *float32, ldb int, c *float32, ldc, rows, cols int, acc bool)
//
// smallAVX512 for AVX2: four rows of C by 16 columns (cols, 1-16), two
// vectors a row past 8 columns, one up to 8; the last vector's lanes past
// cols masked (Y15) on loads, and on stores unless the row is whole (a
// masked store is slow on AMD's cores). The same chains of FMAs from zero
// in ascending p, then C added, as the tile kernels sum.
TEXT ·smallAVX2(SB), NOSPLIT, $0-89
	MOVQ k+0(FP), CX
	MOVQ a0+8(FP), AX
	MOVQ a1+16(FP), SI
	MOVQ a2+24(FP), R8
	MOVQ a3+32(FP), R9
	MOVQ b+40(FP), BX
	MOVQ ldb+48(FP), R10
	SHLQ $2, R10
	MOVQ cols+80(FP), R11
	MOVQ R11, R12
	CMPQ R12, $8
	JLE smallAVX2_mask
	SUBQ $8, R12
smallAVX2_mask:
	// Y15: lanes below R12 (the last vector's live columns)
	VMOVQ R12, X12
	VPBROADCASTD X12, Y12
	VMOVDQU smallLanes<>(SB), Y13
	VPCMPGTD Y13, Y12, Y15
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JEQ smallAVX2_store
	CMPQ R11, $8
	JLE smallAVX2_loop1
smallAVX2_loop2:
	VMOVUPS (BX), Y8
	VMASKMOVPS 32(BX), Y15, Y9
	VBROADCASTSS (AX), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VBROADCASTSS (SI), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS (R8), Y10
	VFMADD231PS Y8, Y10, Y4
	VFMADD231PS Y9, Y10, Y5
	VBROADCASTSS (R9), Y11
	VFMADD231PS Y8, Y11, Y6
	VFMADD231PS Y9, Y11, Y7
	ADDQ $4, AX
	ADDQ $4, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ R10, BX
	DECQ CX
	JNE smallAVX2_loop2
	JMP smallAVX2_store
smallAVX2_loop1:
	VMASKMOVPS (BX), Y15, Y8
	VBROADCASTSS (AX), Y10
	VFMADD231PS Y8, Y10, Y0
	VBROADCASTSS (SI), Y11
	VFMADD231PS Y8, Y11, Y2
	VBROADCASTSS (R8), Y10
	VFMADD231PS Y8, Y10, Y4
	VBROADCASTSS (R9), Y11
	VFMADD231PS Y8, Y11, Y6
	ADDQ $4, AX
	ADDQ $4, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ R10, BX
	DECQ CX
	JNE smallAVX2_loop1
smallAVX2_store:
	MOVQ c+56(FP), DI
	MOVQ ldc+64(FP), DX
	SHLQ $2, DX
	MOVQ rows+72(FP), CX
	MOVBLZX acc+88(FP), R13
	CMPQ R11, $16
	JEQ smallAVX2_two_full
	CMPQ R11, $8
	JEQ smallAVX2_one_full
	JLT smallAVX2_one_mask
	TESTQ R13, R13
	JEQ smallAVX2_two_mask_w0
	VADDPS (DI), Y0, Y0
	VMASKMOVPS 32(DI), Y15, Y12
	VADDPS Y12, Y1, Y1
smallAVX2_two_mask_w0:
	VMOVUPS Y0, (DI)
	VMASKMOVPS Y1, Y15, 32(DI)
	CMPQ CX, $2
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_two_mask_w1
	VADDPS (DI), Y2, Y2
	VMASKMOVPS 32(DI), Y15, Y12
	VADDPS Y12, Y3, Y3
smallAVX2_two_mask_w1:
	VMOVUPS Y2, (DI)
	VMASKMOVPS Y3, Y15, 32(DI)
	CMPQ CX, $3
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_two_mask_w2
	VADDPS (DI), Y4, Y4
	VMASKMOVPS 32(DI), Y15, Y12
	VADDPS Y12, Y5, Y5
smallAVX2_two_mask_w2:
	VMOVUPS Y4, (DI)
	VMASKMOVPS Y5, Y15, 32(DI)
	CMPQ CX, $4
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_two_mask_w3
	VADDPS (DI), Y6, Y6
	VMASKMOVPS 32(DI), Y15, Y12
	VADDPS Y12, Y7, Y7
smallAVX2_two_mask_w3:
	VMOVUPS Y6, (DI)
	VMASKMOVPS Y7, Y15, 32(DI)
	JMP smallAVX2_done
smallAVX2_two_full:
	TESTQ R13, R13
	JEQ smallAVX2_two_full_w0
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
smallAVX2_two_full_w0:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	CMPQ CX, $2
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_two_full_w1
	VADDPS (DI), Y2, Y2
	VADDPS 32(DI), Y3, Y3
smallAVX2_two_full_w1:
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	CMPQ CX, $3
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_two_full_w2
	VADDPS (DI), Y4, Y4
	VADDPS 32(DI), Y5, Y5
smallAVX2_two_full_w2:
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	CMPQ CX, $4
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_two_full_w3
	VADDPS (DI), Y6, Y6
	VADDPS 32(DI), Y7, Y7
smallAVX2_two_full_w3:
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	JMP smallAVX2_done
smallAVX2_one_full:
	TESTQ R13, R13
	JEQ smallAVX2_one_full_w0
	VADDPS (DI), Y0, Y0
smallAVX2_one_full_w0:
	VMOVUPS Y0, (DI)
	CMPQ CX, $2
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_one_full_w1
	VADDPS (DI), Y2, Y2
smallAVX2_one_full_w1:
	VMOVUPS Y2, (DI)
	CMPQ CX, $3
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_one_full_w2
	VADDPS (DI), Y4, Y4
smallAVX2_one_full_w2:
	VMOVUPS Y4, (DI)
	CMPQ CX, $4
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_one_full_w3
	VADDPS (DI), Y6, Y6
smallAVX2_one_full_w3:
	VMOVUPS Y6, (DI)
	JMP smallAVX2_done
smallAVX2_one_mask:
	TESTQ R13, R13
	JEQ smallAVX2_one_mask_w0
	VMASKMOVPS (DI), Y15, Y12
	VADDPS Y12, Y0, Y0
smallAVX2_one_mask_w0:
	VMASKMOVPS Y0, Y15, (DI)
	CMPQ CX, $2
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_one_mask_w1
	VMASKMOVPS (DI), Y15, Y12
	VADDPS Y12, Y2, Y2
smallAVX2_one_mask_w1:
	VMASKMOVPS Y2, Y15, (DI)
	CMPQ CX, $3
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_one_mask_w2
	VMASKMOVPS (DI), Y15, Y12
	VADDPS Y12, Y4, Y4
smallAVX2_one_mask_w2:
	VMASKMOVPS Y4, Y15, (DI)
	CMPQ CX, $4
	JLT smallAVX2_done
	ADDQ DX, DI
	TESTQ R13, R13
	JEQ smallAVX2_one_mask_w3
	VMASKMOVPS (DI), Y15, Y12
	VADDPS Y12, Y6, Y6
smallAVX2_one_mask_w3:
	VMASKMOVPS Y6, Y15, (DI)
	JMP smallAVX2_done
smallAVX2_done:
	VZEROUPPER
	RET

DATA smallLanes<>+0(SB)/4, $0
DATA smallLanes<>+4(SB)/4, $1
DATA smallLanes<>+8(SB)/4, $2
DATA smallLanes<>+12(SB)/4, $3
DATA smallLanes<>+16(SB)/4, $4
DATA smallLanes<>+20(SB)/4, $5
DATA smallLanes<>+24(SB)/4, $6
DATA smallLanes<>+28(SB)/4, $7
GLOBL smallLanes<>(SB), RODATA|NOPTR, $32
