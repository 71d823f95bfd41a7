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

// QLOAD8 widens sixteen 8-bit codes at M to int32s in V and converts them
// to float32: zero-extended (uint8) or sign-extended (int8) as BX (signed)
// says; K1 masks the load in a tail (K0: all lanes).
#define QLOAD8(M, V, K) \
	TESTQ       BX, BX        \
	JNE         3(PC)         \
	VPMOVZXBD.Z M, K, V       \
	JMP         2(PC)         \
	VPMOVSXBD.Z M, K, V       \
	VCVTDQ2PS   V, V

// func qlAdd8AVX512(dst, x, y *byte, n, ystep, signed int, rx, ry, fixed, lo, hi float32)
// QLinearAdd as MLAS computes it: fma(x, rx, fma(y, ry, fixed)) in float32
// fused multiply-adds (one rounding each), rounded half to even and
// clamped to [lo, hi]. y advances by ystep (1, or 0: one value, replicated
// sixteen times at y).
TEXT ·qlAdd8AVX512(SB), NOSPLIT, $0-68
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVQ         ystep+32(FP), R9
	SHLQ         $4, R9
	MOVQ         signed+40(FP), BX
	VBROADCASTSS rx+48(FP), Z14
	VBROADCASTSS ry+52(FP), Z13
	VBROADCASTSS fixed+56(FP), Z12
	VBROADCASTSS lo+60(FP), Z10
	VBROADCASTSS hi+64(FP), Z11
	VXORPS       Z9, Z9, Z9
	KXNORW       K0, K0, K3
	MOVQ         CX, R8
	SHRQ         $4, CX
	JEQ          qla_tail

qla_loop:
	QLOAD8((SI), Z0, K3)
	QLOAD8((DX), Z1, K3)
	VMOVAPS     Z12, Z2
	VFMADD231PS Z13, Z1, Z2
	VFMADD231PS Z14, Z0, Z2
	QFINISH(Z2)
	VPMOVDB     Z2, (DI)
	ADDQ        $16, SI
	ADDQ        R9, DX
	ADDQ        $16, DI
	DECQ        CX
	JNE         qla_loop

qla_tail:
	ANDQ        $15, R8
	JEQ         qla_done
	QTAILMASK
	QLOAD8((SI), Z0, K1)
	QLOAD8((DX), Z1, K1)
	VMOVAPS     Z12, Z2
	VFMADD231PS Z13, Z1, Z2
	VFMADD231PS Z14, Z0, Z2
	QFINISH(Z2)
	VPMOVDB     Z2, K1, (DI)

qla_done:
	VZEROUPPER
	RET

// QINT8 widens sixteen 8-bit codes at M to int32s in V (as QLOAD8, without
// the conversion).
#define QINT8(M, V, K) \
	TESTQ       BX, BX  \
	JNE         3(PC)   \
	VPMOVZXBD.Z M, K, V \
	JMP         2(PC)   \
	VPMOVSXBD.Z M, K, V

// QMULSTEP is one step of qlMul8AVX512 under mask K, into Z2.
#define QMULSTEP(K) \
	QINT8((SI), Z0, K)      \
	QINT8((DX), Z1, K)      \
	VPSUBD      Z15, Z0, Z0 \
	VPSUBD      Z14, Z1, Z1 \
	VPMULLD     Z1, Z0, Z2  \
	VCVTDQ2PS   Z2, Z2      \
	VMULPS      Z13, Z2, Z2 \
	VADDPS      Z12, Z2, Z2 \
	QFINISH(Z2)

// func qlMul8AVX512(dst, x, y *byte, n, ystep, signed int, zx, zy int32, ratio, zc, lo, hi float32)
// QLinearMul as MLAS computes it: the exact integer product (x - zx) *
// (y - zy), converted to float32, times ratio, plus zc (each rounded to
// float32), rounded half to even and clamped to [lo, hi].
TEXT ·qlMul8AVX512(SB), NOSPLIT, $0-72
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVQ         ystep+32(FP), R9
	SHLQ         $4, R9
	MOVQ         signed+40(FP), BX
	MOVL         zx+48(FP), AX
	VPBROADCASTD AX, Z15
	MOVL         zy+52(FP), AX
	VPBROADCASTD AX, Z14
	VBROADCASTSS ratio+56(FP), Z13
	VBROADCASTSS zc+60(FP), Z12
	VBROADCASTSS lo+64(FP), Z10
	VBROADCASTSS hi+68(FP), Z11
	VXORPS       Z9, Z9, Z9
	KXNORW       K0, K0, K3
	MOVQ         CX, R8
	SHRQ         $4, CX
	JEQ          qlm_tail

qlm_loop:
	QMULSTEP(K3)
	VPMOVDB Z2, (DI)
	ADDQ    $16, SI
	ADDQ    R9, DX
	ADDQ    $16, DI
	DECQ    CX
	JNE     qlm_loop

qlm_tail:
	ANDQ    $15, R8
	JEQ     qlm_done
	QTAILMASK
	QMULSTEP(K1)
	VPMOVDB Z2, K1, (DI)

qlm_done:
	VZEROUPPER
	RET

// LOOKUP8 maps the 64 bytes of Z0 through the 256-byte table in Z4-Z7
// into Z1: VPERMI2B looks each up in the low and in the high 128 bytes
// by its low 7 bits, and its top bit picks one.
#define LOOKUP8 \
	VMOVDQA64 Z0, Z1      \
	VPERMI2B  Z5, Z4, Z1  \
	VMOVDQA64 Z0, Z2      \
	VPERMI2B  Z7, Z6, Z2  \
	VPMOVB2M  Z0, K1      \
	VMOVDQU8  Z2, K1, Z1

// func lookup8VBMI(dst, src *byte, n int, table *[256]byte)
// dst[i] = table[src[i]], 64 bytes a step; the last n%64 under a mask.
TEXT ·lookup8VBMI(SB), NOSPLIT, $0-32
	MOVQ     dst+0(FP), DI
	MOVQ     src+8(FP), SI
	MOVQ     n+16(FP), CX
	MOVQ     table+24(FP), DX
	VMOVDQU8 (DX), Z4
	VMOVDQU8 64(DX), Z5
	VMOVDQU8 128(DX), Z6
	VMOVDQU8 192(DX), Z7
	MOVQ     CX, R8
	SHRQ     $6, CX
	JEQ      lk_tail

lk_loop:
	VMOVDQU8 (SI), Z0
	LOOKUP8
	VMOVDQU8 Z1, (DI)
	ADDQ     $64, SI
	ADDQ     $64, DI
	DECQ     CX
	JNE      lk_loop

lk_tail:
	ANDQ       $63, R8
	JEQ        lk_done
	MOVQ       R8, CX
	MOVQ       $1, AX
	SHLQ       CX, AX
	DECQ       AX
	KMOVQ      AX, K2
	VMOVDQU8.Z (SI), K2, Z0
	LOOKUP8
	VMOVDQU8   Z1, K2, (DI)

lk_done:
	VZEROUPPER
	RET
