//go:build amd64 && !purego

#include "textflag.h"

// func prefetchT1(x *float32, n int)
// One PREFETCHT1 per 64-byte line that x[0:n] touches: the first one's,
// then every 64 bytes up to the last float's.
TEXT ·prefetchT1(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	LEAQ -4(SI)(CX*4), DX // the last float
	ANDQ $-64, SI
prefetchT1_loop:
	PREFETCHT1 (SI)
	ADDQ $64, SI
	CMPQ SI, DX
	JLE prefetchT1_loop
	RET
