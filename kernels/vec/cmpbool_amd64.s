//go:build amd64 && !purego

#include "textflag.h"

// CMPLOOP(pred, label): 32 floats a step compared with Y8 under the VCMPPS
// predicate pred into four masks of all-ones or zeros, packed to 32 bytes
// (the packs work within 128-bit lanes, so a permute puts the bytes back in
// order) and masked to 0 or 1, Go's bools.
#define CMPLOOP(pred, label) \
label:                                 \
	VMOVUPS     (SI), Y0                \
	VMOVUPS     32(SI), Y1              \
	VMOVUPS     64(SI), Y2              \
	VMOVUPS     96(SI), Y3              \
	VCMPPS      pred, Y8, Y0, Y0        \
	VCMPPS      pred, Y8, Y1, Y1        \
	VCMPPS      pred, Y8, Y2, Y2        \
	VCMPPS      pred, Y8, Y3, Y3        \
	VPACKSSDW   Y1, Y0, Y0              \
	VPACKSSDW   Y3, Y2, Y2              \
	VPACKSSWB   Y2, Y0, Y0              \
	VPERMD      Y0, Y9, Y0              \
	VPAND       Y10, Y0, Y0             \
	VMOVDQU     Y0, (DI)                \
	ADDQ        $128, SI                \
	ADDQ        $32, DI                 \
	DECQ        CX                      \
	JNE         label                   \
	JMP         done

// func cmpScalarAVX2(op int, o *bool, a *float32, n int, v float32)
// o[i] = a[i] op v for n a multiple of 32; op as vec.Cmp*: Equal EQ_OQ,
// Less LT_OQ, Greater GT_OQ, LessOrEqual LE_OQ, GreaterOrEqual GE_OQ
// (false for NaN, as Go's operators).
TEXT ·cmpScalarAVX2(SB), NOSPLIT, $0-36
	MOVQ         op+0(FP), AX
	MOVQ         o+8(FP), DI
	MOVQ         a+16(FP), SI
	MOVQ         n+24(FP), CX
	VBROADCASTSS v+32(FP), Y8
	VMOVDQU      packOrder<>(SB), Y9
	VPBROADCASTB ones<>(SB), Y10
	SHRQ         $5, CX
	JEQ          done
	CMPQ         AX, $0
	JEQ          eq
	CMPQ         AX, $1
	JEQ          lt
	CMPQ         AX, $2
	JEQ          gt
	CMPQ         AX, $3
	JEQ          le
	JMP          ge

CMPLOOP($0x00, eq)
CMPLOOP($0x11, lt)
CMPLOOP($0x1e, gt)
CMPLOOP($0x12, le)
CMPLOOP($0x1d, ge)

done:
	VZEROUPPER
	RET

// func boolToF32AVX2(dst *float32, b *bool, n int)
// Eight bools a step, zero-extended to int32 (masked to their low bit, as
// the Go loop) and converted; n a multiple of 8.
TEXT ·boolToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         b+8(FP), SI
	MOVQ         n+16(FP), CX
	VPBROADCASTD ones32<>(SB), Y10
	SHRQ         $3, CX
	JEQ          b2f_done

b2f_loop:
	VPMOVZXBD (SI), Y0
	VPAND     Y10, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $8, SI
	ADDQ      $32, DI
	DECQ      CX
	JNE       b2f_loop

b2f_done:
	VZEROUPPER
	RET

// After the packs, the 32 bytes lie in dwords 0,4,1,5,2,6,3,7 order.
DATA packOrder<>+0(SB)/4, $0
DATA packOrder<>+4(SB)/4, $4
DATA packOrder<>+8(SB)/4, $1
DATA packOrder<>+12(SB)/4, $5
DATA packOrder<>+16(SB)/4, $2
DATA packOrder<>+20(SB)/4, $6
DATA packOrder<>+24(SB)/4, $3
DATA packOrder<>+28(SB)/4, $7
GLOBL packOrder<>(SB), RODATA|NOPTR, $32
DATA ones<>+0(SB)/1, $1
GLOBL ones<>(SB), RODATA|NOPTR, $1
DATA ones32<>+0(SB)/4, $1
GLOBL ones32<>(SB), RODATA|NOPTR, $4
