#!/usr/bin/env python3
"""Writes tiles_amd64.s: the AVX2 and AVX-512 micro-kernels looped over a
column of row tiles in one call (run: python3 gen_tiles.py).

A call computes the first `rows` rows of C, tile by tile: C[mr x NR] =
A_panel * B_panel (+ C when acc, else + bias per row when bias is not nil),
the A panels consecutive (kc x mr each, k-major) and the same B panel for
all. The last tile may have fewer than mr rows (output channels not a
multiple of mr): its rows are stored straight into C like the others.
Small-K products (pointwise convolutions with 16-64 input channels) spend as
much on a Go call per tile, or on storing a partial tile through a scratch
tile, as on the tile's FMAs; one call per column of tiles removes both. The
plain variant reads B with a row stride (a packed panel, or B in place); the
offsets variants read the B panel where a convolution's input lies (see
Grid): row p at b[offs[p]:][:8], b[offs[p]+d1:][:8] (and +d2 for 4 x 24).
"""

def store_tile(w, name, mr, groups, bias_off, acc_flag="R8", reg="Y", vbytes=32, bias_reg="Y15", ldc_off=None, zero="Y14"):
    """The tail of a tile kernel after its k loop: store the first SI rows
    (SI = min(rows left, mr)) of the mr x groups accumulators (Y0.., 8
    floats a group) into C: added to it when acc, else (at
    {name}_overwrite) plus the bias at bias_off(FP) when that is not nil:
    C = A*B + bias, the sum a bias-filled C would give, without the pass
    that fills it. A last tile of fewer rows is stored by these vector
    stores too, not through a scratch tile. Then step to the next tile and
    return when no rows are left. acc_flag holds the acc argument, zero
    extended; its bit 2 (accRelu) clamps each sum below at +0 as it is
    stored, as a Relu after the product would (max(0, x): NaN and -0 pass
    through), in a copy of the store code. zero is a register free after
    the k loop."""
    acc = [[f"{reg}{i*groups+j}" for j in range(groups)] for i in range(mr)]

    def rows(name_end, emit_row):
        for i in range(mr):
            emit_row(i)
            if i < mr - 1:
                w(f"\tCMPQ SI, ${i+1}")
                w(f"\tJEQ {name_end}")
                w("\tADDQ DX, R11")

    if ldc_off is not None:  # DX held a B base in the k loop
        w(f"\tMOVQ ldc+{ldc_off}(FP), DX")
        w("\tSHLQ $2, DX")
    w("\tMOVQ DI, R11")
    w(f"\tMOVQ ${mr}, SI")
    w("\tCMPQ R13, SI")
    w("\tCMOVQLT R13, SI")
    w(f"\tTESTQ $4, {acc_flag}")
    w(f"\tJNE {name}_relu")
    nxt = f"{name}_next"

    def body(p, relu):
        def clamp(r):
            if relu:
                w(f"\tVMAXPS {r}, {zero}, {r}")
        w(f"\tCMPQ {acc_flag}, ${5 if relu else 1}")
        w(f"\tJNE {p}_overwrite")

        def add_row(i):
            for j, r in enumerate(acc[i]):
                w(f"\tVADDPS {vbytes*j}(R11), {r}, {r}")
                clamp(r)
                w(f"\tVMOVUPS {r}, {vbytes*j}(R11)")
        rows(nxt, add_row)
        w(f"\tJMP {nxt}")
        w(f"{p}_overwrite:")
        w(f"\tMOVQ bias+{bias_off}(FP), CX")
        w("\tTESTQ CX, CX")
        w(f"\tJEQ {p}_plain")

        def bias_row(i):
            w(f"\tVBROADCASTSS {4*i}(CX), {bias_reg}")
            for j, r in enumerate(acc[i]):
                w(f"\tVADDPS {bias_reg}, {r}, {r}")
                clamp(r)
                w(f"\tVMOVUPS {r}, {vbytes*j}(R11)")
        rows(f"{p}_biased", bias_row)
        w(f"{p}_biased:")
        # The bias pointer, kept in its argument slot, moves on by a tile's rows.
        w(f"\tADDQ ${4*mr}, CX")
        w(f"\tMOVQ CX, bias+{bias_off}(FP)")
        w(f"\tJMP {nxt}")
        w(f"{p}_plain:")

        def plain_row(i):
            for j, r in enumerate(acc[i]):
                clamp(r)
                w(f"\tVMOVUPS {r}, {vbytes*j}(R11)")
        rows(nxt, plain_row)

    body(name, False)
    w(f"\tJMP {nxt}")
    w(f"{name}_relu:")
    w(f"\tVXORPS {zero}, {zero}, {zero}")
    body(f"{name}_r", True)
    w(f"{nxt}:")
    w("\tMOVQ DX, R11")
    w(f"\tIMULQ ${mr}, R11")
    w("\tADDQ R11, DI")
    w(f"\tSUBQ ${mr}, R13")
    w(f"\tJGT {name}_tile")
    w(f"{name}_done:")
    w("\tVZEROUPPER")
    w("\tRET")

