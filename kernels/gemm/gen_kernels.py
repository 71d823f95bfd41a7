#!/usr/bin/env python3
"""Writes kernel_amd64.s: the SGEMM micro-kernels (run: python3 gen_kernels.py).

Each kernel computes an MR x NR tile C = A_panel * B_panel (+ C when acc), where the
A panel is kc x MR and the B panel kc x NR, both k-major. Accumulators stay in
registers for the whole k loop: per k step, NR/W vector loads of B, then for each
row a broadcast of A[i] and NR/W fused multiply-adds.
"""

def kernel(name, mr, nr, reg, width, out, strided=False, regbcast=False):
    """regbcast (AVX-512): A's values go to a register by VBROADCASTSS, as
    the AVX2 kernels do, instead of as the FMAs' embedded broadcasts: the
    form AMD's Zen 5 runs faster (see gen_tiles.py's kernel_avx512)."""
    vecs = nr // width
    nacc = mr * vecs
    breg = [f"{reg}{nacc + j}" for j in range(vecs)]
    bc = [f"{reg}{nacc + vecs}", f"{reg}{nacc + vecs + 1}"]
    vbytes = width * 4
    w = out.append
    accOff = 48 if strided else 40
    if strided:
        w(f"// func {name}(kc int, a, b, c *float32, ldc, ldb int, acc bool)")
        w(f"// B is read in place: row p of the panel at b + p*ldb.")
        w(f"TEXT ·{name}(SB), NOSPLIT, $0-49")
    else:
        w(f"// func {name}(kc int, a, b, c *float32, ldc int, acc bool)")
        w(f"TEXT ·{name}(SB), NOSPLIT, $0-41")
    w("\tMOVQ kc+0(FP), CX")
    w("\tMOVQ a+8(FP), AX")
    w("\tMOVQ b+16(FP), BX")
    w("\tMOVQ c+24(FP), DI")
    w("\tMOVQ ldc+32(FP), DX")
    w("\tSHLQ $2, DX")
    if strided:
        w("\tMOVQ ldb+40(FP), R10")
        w("\tSHLQ $2, R10")
    for r in range(nacc):
        w(f"\tVXORPS {reg}{r}, {reg}{r}, {reg}{r}")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_store")
    w(f"{name}_loop:")
    for j in range(vecs):
        w(f"\tVMOVUPS {j * vbytes}(BX), {breg[j]}")
    for i in range(mr):
        if reg == "Z" and not regbcast:
            # AVX-512: A's value as the FMAs' embedded broadcast, fused
            # with them (see gen_tiles.py's kernel_avx512): same bits.
            for j in range(vecs):
                w(f"\tVFMADD231PS.BCST {4 * i}(AX), {breg[j]}, {reg}{i * vecs + j}")
            continue
        t = bc[i % 2]
        w(f"\tVBROADCASTSS {4 * i}(AX), {t}")
        for j in range(vecs):
            w(f"\tVFMADD231PS {breg[j]}, {t}, {reg}{i * vecs + j}")
    w(f"\tADDQ ${4 * mr}, AX")
    w("\tADDQ R10, BX" if strided else f"\tADDQ ${4 * nr}, BX")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    w(f"\tMOVBLZX acc+{accOff}(FP), R8")
    w("\tTESTQ R8, R8")
    w(f"\tJEQ {name}_overwrite")
    for i in range(mr):
        for j in range(vecs):
            r = f"{reg}{i * vecs + j}"
            w(f"\tVADDPS {j * vbytes}(DI), {r}, {r}")
            w(f"\tVMOVUPS {r}, {j * vbytes}(DI)")
        if i < mr - 1:
            w("\tADDQ DX, DI")
    w("\tVZEROUPPER")
    w("\tRET")
    w(f"{name}_overwrite:")
    for i in range(mr):
        for j in range(vecs):
            w(f"\tVMOVUPS {reg}{i * vecs + j}, {j * vbytes}(DI)")
        if i < mr - 1:
            w("\tADDQ DX, DI")
    w("\tVZEROUPPER")
    w("\tRET")
    w("")

def copy_vectors(name, nr, count, stride, strided_src, out):
    """Copies count rows of nr floats (nr/8 vectors each), one side stride
    floats apart and the other nr: the source when strided_src, else the
    destination."""
    vecs = nr // 8
    w = out.append
    w(f"// func {name}(dst, src *float32, {count}, {stride} int)")
    w(f"TEXT ·{name}(SB), NOSPLIT, $0-32")
    w("\tMOVQ dst+0(FP), DI")
    w("\tMOVQ src+8(FP), SI")
    w(f"\tMOVQ {count}+16(FP), CX")
    w(f"\tMOVQ {stride}+24(FP), DX")
    w("\tSHLQ $2, DX")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_done")
    w(f"{name}_loop:")
    for j in range(vecs):
        w(f"\tVMOVUPS {32 * j}(SI), Y{j}")
    for j in range(vecs):
        w(f"\tVMOVUPS Y{j}, {32 * j}(DI)")
    if strided_src:
        w("\tADDQ DX, SI")
        w(f"\tADDQ ${4 * nr}, DI")
    else:
        w(f"\tADDQ ${4 * nr}, SI")
        w("\tADDQ DX, DI")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_done:")
    w("\tVZEROUPPER")
    w("\tRET")
    w("")

