//go:build amd64 && !purego

#include "textflag.h"

// tapRowsAVX512 is tapRowsAVX2 on 16-float vectors: the same products and
// sums per output (multiply, then add, taps in order), so the same bits. It
// needs cols >= 16 (TapRows keeps narrower maps on AVX2), so every group of
// columns, the last one overlapping the one before, lies within the row.
// Column stride 2 takes the even floats of two vectors with one VPERMT2PS,
// in column order: no unshuffle at the end.

// EPI5 is tapRowsAVX2's EPI on Z registers (Z14 mul, Z13 add, Z12 lo, Z11 hi).
#define EPI5(r) \
	VMULPS r, Z14, r; \
	VADDPS Z13, r, r; \
	VMAXPS r, Z12, r; \
	VMINPS r, Z11, r

// MA5 adds the tap weight in Z8 times the 16 floats at addr to acc (t scratch).
#define MA5(addr, acc, t) \
	VMULPS addr, Z8, t; \
	VADDPS t, acc, acc

// MS5 is MA5 for column stride 2: the 16 floats at a, a+2, ..., a+30 (a's
// even floats, then those of the next 16), gathered by Z16's indices.
#define MS5(a, b, acc, t) \
	VMOVUPS   a, t; \
	VPERMT2PS b, Z16, t; \
	VMULPS    t, Z8, t; \
	VADDPS    t, acc, acc

// TAP5 loads tap BX: DI = SI + offs[BX]*4 (the tap's first row), AX = DI +
// 2*DX (its third row), Z8 = w[BX].
#define TAP5 \
	MOVQ         (R9)(BX*8), AX; \
	LEAQ         (SI)(AX*4), DI; \
	LEAQ         (DI)(DX*2), AX; \
	VBROADCASTSS (R10)(BX*4), Z8

// func tapRowsAVX512(dst, src *float32, offs *int, w *float32, taps, rows, cols, srcRow, sx int, bias float32, ep *Epilogue)
// rows, taps >= 1, cols >= 16, sx is 1 or 2. From 4 rows up, rows go in
// groups of 4 (the last group overlapping the one before) and columns in
// pairs of 16-column groups, then one group, then one group that ends at
// the row's last column; fewer rows go one at a time, in groups of 64
// columns, then 16.
TEXT ·tapRowsAVX512(SB), NOSPLIT, $0-88
	MOVQ         dst+0(FP), R8
	MOVQ         src+8(FP), R13
	MOVQ         offs+16(FP), R9
	MOVQ         w+24(FP), R10
	MOVQ         taps+32(FP), R11
	MOVQ         cols+48(FP), R12
	MOVQ         srcRow+56(FP), DX
	SHLQ         $2, DX
	VBROADCASTSS bias+72(FP), Z15
	MOVQ         ep+80(FP), AX
	VBROADCASTSS 0(AX), Z14
	VBROADCASTSS 4(AX), Z13
	VBROADCASTSS 8(AX), Z12
	VBROADCASTSS 12(AX), Z11
	VMOVUPS      evenIdx16<>(SB), Z16
	CMPQ         rows+40(FP), $4
	JLT          rows1

grp:
	XORQ CX, CX

pair:
	LEAQ    32(CX), AX
	CMPQ    AX, R12
	JGT     sing
	VMOVAPS Z15, Z0
	VMOVAPS Z15, Z1
	VMOVAPS Z15, Z2
	VMOVAPS Z15, Z3
	VMOVAPS Z15, Z4
	VMOVAPS Z15, Z5
	VMOVAPS Z15, Z6
	VMOVAPS Z15, Z7
	XORQ    BX, BX
	CMPQ    sx+64(FP), $2
	JEQ     pair2s
	LEAQ    (R13)(CX*4), SI

tpair1:
	TAP5
	MA5((DI), Z0, Z9)
	MA5(64(DI), Z1, Z10)
	MA5((DI)(DX*1), Z2, Z9)
	MA5(64(DI)(DX*1), Z3, Z10)
	MA5((AX), Z4, Z9)
	MA5(64(AX), Z5, Z10)
	MA5((AX)(DX*1), Z6, Z9)
	MA5(64(AX)(DX*1), Z7, Z10)
	INCQ BX
	CMPQ BX, R11
	JNE  tpair1
	JMP  store8

