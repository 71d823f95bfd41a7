//go:build amd64 && !purego

#include "textflag.h"

// func tileVNNI(a *uint8, ld int, b *int8, k4 int, out *int32, ldo int, bias *int32)
// out's rows are ldo int32s apart; each row gets bias (32 int32s) added.
// Z0-Z11: rows 0-5, two registers (columns 0-15, 16-31) each: twelve
// independent sums, enough to keep VPDPBUSD's pipes busy through its
// latency (eight left the 4-row tile 30% slower); Z12, Z13 the panel's
// group; Z14-Z19 each row's four bytes, broadcast.
TEXT ·tileVNNI(SB), NOSPLIT, $0-56
	MOVQ a+0(FP), SI
	MOVQ ld+8(FP), BX
	MOVQ b+16(FP), DI
	MOVQ k4+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (SI)(BX*2), R8
	LEAQ (R8)(BX*2), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11

loop:
	VMOVDQU32 (DI), Z12
	VMOVDQU32 64(DI), Z13
	VPBROADCASTD (SI), Z14
	VPBROADCASTD (SI)(BX*1), Z15
	VPBROADCASTD (R8), Z16
	VPBROADCASTD (R8)(BX*1), Z17
	VPBROADCASTD (R9), Z18
	VPBROADCASTD (R9)(BX*1), Z19
	VPDPBUSD Z12, Z14, Z0
	VPDPBUSD Z13, Z14, Z1
	VPDPBUSD Z12, Z15, Z2
	VPDPBUSD Z13, Z15, Z3
	VPDPBUSD Z12, Z16, Z4
	VPDPBUSD Z13, Z16, Z5
	VPDPBUSD Z12, Z17, Z6
	VPDPBUSD Z13, Z17, Z7
	VPDPBUSD Z12, Z18, Z8
	VPDPBUSD Z13, Z18, Z9
	VPDPBUSD Z12, Z19, Z10
	VPDPBUSD Z13, Z19, Z11
	ADDQ $4, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ $128, DI
	DECQ CX
	JNZ  loop

	MOVQ      ldo+40(FP), R10
	SHLQ      $2, R10
	MOVQ      bias+48(FP), R11
	VMOVDQU32 (R11), Z12
	VMOVDQU32 64(R11), Z13
	VPADDD    Z12, Z0, Z0
	VPADDD    Z13, Z1, Z1
	VPADDD    Z12, Z2, Z2
	VPADDD    Z13, Z3, Z3
	VPADDD    Z12, Z4, Z4
	VPADDD    Z13, Z5, Z5
	VPADDD    Z12, Z6, Z6
	VPADDD    Z13, Z7, Z7
	VPADDD    Z12, Z8, Z8
	VPADDD    Z13, Z9, Z9
	VPADDD    Z12, Z10, Z10
	VPADDD    Z13, Z11, Z11
	VMOVDQU32 Z0, (DX)
	VMOVDQU32 Z1, 64(DX)
	ADDQ      R10, DX
	VMOVDQU32 Z2, (DX)
	VMOVDQU32 Z3, 64(DX)
	ADDQ      R10, DX
	VMOVDQU32 Z4, (DX)
	VMOVDQU32 Z5, 64(DX)
	ADDQ      R10, DX
	VMOVDQU32 Z6, (DX)
	VMOVDQU32 Z7, 64(DX)
	ADDQ      R10, DX
	VMOVDQU32 Z8, (DX)
	VMOVDQU32 Z9, 64(DX)
	ADDQ      R10, DX
	VMOVDQU32 Z10, (DX)
	VMOVDQU32 Z11, 64(DX)
	VZEROUPPER
	RET

// func row4VNNI(a *uint8, b *int8, stride, k4 int, out *int32)
// One row of A against four consecutive panels of B (stride bytes apart):
// the 128 sums go to out. Eight accumulators, each group of four K values
// broadcast once for all of them; B is read from memory by VPDPBUSD.
TEXT ·row4VNNI(SB), NOSPLIT, $0-40
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   stride+16(FP), BX
	MOVQ   k4+24(FP), CX
	MOVQ   out+32(FP), DX
	LEAQ   (DI)(BX*2), R8
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7

row4_loop:
	VPBROADCASTD (SI), Z14
	VPDPBUSD     (DI), Z14, Z0
	VPDPBUSD     64(DI), Z14, Z1
	VPDPBUSD     (DI)(BX*1), Z14, Z2
	VPDPBUSD     64(DI)(BX*1), Z14, Z3
	VPDPBUSD     (R8), Z14, Z4
	VPDPBUSD     64(R8), Z14, Z5
	VPDPBUSD     (R8)(BX*1), Z14, Z6
	VPDPBUSD     64(R8)(BX*1), Z14, Z7
	ADDQ         $4, SI
	ADDQ         $128, DI
	ADDQ         $128, R8
	DECQ         CX
	JNZ          row4_loop

	VMOVDQU32 Z0, (DX)
	VMOVDQU32 Z1, 64(DX)
	VMOVDQU32 Z2, 128(DX)
	VMOVDQU32 Z3, 192(DX)
	VMOVDQU32 Z4, 256(DX)
	VMOVDQU32 Z5, 320(DX)
	VMOVDQU32 Z6, 384(DX)
	VMOVDQU32 Z7, 448(DX)
	VZEROUPPER
	RET

// func row1VNNI(a *uint8, b *int8, k4 int, out *int32)
// One row of A against one panel of B: 32 sums to out.
TEXT ·row1VNNI(SB), NOSPLIT, $0-32
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   k4+16(FP), CX
	MOVQ   out+24(FP), DX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1

row1_loop:
	VPBROADCASTD (SI), Z14
	VPDPBUSD     (DI), Z14, Z0
	VPDPBUSD     64(DI), Z14, Z1
	ADDQ         $4, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          row1_loop

	VMOVDQU32 Z0, (DX)
	VMOVDQU32 Z1, 64(DX)
	VZEROUPPER
	RET
