#!/usr/bin/env python3
"""Writes small_amd64.s: the small-product kernels (run: python3 gen_small.py).

A call computes up to R rows of C by the columns of one or two vectors,
A's rows read in place through R row pointers (a *[6]*float32; rows past
the last repeat it, read and never stored) and B's rows ldb floats apart:
C = A * B, or C + A * B with acc, each output a chain of FMAs from zero in
ascending p and then C added, as the tile kernels sum (small.go).

- smallAVX512 (R = 4) and small6AVX512 (R = 6): 32 columns, the two
  16-float halves under the lane masks m0 and m1 (K1, K2); a loop on one
  vector when m1 is empty, whose stores then leave the second half alone
  (a store under an empty mask is slow on AMD's cores).
- smallAVX2 (R = 4): 16 columns (cols, 1-16), two vectors a row past 8
  columns, one up to 8; the last vector masked by Y15 on loads, and on
  stores unless the row is whole (VMASKMOVPS stores are slow on AMD).

Go assembler operand order is Intel's reversed: "VFMADD231PS b, a, acc" is
acc += a * b.
"""

A_REGS = ["AX", "SI", "R8", "R9", "R12", "R13"]


def load_rows(rows):
    return ["\tMOVQ a+8(FP), DX"] + [f"\tMOVQ {8 * i}(DX), {A_REGS[i]}" for i in range(rows)]


def advance(rows):
    return [f"\tADDQ $4, {A_REGS[i]}" for i in range(rows)] + ["\tADDQ R10, BX", "\tDECQ CX"]


def avx512(name, rows):
    out = [f"// func {name}(k int, a *[6]*float32, b *float32, ldb int, c *float32, ldc, rows int, m0, m1 uint16, acc bool)",
           f"TEXT ·{name}(SB), NOSPLIT, $0-61", "\tMOVQ k+0(FP), CX"] + load_rows(rows)
    out += ["\tMOVQ b+16(FP), BX", "\tMOVQ ldb+24(FP), R10", "\tSHLQ $2, R10",
            "\tMOVWLZX m0+56(FP), R11", "\tKMOVW R11, K1", "\tMOVWLZX m1+58(FP), R11", "\tKMOVW R11, K2"]
    out += [f"\tVXORPS Z{i}, Z{i}, Z{i}" for i in range(2 * rows)]
    out += ["\tTESTQ CX, CX", f"\tJEQ {name}_store2", "\tTESTQ R11, R11", f"\tJNE {name}_loop2"]
    for halves in (1, 2):
        out += [f"{name}_loop{halves}:"]
        out += [f"\tVMOVUPS.Z {64 * h}(BX), K{h + 1}, Z{16 + h}" for h in range(halves)]
        for i in range(rows):
            out += [f"\tVBROADCASTSS 0({A_REGS[i]}), Z{18 + i}"]
            out += [f"\tVFMADD231PS Z{16 + h}, Z{18 + i}, Z{2 * i + h}" for h in range(halves)]
        out += advance(rows) + [f"\tJNE {name}_loop{halves}", f"\tJMP {name}_store{halves}"]
    for halves in (1, 2):
        out += [f"{name}_store{halves}:", "\tMOVQ c+32(FP), DI", "\tMOVQ ldc+40(FP), DX", "\tSHLQ $2, DX",
                "\tMOVQ rows+48(FP), CX", "\tMOVBLZX acc+60(FP), R8", "\tTESTQ R8, R8", f"\tJEQ {name}_over{halves}"]
        for acc in (True, False):
            if not acc:
                out += [f"{name}_over{halves}:"]
            for i in range(rows):
                if i > 0:
                    out += [f"\tCMPQ CX, ${i + 1}", f"\tJLT {name}_done", "\tADDQ DX, DI"]
                for h in range(halves):
                    if acc:
                        out += [f"\tVMOVUPS.Z {64 * h}(DI), K{h + 1}, Z{16 + h}", f"\tVADDPS Z{16 + h}, Z{2 * i + h}, Z{2 * i + h}"]
                    out += [f"\tVMOVUPS Z{2 * i + h}, K{h + 1}, {64 * h}(DI)"]
            out += [f"\tJMP {name}_done"]
    return out + [f"{name}_done:", "\tVZEROUPPER", "\tRET", ""]


