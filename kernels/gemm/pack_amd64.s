//go:build amd64 && !purego

#include "textflag.h"

// func packA12AVX(dst, src *float32, lds, groups int)
//
// Packs 12 rows of A (lds floats apart, from src) into the 12-row panel
// layout, 8 columns (k steps) a group: panel row p holds column p of the 12
// rows, 12 floats. Rows 0-7 are transposed in registers as 8x8 blocks
// (unpack pairs of rows, shuffle pairs of pairs, join lanes with
// VPERM2F128) and stored as floats 0-7 of 8 panel rows; rows 4-11 the same
// way into floats 4-11, rewriting 4-7 with the same values. groups is the
// number of 8-column groups.
TEXT ·packA12AVX(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R8
	SHLQ $2, R8
	MOVQ groups+24(FP), CX
	LEAQ (R8)(R8*2), R9

loop:
	TESTQ CX, CX
	JEQ   done
	MOVQ  SI, R11
	MOVQ  DI, R12
	MOVQ  $2, R13

half:
	VMOVUPS (R11), Y0
	VMOVUPS (R11)(R8*1), Y1
	VMOVUPS (R11)(R8*2), Y2
	VMOVUPS (R11)(R9*1), Y3
	LEAQ    (R11)(R8*4), R10
	VMOVUPS (R10), Y4
	VMOVUPS (R10)(R8*1), Y5
	VMOVUPS (R10)(R8*2), Y6
	VMOVUPS (R10)(R9*1), Y7

	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7

	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15

	// Panel rows are 48 bytes apart.
	VMOVUPS Y8, 0(R12)
	VMOVUPS Y9, 48(R12)
	VMOVUPS Y10, 96(R12)
	VMOVUPS Y11, 144(R12)
	VMOVUPS Y12, 192(R12)
	VMOVUPS Y13, 240(R12)
	VMOVUPS Y14, 288(R12)
	VMOVUPS Y15, 336(R12)

	// The second half: rows 4-11 into floats 4-11.
	LEAQ (R11)(R8*4), R11
	ADDQ $16, R12
	DECQ R13
	JNE  half

	ADDQ $32, SI
	ADDQ $384, DI
	DECQ CX
	JMP  loop

done:
	VZEROUPPER
	RET

// func packA6AVX(dst, src *float32, lds, groups int)
//
// packA12AVX for 6-row panels (the AVX2 kernel's): rows 0-3 transposed as
// 4x8 blocks into floats 0-3 of 8 panel rows (24 bytes apart), then rows
// 2-5 into floats 2-5, rewriting 2-3 with the same values. Each 4x8 block:
// unpack pairs of rows, shuffle pairs of pairs, and each register holds
// column j in its low lane and column j+4 in its high one.
TEXT ·packA6AVX(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R8
	SHLQ $2, R8
	MOVQ groups+24(FP), CX
	LEAQ (R8)(R8*2), R9

loop6:
	TESTQ CX, CX
	JEQ   done6
	MOVQ  SI, R11
	MOVQ  DI, R12
	MOVQ  $2, R13

half6:
	VMOVUPS (R11), Y0
	VMOVUPS (R11)(R8*1), Y1
	VMOVUPS (R11)(R8*2), Y2
	VMOVUPS (R11)(R9*1), Y3

	VUNPCKLPS Y1, Y0, Y4
	VUNPCKHPS Y1, Y0, Y5
	VUNPCKLPS Y3, Y2, Y6
	VUNPCKHPS Y3, Y2, Y7

	VSHUFPS $0x44, Y6, Y4, Y0
	VSHUFPS $0xEE, Y6, Y4, Y1
	VSHUFPS $0x44, Y7, Y5, Y2
	VSHUFPS $0xEE, Y7, Y5, Y3

	VMOVUPS X0, 0(R12)
	VMOVUPS X1, 24(R12)
	VMOVUPS X2, 48(R12)
	VMOVUPS X3, 72(R12)
	VEXTRACTF128 $1, Y0, X4
	VEXTRACTF128 $1, Y1, X5
	VEXTRACTF128 $1, Y2, X6
	VEXTRACTF128 $1, Y3, X7
	VMOVUPS X4, 96(R12)
	VMOVUPS X5, 120(R12)
	VMOVUPS X6, 144(R12)
	VMOVUPS X7, 168(R12)

	// The second block: rows 2-5 into floats 2-5.
	LEAQ (R11)(R8*2), R11
	ADDQ $8, R12
	DECQ R13
	JNE  half6

	ADDQ $32, SI
	ADDQ $192, DI
	DECQ CX
	JMP  loop6

done6:
	VZEROUPPER
	RET
