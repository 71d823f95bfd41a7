#!/usr/bin/env python3
"""Writes tiles_amd64.s: the AVX2 6 x 16 micro-kernel looped over a column of
row tiles in one call (run: python3 gen_tiles.py).

A call computes `tiles` tiles down C, each C[6 x 16] = A_panel * B_panel (+ C
when acc, else + bias per row when bias is not nil), the A panels consecutive (kc x 6 each, k-major) and the same B panel
for all. Small-K products (pointwise convolutions with 16-64 input channels)
spend as much on a Go call per tile as on the tile's FMAs; one call per
column of tiles removes that. The offsets variant reads the B panel where a
convolution's input lies (see Grid): row p at b[offs[p]:][:8] and
b[offs[p]+d1:][:8].
"""

def add_bias(w, name, off, rows):
    """Without acc, a non-nil bias (one value per row of C) is added to the
    tile before it is stored: C = A*B + bias, the sum a bias-filled C would
    give, without the pass that fills it. The pointer, kept in the argument
    slot, moves on by a tile's rows for the next tile."""
    w(f"\tMOVQ bias+{off}(FP), CX")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_plain")
    for i, regs in enumerate(rows):
        w(f"\tVBROADCASTSS {4*i}(CX), Y15")
        for r in regs:
            w(f"\tVADDPS Y15, {r}, {r}")
    w(f"\tADDQ ${4*len(rows)}, CX")
    w(f"\tMOVQ CX, bias+{off}(FP)")
    w(f"{name}_plain:")

def store_tile(w, name, rows, groups, bias_off):
    """The tail of a tile kernel after its k loop: add the rows x groups
    accumulators (Y0.., 8 floats a group) to C, or (at {name}_overwrite)
    add the bias at bias_off(FP) and store them over C; then step to the
    next tile and return when none is left."""
    acc = [[f"Y{i*groups+j}" for j in range(groups)] for i in range(rows)]
    for i in range(rows):
        for j, r in enumerate(acc[i]):
            w(f"\tVADDPS {32*j}(R11), {r}, {r}")
            w(f"\tVMOVUPS {r}, {32*j}(R11)")
        if i < rows - 1:
            w("\tADDQ DX, R11")
    w(f"\tJMP {name}_next")
    w(f"{name}_overwrite:")
    add_bias(w, name, bias_off, acc)
    for i in range(rows):
        for j, r in enumerate(acc[i]):
            w(f"\tVMOVUPS {r}, {32*j}(R11)")
        if i < rows - 1:
            w("\tADDQ DX, R11")
    w(f"{name}_next:")
    w("\tADDQ DX, R11")
    w("\tMOVQ R11, DI")
    w("\tDECQ R13")
    w(f"\tJNE {name}_tile")
    w(f"{name}_done:")
    w("\tVZEROUPPER")
    w("\tRET")

