#include "textflag.h"

// func get() uint32
TEXT ·get(SB), NOSPLIT, $8-4
	STMXCSR 0(SP)
	MOVL 0(SP), AX
	MOVL AX, ret+0(FP)
	RET

// func set(mode uint32)
TEXT ·set(SB), NOSPLIT, $8-4
	MOVL mode+0(FP), AX
	MOVL AX, 0(SP)
	LDMXCSR 0(SP)
	RET