def avx2():
    name = "smallAVX2"
    out = [f"// func {name}(k int, a *[6]*float32, b *float32, ldb int, c *float32, ldc, rows, cols int, acc bool)",
           f"TEXT ·{name}(SB), NOSPLIT, $0-65", "\tMOVQ k+0(FP), CX"] + load_rows(4)
    out += ["\tMOVQ b+16(FP), BX", "\tMOVQ ldb+24(FP), R10", "\tSHLQ $2, R10",
            # Y15: the lanes of the last vector below R11's live columns
            "\tMOVQ cols+56(FP), R11", "\tMOVQ R11, DX", "\tCMPQ DX, $8", f"\tJLE {name}_mask", "\tSUBQ $8, DX",
            f"{name}_mask:", "\tVMOVQ DX, X12", "\tVPBROADCASTD X12, Y12", "\tVMOVDQU smallLanes<>(SB), Y13",
            "\tVPCMPGTD Y13, Y12, Y15"]
    out += [f"\tVXORPS Y{i}, Y{i}, Y{i}" for i in range(8)]
    out += ["\tTESTQ CX, CX", f"\tJEQ {name}_store", "\tCMPQ R11, $8", f"\tJLE {name}_loop1"]
    for vecs in (2, 1):
        out += [f"{name}_loop{vecs}:"]
        out += ["\tVMOVUPS (BX), Y8", "\tVMASKMOVPS 32(BX), Y15, Y9"] if vecs == 2 else ["\tVMASKMOVPS (BX), Y15, Y8"]
        for i in range(4):
            out += [f"\tVBROADCASTSS 0({A_REGS[i]}), Y{10 + i % 2}"]
            out += [f"\tVFMADD231PS Y{8 + v}, Y{10 + i % 2}, Y{2 * i + v}" for v in range(vecs)]
        out += advance(4) + [f"\tJNE {name}_loop{vecs}", f"\tJMP {name}_store"]
    out += [f"{name}_store:", "\tMOVQ c+32(FP), DI", "\tMOVQ ldc+40(FP), DX", "\tSHLQ $2, DX", "\tMOVQ rows+48(FP), CX",
            "\tMOVBLZX acc+64(FP), R13", "\tCMPQ R11, $16", f"\tJEQ {name}_two_full", "\tCMPQ R11, $8",
            f"\tJEQ {name}_one_full", f"\tJLT {name}_one_mask"]
    # The vectors of a row: (register, offset, masked) for each variant.
    variants = {"two_mask": [(0, 0, False), (1, 32, True)], "two_full": [(0, 0, False), (1, 32, False)],
                "one_full": [(0, 0, False)], "one_mask": [(0, 0, True)]}
    for v, vecs in variants.items():
        out += [f"{name}_{v}:"]
        for i in range(4):
            if i > 0:
                out += [f"\tCMPQ CX, ${i + 1}", f"\tJLT {name}_done", "\tADDQ DX, DI"]
            out += ["\tTESTQ R13, R13", f"\tJEQ {name}_{v}_w{i}"]
            for reg, off, masked in vecs:
                y = f"Y{2 * i + reg}"
                at = f"{off}(DI)" if off else "(DI)"
                out += [f"\tVMASKMOVPS {at}, Y15, Y12", f"\tVADDPS Y12, {y}, {y}"] if masked else [f"\tVADDPS {at}, {y}, {y}"]
            out += [f"{name}_{v}_w{i}:"]
            for reg, off, masked in vecs:
                y = f"Y{2 * i + reg}"
                at = f"{off}(DI)" if off else "(DI)"
                out += [f"\tVMASKMOVPS {y}, Y15, {at}"] if masked else [f"\tVMOVUPS {y}, {at}"]
        out += [f"\tJMP {name}_done"]
    out += [f"{name}_done:", "\tVZEROUPPER", "\tRET", ""]
    out += [f"DATA smallLanes<>+{4 * i}(SB)/4, ${i}" for i in range(8)]
    return out + ["GLOBL smallLanes<>(SB), RODATA|NOPTR, $32"]


out = ["// Code generated by gen_small.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "",
       '#include "textflag.h"', ""]
out += avx512("smallAVX512", 4) + avx512("small6AVX512", 6) + avx2()
open("small_amd64.s", "w").write("\n".join(out) + "\n")
