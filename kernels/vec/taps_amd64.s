//go:build amd64 && !purego

#include "textflag.h"

// func sumTapsAVX2(dst, src *float32, offs *int, w *float32, taps, n int, bias float32)
// n is a positive multiple of 8 and taps >= 1. Four 8-float running sums
// (32 outputs) stay in Y0-Y3 while every tap adds into them, then one sum at a
// time for the last n%32. Multiply and add are separate instructions, as in
// Axpy, so the result matches the portable loop bit for bit.
TEXT ·sumTapsAVX2(SB), NOSPLIT, $0-52
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ offs+16(FP), R9
	MOVQ w+24(FP), R10
	MOVQ taps+32(FP), R11
	MOVQ n+40(FP), CX
	VBROADCASTSS bias+48(FP), Y15
	MOVQ CX, R8
	SHRQ $5, CX
	JEQ  eights

loop32:
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y1
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y3
	XORQ    BX, BX

tap32:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DX
	VBROADCASTSS (R10)(BX*4), Y8
	VMULPS       (DX), Y8, Y4
	VADDPS       Y4, Y0, Y0
	VMULPS       32(DX), Y8, Y5
	VADDPS       Y5, Y1, Y1
	VMULPS       64(DX), Y8, Y6
	VADDPS       Y6, Y2, Y2
	VMULPS       96(DX), Y8, Y7
	VADDPS       Y7, Y3, Y3
	INCQ         BX
	CMPQ         BX, R11
	JNE          tap32
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $128, DI
	ADDQ         $128, SI
	DECQ         CX
	JNE          loop32

eights:
	ANDQ $31, R8
	SHRQ $3, R8
	JEQ  done

loop8:
	VMOVAPS Y15, Y0
	XORQ    BX, BX

tap8:
	MOVQ         (R9)(BX*8), AX
	VBROADCASTSS (R10)(BX*4), Y8
	VMULPS       (SI)(AX*4), Y8, Y4
	VADDPS       Y4, Y0, Y0
	INCQ         BX
	CMPQ         BX, R11
	JNE          tap8
	VMOVUPS      Y0, (DI)
	ADDQ         $32, DI
	ADDQ         $32, SI
	DECQ         R8
	JNE          loop8

done:
	VZEROUPPER
	RET

// func stride2AVX2(dst, src *float32, n int)
// dst[j] = src[2j] for j < n (a positive multiple of 8), reading src[0:2n]:
// SHUFPS picks elements 0 and 2 of each 4 from two vectors per 128-bit lane,
// and PERMPD puts the lanes' 64-bit halves back in order.
TEXT ·stride2AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX

loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSHUFPS $0x88, Y1, Y0, Y2
	VPERMPD $0xD8, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $64, SI
	ADDQ    $32, DI
	DECQ    CX
	JNE     loop
	VZEROUPPER
	RET

// EPI applies TapRows' epilogue (Y14 mul, Y13 add, Y12 lo, Y11 hi) to r with
// affineAVX2's and clipAVX2's instructions and operand order, so the bits
// are theirs (NaN included).
#define EPI(r) \
	VMULPS r, Y14, r; \
	VADDPS Y13, r, r; \
	VMAXPS r, Y12, r; \
	VMINPS r, Y11, r

// MA adds the tap weight in Y8 times the 8 floats at addr to acc (t scratch),
// rounding the product and the sum as sumTapsAVX2 does.
#define MA(addr, acc, t) \
	VMULPS addr, Y8, t; \
	VADDPS t, acc, acc

// MS is MA for column stride 2: the 8 floats at a, a+2, ..., a+14 (the even
// elements of the vectors at a and b = a+32), in the order SHUFPS leaves
// them (a+0, a+4, b+0, b+4 | a+8, a+12, b+8, b+12, as pairs): every tap's
// products come in the same order, so the sums are put in order once, by
// UNSHUF, after the last tap.
#define MS(a, b, acc, t, u) \
	VMOVUPS a, t; \
	VMOVUPS b, u; \
	VSHUFPS $0x88, u, t, t; \
	VMULPS  t, Y8, t; \
	VADDPS  t, acc, acc

