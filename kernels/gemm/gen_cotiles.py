#!/usr/bin/env python3
"""Writes cotiles_amd64.s (run: python3 gen_cotiles.py): the AVX-512 kernels
of CoTile, direct convolutions with output channels in the vector lanes.

coTiles{p}(k int, w, x *float32, offs *int, tile, bias *float32, first, last bool, out *float32, plane, masks int)
computes a tile of p output pixels (1 to 14) by 32 output channels over k
taps: for each tap t (an input channel, kernel row and column) the tile's
weights w[t*32:][:32] in two vectors, and for each pixel i the input
x[offs[t]+i] broadcast and multiplied into the pixel's two accumulators:
one FMA chain per output over the taps in order, from zero, as the GEMM
tiles sum a k block. The first k block then adds bias[:32] (when bias is
not nil), a later one the tile (the blocks before, tile[i*32:] for pixel
i), as the GEMM adds C. The last block writes the sums to the output
(transposed in registers: transpose_store), channel 16c+j of pixel i at out[(16c+j)*plane+i] for the channels whose
bit is set in masks (bits 0-15 block 0, 16-31 block 1); the others go to
the tile. 14 pixels take 28 accumulators; 4 or more keep both FMA ports
busy (8 chains in flight).
"""

SIG = "(k int, w, x *float32, offs *int, tile, bias *float32, first, last bool, out *float32, plane, masks int)"

def kernel(p, regbcast=False, cb=2):
    """regbcast: the input value broadcast to Z30 or Z31 (free in the k
    loop) that the pixel's two FMAs read, for AMD's Zen 5 (see gen_tiles.py's
    kernel_avx512); the coTiles{p}BR kernels. cb=1: the coTilesH{p} kernels,
    for a last block of at most 16 channels (48 = 32 + 16): only the first
    vector of each tap's 32 weights, one FMA per pixel and tap where the
    32-channel kernel computed 16 empty lanes beside it; the same chains in
    the same order, so the same bits, and a tile of 16 floats a pixel."""
    name = f"coTiles{'H' if cb == 1 else ''}{p}" + ("BR" if regbcast else "")
    acc = lambda i, c: f"Z{i*cb+c}"
    wreg = ["Z28", "Z29"]

    def every(line):
        """One line per accumulator: line(pixel, block, register, its tile offset)."""
        for i in range(p):
            for c in range(cb):
                out.append(line(i, c, acc(i, c), 64*(i*cb+c)))

    out = [f"// func {name}{SIG}",
           f"TEXT ·{name}(SB), NOSPLIT, $0-80",
           "\tMOVQ k+0(FP), CX",
           "\tMOVQ w+8(FP), AX",
           "\tMOVQ x+16(FP), BX",
           "\tMOVQ offs+24(FP), SI",
           "\tMOVQ tile+32(FP), DI"]
    every(lambda i, c, z, off: f"\tVXORPS {z}, {z}, {z}")
    out += ["\tTESTQ CX, CX", f"\tJEQ {name}_sum", f"{name}_loop:",
            "\tMOVQ (SI), R11", "\tLEAQ (BX)(R11*4), R11"]
    for c in range(cb):
        out.append(f"\tVMOVUPS {64*c}(AX), {wreg[c]}")
    for i in range(p):
        # The input value as the FMAs' embedded broadcast (see
        # gen_tiles.py's kernel_avx512): same bits, fewer instructions.
        if regbcast:
            t = f"Z{30 + i % 2}"
            out.append(f"\tVBROADCASTSS {4*i}(R11), {t}")
            for c in range(cb):
                out.append(f"\tVFMADD231PS {wreg[c]}, {t}, {acc(i,c)}")
            continue
        for c in range(cb):
            out.append(f"\tVFMADD231PS.BCST {4*i}(R11), {wreg[c]}, {acc(i,c)}")
    out += ["\tADDQ $128, AX", "\tADDQ $8, SI", "\tDECQ CX", f"\tJNE {name}_loop",
            # The first k block adds the bias, a later one the tile (the
            # sums of the blocks before): the GEMM tiles' order.
            f"{name}_sum:",
            "\tMOVBLZX first+48(FP), CX",
            "\tTESTQ CX, CX",
            f"\tJEQ {name}_addtile",
            "\tMOVQ bias+40(FP), R8",
            "\tTESTQ R8, R8",
            f"\tJEQ {name}_out"]
    for c in range(cb):
        out.append(f"\tVMOVUPS {64*c}(R8), {wreg[c]}")
    every(lambda i, c, z, off: f"\tVADDPS {wreg[c]}, {z}, {z}")
    out += [f"\tJMP {name}_out", f"{name}_addtile:"]
    every(lambda i, c, z, off: f"\tVADDPS {off}(DI), {z}, {z}")
    out += [f"{name}_out:",
            "\tMOVBLZX last+49(FP), CX",
            "\tTESTQ CX, CX",
            f"\tJNE {name}_scatter"]
    every(lambda i, c, z, off: f"\tVMOVUPS {z}, {off}(DI)")
    out += ["\tVZEROUPPER", "\tRET",
            # Lane j of block c goes to channel 16c+j: out + (16c+j)*plane
            # + i for pixel i, the channels masks allows.
            f"{name}_scatter:",
            "\tMOVQ out+56(FP), R8",
            "\tMOVQ plane+64(FP), DX",
            "\tSHLQ $2, DX",
            "\tMOVQ masks+72(FP), BX",
            f"\tMOVL ${(1 << p) - 1}, AX",
            "\tKMOVW AX, K1"]
    for c in range(cb):
        out += transpose_store(name, p, c, cb)
    out += ["\tVZEROUPPER", "\tRET", ""]
    return out


