//go:build amd64 && !purego

#include "textflag.h"

// TRANSPOSE8 transposes the 8x8 floats in Y0-Y7 (row i in Yi) into Y8-Y15
// (column j in Y8+j): pairs interleaved, then 4-float groups, then the
// 128-bit halves.
#define TRANSPOSE8 \
	VUNPCKLPS Y1, Y0, Y8; \
	VUNPCKHPS Y1, Y0, Y9; \
	VUNPCKLPS Y3, Y2, Y10; \
	VUNPCKHPS Y3, Y2, Y11; \
	VUNPCKLPS Y5, Y4, Y12; \
	VUNPCKHPS Y5, Y4, Y13; \
	VUNPCKLPS Y7, Y6, Y14; \
	VUNPCKHPS Y7, Y6, Y15; \
	VSHUFPS $0x44, Y10, Y8, Y0; \
	VSHUFPS $0xEE, Y10, Y8, Y1; \
	VSHUFPS $0x44, Y11, Y9, Y2; \
	VSHUFPS $0xEE, Y11, Y9, Y3; \
	VSHUFPS $0x44, Y14, Y12, Y4; \
	VSHUFPS $0xEE, Y14, Y12, Y5; \
	VSHUFPS $0x44, Y15, Y13, Y6; \
	VSHUFPS $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// func interleave8AVX2(dst *float32, pos *int, src *float32, chans *[8]int, n int)
// n >= 8. R8-R15 point at the 8 planes; each group of 8 positions (the last
// one ending at n) is 8 loads, a transpose, and 8 stores at the positions'
// places in dst.
TEXT ·interleave8AVX2(SB), NOSPLIT, $0-40
	MOVQ src+16(FP), AX
	MOVQ chans+24(FP), BX
	MOVQ 0(BX), R8
	LEAQ (AX)(R8*4), R8
	MOVQ 8(BX), R9
	LEAQ (AX)(R9*4), R9
	MOVQ 16(BX), R10
	LEAQ (AX)(R10*4), R10
	MOVQ 24(BX), R11
	LEAQ (AX)(R11*4), R11
	MOVQ 32(BX), R12
	LEAQ (AX)(R12*4), R12
	MOVQ 40(BX), R13
	LEAQ (AX)(R13*4), R13
	MOVQ 48(BX), R14
	LEAQ (AX)(R14*4), R14
	MOVQ 56(BX), R15
	LEAQ (AX)(R15*4), R15
	MOVQ dst+0(FP), DI
	MOVQ pos+8(FP), SI
	MOVQ n+32(FP), CX
	XORQ DX, DX

ilgroup:
	LEAQ -8(CX), AX
	CMPQ DX, AX
	JLE  ilload
	MOVQ AX, DX

