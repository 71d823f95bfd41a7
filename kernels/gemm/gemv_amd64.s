//go:build amd64 && !purego

#include "textflag.h"

// gemvPanels32AVX512 and gemvPanels16AVX2 compute one row of C = x * B over
// panels of packed B (kc x nr each, one after another): for each column j,
// a chain of FMAs over k from 0, as the tile kernels sum each output, then
// y[j] = sum (acc false) or y[j] + sum (acc true). Panels go two at a time
// (four independent chains), then one.

// func gemvPanels32AVX512(kc int, x, b *float32, panels int, y *float32, acc bool)
TEXT ·gemvPanels32AVX512(SB), NOSPLIT, $0-41
	MOVQ    kc+0(FP), R9
	MOVQ    b+16(FP), BX
	MOVQ    panels+24(FP), R10
	MOVQ    y+32(FP), DI
	MOVBLZX acc+40(FP), R11
	MOVQ    R9, R12
	SHLQ    $7, R12 // bytes per panel: kc * 32 * 4

pair512:
	CMPQ   R10, $2
	JLT    single512
	MOVQ   x+8(FP), SI
	MOVQ   BX, DX
	LEAQ   (BX)(R12*1), R8
	MOVQ   R9, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

kpair512:
	VBROADCASTSS (SI), Z4
	VFMADD231PS  (DX), Z4, Z0
	VFMADD231PS  64(DX), Z4, Z1
	VFMADD231PS  (R8), Z4, Z2
	VFMADD231PS  64(R8), Z4, Z3
	ADDQ         $4, SI
	ADDQ         $128, DX
	ADDQ         $128, R8
	DECQ         CX
	JNE          kpair512
	TESTQ        R11, R11
	JEQ          pstore512
	VADDPS       (DI), Z0, Z0
	VADDPS       64(DI), Z1, Z1
	VADDPS       128(DI), Z2, Z2
	VADDPS       192(DI), Z3, Z3

pstore512:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, DI
	LEAQ    (BX)(R12*2), BX
	SUBQ    $2, R10
	JMP     pair512

single512:
	TESTQ  R10, R10
	JEQ    done512
	MOVQ   x+8(FP), SI
	MOVQ   BX, DX
	MOVQ   R9, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1

kone512:
	VBROADCASTSS (SI), Z4
	VFMADD231PS  (DX), Z4, Z0
	VFMADD231PS  64(DX), Z4, Z1
	ADDQ         $4, SI
	ADDQ         $128, DX
	DECQ         CX
	JNE          kone512
	TESTQ        R11, R11
	JEQ          ostore512
	VADDPS       (DI), Z0, Z0
	VADDPS       64(DI), Z1, Z1

ostore512:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)

done512:
	VZEROUPPER
	RET

// func gemvPanels16AVX2(kc int, x, b *float32, panels int, y *float32, acc bool)
TEXT ·gemvPanels16AVX2(SB), NOSPLIT, $0-41
	MOVQ    kc+0(FP), R9
	MOVQ    b+16(FP), BX
	MOVQ    panels+24(FP), R10
	MOVQ    y+32(FP), DI
	MOVBLZX acc+40(FP), R11
	MOVQ    R9, R12
	SHLQ    $6, R12 // bytes per panel: kc * 16 * 4

pair2:
	CMPQ   R10, $2
	JLT    single2
	MOVQ   x+8(FP), SI
	MOVQ   BX, DX
	LEAQ   (BX)(R12*1), R8
	MOVQ   R9, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

kpair2:
	VBROADCASTSS (SI), Y4
	VFMADD231PS  (DX), Y4, Y0
	VFMADD231PS  32(DX), Y4, Y1
	VFMADD231PS  (R8), Y4, Y2
	VFMADD231PS  32(R8), Y4, Y3
	ADDQ         $4, SI
	ADDQ         $64, DX
	ADDQ         $64, R8
	DECQ         CX
	JNE          kpair2
	TESTQ        R11, R11
	JEQ          pstore2
	VADDPS       (DI), Y0, Y0
	VADDPS       32(DI), Y1, Y1
	VADDPS       64(DI), Y2, Y2
	VADDPS       96(DI), Y3, Y3

pstore2:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, DI
	LEAQ    (BX)(R12*2), BX
	SUBQ    $2, R10
	JMP     pair2

single2:
	TESTQ  R10, R10
	JEQ    done2
	MOVQ   x+8(FP), SI
	MOVQ   BX, DX
	MOVQ   R9, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

kone2:
	VBROADCASTSS (SI), Y4
	VFMADD231PS  (DX), Y4, Y0
	VFMADD231PS  32(DX), Y4, Y1
	ADDQ         $4, SI
	ADDQ         $64, DX
	DECQ         CX
	JNE          kone2
	TESTQ        R11, R11
	JEQ          ostore2
	VADDPS       (DI), Y0, Y0
	VADDPS       32(DI), Y1, Y1

ostore2:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)

done2:
	VZEROUPPER
	RET
