#include "textflag.h"

// func countAVX2(x []float32, p *countParams, c []uint32, idx []int32) (lo, hi float32)
//
// Blocks of up to len(idx) values in two phases. First, eight values per
// step: scaled (by a power of two, so exactly), floored and converted; a tiny
// negative whose product rounded to -0 still goes to bin -1; the index is
// floor + p.bias[j] for value j of the step (so neighbouring values count in
// different lanes), or p.trash[j] when the floor is outside [lo, hi) (NaN fails both
// tests); the indices go to idx, except that eight equal values (a run of
// ReLU zeros) are added at once. Then the increments, reading indices
// written well before: an increment whose address comes straight from the
// vector unit lets the next ones run ahead of it and replays them when two
// hit the same counter, which repeated values do all the time (measured: 2x
// slower on real activations). It returns the least and greatest floor seen
// (NaN ignored), so the caller knows the bins used and whether any value fell
// outside the grid. len(idx) is a multiple of 8, len(x) too.
TEXT ·countAVX2(SB), NOSPLIT, $0-88
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ p+24(FP), DX
	MOVQ c_base+32(FP), DI
	MOVQ idx_base+56(FP), R10
	MOVQ idx_len+64(FP), R11
	SHLQ $2, R11                // block size in bytes of input
	VBROADCASTSS 0(DX), Y0
	VBROADCASTSS 4(DX), Y1
	VBROADCASTSS 8(DX), Y2
	VMOVDQU 16(DX), Y3
	VMOVDQU 48(DX), Y4
	VXORPS Y8, Y8, Y8
	MOVL $0x7f800000, AX // +Inf
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $0xff800000, AX // -Inf
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	ANDQ $-8, CX
	SHLQ $2, CX
	ADDQ SI, CX                 // end of the whole steps
	MOVQ R10, R9                // idx base

block:
	CMPQ SI, CX
	JGE  done
	MOVQ SI, R12
	ADDQ R11, R12
	CMPQ R12, CX
	JLE  2(PC)
	MOVQ CX, R12                // this block ends at R12
	MOVQ R9, R10                // next index to count
	MOVQ R9, R13                // next free index slot

vec:
	CMPQ SI, R12
	JGE  incs
	VMOVUPS (SI), Y5
	VMULPS Y0, Y5, Y6
	VROUNDPS $1, Y6, Y6
	VMINPS Y13, Y6, Y13        // a NaN floor keeps the running value
	VMAXPS Y14, Y6, Y14
	VCMPPS $0x1d, Y1, Y6, Y7   // floor >= lo
	VCMPPS $0x11, Y2, Y6, Y9   // floor < hi
	VANDPS Y7, Y9, Y7
	VCMPPS $0x11, Y8, Y5, Y9   // x < 0
	VCMPPS $0x00, Y8, Y6, Y10  // floor == 0
	VANDPS Y9, Y10, Y9         // -1 where both
	VCVTTPS2DQ Y6, Y6
	VPADDD Y3, Y6, Y6
	VPADDD Y9, Y6, Y6
	VBLENDVPS Y7, Y6, Y4, Y6
	ADDQ $32, SI
	VBROADCASTSS -32(SI), Y11
	VCMPPS $0x00, Y11, Y5, Y12 // equal to the step's first value
	VMOVMSKPS Y12, AX
	CMPL AX, $0xff
	JEQ  run
	VMOVDQU Y6, (R13)
	ADDQ $32, R13
	JMP  vec

run:
	VMOVD X6, AX
	ADDL $8, (DI)(AX*4)
	JMP  vec

incs:
	CMPQ R10, R13
	JGE  block
	MOVL 0(R10), AX
	MOVL 4(R10), BX
	MOVL 8(R10), DX
	MOVL 12(R10), R8
	INCL (DI)(AX*4)
	INCL (DI)(BX*4)
	INCL (DI)(DX*4)
	INCL (DI)(R8*4)
	MOVL 16(R10), AX
	MOVL 20(R10), BX
	MOVL 24(R10), DX
	MOVL 28(R10), R8
	INCL (DI)(AX*4)
	INCL (DI)(BX*4)
	INCL (DI)(DX*4)
	INCL (DI)(R8*4)
	ADDQ $32, R10
	JMP  incs

done:
	VEXTRACTF128 $1, Y13, X15
	VMINPS X15, X13, X13
	VPERMILPS $0x4e, X13, X15
	VMINPS X15, X13, X13
	VPERMILPS $0xb1, X13, X15
	VMINPS X15, X13, X13
	VMOVSS X13, lo+80(FP)
	VEXTRACTF128 $1, Y14, X15
	VMAXPS X15, X14, X14
	VPERMILPS $0x4e, X14, X15
	VMAXPS X15, X14, X14
	VPERMILPS $0xb1, X14, X15
	VMAXPS X15, X14, X14
	VMOVSS X14, hi+84(FP)
	VZEROUPPER
	RET

// func drainAVX2(counts []uint64, c []uint32, stride int)
//
// counts[b] += the sum over the four lanes of c[j*stride+b], for b below
// len(counts) &^ 7, clearing those lane bins. counts and c start at the
// first bin to drain.
TEXT ·drainAVX2(SB), NOSPLIT, $0-56
	MOVQ counts_base+0(FP), DI
	MOVQ counts_len+8(FP), CX
	MOVQ c_base+24(FP), SI
	MOVQ stride+48(FP), R8
	SHLQ $2, R8
	VPXOR Y15, Y15, Y15

dloop:
	CMPQ CX, $8
	JL   ddone
	MOVQ SI, R9
	VMOVDQU (R9), Y0
	VMOVDQU Y15, (R9)
	ADDQ R8, R9
	VPADDD (R9), Y0, Y0
	VMOVDQU Y15, (R9)
	ADDQ R8, R9
	VPADDD (R9), Y0, Y0
	VMOVDQU Y15, (R9)
	ADDQ R8, R9
	VPADDD (R9), Y0, Y0
	VMOVDQU Y15, (R9)
	VPMOVZXDQ X0, Y1
	VEXTRACTI128 $1, Y0, X2
	VPMOVZXDQ X2, Y2
	VPADDQ (DI), Y1, Y1
	VPADDQ 32(DI), Y2, Y2
	VMOVDQU Y1, (DI)
	VMOVDQU Y2, 32(DI)
	ADDQ $64, DI
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  dloop

ddone:
	VZEROUPPER
	RET