// UNSHUF puts MS's sums in column order (the 64-bit halves of the lanes, as
// stride2AVX2 does).
#define UNSHUF(r) VPERMPD $0xD8, r, r

// TAP loads tap BX: DI = SI + offs[BX]*4 (the tap's first row), AX = DI +
// 2*DX (its third row), Y8 = w[BX].
#define TAP \
	MOVQ         (R9)(BX*8), AX; \
	LEAQ         (SI)(AX*4), DI; \
	LEAQ         (DI)(DX*2), AX; \
	VBROADCASTSS (R10)(BX*4), Y8

// func tapRowsAVX2(dst, src *float32, offs *int, w *float32, taps, rows, cols, srcRow, sx int, bias float32, ep *Epilogue)
// rows, cols and taps are >= 1, sx is 1 or 2; with cols < 8 the stores run
// up to 8-cols floats past the last row. From 4 rows up, rows go in groups of
// 4 (the last group overlapping the one before) and columns in pairs of
// 8-column groups, then one group, then one group that ends at the row's
// last column: 4 or 8 independent running sums, so that the adds do not
// wait on each other on narrow maps. Fewer rows go one at a time, in groups
// of 32 columns. Multiply and add are separate instructions, as in
// sumTapsAVX2.
TEXT ·tapRowsAVX2(SB), NOSPLIT, $0-88
	MOVQ         dst+0(FP), R8
	MOVQ         src+8(FP), R13
	MOVQ         offs+16(FP), R9
	MOVQ         w+24(FP), R10
	MOVQ         taps+32(FP), R11
	MOVQ         cols+48(FP), R12
	MOVQ         srcRow+56(FP), DX
	SHLQ         $2, DX
	VBROADCASTSS bias+72(FP), Y15
	MOVQ         ep+80(FP), AX
	VBROADCASTSS 0(AX), Y14
	VBROADCASTSS 4(AX), Y13
	VBROADCASTSS 8(AX), Y12
	VBROADCASTSS 12(AX), Y11
	CMPQ         rows+40(FP), $4
	JLT          rows1
	CMPQ         sx+64(FP), $2
	JEQ          grp2

// ---- column stride 1, groups of 4 rows; rows+40(FP) counts the rows from
// the group's first on.
grp1:
	XORQ CX, CX

pair1:
	LEAQ 16(CX), AX
	CMPQ AX, R12
	JGT  sing1
	LEAQ (R13)(CX*4), SI
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y1
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y3
	VMOVAPS Y15, Y4
	VMOVAPS Y15, Y5
	VMOVAPS Y15, Y6
	VMOVAPS Y15, Y7
	XORQ    BX, BX

tpair1:
	TAP
	MA((DI), Y0, Y9)
	MA(32(DI), Y1, Y10)
	MA((DI)(DX*1), Y2, Y9)
	MA(32(DI)(DX*1), Y3, Y10)
	MA((AX), Y4, Y9)
	MA(32(AX), Y5, Y10)
	MA((AX)(DX*1), Y6, Y9)
	MA(32(AX)(DX*1), Y7, Y10)
	INCQ BX
	CMPQ BX, R11
	JNE  tpair1
	JMP  store8

sing1:
	LEAQ 8(CX), AX
	CMPQ AX, R12
	JGT  gtail1

gone1:
	LEAQ    (R13)(CX*4), SI
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y4
	VMOVAPS Y15, Y6
	XORQ    BX, BX

tone1:
	TAP
	MA((DI), Y0, Y9)
	MA((DI)(DX*1), Y2, Y10)
	MA((AX), Y4, Y9)
	MA((AX)(DX*1), Y6, Y10)
	INCQ BX
	CMPQ BX, R11
	JNE  tone1
	JMP  store4

gtail1:
	CMPQ CX, R12
	JGE  gnext
	MOVQ R12, CX
	SUBQ $8, CX
	JGE  gone1
	XORQ CX, CX
	JMP  gone1

// ---- column stride 2, groups of 4 rows.
grp2:
	XORQ CX, CX