pair2s:
	LEAQ (R13)(CX*8), SI

tpair2:
	TAP5
	MS5((DI), 64(DI), Z0, Z9)
	MS5(128(DI), 192(DI), Z1, Z10)
	MS5((DI)(DX*1), 64(DI)(DX*1), Z2, Z9)
	MS5(128(DI)(DX*1), 192(DI)(DX*1), Z3, Z10)
	MS5((AX), 64(AX), Z4, Z9)
	MS5(128(AX), 192(AX), Z5, Z10)
	MS5((AX)(DX*1), 64(AX)(DX*1), Z6, Z9)
	MS5(128(AX)(DX*1), 192(AX)(DX*1), Z7, Z10)
	INCQ BX
	CMPQ BX, R11
	JNE  tpair2
	JMP  store8

sing:
	LEAQ 16(CX), AX
	CMPQ AX, R12
	JGT  gtail

gone:
	VMOVAPS Z15, Z0
	VMOVAPS Z15, Z2
	VMOVAPS Z15, Z4
	VMOVAPS Z15, Z6
	XORQ    BX, BX
	CMPQ    sx+64(FP), $2
	JEQ     gone2s
	LEAQ    (R13)(CX*4), SI

tone1:
	TAP5
	MA5((DI), Z0, Z9)
	MA5((DI)(DX*1), Z2, Z10)
	MA5((AX), Z4, Z9)
	MA5((AX)(DX*1), Z6, Z10)
	INCQ BX
	CMPQ BX, R11
	JNE  tone1
	JMP  store4

gone2s:
	LEAQ (R13)(CX*8), SI

tone2:
	TAP5
	MS5((DI), 64(DI), Z0, Z9)
	MS5((DI)(DX*1), 64(DI)(DX*1), Z2, Z10)
	MS5((AX), 64(AX), Z4, Z9)
	MS5((AX)(DX*1), 64(AX)(DX*1), Z6, Z10)
	INCQ BX
	CMPQ BX, R11
	JNE  tone2
	JMP  store4

// gtail: a last group that ends at the row's last column (cols >= 16).
gtail:
	CMPQ CX, R12
	JGE  gnext
	MOVQ R12, CX
	SUBQ $16, CX
	JMP  gone

// store8 writes Z0-Z7 (rows 0-3, two 16-column groups each) at column CX of
// the group's rows, then goes on with the next pair of column groups.
store8:
	EPI5(Z0)
	EPI5(Z1)
	EPI5(Z2)
	EPI5(Z3)
	EPI5(Z4)
	EPI5(Z5)
	EPI5(Z6)
	EPI5(Z7)
	LEAQ    (R8)(CX*4), DI
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, (DI)(R12*4)
	VMOVUPS Z3, 64(DI)(R12*4)
	LEAQ    (DI)(R12*8), DI
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, 64(DI)
	VMOVUPS Z6, (DI)(R12*4)
	VMOVUPS Z7, 64(DI)(R12*4)
	ADDQ    $32, CX
	JMP     pair

// store4 writes Z0, Z2, Z4, Z6 (rows 0-3) at column CX, then goes on with
// the next column group.
store4:
	EPI5(Z0)
	EPI5(Z2)
	EPI5(Z4)
	EPI5(Z6)
	LEAQ    (R8)(CX*4), DI
	VMOVUPS Z0, (DI)
	VMOVUPS Z2, (DI)(R12*4)
	LEAQ    (DI)(R12*8), DI
	VMOVUPS Z4, (DI)
	VMOVUPS Z6, (DI)(R12*4)
	ADDQ    $16, CX
	JMP     sing

// gnext moves on by 4 rows, or by fewer to a last group that ends at the
// last row.
gnext:
	MOVQ    rows+40(FP), AX
	SUBQ    $4, AX
	JLE     done
	MOVQ    $4, BX
	CMPQ    AX, $4
	CMOVQLT AX, BX
	MOVQ    rows+40(FP), AX
	SUBQ    BX, AX
	MOVQ    AX, rows+40(FP)
	MOVQ    BX, AX
	IMULQ   R12, AX
	LEAQ    (R8)(AX*4), R8
	IMULQ   DX, BX
	ADDQ    BX, R13
	JMP     grp