def transpose_store(name, p, c, cb=2):
    """The last block's stores for channel block c: its p pixel registers
    (Z(2i+c), channels in the lanes) transposed in registers as a 16 x 16
    block (rows past p taken from free registers: their lanes are not
    stored), then channel j's p pixels stored as one masked vector (K1) at
    R8 + j*DX, R8 advancing by DX (plane*4) a channel, for the channels
    whose bit is set in BX. A scatter of the 28 registers cost as much as
    a tenth of whole convolution nets (SqueezeNet, MobileNetV2, ResNet-50)."""
    out = []
    rows = [f"Z{cb*i+c}" for i in range(p)]
    free = [f"Z{r}" for r in range(cb*p, 32)]
    rows += free[:16-p]
    temps = free[16-p:]
    assert temps

    def pair(op_lo, op_hi, a, b, imm=("", "")):
        # lo(a, b) into a free register, hi(a, b) over b; a is then free.
        t = temps.pop()
        out.append(f"\t{op_lo} {imm[0]}{b}, {a}, {t}")
        out.append(f"\t{op_hi} {imm[1]}{b}, {a}, {b}")
        temps.insert(0, a)
        return t, b

    # 32-bit interleave of row pairs, then 64-bit of those: S[g][j] holds,
    # in 128-bit block L, rows 4g..4g+3 of column 4L+j.
    lo, hi = [], []
    for k in range(8):
        l, h = pair("VUNPCKLPS", "VUNPCKHPS", rows[2*k], rows[2*k+1])
        lo.append(l)
        hi.append(h)
    S = []
    for g in range(4):
        s0, s1 = pair("VUNPCKLPD", "VUNPCKHPD", lo[2*g], lo[2*g+1])
        s2, s3 = pair("VUNPCKLPD", "VUNPCKHPD", hi[2*g], hi[2*g+1])
        S.append([s0, s1, s2, s3])
    # A 4 x 4 transpose of 128-bit blocks per j: column 4L+j is block L
    # of S[0..3][j].
    T = [None] * 16
    for j in range(4):
        u0, u1 = pair("VSHUFF32X4", "VSHUFF32X4", S[0][j], S[1][j], ("$0x44, ", "$0xee, "))
        u2, u3 = pair("VSHUFF32X4", "VSHUFF32X4", S[2][j], S[3][j], ("$0x44, ", "$0xee, "))
        T[j], T[4+j] = pair("VSHUFF32X4", "VSHUFF32X4", u0, u2, ("$0x88, ", "$0xdd, "))
        T[8+j], T[12+j] = pair("VSHUFF32X4", "VSHUFF32X4", u1, u3, ("$0x88, ", "$0xdd, "))
    for j in range(16):
        skip = f"{name}_c{c}_{j}"
        out += [f"\tBTQ ${16*c+j}, BX", f"\tJCC {skip}", f"\tVMOVUPS {T[j]}, K1, (R8)", f"{skip}:", "\tADDQ DX, R8"]
    return out

def decls():
    out = ["// Code generated by gen_cotiles.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "", "package gemm", ""]
    for p in range(1, 15):
        out += ["//go:noescape", f"func coTiles{p}{SIG}", ""]
        out += ["//go:noescape", f"func coTiles{p}BR{SIG}", ""]
        out += ["//go:noescape", f"func coTilesH{p}{SIG}", ""]
        out += ["//go:noescape", f"func coTilesH{p}BR{SIG}", ""]
    out += ["// haveCoTiles: this build has the kernels.", "const haveCoTiles = true", "",
            "// coTile calls the kernel for p pixels: a direct call, so that the",
            "// compiler knows (go:noescape) that no pointer argument escapes, where a",
            "// call through a func value would move the caller's arrays to the heap.",
            f"func coTile(p int, {SIG[1:]} {{",
            "\tswitch p {"]
    args = "k, w, x, offs, tile, bias, first, last, out, plane, masks"
    for p in range(1, 15):
        out += [f"\tcase {p}:", f"\t\tcoTiles{p}({args})"]
    out += ["\t}", "}", "",
            "// coTileBR is coTile with the register-broadcast kernels (regBroadcast).",
            f"func coTileBR(p int, {SIG[1:]} {{",
            "\tswitch p {"]
    for p in range(1, 15):
        out += [f"\tcase {p}:", f"\t\tcoTiles{p}BR({args})"]
    out += ["\t}", "}", ""]
    for br in ("", "BR"):
        out += [f"// coTileH{br} is coTile{br} with the kernels of a block of at most 16 channels.",
                f"func coTileH{br}(p int, {SIG[1:]} {{",
                "\tswitch p {"]
        for p in range(1, 15):
            out += [f"\tcase {p}:", f"\t\tcoTilesH{p}{br}({args})"]
        out += ["\t}", "}", ""]
    return out

lines = ["// Code generated by gen_cotiles.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "", '#include "textflag.h"', ""]
for p in range(1, 15):
    lines += kernel(p)
for p in range(1, 15):
    lines += kernel(p, regbcast=True)
for p in range(1, 15):
    lines += kernel(p, cb=1)
for p in range(1, 15):
    lines += kernel(p, regbcast=True, cb=1)
open("cotiles_amd64.s", "w").write("\n".join(lines))
open("cotiles_fns_amd64.go", "w").write("\n".join(decls()).rstrip("\n") + "\n")
