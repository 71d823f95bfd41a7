//go:build amd64 && !purego

#include "textflag.h"

// QFINISH takes sixteen float32s in V from a quantization's product (x / s,
// or acc * multiplier) to int32 codes: round half to even (VRNDSCALEPS 0),
// add the zero point Z9, clamp to [Z10, Z11], and give 0 where the product
// was NaN (the ordered compare into K2, before the clamp hides it).
#define QFINISH(V) \
	VCMPPS      $7, V, V, K2 \
	VRNDSCALEPS $0, V, V     \
	VADDPS      Z9, V, V     \
	VMAXPS      Z10, V, V    \
	VMINPS      Z11, V, V    \
	VCVTPS2DQ.Z V, K2, V

// QTAILMASK sets K1 over the first R8 (1..15) of sixteen lanes; AX and CX
// are clobbered.
#define QTAILMASK \
	MOVQ  R8, CX \
	MOVL  $1, AX \
	SHLL  CX, AX \
	DECL  AX     \
	KMOVW AX, K1

// func quant8AVX512(dst *byte, a *float32, n int, s, zp, lo, hi float32)
// QuantizeLinear into 8-bit codes: thirty-two floats a step, each divided
// by s (a division, as the operator is defined), finished by QFINISH and
// stored as bytes (VPMOVDB: the codes are within [lo, hi], so the low byte
// is the code for uint8 and int8 alike); the last n%16 under a mask.
TEXT ·quant8AVX512(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         a+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS s+24(FP), Z8
	VBROADCASTSS zp+28(FP), Z9
	VBROADCASTSS lo+32(FP), Z10
	VBROADCASTSS hi+36(FP), Z11
	MOVQ         CX, R8
	SHRQ         $5, CX
	JEQ          q8_sixteen

q8_loop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VDIVPS  Z8, Z0, Z0
	VDIVPS  Z8, Z1, Z1
	QFINISH(Z0)
	QFINISH(Z1)
	VPMOVDB Z0, (DI)
	VPMOVDB Z1, 16(DI)
	ADDQ    $128, SI
	ADDQ    $32, DI
	DECQ    CX
	JNE     q8_loop

q8_sixteen:
	TESTQ   $16, R8
	JEQ     q8_tail
	VMOVUPS (SI), Z0
	VDIVPS  Z8, Z0, Z0
	QFINISH(Z0)
	VPMOVDB Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $16, DI

q8_tail:
	ANDQ      $15, R8
	JEQ       q8_done
	QTAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VDIVPS    Z8, Z0, Z0
	QFINISH(Z0)
	VPMOVDB   Z0, K1, (DI)

q8_done:
	VZEROUPPER
	RET

// func requant8AVX512(dst *byte, acc *int32, n int, mult *float32, mstep int, zp, lo, hi float32)
// Requantization of int32 accumulators into 8-bit codes: each converted
// to float32 (VCVTDQ2PS, nearest even), times its multiplier, finished by
// QFINISH. mstep is 0 (one multiplier, mult[0], for all) or 1 (mult[i]
// for element i).
TEXT ·requant8AVX512(SB), NOSPLIT, $0-52
	MOVQ         dst+0(FP), DI
	MOVQ         acc+8(FP), SI
	MOVQ         n+16(FP), CX
	MOVQ         mult+24(FP), DX
	MOVQ         mstep+32(FP), BX
	VBROADCASTSS zp+40(FP), Z9
	VBROADCASTSS lo+44(FP), Z10
	VBROADCASTSS hi+48(FP), Z11
	MOVQ         CX, R8
	SHRQ         $4, CX
	TESTQ        BX, BX
	JNE          rq_each
	VBROADCASTSS (DX), Z8
	TESTQ        CX, CX
	JEQ          rq_one_tail

rq_one_loop:
	VCVTDQ2PS (SI), Z0
	VMULPS    Z8, Z0, Z0
	QFINISH(Z0)
	VPMOVDB   Z0, (DI)
	ADDQ      $64, SI
	ADDQ      $16, DI
	DECQ      CX
	JNE       rq_one_loop

rq_one_tail:
	ANDQ        $15, R8
	JEQ         rq_done
	QTAILMASK
	VMOVDQU32.Z (SI), K1, Z0
	VCVTDQ2PS   Z0, Z0
	VMULPS      Z8, Z0, Z0
	QFINISH(Z0)
	VPMOVDB     Z0, K1, (DI)
	JMP         rq_done

rq_each:
	TESTQ CX, CX
	JEQ   rq_each_tail

rq_each_loop:
	VCVTDQ2PS (SI), Z0
	VMULPS    (DX), Z0, Z0
	QFINISH(Z0)
	VPMOVDB   Z0, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $16, DI
	DECQ      CX
	JNE       rq_each_loop

rq_each_tail:
	ANDQ        $15, R8
	JEQ         rq_done
	QTAILMASK
	VMOVDQU32.Z (SI), K1, Z0
	VMOVUPS.Z   (DX), K1, Z1
	VCVTDQ2PS   Z0, Z0
	VMULPS      Z1, Z0, Z0
	QFINISH(Z0)
	VPMOVDB     Z0, K1, (DI)

rq_done:
	VZEROUPPER
	RET

// func requantF8AVX512(dst *byte, src *float32, n int, add, mult, zp, lo, hi float32)
// Requant8 of sums held as float32 integers: (src[i] + add) * mult, finished
// by QFINISH.
TEXT ·requantF8AVX512(SB), NOSPLIT, $0-44
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS add+24(FP), Z7
	VBROADCASTSS mult+28(FP), Z8
	VBROADCASTSS zp+32(FP), Z9
	VBROADCASTSS lo+36(FP), Z10
	VBROADCASTSS hi+40(FP), Z11
	MOVQ         CX, R8
	SHRQ         $4, CX
	JEQ          rqf_tail

rqf_loop:
	VADDPS  (SI), Z7, Z0
	VMULPS  Z8, Z0, Z0
	QFINISH(Z0)
	VPMOVDB Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $16, DI
	DECQ    CX
	JNE     rqf_loop

rqf_tail:
	ANDQ      $15, R8
	JEQ       rqf_done
	QTAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VADDPS    Z7, Z0, Z0
	VMULPS    Z8, Z0, Z0
	QFINISH(Z0)
	VPMOVDB   Z0, K1, (DI)

rqf_done:
	VZEROUPPER
	RET