pair2:
	LEAQ 16(CX), AX
	CMPQ AX, R12
	JGT  sing2
	LEAQ (R13)(CX*8), SI
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y1
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y3
	VMOVAPS Y15, Y4
	VMOVAPS Y15, Y5
	VMOVAPS Y15, Y6
	VMOVAPS Y15, Y7
	XORQ    BX, BX

tpair2:
	TAP
	MS((DI), 32(DI), Y0, Y9, Y10)
	MS(64(DI), 96(DI), Y1, Y9, Y10)
	MS((DI)(DX*1), 32(DI)(DX*1), Y2, Y9, Y10)
	MS(64(DI)(DX*1), 96(DI)(DX*1), Y3, Y9, Y10)
	MS((AX), 32(AX), Y4, Y9, Y10)
	MS(64(AX), 96(AX), Y5, Y9, Y10)
	MS((AX)(DX*1), 32(AX)(DX*1), Y6, Y9, Y10)
	MS(64(AX)(DX*1), 96(AX)(DX*1), Y7, Y9, Y10)
	INCQ BX
	CMPQ BX, R11
	JNE  tpair2
	UNSHUF(Y0)
	UNSHUF(Y1)
	UNSHUF(Y2)
	UNSHUF(Y3)
	UNSHUF(Y4)
	UNSHUF(Y5)
	UNSHUF(Y6)
	UNSHUF(Y7)
	JMP  store8

sing2:
	LEAQ 8(CX), AX
	CMPQ AX, R12
	JGT  gtail2

gone2:
	LEAQ    (R13)(CX*8), SI
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y4
	VMOVAPS Y15, Y6
	XORQ    BX, BX

tone2:
	TAP
	MS((DI), 32(DI), Y0, Y9, Y10)
	MS((DI)(DX*1), 32(DI)(DX*1), Y2, Y9, Y10)
	MS((AX), 32(AX), Y4, Y9, Y10)
	MS((AX)(DX*1), 32(AX)(DX*1), Y6, Y9, Y10)
	INCQ BX
	CMPQ BX, R11
	JNE  tone2
	UNSHUF(Y0)
	UNSHUF(Y2)
	UNSHUF(Y4)
	UNSHUF(Y6)
	JMP  store4

gtail2:
	CMPQ CX, R12
	JGE  gnext
	MOVQ R12, CX
	SUBQ $8, CX
	JGE  gone2
	XORQ CX, CX
	JMP  gone2

// store8 writes Y0-Y7 (rows 0-3, two 8-column groups each) at column CX of
// the group's rows, then goes on with the next pair of column groups.
store8:
	EPI(Y0)
	EPI(Y1)
	EPI(Y2)
	EPI(Y3)
	EPI(Y4)
	EPI(Y5)
	EPI(Y6)
	EPI(Y7)
	LEAQ    (R8)(CX*4), DI
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(R12*4)
	VMOVUPS Y3, 32(DI)(R12*4)
	LEAQ    (DI)(R12*8), DI
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	VMOVUPS Y6, (DI)(R12*4)
	VMOVUPS Y7, 32(DI)(R12*4)
	ADDQ    $16, CX
	CMPQ    sx+64(FP), $2
	JEQ     pair2
	JMP     pair1

// store4 writes Y0, Y2, Y4, Y6 (rows 0-3) at column CX, rows in order (with
// cols < 8 each store runs into the next row, which the next one rewrites),
// then goes on with the next column group.
store4:
	EPI(Y0)
	EPI(Y2)
	EPI(Y4)
	EPI(Y6)
	LEAQ    (R8)(CX*4), DI
	VMOVUPS Y0, (DI)
	VMOVUPS Y2, (DI)(R12*4)
	LEAQ    (DI)(R12*8), DI
	VMOVUPS Y4, (DI)
	VMOVUPS Y6, (DI)(R12*4)
	ADDQ    $8, CX
	CMPQ    sx+64(FP), $2
	JEQ     sing2
	JMP     sing1

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
	CMPQ    sx+64(FP), $2
	JEQ     grp2
	JMP     grp1

// ---- fewer than 4 rows: one at a time.
rows1:
	MOVQ rows+40(FP), CX
	CMPQ sx+64(FP), $2
	JEQ  row2