def plain_prologue(w, name):
    """The header and argument loads of a tile kernel that reads B in place:
    kc in R9, a in AX, b in R10, ldb and ldc in bytes in R12 and DX, c in DI."""
    w(f"// func {name}(kc int, a, b *float32, ldb int, c *float32, ldc int, acc bool, rows int, bias *float32)")
    w(f"TEXT ·{name}(SB), NOSPLIT, $0-72")
    w("\tMOVQ kc+0(FP), R9")
    w("\tMOVQ a+8(FP), AX")
    w("\tMOVQ b+16(FP), R10")
    w("\tMOVQ ldb+24(FP), R12")
    w("\tSHLQ $2, R12")
    w("\tMOVQ c+32(FP), DI")
    w("\tMOVQ ldc+40(FP), DX")
    w("\tSHLQ $2, DX")


def chain_load(w, name, mr, groups, flag, reg="Y", vbytes=32):
    """For acc mode 2 (chain: a k block after the first of a product split
    into k blocks), start the accumulators from C's first min(R13, mr) rows
    (DI, rows DX bytes apart) instead of zero, so the FMAs continue the
    chains the block before stored and the sums are those of one block.
    flag holds the acc argument, zero extended."""
    w(f"\tBTQ $1, {flag}")
    w(f"\tJCC {name}_k")
    w("\tMOVQ DI, R11")
    for i in range(mr):
        for j in range(groups):
            w(f"\tVMOVUPS {vbytes*j}(R11), {reg}{i*groups+j}")
        if i < mr - 1:
            w(f"\tCMPQ R13, ${i+1}")
            w(f"\tJEQ {name}_k")
            w("\tADDQ DX, R11")
    w(f"{name}_k:")


def offs_prologue(w, name, ds, frame):
    """The header and first argument loads of a tile kernel that reads B
    through offsets, groups at d1..: kc in R9, a in AX, b in BX, offs in
    R10, c in DI."""
    w(f"// func {name}(kc int, a, b *float32, offs *int, c *float32, ldc, {ds} int, acc bool, rows int, bias *float32)")
    w(f"TEXT ·{name}(SB), NOSPLIT, $0-{frame}")
    w("\tMOVQ kc+0(FP), R9")
    w("\tMOVQ a+8(FP), AX")
    w("\tMOVQ b+16(FP), BX")
    w("\tMOVQ offs+24(FP), R10")
    w("\tMOVQ c+32(FP), DI")


