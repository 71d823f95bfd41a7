#include "textflag.h"

// func get() uint32
TEXT ·get(SB), NOSPLIT, $0-4
	MRS FPCR, R0
	MOVW R0, ret+0(FP)
	RET

// func set(mode uint32)
TEXT ·set(SB), NOSPLIT, $0-4
	MOVWU mode+0(FP), R0
	MSR R0, FPCR
	RET