row1:
	XORQ R11, R11 // column; the tap count is reloaded where needed

quad1:
	LEAQ 32(R11), AX
	CMPQ AX, R12
	JGT  single1
	LEAQ (R13)(R11*4), SI
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y1
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y3
	XORQ    BX, BX

tapq1:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DI
	VBROADCASTSS (R10)(BX*4), Y8
	MA((DI), Y0, Y4)
	MA(32(DI), Y1, Y5)
	MA(64(DI), Y2, Y6)
	MA(96(DI), Y3, Y7)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapq1
	EPI(Y0)
	EPI(Y1)
	EPI(Y2)
	EPI(Y3)
	LEAQ         (R8)(R11*4), DI
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $32, R11
	JMP          quad1

single1:
	LEAQ 8(R11), AX
	CMPQ AX, R12
	JGT  tail1

one1:
	LEAQ    (R13)(R11*4), SI
	VMOVAPS Y15, Y0
	XORQ    BX, BX

tapo1:
	MOVQ         (R9)(BX*8), AX
	VBROADCASTSS (R10)(BX*4), Y8
	MA((SI)(AX*4), Y0, Y4)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapo1
	EPI(Y0)
	VMOVUPS      Y0, (R8)(R11*4)
	ADDQ         $8, R11
	JMP          single1

tail1:
	CMPQ R11, R12
	JGE  next1
	MOVQ R12, R11
	SUBQ $8, R11
	JGE  one1
	XORQ R11, R11
	JMP  one1

next1:
	ADDQ DX, R13
	LEAQ (R8)(R12*4), R8
	DECQ CX
	JNE  row1
	JMP  done

row2:
	XORQ R11, R11

quad2:
	LEAQ 32(R11), AX
	CMPQ AX, R12
	JGT  single2
	LEAQ (R13)(R11*8), SI
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y1
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y3
	XORQ    BX, BX

tapq2:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DI
	VBROADCASTSS (R10)(BX*4), Y8
	MS((DI), 32(DI), Y0, Y4, Y9)
	MS(64(DI), 96(DI), Y1, Y5, Y10)
	MS(128(DI), 160(DI), Y2, Y6, Y9)
	MS(192(DI), 224(DI), Y3, Y7, Y10)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapq2
	UNSHUF(Y0)
	UNSHUF(Y1)
	UNSHUF(Y2)
	UNSHUF(Y3)
	EPI(Y0)
	EPI(Y1)
	EPI(Y2)
	EPI(Y3)
	LEAQ         (R8)(R11*4), DI
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $32, R11
	JMP          quad2

single2:
	LEAQ 8(R11), AX
	CMPQ AX, R12
	JGT  tail2

one2:
	LEAQ    (R13)(R11*8), SI
	VMOVAPS Y15, Y0
	XORQ    BX, BX

tapo2:
	MOVQ         (R9)(BX*8), AX
	LEAQ         (SI)(AX*4), DI
	VBROADCASTSS (R10)(BX*4), Y8
	MS((DI), 32(DI), Y0, Y4, Y9)
	INCQ         BX
	CMPQ         BX, taps+32(FP)
	JNE          tapo2
	UNSHUF(Y0)
	EPI(Y0)
	VMOVUPS      Y0, (R8)(R11*4)
	ADDQ         $8, R11
	JMP          single2

tail2:
	CMPQ R11, R12
	JGE  next2
	MOVQ R12, R11
	SUBQ $8, R11
	JGE  one2
	XORQ R11, R11
	JMP  one2

next2:
	ADDQ DX, R13
	LEAQ (R8)(R12*4), R8
	DECQ CX
	JNE  row2

done:
	VZEROUPPER
	RET

// func copyRowsAVX2(dst *float32, dstRow int, src *float32, srcRow, rows, cols int)
// rows, cols >= 1. Each row goes in 8-float groups, the last one ending at
// the row's last column (overlapping the one before); rows of 4 to 7 floats
// as two 4-float groups, the same way, and shorter ones float by float.
TEXT ·copyRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ dstRow+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ srcRow+24(FP), R9
	SHLQ $2, R9
	MOVQ rows+32(FP), CX
	MOVQ cols+40(FP), R10
	CMPQ R10, $4
	JLT  c1row
	LEAQ -4(R10), R11 // the second 4-float group's column
	CMPQ R10, $8
	JLT  c4row
	LEAQ -8(R10), R11 // the last group's column