def pack(name, nr, out):
    """Copies kc rows of nr floats, stride apart, into a contiguous kc x nr panel."""
    copy_vectors(name, nr, "kc", "stride", True, out)

def pack_row(name, nr, out):
    """Copies one row of B, panels x nr floats in a row, into the row's place
    in each of panels packed panels, pstride floats apart: B read row by row,
    each row one sequential stream, where reading a panel's kc rows at once
    (pack above) runs kc streams a row stride apart, which the prefetchers
    follow poorly when B's rows are whole feature maps not in cache."""
    copy_vectors(name, nr, "panels", "pstride", False, out)

def rows8(name, out):
    """8 rows x 8 columns of C from A read in place (row i at a + i*lda) and
    B read in place (row p at b + p*ldb): for products with N <= 8 (attention
    probabilities times V with head size 8) where packing A costs as much as
    the FMAs themselves."""
    w = out.append
    w(f"// func {name}(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool)")
    w(f"TEXT ·{name}(SB), NOSPLIT, $0-57")
    w("\tMOVQ kc+0(FP), CX")
    w("\tMOVQ a+8(FP), SI")
    w("\tMOVQ lda+16(FP), R9")
    w("\tSHLQ $2, R9")
    w("\tLEAQ (R9)(R9*2), R10")  # 3 rows
    w("\tLEAQ (SI)(R9*4), R11")  # row 4
    w("\tMOVQ b+24(FP), BX")
    w("\tMOVQ ldb+32(FP), R8")
    w("\tSHLQ $2, R8")
    w("\tMOVQ c+40(FP), DI")
    w("\tMOVQ ldc+48(FP), DX")
    w("\tSHLQ $2, DX")
    for i in range(8):
        w(f"\tVXORPS Y{i}, Y{i}, Y{i}")
    w("\tTESTQ CX, CX")
    w(f"\tJEQ {name}_store")
    w(f"{name}_loop:")
    w("\tVMOVUPS 0(BX), Y8")
    rows = ["(SI)", "(SI)(R9*1)", "(SI)(R9*2)", "(SI)(R10*1)", "(R11)", "(R11)(R9*1)", "(R11)(R9*2)", "(R11)(R10*1)"]
    for i, addr in enumerate(rows):
        t = 9 + i % 7
        w(f"\tVBROADCASTSS {addr}, Y{t}")
        w(f"\tVFMADD231PS Y8, Y{t}, Y{i}")
    w("\tADDQ $4, SI")
    w("\tADDQ $4, R11")
    w("\tADDQ R8, BX")
    w("\tDECQ CX")
    w(f"\tJNE {name}_loop")
    w(f"{name}_store:")
    w("\tMOVBLZX acc+56(FP), R8")
    w("\tTESTQ R8, R8")
    w(f"\tJEQ {name}_overwrite")
    for i in range(8):
        if i:
            w("\tADDQ DX, DI")
        w(f"\tVADDPS 0(DI), Y{i}, Y{i}")
        w(f"\tVMOVUPS Y{i}, 0(DI)")
    w("\tVZEROUPPER")
    w("\tRET")
    w(f"{name}_overwrite:")
    for i in range(8):
        if i:
            w("\tADDQ DX, DI")
        w(f"\tVMOVUPS Y{i}, 0(DI)")
    w("\tVZEROUPPER")
    w("\tRET")
    w("")

out = ["// Code generated by gen_kernels.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "",
       '#include "textflag.h"', ""]
kernel("kernelAVX2", 6, 16, "Y", 8, out)
kernel("kernelAVX512", 12, 32, "Z", 16, out)
kernel("kernelAVX2Strided", 6, 16, "Y", 8, out, strided=True)
kernel("kernelAVX512Strided", 12, 32, "Z", 16, out, strided=True)
# The right edge of C when at most 8 columns are left: half the FMAs of the
# 6x16 kernel, reading the first 8 columns of a packed 16-wide panel (ldb 16).
kernel("kernelAVX2Half", 6, 8, "Y", 8, out, strided=True)
# The same for AVX-512 with at most 16 columns left: the 12x32 kernel's
# first 16 columns (N = 169, a 13x13 map: 176 columns computed, not 192).
kernel("kernelAVX512Half", 12, 16, "Z", 16, out, strided=True)
kernel("kernelAVX512BR", 12, 32, "Z", 16, out, regbcast=True)
kernel("kernelAVX512StridedBR", 12, 32, "Z", 16, out, strided=True, regbcast=True)
kernel("kernelAVX512HalfBR", 12, 16, "Z", 16, out, strided=True, regbcast=True)
rows8("kernelAVX2Rows8", out)
pack("packRows16AVX", 16, out)
pack("packRows32AVX", 32, out)
pack_row("packRow16AVX", 16, out)
pack_row("packRow32AVX", 32, out)
open("kernel_amd64.s", "w").write("\n".join(out))