def kernel(name, offs):
    """The 6 x 16 tile, B read in place (row p at b + p*ldb; a packed panel
    is ldb 16) or, with offs, through offsets."""
    out = []
    w = out.append
    if offs:
        offs_prologue(w, name, "d1", 80)
        w("\tMOVQ ldc+40(FP), DX")
        w("\tSHLQ $2, DX")
        w("\tMOVQ d1+48(FP), R12")
        w("\tLEAQ (BX)(R12*4), R12")
        w("\tMOVBLZX acc+56(FP), R8")
        w("\tMOVQ rows+64(FP), R13")
    else:
        plain_prologue(w, name)
        w("\tMOVBLZX acc+48(FP), R8")
        w("\tMOVQ rows+56(FP), R13")
    w("\tTESTQ R13, R13")
    w(f"\tJLE {name}_done")
    w(f"{name}_tile:")
    w("\tMOVQ R9, CX")
    w("\tMOVQ R10, SI" if offs else "\tMOVQ R10, BX")
    for r in range(12):
        w(f"\tVXORPS Y{r}, Y{r}, Y{r}")
    if not offs:
        chain_load(w, name, 6, 2, "R8")
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
    w("\tADDQ $8, SI" if offs else "\tADDQ R12, BX")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    store_tile(w, name, 6, 2, 72 if offs else 64)
    return out

def kernel4x24(name, groups=3):
    """The 4 x 24 tile (three 8-wide groups, at offs[p], offs[p]+d1 and
    offs[p]+d2): no rows wasted for 16 or 32 output channels, which the 6-row
    tile rounds up to 18 and 36. With groups 1 or 2 it is the 4 x 8 or 4 x 16
    tile of a ragged last panel (a band of 128 columns ends in 8), with the
    same arguments (the unused distances ignored)."""
    out = []
    w = out.append
    w(f"// func {name}(kc int, a, b *float32, offs *int, c *float32, ldc, d1, d2 int, acc bool, rows int, bias *float32)")
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
    w("\tMOVQ rows+72(FP), R13")
    w("\tTESTQ R13, R13")
    w(f"\tJLE {name}_done")
    w(f"{name}_tile:")
    w("\tMOVQ R9, CX")
    w("\tMOVQ R10, SI")
    for r in range(4 * groups):
        w(f"\tVXORPS Y{r}, Y{r}, Y{r}")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_store")
    w(f"{name}_loop:")
    w("\tMOVQ 0(SI), R11")
    for j, base in enumerate(["BX", "R12", "R8"][:groups]):
        w(f"\tVMOVUPS ({base})(R11*4), Y{12+j}")
    for i in range(4):
        w(f"\tVBROADCASTSS {4*i}(AX), Y15")
        for j in range(groups):
            w(f"\tVFMADD231PS Y{12+j}, Y15, Y{i*groups+j}")
    w("\tADDQ $16, AX")
    w("\tADDQ $8, SI")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    w("\tMOVBLZX acc+64(FP), CX")
    store_tile(w, name, 4, groups, 80, "CX")
    return out

def fma_row(w, i, addr, regbcast):
    """Row i of an AVX-512 12 or 8 x 32 tile for one k step: A's value at
    addr times B's two registers (Z24, Z25) into the row's accumulators,
    broadcast to a register (one of Z26-Z29 in turn) with regbcast, else
    embedded in the FMAs."""
    if regbcast:
        t = f"Z{26 + i % 4}"
        w(f"\tVBROADCASTSS {addr}, {t}")
        for j in range(2):
            w(f"\tVFMADD231PS Z{24+j}, {t}, Z{i*2+j}")
        return
    for j in range(2):
        w(f"\tVFMADD231PS.BCST {addr}, Z{24+j}, Z{i*2+j}")

