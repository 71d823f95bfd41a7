//go:build amd64 && !purego

#include "textflag.h"

// TAILMASKS sets the lane masks of a last partial step of R8 (1..15)
// elements: K1 over sixteen floats, K2 and K3 over the two halves of the
// int64s (eight lanes each). AX and CX are clobbered.
#define TAILMASKS \
	MOVQ  R8, CX  \
	MOVL  $1, AX  \
	SHLL  CX, AX  \
	DECL  AX      \
	KMOVW AX, K1  \
	KMOVW AX, K2  \
	SHRL  $8, AX  \
	KMOVW AX, K3

// func f32ToI64AVX512(dst *int64, src *float32, n int)
// Sixteen floats a step into two vectors of eight int64; the last n%16
// load and store under lane masks (K1 over the floats, K2/K3 over the
// halves of the int64s), so no scalar tail and nothing read past n.
TEXT ·f32ToI64AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ CX, R8
	SHRQ $4, CX
	JEQ  f2i_tail

f2i_loop:
	VCVTTPS2QQ (SI), Z0
	VCVTTPS2QQ 32(SI), Z1
	VMOVDQU64  Z0, (DI)
	VMOVDQU64  Z1, 64(DI)
	ADDQ       $64, SI
	ADDQ       $128, DI
	DECQ       CX
	JNE        f2i_loop

f2i_tail:
	ANDQ $15, R8
	JEQ  f2i_done
	TAILMASKS
	VMOVUPS.Z     (SI), K1, Z2
	VCVTTPS2QQ    Y2, Z0
	VEXTRACTF64X4 $1, Z2, Y3
	VCVTTPS2QQ    Y3, Z1
	VMOVDQU64     Z0, K2, (DI)
	VMOVDQU64     Z1, K3, 64(DI)

f2i_done:
	VZEROUPPER
	RET

// func i64ToF32AVX512(dst *float32, src *int64, n int)
// Sixteen int64s a step (two vectors) into sixteen floats; the last n%16 as
// in f32ToI64AVX512.
TEXT ·i64ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ CX, R8
	SHRQ $4, CX
	JEQ  i2f_tail

i2f_loop:
	VCVTQQ2PS (SI), Y0
	VCVTQQ2PS 64(SI), Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ      $128, SI
	ADDQ      $64, DI
	DECQ      CX
	JNE       i2f_loop

i2f_tail:
	ANDQ $15, R8
	JEQ  i2f_done
	TAILMASKS
	VMOVDQU64.Z    (SI), K2, Z0
	VMOVDQU64.Z    64(SI), K3, Z1
	VCVTQQ2PS      Z0, Y0
	VCVTQQ2PS      Z1, Y1
	VINSERTF64X4   $1, Y1, Z0, Z0
	VMOVUPS        Z0, K1, (DI)

i2f_done:
	VZEROUPPER
	RET

// func i32ToF32AVX512(dst *float32, src *int32, n int)
// Thirty-two int32s a step (two vectors) into floats, VCVTDQ2PS rounding
// to nearest even as Go's conversion does; the last n%16 under a mask.
TEXT ·i32ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ CX, R8
	SHRQ $5, CX
	JEQ  d2f_sixteen

d2f_loop:
	VCVTDQ2PS (SI), Z0
	VCVTDQ2PS 64(SI), Z1
	VMOVUPS   Z0, (DI)
	VMOVUPS   Z1, 64(DI)
	ADDQ      $128, SI
	ADDQ      $128, DI
	DECQ      CX
	JNE       d2f_loop

d2f_sixteen:
	TESTQ $16, R8
	JEQ   d2f_tail
	VCVTDQ2PS (SI), Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DI

d2f_tail:
	ANDQ $15, R8
	JEQ  d2f_done
	TAILMASKS
	VMOVDQU32.Z (SI), K1, Z0
	VCVTDQ2PS   Z0, Z0
	VMOVUPS     Z0, K1, (DI)

d2f_done:
	VZEROUPPER
	RET

// func f32ToI32AVX512(dst *int32, src *float32, n int)
// Thirty-two floats a step into int32s, VCVTTPS2DQ truncating toward zero
// as Go's conversion does on amd64 (0x80000000 for NaN and out of range);
// the last n%16 under a mask.
TEXT ·f32ToI32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ CX, R8
	SHRQ $5, CX
	JEQ  f2d_sixteen

f2d_loop:
	VCVTTPS2DQ (SI), Z0
	VCVTTPS2DQ 64(SI), Z1
	VMOVDQU32  Z0, (DI)
	VMOVDQU32  Z1, 64(DI)
	ADDQ       $128, SI
	ADDQ       $128, DI
	DECQ       CX
	JNE        f2d_loop

f2d_sixteen:
	TESTQ $16, R8
	JEQ   f2d_tail
	VCVTTPS2DQ (SI), Z0
	VMOVDQU32  Z0, (DI)
	ADDQ       $64, SI
	ADDQ       $64, DI

f2d_tail:
	ANDQ $15, R8
	JEQ  f2d_done
	TAILMASKS
	VMOVUPS.Z  (SI), K1, Z0
	VCVTTPS2DQ Z0, Z0
	VMOVDQU32  Z0, K1, (DI)

f2d_done:
	VZEROUPPER
	RET