def kernel(name, offs):
    out = []
    w = out.append
    if offs:
        w(f"// func {name}(kc int, a, b *float32, offs *int, c *float32, ldc, d1 int, acc bool, tiles int, bias *float32)")
        w(f"TEXT ·{name}(SB), NOSPLIT, $0-80")
        w("\tMOVQ kc+0(FP), R9")
        w("\tMOVQ a+8(FP), AX")
        w("\tMOVQ b+16(FP), BX")
        w("\tMOVQ offs+24(FP), R10")
        w("\tMOVQ c+32(FP), DI")
        w("\tMOVQ ldc+40(FP), DX")
        w("\tSHLQ $2, DX")
        w("\tMOVQ d1+48(FP), R12")
        w("\tLEAQ (BX)(R12*4), R12")
        w("\tMOVBLZX acc+56(FP), R8")
        w("\tMOVQ tiles+64(FP), R13")
    else:
        w(f"// func {name}(kc int, a, b, c *float32, ldc int, acc bool, tiles int, bias *float32)")
        w(f"TEXT ·{name}(SB), NOSPLIT, $0-64")
        w("\tMOVQ kc+0(FP), R9")
        w("\tMOVQ a+8(FP), AX")
        w("\tMOVQ b+16(FP), R10")
        w("\tMOVQ c+24(FP), DI")
        w("\tMOVQ ldc+32(FP), DX")
        w("\tSHLQ $2, DX")
        w("\tMOVBLZX acc+40(FP), R8")
        w("\tMOVQ tiles+48(FP), R13")
    w("\tTESTQ R13, R13")
    w(f"\tJEQ {name}_done")
    w(f"{name}_tile:")
    w("\tMOVQ R9, CX")
    w("\tMOVQ R10, SI" if offs else "\tMOVQ R10, BX")
    for r in range(12):
        w(f"\tVXORPS Y{r}, Y{r}, Y{r}")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_store")
    w(f"{name}_loop:")
    if offs:
        w("\tMOVQ 0(SI), R11")
        w("\tVMOVUPS (BX)(R11*4), Y12")
        w("\tVMOVUPS (R12)(R11*4), Y13")
    else:
        w("\tVMOVUPS 0(BX), Y12")
        w("\tVMOVUPS 32(BX), Y13")
    for i in range(6):
        t = ["Y14", "Y15"][i % 2]
        w(f"\tVBROADCASTSS {4*i}(AX), {t}")
        for j in range(2):
            w(f"\tVFMADD231PS Y{12+j}, {t}, Y{i*2+j}")
    w("\tADDQ $24, AX")
    w("\tADDQ $8, SI" if offs else "\tADDQ $64, BX")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    w("\tMOVQ DI, R11")
    w("\tTESTQ R8, R8")
    w(f"\tJEQ {name}_overwrite")
    store_tile(w, name, 6, 2, 72 if offs else 56)
    return out

def kernel4x24(name):
    """The 4 x 24 tile (three 8-wide groups, at offs[p], offs[p]+d1 and
    offs[p]+d2): no rows wasted for 16 or 32 output channels, which the 6-row
    tile rounds up to 18 and 36."""
    out = []
    w = out.append
    w(f"// func {name}(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2 int, acc bool, tiles int, bias *float32)")
    w(f"TEXT ·{name}(SB), NOSPLIT, $0-88")
    w("\tMOVQ kc+0(FP), R9")
    w("\tMOVQ a+8(FP), AX")
    w("\tMOVQ b+16(FP), BX")
    w("\tMOVQ offs+24(FP), R10")
    w("\tMOVQ c+32(FP), DI")
    w("\tMOVQ ldc+40(FP), DX")
    w("\tSHLQ $2, DX")
    w("\tMOVQ d1+48(FP), R12")
    w("\tLEAQ (BX)(R12*4), R12")
    w("\tMOVQ d2+56(FP), R8")
    w("\tLEAQ (BX)(R8*4), R8")
    w("\tMOVQ tiles+72(FP), R13")
    w("\tTESTQ R13, R13")
    w(f"\tJEQ {name}_done")
    w(f"{name}_tile:")
    w("\tMOVQ R9, CX")
    w("\tMOVQ R10, SI")
    for r in range(12):
        w(f"\tVXORPS Y{r}, Y{r}, Y{r}")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_store")
    w(f"{name}_loop:")
    w("\tMOVQ 0(SI), R11")
    w("\tVMOVUPS (BX)(R11*4), Y12")
    w("\tVMOVUPS (R12)(R11*4), Y13")
    w("\tVMOVUPS (R8)(R11*4), Y14")
    for i in range(4):
        w(f"\tVBROADCASTSS {4*i}(AX), Y15")
        for j in range(3):
            w(f"\tVFMADD231PS Y{12+j}, Y15, Y{i*3+j}")
    w("\tADDQ $16, AX")
    w("\tADDQ $8, SI")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    w("\tMOVQ DI, R11")
    w("\tMOVBLZX acc+64(FP), CX")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_overwrite")
    store_tile(w, name, 4, 3, 80)
    return out

lines = ["// Code generated by gen_tiles.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "", '#include "textflag.h"', ""]
lines += kernel("kernelAVX2Tiles", False) + [""] + kernel("kernelAVX2OffsTiles", True) + [""] + kernel4x24("kernelAVX2Offs4x24")
open("tiles_amd64.s", "w").write("\n".join(lines) + "\n")
