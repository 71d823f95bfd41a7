#!/usr/bin/env python3
"""Writes gemv_amd64.s: kernel.gemv for the AVX-512 (32-wide panels) and AVX2
(16-wide) kernels, and kernel.gemvRows, the same over B read in place
(run: python3 gen_gemv.py).

One row of C = x * B over panels of packed B (kc x nr each, one after
another): for each column j a chain of FMAs over k from 0, as the tile
kernels sum each output, then y[j] = sum (acc false) or y[j] + sum (acc
true). Panels go two at a time (four independent chains), then one.

gemvRows does the same with B's rows ldb floats apart, its panels nr
columns apart (an attention's scores times V, Q times K transposed, in a
decoder's step: one query row against a KV cache no one packs); the
8-wide form takes the columns left after the last whole panel.
"""


def routine(name, reg, vbytes):
    nr = 2 * vbytes // 4  # two vectors a panel
    pbytes = nr * 4  # one k row of a panel
    shift = {64: 6, 128: 7}[pbytes]
    V = [f"{reg}{i}" for i in range(5)]
    out = [f"// func {name}(kc int, x, b *float32, panels int, y *float32, acc bool)",
           f"TEXT ·{name}(SB), NOSPLIT, $0-41",
           "\tMOVQ    kc+0(FP), R9", "\tMOVQ    b+16(FP), BX", "\tMOVQ    panels+24(FP), R10",
           "\tMOVQ    y+32(FP), DI", "\tMOVBLZX acc+40(FP), R11", "\tMOVQ    R9, R12",
           f"\tSHLQ    ${shift}, R12 // bytes per panel: kc * {nr} * 4", ""]

    def panels(tag, count):
        """count (1 or 2) panels from BX into y at DI."""
        acc = V[:2 * count]
        lines = [f"{name}_{tag}:"]
        if count == 2:
            lines += ["\tCMPQ   R10, $2", f"\tJLT    {name}_single"]
        else:
            lines += ["\tTESTQ  R10, R10", f"\tJEQ    {name}_done"]
        lines += ["\tMOVQ   x+8(FP), SI", "\tMOVQ   BX, DX"]
        if count == 2:
            lines.append("\tLEAQ   (BX)(R12*1), R8")
        lines.append("\tMOVQ   R9, CX")
        lines += [f"\tVXORPS {v}, {v}, {v}" for v in acc]
        lines += ["", f"{name}_k{tag}:", f"\tVBROADCASTSS (SI), {V[4]}"]
        for i, v in enumerate(acc):
            base = "DX" if i < 2 else "R8"
            off = (i % 2) * vbytes
            lines.append(f"\tVFMADD231PS  {off}({base}), {V[4]}, {v}" if off else f"\tVFMADD231PS  ({base}), {V[4]}, {v}")
        lines += ["\tADDQ         $4, SI", f"\tADDQ         ${pbytes}, DX"]
        if count == 2:
            lines.append(f"\tADDQ         ${pbytes}, R8")
        lines += ["\tDECQ         CX", f"\tJNE          {name}_k{tag}", "\tTESTQ        R11, R11",
                  f"\tJEQ          {name}_store{tag}"]
        lines += [f"\tVADDPS       {i * vbytes}(DI), {v}, {v}" for i, v in enumerate(acc)]
        lines += ["", f"{name}_store{tag}:"]
        lines += [f"\tVMOVUPS {v}, {i * vbytes}(DI)" for i, v in enumerate(acc)]
        if count == 2:
            lines += [f"\tADDQ    ${2 * pbytes}, DI", "\tLEAQ    (BX)(R12*2), BX", "\tSUBQ    $2, R10",
                      f"\tJMP     {name}_pair"]
        return lines + [""]

    out += panels("pair", 2) + panels("single", 1)
    out += [f"{name}_done:", "\tVZEROUPPER", "\tRET", ""]
    return out


def rows_routine(name, reg, vbytes, vecs):
    """gemvRows: panels of vecs vectors each, B's rows ldb floats apart."""
    nr = vecs * vbytes // 4
    pbytes = nr * 4  # from one panel to the next
    V = [f"{reg}{i}" for i in range(2 * vecs + 1)]
    bc = V[-1]
    out = [f"// func {name}(kc int, x, b *float32, ldb int, panels int, y *float32, acc bool)",
           f"TEXT ·{name}(SB), NOSPLIT, $0-49",
           "\tMOVQ    kc+0(FP), R9", "\tMOVQ    b+16(FP), BX", "\tMOVQ    ldb+24(FP), R13",
           "\tSHLQ    $2, R13 // bytes per row of B", "\tMOVQ    panels+32(FP), R10",
           "\tMOVQ    y+40(FP), DI", "\tMOVBLZX acc+48(FP), R11", ""]

    def panels(tag, count):
        acc = V[:vecs * count]
        lines = [f"{name}_{tag}:"]
        if count == 2:
            lines += ["\tCMPQ   R10, $2", f"\tJLT    {name}_single"]
        else:
            lines += ["\tTESTQ  R10, R10", f"\tJEQ    {name}_done"]
        lines += ["\tMOVQ   x+8(FP), SI", "\tMOVQ   BX, DX", "\tMOVQ   R9, CX"]
        lines += [f"\tVXORPS {v}, {v}, {v}" for v in acc]
        lines += ["", f"{name}_k{tag}:", f"\tVBROADCASTSS (SI), {bc}"]
        for i, v in enumerate(acc):
            off = i * vbytes
            lines.append(f"\tVFMADD231PS  {off}(DX), {bc}, {v}" if off else f"\tVFMADD231PS  (DX), {bc}, {v}")
        lines += ["\tADDQ         $4, SI", "\tADDQ         R13, DX", "\tDECQ         CX",
                  f"\tJNE          {name}_k{tag}", "\tTESTQ        R11, R11", f"\tJEQ          {name}_store{tag}"]
        lines += [f"\tVADDPS       {i * vbytes}(DI), {v}, {v}" for i, v in enumerate(acc)]
        lines += ["", f"{name}_store{tag}:"]
        lines += [f"\tVMOVUPS {v}, {i * vbytes}(DI)" for i, v in enumerate(acc)]
        if count == 2:
            lines += [f"\tADDQ    ${2 * pbytes}, DI", f"\tADDQ    ${2 * pbytes}, BX", "\tSUBQ    $2, R10",
                      f"\tJMP     {name}_pair"]
        return lines + [""]

    out += panels("pair", 2) + panels("single", 1)
    out += [f"{name}_done:", "\tVZEROUPPER", "\tRET", ""]
    return out


out = ["// Code generated by gen_gemv.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "",
       '#include "textflag.h"', ""]
out += routine("gemvPanels32AVX512", "Z", 64)
out += routine("gemvPanels16AVX2", "Y", 32)
out += rows_routine("gemvRows32AVX512", "Z", 64, 2)
out += rows_routine("gemvRows16AVX2", "Y", 32, 2)
out += rows_routine("gemvRows8AVX2", "Y", 32, 1)
open("gemv_amd64.s", "w").write("\n".join(out))