// ---- fewer than 4 rows: one at a time.
rows1:
	MOVQ rows+40(FP), CX

row1:
	XORQ R11, R11 // column; the tap count is reloaded where needed

quad1:
	LEAQ    64(R11), AX
	CMPQ    AX, R12
	JGT     single1
	VMOVAPS Z15, Z0
	VMOVAPS Z15, Z1
	VMOVAPS Z15, Z2
	VMOVAPS Z15, Z3
	XORQ    BX, BX
	CMPQ    sx+64(FP), $2
	JEQ     quad2s
	LEAQ    (R13)(R11*4), SI

tapq1:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DI
	VBROADCASTSS (R10)(BX*4), Z8
	MA5((DI), Z0, Z4)
	MA5(64(DI), Z1, Z5)
	MA5(128(DI), Z2, Z6)
	MA5(192(DI), Z3, Z7)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapq1
	JMP          storeq

quad2s:
	LEAQ (R13)(R11*8), SI

tapq2:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DI
	VBROADCASTSS (R10)(BX*4), Z8
	MS5((DI), 64(DI), Z0, Z4)
	MS5(128(DI), 192(DI), Z1, Z5)
	MS5(256(DI), 320(DI), Z2, Z6)
	MS5(384(DI), 448(DI), Z3, Z7)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapq2

storeq:
	EPI5(Z0)
	EPI5(Z1)
	EPI5(Z2)
	EPI5(Z3)
	LEAQ    (R8)(R11*4), DI
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $64, R11
	JMP     quad1

single1:
	LEAQ 16(R11), AX
	CMPQ AX, R12
	JGT  tail1

one1:
	VMOVAPS Z15, Z0
	XORQ    BX, BX
	CMPQ    sx+64(FP), $2
	JEQ     one2s
	LEAQ    (R13)(R11*4), SI

tapo1:
	MOVQ         (R9)(BX*8), AX
	VBROADCASTSS (R10)(BX*4), Z8
	MA5((SI)(AX*4), Z0, Z4)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapo1
	JMP          storeo

one2s:
	LEAQ (R13)(R11*8), SI

tapo2:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DI
	VBROADCASTSS (R10)(BX*4), Z8
	MS5((DI), 64(DI), Z0, Z4)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapo2

storeo:
	EPI5(Z0)
	VMOVUPS Z0, (R8)(R11*4)
	ADDQ    $16, R11
	JMP     single1

tail1:
	CMPQ R11, R12
	JGE  next1
	MOVQ R12, R11
	SUBQ $16, R11
	JMP  one1

next1:
	ADDQ DX, R13
	LEAQ (R8)(R12*4), R8
	DECQ CX
	JNE  row1

done:
	VZEROUPPER
	RET

// evenIdx16 are VPERMT2PS's indices of the even floats of two vectors.
DATA evenIdx16<>+0(SB)/4, $0
DATA evenIdx16<>+4(SB)/4, $2
DATA evenIdx16<>+8(SB)/4, $4
DATA evenIdx16<>+12(SB)/4, $6
DATA evenIdx16<>+16(SB)/4, $8
DATA evenIdx16<>+20(SB)/4, $10
DATA evenIdx16<>+24(SB)/4, $12
DATA evenIdx16<>+28(SB)/4, $14
DATA evenIdx16<>+32(SB)/4, $16
DATA evenIdx16<>+36(SB)/4, $18
DATA evenIdx16<>+40(SB)/4, $20
DATA evenIdx16<>+44(SB)/4, $22
DATA evenIdx16<>+48(SB)/4, $24
DATA evenIdx16<>+52(SB)/4, $26
DATA evenIdx16<>+56(SB)/4, $28
DATA evenIdx16<>+60(SB)/4, $30
GLOBL evenIdx16<>(SB), RODATA|NOPTR, $64
