//go:build amd64 && !purego

#include "textflag.h"

// PICKMAX(a, b, r) sets r to math.Max(a, b) (PICKMIN: math.Min) lane by lane, with
// Y8 the canonical NaN and Y12 +Inf (-Inf for the minimum): VMAXPS (VMINPS)
// gives b where either is NaN or both are zeros; equal values take a AND b
// (+0 over -0) for the maximum, a OR b for the minimum; unordered ones the
// NaN, unless either is Y12, which math.Max (math.Min) returns over a NaN.
// Y9-Y11 and Y13 are clobbered.
//
// The caller branches on isMax to one of two copies of its loop, so each
// copy's PICK is straight-line.
#define PICK(pick, ties, a, b, r) \
	pick       b, a, Y9    \
	VCMPPS     $0, b, a, Y10 \
	ties       b, a, Y11   \
	VBLENDVPS  Y10, Y11, Y9, Y9 \
	VCMPPS     $3, b, a, Y10 \
	VBLENDVPS  Y10, Y8, Y9, Y9 \
	VCMPPS     $0, Y12, a, Y11 \
	VCMPPS     $0, Y12, b, Y13 \
	VORPS      Y13, Y11, Y11 \
	VBLENDVPS  Y11, Y12, Y9, r

#define PICKMAX(a, b, r) PICK(VMAXPS, VANDPS, a, b, r)
#define PICKMIN(a, b, r) PICK(VMINPS, VORPS, a, b, r)

// func extremeIntoAVX2(dst, x *float32, n int, isMax bool)
// dst[i] = PICK(dst[i], x[i]) for n (a multiple of 8).
TEXT ·extremeIntoAVX2(SB), NOSPLIT, $0-25
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	MOVBLZX      isMax+24(FP), R9
	SHRQ         $3, CX
	JEQ          into_done
	VBROADCASTSS canonNaN<>(SB), Y8
	VBROADCASTSS posInf<>(SB), Y12
	TESTQ        R9, R9
	JNE          into_max
	VBROADCASTSS negInf<>(SB), Y12
	JMP          into_min

into_max:
	VMOVUPS (DI), Y0
	VMOVUPS (SI), Y1
	PICKMAX(Y0, Y1, Y2)
	VMOVUPS Y2, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	DECQ    CX
	JNE     into_max
	JMP     into_done

into_min:
	VMOVUPS (DI), Y0
	VMOVUPS (SI), Y1
	PICKMIN(Y0, Y1, Y2)
	VMOVUPS Y2, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	DECQ    CX
	JNE     into_min

into_done:
	VZEROUPPER
	RET

// func extremeFoldAVX2(lanes *[8]float32, x *float32, n int, isMax bool)
// lanes = PICK(lanes, each 8-float group of x[0:n]), n a multiple of 8.
TEXT ·extremeFoldAVX2(SB), NOSPLIT, $0-25
	MOVQ         lanes+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	MOVBLZX      isMax+24(FP), R9
	SHRQ         $3, CX
	JEQ          fold_done
	VBROADCASTSS canonNaN<>(SB), Y8
	VMOVUPS      (DI), Y0
	VBROADCASTSS posInf<>(SB), Y12
	TESTQ        R9, R9
	JNE          fold_max
	VBROADCASTSS negInf<>(SB), Y12
	JMP          fold_min

fold_max:
	VMOVUPS (SI), Y1
	PICKMAX(Y0, Y1, Y0)
	ADDQ    $32, SI
	DECQ    CX
	JNE     fold_max
	JMP     fold_store

fold_min:
	VMOVUPS (SI), Y1
	PICKMIN(Y0, Y1, Y0)
	ADDQ    $32, SI
	DECQ    CX
	JNE     fold_min

fold_store:
	VMOVUPS Y0, (DI)

fold_done:
	VZEROUPPER
	RET

DATA canonNaN<>+0(SB)/4, $0x7fc00000
GLOBL canonNaN<>(SB), RODATA|NOPTR, $4
DATA posInf<>+0(SB)/4, $0x7f800000
GLOBL posInf<>(SB), RODATA|NOPTR, $4
DATA negInf<>+0(SB)/4, $0xff800000
GLOBL negInf<>(SB), RODATA|NOPTR, $4