ilload:
	VMOVUPS (R8)(DX*4), Y0
	VMOVUPS (R9)(DX*4), Y1
	VMOVUPS (R10)(DX*4), Y2
	VMOVUPS (R11)(DX*4), Y3
	VMOVUPS (R12)(DX*4), Y4
	VMOVUPS (R13)(DX*4), Y5
	VMOVUPS (R14)(DX*4), Y6
	VMOVUPS (R15)(DX*4), Y7
	TRANSPOSE8
	MOVQ 0(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y8, (DI)(AX*1)
	MOVQ 8(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y9, (DI)(AX*1)
	MOVQ 16(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y10, (DI)(AX*1)
	MOVQ 24(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y11, (DI)(AX*1)
	MOVQ 32(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y12, (DI)(AX*1)
	MOVQ 40(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y13, (DI)(AX*1)
	MOVQ 48(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y14, (DI)(AX*1)
	MOVQ 56(SI)(DX*8), AX
	SHLQ $5, AX
	VMOVUPS Y15, (DI)(AX*1)
	ADDQ $8, DX
	CMPQ DX, CX
	JLT  ilgroup
	VZEROUPPER
	RET

// func tapsC8AVX2(dst *float32, stride int, src *float32, base, offs *int, w *float32, taps int, bias *float32, ep *Epilogue8, n, nch int)
// n >= 8, taps >= 1, 1 <= nch <= 8. Each group of 8 output positions (the
// last one ending at n) keeps its 8 sums in Y0-Y7, R8-R15 pointing at the
// positions' first taps; every tap loads its 8 weights into Y8 and adds
// weight times input into each sum, multiply and add rounded separately
// with tapRowsAVX2's operand order. The epilogue follows (EPI's operand
// order, one lane vector at a time in Y8), then the transpose, and channel
// l's 8 outputs are one store at dst + l*stride.
TEXT ·tapsC8AVX2(SB), NOSPLIT, $0-88
	XORQ DX, DX

tcgroup:
	MOVQ n+72(FP), AX
	SUBQ $8, AX
	CMPQ DX, AX
	JLE  tcstart
	MOVQ AX, DX

tcstart:
	MOVQ base+24(FP), BX
	MOVQ src+16(FP), AX
	MOVQ 0(BX)(DX*8), R8
	SHLQ $5, R8
	ADDQ AX, R8
	MOVQ 8(BX)(DX*8), R9
	SHLQ $5, R9
	ADDQ AX, R9
	MOVQ 16(BX)(DX*8), R10
	SHLQ $5, R10
	ADDQ AX, R10
	MOVQ 24(BX)(DX*8), R11
	SHLQ $5, R11
	ADDQ AX, R11
	MOVQ 32(BX)(DX*8), R12
	SHLQ $5, R12
	ADDQ AX, R12
	MOVQ 40(BX)(DX*8), R13
	SHLQ $5, R13
	ADDQ AX, R13
	MOVQ 48(BX)(DX*8), R14
	SHLQ $5, R14
	ADDQ AX, R14
	MOVQ 56(BX)(DX*8), R15
	SHLQ $5, R15
	ADDQ AX, R15
	MOVQ bias+56(FP), BX
	VMOVUPS (BX), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3
	VMOVAPS Y0, Y4
	VMOVAPS Y0, Y5
	VMOVAPS Y0, Y6
	VMOVAPS Y0, Y7
	MOVQ offs+32(FP), SI
	MOVQ w+40(FP), DI
	MOVQ taps+48(FP), CX

tctap:
	MOVQ    (SI), AX
	SHLQ    $5, AX
	VMOVUPS (DI), Y8
	VMULPS  (R8)(AX*1), Y8, Y9
	VADDPS  Y9, Y0, Y0
	VMULPS  (R9)(AX*1), Y8, Y10
	VADDPS  Y10, Y1, Y1
	VMULPS  (R10)(AX*1), Y8, Y11
	VADDPS  Y11, Y2, Y2
	VMULPS  (R11)(AX*1), Y8, Y12
	VADDPS  Y12, Y3, Y3
	VMULPS  (R12)(AX*1), Y8, Y13
	VADDPS  Y13, Y4, Y4
	VMULPS  (R13)(AX*1), Y8, Y14
	VADDPS  Y14, Y5, Y5
	VMULPS  (R14)(AX*1), Y8, Y15
	VADDPS  Y15, Y6, Y6
	VMULPS  (R15)(AX*1), Y8, Y9
	VADDPS  Y9, Y7, Y7
	ADDQ    $8, SI
	ADDQ    $32, DI
	DECQ    CX
	JNE     tctap
	MOVQ    ep+64(FP), BX
	VMOVUPS 0(BX), Y8
	VMULPS  Y0, Y8, Y0
	VMULPS  Y1, Y8, Y1
	VMULPS  Y2, Y8, Y2
	VMULPS  Y3, Y8, Y3
	VMULPS  Y4, Y8, Y4
	VMULPS  Y5, Y8, Y5
	VMULPS  Y6, Y8, Y6
	VMULPS  Y7, Y8, Y7
	VMOVUPS 32(BX), Y8
	VADDPS  Y8, Y0, Y0
	VADDPS  Y8, Y1, Y1
	VADDPS  Y8, Y2, Y2
	VADDPS  Y8, Y3, Y3
	VADDPS  Y8, Y4, Y4
	VADDPS  Y8, Y5, Y5
	VADDPS  Y8, Y6, Y6
	VADDPS  Y8, Y7, Y7
	VMOVUPS 64(BX), Y8
	VMAXPS  Y0, Y8, Y0
	VMAXPS  Y1, Y8, Y1
	VMAXPS  Y2, Y8, Y2
	VMAXPS  Y3, Y8, Y3
	VMAXPS  Y4, Y8, Y4
	VMAXPS  Y5, Y8, Y5
	VMAXPS  Y6, Y8, Y6
	VMAXPS  Y7, Y8, Y7
	VMOVUPS 96(BX), Y8
	VMINPS  Y0, Y8, Y0
	VMINPS  Y1, Y8, Y1
	VMINPS  Y2, Y8, Y2
	VMINPS  Y3, Y8, Y3
	VMINPS  Y4, Y8, Y4
	VMINPS  Y5, Y8, Y5
	VMINPS  Y6, Y8, Y6
	VMINPS  Y7, Y8, Y7
	TRANSPOSE8
	MOVQ dst+0(FP), BX
	LEAQ (BX)(DX*4), BX
	MOVQ stride+8(FP), AX
	SHLQ $2, AX
	MOVQ nch+80(FP), CX
	VMOVUPS Y8, (BX)
	CMPQ CX, $1
	JEQ  tcnext
	ADDQ AX, BX
	VMOVUPS Y9, (BX)
	CMPQ CX, $2
	JEQ  tcnext
	ADDQ AX, BX
	VMOVUPS Y10, (BX)
	CMPQ CX, $3
	JEQ  tcnext
	ADDQ AX, BX
	VMOVUPS Y11, (BX)
	CMPQ CX, $4
	JEQ  tcnext
	ADDQ AX, BX
	VMOVUPS Y12, (BX)
	CMPQ CX, $5
	JEQ  tcnext
	ADDQ AX, BX
	VMOVUPS Y13, (BX)
	CMPQ CX, $6
	JEQ  tcnext
	ADDQ AX, BX
	VMOVUPS Y14, (BX)
	CMPQ CX, $7
	JEQ  tcnext
	ADDQ AX, BX
	VMOVUPS Y15, (BX)

tcnext:
	ADDQ $8, DX
	CMPQ DX, n+72(FP)
	JLT  tcgroup
	VZEROUPPER
	RET