def kernel_avx512(name, offs, mr, contiguous=False, regbcast=False):
    """The AVX-512 mr x 32 tile (mr 12 or 8), B read in place (row p at
    b + p*ldb) or, with offs, through offsets as the AVX2 offsets kernels
    read it: four 8-wide groups per row p, at offs[p] and offs[p]+d1, d2,
    d3, paired into two 16-wide registers (a 256-bit load and a 256-bit
    insert each), so a panel's groups need only lie within an input row 8
    at a time, as for the AVX2 kernels. With offs, DX holds group 3's base
    in the k loop and C's row stride in the store.

    contiguous (with offs): the variant for panels whose four groups are
    consecutive (d1, d2, d3 = 8, 16, 24; the arguments are then not read):
    two 512-bit loads a row. The inserts run on a port the FMAs use, so
    paired in L1 these kernels take 0.90x the time (12 rows, 144 taps), and
    0.93x with the taps over a 56x56 layout; the same FMAs in the same
    order, so the same bits.

    regbcast: A's values are broadcast to a register (VBROADCASTSS, one of
    Z26-Z29 in turn) that the row's two FMAs read, instead of each FMA's
    embedded broadcast: 12 loads a k step instead of 24. Zen 5 runs the
    FMAs at two a cycle only so (1024^3 GEMM, CPU 0, 3 alternating runs:
    150-163 -> 169-182 GFLOP/s; 512x784x1152 157-159 -> 177-180), where
    Sapphire Rapids ran the embedded form in 0.88-0.96 of the time: both
    are built and the CPU's vendor picks (kernel_amd64.go). Same FMAs in
    the same order, so the same bits."""
    out = []
    w = out.append
    if offs:
        offs_prologue(w, name, "d1, d2, d3", 96)
        if not contiguous:
            w("\tMOVQ d1+48(FP), R12")
            w("\tLEAQ (BX)(R12*4), R12")
            w("\tMOVQ d2+56(FP), R8")
            w("\tLEAQ (BX)(R8*4), R8")
        w("\tMOVQ rows+80(FP), R13")
    else:
        plain_prologue(w, name)
        w("\tMOVBLZX acc+48(FP), R8")
        w("\tMOVQ rows+56(FP), R13")
    w("\tTESTQ R13, R13")
    w(f"\tJLE {name}_done")
    w(f"{name}_tile:")
    w("\tMOVQ R9, CX")
    if offs:
        w("\tMOVQ R10, SI")
        if not contiguous:
            w("\tMOVQ d3+64(FP), DX")
            w("\tLEAQ (BX)(DX*4), DX")
    else:
        w("\tMOVQ R10, BX")
    for r in range(2 * mr):
        w(f"\tVXORPS Z{r}, Z{r}, Z{r}")
    if not offs:
        chain_load(w, name, mr, 2, "R8", reg="Z", vbytes=64)
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_store")
    w(f"{name}_loop:")
    if offs and contiguous:
        w("\tMOVQ 0(SI), R11")
        w("\tVMOVUPS (BX)(R11*4), Z24")
        w("\tVMOVUPS 64(BX)(R11*4), Z25")
    elif offs:
        w("\tMOVQ 0(SI), R11")
        w("\tVMOVUPS (BX)(R11*4), Y24")
        w("\tVINSERTF64X4 $1, (R12)(R11*4), Z24, Z24")
        w("\tVMOVUPS (R8)(R11*4), Y25")
        w("\tVINSERTF64X4 $1, (DX)(R11*4), Z25, Z25")
    else:
        w("\tVMOVUPS 0(BX), Z24")
        w("\tVMOVUPS 64(BX), Z25")
    # A's values come in as the FMAs' embedded broadcasts (one load each,
    # fused with the FMA) rather than a broadcast to a register that two
    # FMAs then read: fewer instructions for the front end, the same bits.
    # In L1, paired runs: 0.88-0.96 of the time (kc 16-256, 1 and 6 tiles).
    for i in range(mr):
        fma_row(w, i, f"{4*i}(AX)", regbcast)
    w(f"\tADDQ ${4*mr}, AX")
    w("\tADDQ $8, SI" if offs else "\tADDQ R12, BX")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    w(f"\tMOVBLZX acc+{72 if offs else 48}(FP), CX")
    if offs:
        store_tile(w, name, mr, 2, 88, "CX", reg="Z", vbytes=64, bias_reg="Z31", ldc_off=40, zero="Z30")
    else:
        store_tile(w, name, mr, 2, 64, "CX", reg="Z", vbytes=64, bias_reg="Z31", zero="Z30")
    return out