crow:
	XORQ AX, AX

cgroup:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, R11
	JLT     cgroup
	VMOVUPS (SI)(R11*4), Y0
	VMOVUPS Y0, (DI)(R11*4)
	ADDQ    R8, DI
	ADDQ    R9, SI
	DECQ    CX
	JNE     crow
	VZEROUPPER
	RET

c4row:
	MOVUPS (SI), X0
	MOVUPS (SI)(R11*4), X1
	MOVUPS X0, (DI)
	MOVUPS X1, (DI)(R11*4)
	ADDQ   R8, DI
	ADDQ   R9, SI
	DECQ   CX
	JNE    c4row
	RET

c1row:
	XORQ AX, AX

c1:
	MOVL (SI)(AX*4), DX
	MOVL DX, (DI)(AX*4)
	INCQ AX
	CMPQ AX, R10
	JLT  c1
	ADDQ R8, DI
	ADDQ R9, SI
	DECQ CX
	JNE  c1row
	RET

// func epilogueAVX2(dst *float32, n int, ep *Epilogue)
// n is a positive multiple of 8: 32 floats a step, then 8.
TEXT ·epilogueAVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         n+8(FP), CX
	MOVQ         ep+16(FP), AX
	VBROADCASTSS 0(AX), Y14
	VBROADCASTSS 4(AX), Y13
	VBROADCASTSS 8(AX), Y12
	VBROADCASTSS 12(AX), Y11
	MOVQ         CX, R8
	SHRQ         $5, CX
	JEQ          epi8

epi32:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	EPI(Y0)
	EPI(Y1)
	EPI(Y2)
	EPI(Y3)
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, DI
	DECQ    CX
	JNE     epi32

epi8:
	ANDQ $31, R8
	SHRQ $3, R8
	JEQ  epidone

epi1:
	VMOVUPS (DI), Y0
	EPI(Y0)
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    R8
	JNE     epi1

epidone:
	VZEROUPPER
	RET

// func splitRowsAVX2(a, b *float32, dstRow int, src *float32, srcRow, rows, cols int)
// rows, cols >= 1. Each row in steps of 16 floats (SHUFPS picks the even and
// the odd elements, PERMPD puts them in order, as stride2AVX2 does), then
// pair by pair.
TEXT ·splitRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ a+0(FP), DI
	MOVQ b+8(FP), R10
	MOVQ dstRow+16(FP), R8
	SHLQ $2, R8
	MOVQ src+24(FP), SI
	MOVQ srcRow+32(FP), R9
	SHLQ $2, R9
	MOVQ rows+40(FP), CX
	MOVQ cols+48(FP), R11

srow:
	XORQ AX, AX // source column
	XORQ BX, BX // destination column

s16:
	LEAQ    16(AX), DX
	CMPQ    DX, R11
	JGT     s2
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS 32(SI)(AX*4), Y1
	VSHUFPS $0x88, Y1, Y0, Y2
	VSHUFPS $0xDD, Y1, Y0, Y3
	VPERMPD $0xD8, Y2, Y2
	VPERMPD $0xD8, Y3, Y3
	VMOVUPS Y2, (DI)(BX*4)
	VMOVUPS Y3, (R10)(BX*4)
	MOVQ    DX, AX
	ADDQ    $8, BX
	JMP     s16

s2:
	CMPQ AX, R11
	JGE  snext
	MOVL (SI)(AX*4), DX
	MOVL DX, (DI)(BX*4)
	INCQ AX
	CMPQ AX, R11
	JGE  snext
	MOVL (SI)(AX*4), DX
	MOVL DX, (R10)(BX*4)
	INCQ AX
	INCQ BX
	JMP  s2

snext:
	ADDQ R8, DI
	ADDQ R8, R10
	ADDQ R9, SI
	DECQ CX
	JNE  srow
	VZEROUPPER
	RET