def kernel_avx512_a(name, regbcast):
    """kernel_avx512's 12 x 32 tile (B read in place, row p at b + p*ldb)
    with A read in place too: row i of a tile at a + i*lda, its value for
    step p at + 4p, so a product whose left operand is an activation (a
    transformer's x @ W, attention's products) is not packed first (a third
    of a 197 x 197 by 197 x 64 product's time went to packing A). rows must
    be a multiple of 12: a partial tile would read rows past A's end, so
    the caller packs the last rows. The row bases are four registers three
    rows apart, each row one of (base), (base)(lda*1), (base)(lda*2); the
    same FMAs in the same order as the packed kernel, so the same bits."""
    mr = 12
    out = []
    w = out.append
    w(f"// func {name}(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc accMode, rows int, bias *float32)")
    w(f"TEXT ·{name}(SB), NOSPLIT, $0-80")
    w("\tMOVQ a+8(FP), AX")
    w("\tMOVQ lda+16(FP), R14")
    w("\tSHLQ $2, R14")
    w("\tMOVQ b+24(FP), R10")
    w("\tMOVQ ldb+32(FP), R12")
    w("\tSHLQ $2, R12")
    w("\tMOVQ c+40(FP), DI")
    w("\tMOVQ ldc+48(FP), DX")
    w("\tSHLQ $2, DX")
    w("\tMOVQ rows+64(FP), R13")
    w("\tTESTQ R13, R13")
    w(f"\tJLE {name}_done")
    w(f"{name}_tile:")
    w("\tMOVQ kc+0(FP), CX")
    w("\tMOVQ R10, BX")
    for r in range(2 * mr):
        w(f"\tVXORPS Z{r}, Z{r}, Z{r}")
    w("\tMOVBLZX acc+56(FP), R8")
    chain_load(w, name, mr, 2, "R8", reg="Z", vbytes=64)
    bases = ["SI", "R8", "R9", "R11"]
    w("\tMOVQ AX, SI")
    for prev, b in zip(bases, bases[1:]):
        w(f"\tLEAQ ({prev})(R14*2), {b}")
        w(f"\tADDQ R14, {b}")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_store")
    w(f"{name}_loop:")
    w("\tVMOVUPS 0(BX), Z24")
    w("\tVMOVUPS 64(BX), Z25")
    for i in range(mr):
        base = bases[i // 3]
        fma_row(w, i, [f"({base})", f"({base})(R14*1)", f"({base})(R14*2)"][i % 3], regbcast)
    for b in bases:
        w(f"\tADDQ $4, {b}")
    w("\tADDQ R12, BX")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    # The next tile's rows of A start 12 rows on.
    w("\tLEAQ (AX)(R14*8), AX")
    w("\tLEAQ (AX)(R14*4), AX")
    w("\tMOVBLZX acc+56(FP), CX")
    store_tile(w, name, mr, 2, 72, "CX", reg="Z", vbytes=64, bias_reg="Z31", zero="Z30")
    return out

lines = ["// Code generated by gen_tiles.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "", '#include "textflag.h"', ""]
lines += kernel("kernelAVX2Tiles", False) + [""] + kernel("kernelAVX2OffsTiles", True) + [""] + kernel4x24("kernelAVX2Offs4x24")
lines += [""] + kernel4x24("kernelAVX2Offs4x8", 1) + [""] + kernel4x24("kernelAVX2Offs4x16", 2)
lines += [""] + kernel_avx512("kernelAVX512Tiles", False, 12) + [""] + kernel_avx512("kernelAVX512OffsTiles", True, 12)
lines += [""] + kernel_avx512("kernelAVX512Offs8Tiles", True, 8)
lines += [""] + kernel_avx512("kernelAVX512OffsTilesC", True, 12, contiguous=True)
lines += [""] + kernel_avx512("kernelAVX512Offs8TilesC", True, 8, contiguous=True)
for base, offs, mr, contig in [("kernelAVX512Tiles", False, 12, False), ("kernelAVX512OffsTiles", True, 12, False),
                               ("kernelAVX512Offs8Tiles", True, 8, False), ("kernelAVX512OffsTilesC", True, 12, True),
                               ("kernelAVX512Offs8TilesC", True, 8, True)]:
    lines += [""] + kernel_avx512(base + "BR", offs, mr, contiguous=contig, regbcast=True)
lines += [""] + kernel_avx512_a("kernelAVX512TilesA", False) + [""] + kernel_avx512_a("kernelAVX512TilesABR", True)
open("tiles_amd64.s", "w").write("\n".join(lines) + "\n")
