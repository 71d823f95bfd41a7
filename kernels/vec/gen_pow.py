#!/usr/bin/env python3
"""Writes pow_amd64.s: AVX2+FMA and AVX-512 loops for Pow and PowScalar (run: python3 gen_pow.py).

"python3 gen_pow.py fit" instead refits the polynomial coefficients (a Remez
exchange in mpmath, about two minutes) and prints them for pow.go.

Each AVX2 loop step takes 8 floats: the lane checks on them as float32,
then two chains of 4 float64 lanes (the low and high halves), their
instructions interleaved, each one instruction of pow.go's powPositive in the
same order (same constants, same FMAs), so the bits are the Go path's. A
group of 8 with a lane for math.Pow is not stored; its bit is set in the
returned mask. The AVX-512 loop does the same on 16 floats, two chains of 8
float64 lanes (one group each), with its lane masks in K registers.

Go assembler operand order is Intel's reversed: "VSUBPD b, a, d" is d = a - b,
"VDIVPD b, a, d" is d = a / b, "VFMADD213PD c, b, a" is a = b*a + c,
"VFMADD231PD c, b, a" is a = b*c + a, "VCMPPD $p, b, a, d" is d = a <p> b.
"""
import re
import struct
import sys


def loop_end(name, w, count, scalar):
    """The end of a routine's loop over groups: advance the pointers by w
    bytes and the group counter BX (count), loop, and return the redo bits
    in AX."""
    out = [f"{name}_next:", f"\tADDQ ${w}, SI"]
    if not scalar:
        out.append(f"\tADDQ ${w}, DX")
    return out + [f"\tADDQ ${w}, DI", count, "\tCMPQ BX, CX", f"\tJLT {name}_loop", f"{name}_done:",
                  "\tMOVQ AX, ret+32(FP)", "\tVZEROUPPER", "\tRET"]


def go_consts():
    src = open("pow.go").read()
    out = {}
    for name, val in re.findall(r"^\s*(pow(?:Log|Exp)\w+)\s*=\s*(0x[0-9a-fp.+-]+)", src, re.M):
        out[name] = float.fromhex(val)
    out["powSqrtHalf"] = int(re.search(r"powSqrtHalf\s*=\s*(0x[0-9A-Fa-f]+)", src).group(1), 16)
    out["powTieUlps"] = 1 << int(re.search(r"powTieUlps\s*=\s*1 << (\d+)", src).group(1))
    out["powTHalf"] = 127 - 2.0 ** -int(re.search(r"powTHalf\s*=\s*127 - 0x1p-(\d+)", src).group(1))
    return out


def f64bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


consts = {}  # name -> (bits, width in bytes)


def c64(name, value=None, bits=None):
    """A float64 constant (or 64-bit pattern) in all eight lanes of a ZMM."""
    consts.setdefault(name, (bits if bits is not None else f64bits(value), 8))
    return f"pow_{name}<>(SB)"


def c32(name, bits):
    """A 32-bit pattern in all sixteen lanes of a ZMM."""
    consts.setdefault(name, (bits, 4))
    return f"pow_{name}<>(SB)"


def chain(K, x, y, regs, masks=None):
    """One half's powPositive and checks. x is the address of its float32 x,
    y that of its float32 y or, in PowScalar, y as float64 (memory or a
    register); x and y are read once, where needed. regs are the chain's
    registers, Y (AVX2, eight) or Z (AVX-512, seven). Ends with the float64
    result in Q and the math.Pow lanes in M's sign bits (AVX2) or in the
    first of the two K registers masks (AVX-512)."""
    avx512 = masks is not None
    if avx512:
        T, K_, S, Z, Q, W, V = regs
        AND, POR, PAND = "VPANDQ", "VPORQ", "VPANDQ"
    else:
        T, K_, S, Z, Q, W, V, M = regs
        AND, POR, PAND = "VANDPD", "VPOR", "VPAND"
    one = c64("one", 1.0)
    out = [
        f"VCVTPS2PD {x}, {T}",
        f"{AND} {c64('abs64', bits=(1 << 63) - 1)}, {T}, {T}",  # |x|
        f"VPADDQ {c64('logAdd', bits=(1 << 62) - K['powSqrtHalf'])}, {T}, {T}",  # u
        f"VPSRLQ $52, {T}, {K_}",
        f"{POR} {c64('kBits', bits=0x4330000000000000)}, {K_}, {K_}",
        f"VSUBPD {c64('kBias', 2.0 ** 52 + 1024)}, {K_}, {K_}",  # k
        f"{PAND} {c64('mantMask', bits=(1 << 52) - 1)}, {T}, {T}",
        f"VPADDQ {c64('sqrtHalf', bits=K['powSqrtHalf'])}, {T}, {T}",  # m
        f"VSUBPD {one}, {T}, {S}",  # f = m - 1
        f"VADDPD {one}, {T}, {T}",  # m + 1
        f"VDIVPD {T}, {S}, {S}",  # s = f / (m+1)
        f"VMULPD {S}, {S}, {Z}",  # z
        f"VMULPD {Z}, {Z}, {T}",  # z2
    ]

    def pair(hi, lo, r, d):  # d = fma(hi, r, lo)
        return [f"VMOVUPD {c64(hi, K['pow' + hi[0].upper() + hi[1:]])}, {d}",
                f"VFMADD213PD {c64(lo, K['pow' + lo[0].upper() + lo[1:]])}, {r}, {d}"]

    out += pair("logQ1", "logQ0", Z, Q) + pair("logQ3", "logQ2", Z, W) + pair("logQ5", "logQ4", Z, V) + [
        f"VFMADD231PD {c64('logQ6', K['powLogQ6'])}, {T}, {V}",  # qc = fma(q6, z2, qc)
        f"VFMADD231PD {V}, {T}, {W}",  # qb = fma(qc, z2, qb)
        f"VFMADD231PD {W}, {T}, {Q}",  # q = fma(qb, z2, qa)
        f"VMULPD {Z}, {S}, {Z}",  # s3 = s*z
        f"VFMADD213PD {K_}, {Z}, {Q}",  # fma(s3, q, k)
        f"VFMADD231PD {c64('logC1', K['powLogC1'])}, {S}, {Q}",  # l = fma(s, C1, .)
    ]
    if y.endswith("(SP)") or y.startswith("Z"):
        out.append(f"VMULPD {y}, {Q}, {Q}")  # t = y*l
    else:
        out += [f"VCVTPS2PD {y}, {T}", f"VMULPD {T}, {Q}, {Q}"]
    # The range test: !(|t - 1| < tHalf).
    if avx512:
        out += [f"VSUBPD {one}, {Q}, {V}",
                f"{AND} {c64('abs64', bits=(1 << 63) - 1)}, {V}, {V}",
                f"VCMPPD $0x15, {c64('tHalf', K['powTHalf'])}, {V}, {masks[0]}"]  # NLT_UQ
    else:
        out += [f"VSUBPD {one}, {Q}, {M}",
                f"{AND} {c64('abs64', bits=(1 << 63) - 1)}, {M}, {M}",
                f"VCMPPD $0x15, {c64('tHalf', K['powTHalf'])}, {M}, {M}"]
    out += [
        f"VADDPD {c64('shift', 1.5 * 2.0 ** 52)}, {Q}, {K_}",  # nb
        f"VSUBPD {c64('shift', 1.5 * 2.0 ** 52)}, {K_}, {T}",
        f"VSUBPD {T}, {Q}, {Q}",  # r = t - (nb - shift)
        f"VPSLLQ $52, {K_}, {K_}",
        f"VPADDQ {c64('oneBits', bits=0x3FF0000000000000)}, {K_}, {K_}",  # scale
        f"VMULPD {Q}, {Q}, {Z}",  # r2
    ] + pair("expE2", "expE1", Q, S) + pair("expE4", "expE3", Q, T) + [
        f"VFMADD231PD {T}, {Z}, {S}",  # ea = fma(eb, r2, ea)
        f"VMULPD {Z}, {Z}, {V}",  # r4
    ] + pair("expE6", "expE5", Q, T) + pair("expE8", "expE7", Q, W) + [
        f"VFMADD231PD {W}, {Z}, {T}",  # ec = fma(ed, r2, ec)
    ] + pair("expE10", "expE9", Q, W) + [
        f"VFMADD231PD {c64('expE11', K['powExpE11'])}, {Z}, {W}",  # ee = fma(e11, r2, ee)
        f"VFMADD231PD {W}, {V}, {T}",  # ec = fma(ee, r4, ec)
        f"VFMADD231PD {T}, {V}, {S}",  # e = fma(ec, r4, ea)
        f"VFMADD213PD {one}, {Q}, {S}",  # p = fma(e, r, 1)
        f"VMULPD {K_}, {S}, {Q}",  # v = p*scale
        # Near a tie: (bits(v) + 2^28 + D) & (2^29-1) < 2D.
        f"VPADDQ {c64('tieAdd', bits=(1 << 28) + K['powTieUlps'])}, {Q}, {T}",
        f"{PAND} {c64('tieMask', bits=(1 << 29) - 1)}, {T}, {T}",
    ]
    if avx512:
        return out + [f"VPCMPUQ $1, {c64('tieWidth', bits=2 * K['powTieUlps'])}, {T}, {masks[1]}",  # LT
                      f"KORW {masks[1]}, {masks[0]}, {masks[0]}"]
    return out + [f"VPSUBQ {c64('tieWidth', bits=2 * K['powTieUlps'])}, {T}, {T}",  # sign: < 2D
                  f"VORPD {T}, {M}, {M}"]


def interleave(a, b):
    out = []
    for i in range(max(len(a), len(b))):
        out += a[i:i + 1] + b[i:i + 1]
    return out


def routine(K, scalar):
    """powAVX2(dst, x, y *float32, n int) uint64 or
    powScalarAVX2(dst, x *float32, n int, y float32) uint64.

    The lane checks use Y0-Y5 and leave the result's sign bits at 0(SP);
    the chains use Y0-Y6 and Y14, Y7-Y13 and Y15. PowScalar keeps y as float64 at 32(SP),
    its not-an-integer mask at 64(SP) and its odd sign bit at 96(SP)."""
    name = "powScalarAVX2" if scalar else "powAVX2"
    abs32 = c32("abs32", 0x7FFFFFFF)
    inf32 = c32("inf32", 0x7F800000)
    zero32 = c32("zero32", 0)
    out = [f"// func {name}" + ("(dst, x *float32, n int, y float32) uint64" if scalar else "(dst, x, y *float32, n int) uint64"),
           f"TEXT ·{name}(SB), NOSPLIT, ${128 if scalar else 32}-40",
           "\tMOVQ dst+0(FP), DI",
           "\tMOVQ x+8(FP), SI"]
    if scalar:
        out += ["\tMOVQ n+16(FP), CX",
                "\tVBROADCASTSS y+24(FP), Y1",
                "\tVCVTPS2PD X1, Y2",
                "\tVMOVUPD Y2, 32(SP)",
                "\tVCVTPS2DQ Y1, Y3",
                "\tVCVTDQ2PS Y3, Y4",
                "\tVCMPPS $4, Y1, Y4, Y4",  # y not an integer in int32's range (NEQ_UQ)
                "\tVMOVUPS Y4, 64(SP)",
                "\tVPSLLD $31, Y3, Y3",  # odd y's sign bit
                "\tVMOVUPS Y3, 96(SP)"]
    else:
        out += ["\tMOVQ y+16(FP), DX",
                "\tMOVQ n+24(FP), CX"]
    out += ["\tXORQ AX, AX",  # groups for math.Pow
            "\tXORQ BX, BX",  # group index
            "\tSHRQ $3, CX",
            f"\tJEQ {name}_done",
            f"{name}_loop:"]
    # Lane checks, as sign bits in Y2: |x| not in (0, Inf), x < 0 with y not
    # an integer in int32's range. (A y that is not finite fails the chains'
    # range test.)
    body = ["VMOVUPS (SI), Y0",
            f"VANDPS {abs32}, Y0, Y4",
            f"VCMPPS $0x1A, {zero32}, Y4, Y2",  # NGT_UQ
            f"VCMPPS $0x15, {inf32}, Y4, Y3",  # NLT_UQ
            "VORPS Y3, Y2, Y2"]
    if scalar:
        body += ["VANDPS 64(SP), Y0, Y3",
                 "VORPS Y3, Y2, Y2",
                 "VANDPS 96(SP), Y0, Y3"]  # sign: x < 0 and y odd
    else:
        body += ["VMOVUPS (DX), Y1",
                 "VCVTPS2DQ Y1, Y3",
                 "VCVTDQ2PS Y3, Y5",
                 "VCMPPS $4, Y1, Y5, Y5",
                 "VANDPS Y0, Y5, Y5",
                 "VORPS Y5, Y2, Y2",
                 "VPSLLD $31, Y3, Y3",
                 "VANDPS Y0, Y3, Y3"]  # sign: x < 0 and y odd
    body += ["VMOVUPS Y3, (SP)",
             "VMOVMSKPS Y2, R8"]
    ya, yb = ("32(SP)", "32(SP)") if scalar else ("(DX)", "16(DX)")
    body += interleave(chain(K, "(SI)", ya, [f"Y{i}" for i in range(0, 7)] + ["Y14"]),
                       chain(K, "16(SI)", yb, [f"Y{i}" for i in range(7, 14)] + ["Y15"]))
    body += ["VCVTPD2PSY Y4, X4",
             "VCVTPD2PSY Y11, X11",
             "VINSERTF128 $1, X11, Y4, Y4",
             "VXORPS (SP), Y4, Y4",
             "VORPD Y15, Y14, Y14",
             "VMOVMSKPD Y14, R9",
             "ORL R8, R9",
             f"JNE {name}_slow",
             "VMOVUPS Y4, (DI)"]
    out += ["\t" + b for b in body]
    out += loop_end(name, 32, "\tINCQ BX", scalar) + [
            f"{name}_slow:",
            "\tBTSQ BX, AX",
            f"\tJMP {name}_next",
            ""]
    return out


def routine512(K, scalar):
    """powAVX512(dst, x, y *float32, n int) uint64 or
    powScalarAVX512(dst, x *float32, n int, y float32) uint64, n a multiple
    of 16: the AVX2 routine's operations on eight float64 lanes, two chains
    of them a step, each chain one group of 8 for the returned mask.

    The lane checks use Z0-Z5 and K1-K3 and leave the result's sign bits in
    Z14; the chains use Z0-Z6 with K2, K3 and Z7-Z13 with K4, K5. PowScalar
    keeps y as float64 in Z16, its odd sign bit in Z17 and its
    not-an-integer mask in K7."""
    name = "powScalarAVX512" if scalar else "powAVX512"
    abs32 = c32("abs32", 0x7FFFFFFF)
    inf32 = c32("inf32", 0x7F800000)
    zero32 = c32("zero32", 0)
    out = [f"// func {name}" + ("(dst, x *float32, n int, y float32) uint64" if scalar else "(dst, x, y *float32, n int) uint64"),
           f"TEXT ·{name}(SB), NOSPLIT, $0-40",
           "\tMOVQ dst+0(FP), DI",
           "\tMOVQ x+8(FP), SI"]
    if scalar:
        out += ["\tMOVQ n+16(FP), CX",
                "\tVBROADCASTSS y+24(FP), Z1",
                "\tVCVTPS2PD Y1, Z16",
                "\tVCVTPS2DQ Z1, Z3",
                "\tVCVTDQ2PS Z3, Z4",
                "\tVCMPPS $4, Z1, Z4, K7",  # y not an integer in int32's range (NEQ_UQ)
                "\tVPSLLD $31, Z3, Z17"]  # odd y's sign bit
    else:
        out += ["\tMOVQ y+16(FP), DX",
                "\tMOVQ n+24(FP), CX"]
    out += ["\tXORQ AX, AX",  # groups for math.Pow
            "\tXORQ BX, BX",  # group index (of 8)
            "\tSHRQ $3, CX",
            f"\tJEQ {name}_done",
            f"{name}_loop:"]
    # Lane checks in K1, as in the AVX2 routine.
    body = ["VMOVUPS (SI), Z0",
            f"VPANDD {abs32}, Z0, Z4",
            f"VCMPPS $0x1A, {zero32}, Z4, K1",  # NGT_UQ
            f"VCMPPS $0x15, {inf32}, Z4, K2",  # NLT_UQ
            "KORW K2, K1, K1",
            f"VCMPPS $0x11, {zero32}, Z0, K3"]  # x < 0 (LT_OQ)
    if scalar:
        body += ["KANDW K7, K3, K3",
                 "KORW K3, K1, K1",
                 "VPANDD Z0, Z17, Z14"]  # sign: x < 0 and y odd
    else:
        body += ["VMOVUPS (DX), Z1",
                 "VCVTPS2DQ Z1, Z3",
                 "VCVTDQ2PS Z3, Z5",
                 "VCMPPS $4, Z1, Z5, K2",
                 "KANDW K2, K3, K3",
                 "KORW K3, K1, K1",
                 "VPSLLD $31, Z3, Z3",
                 "VPANDD Z0, Z3, Z14"]  # sign: x < 0 and y odd
    ya, yb = ("Z16", "Z16") if scalar else ("(DX)", "32(DX)")
    body += interleave(chain(K, "(SI)", ya, [f"Z{i}" for i in range(0, 7)], ("K2", "K3")),
                       chain(K, "32(SI)", yb, [f"Z{i}" for i in range(7, 14)], ("K4", "K5")))
    body += ["KORW K1, K2, K2",  # group 2i: the low 8 input lanes
             "KSHIFTRW $8, K1, K6",
             "KORW K6, K4, K4",
             "KMOVW K2, R9",
             "KMOVW K4, R10",
             "VCVTPD2PS Z4, Y4",
             "VXORPS Y14, Y4, Y4",
             "VCVTPD2PS Z11, Y11",
             "VEXTRACTF64X4 $1, Z14, Y15",
             "VXORPS Y15, Y11, Y11",
             "TESTL $0xFF, R9",
             f"JNE {name}_slow0",
             "VMOVUPS Y4, (DI)",
             f"{name}_half:",
             "TESTL R10, R10",
             f"JNE {name}_slow1",
             "VMOVUPS Y11, 32(DI)"]
    out += [b if b.endswith(":") else "\t" + b for b in body]
    out += loop_end(name, 64, "\tADDQ $2, BX", scalar) + [
            f"{name}_slow0:",
            "\tBTSQ BX, AX",
            f"\tJMP {name}_half",
            f"{name}_slow1:",
            "\tLEAQ 1(BX), R11",
            "\tBTSQ R11, AX",
            f"\tJMP {name}_next",
            ""]
    return out


def gen():
    K = go_consts()
    out = ["// Code generated by gen_pow.py. DO NOT EDIT.", "",
           "//go:build amd64 && !purego", "", '#include "textflag.h"', ""]
    out += routine(K, scalar=False)
    out += routine(K, scalar=True)
    out += routine512(K, scalar=False)
    out += routine512(K, scalar=True)
    for name, (bits, width) in consts.items():
        for i in range(64 // width):
            out.append(f"DATA pow_{name}<>+{width * i}(SB)/{width}, ${bits:#0{2 + 2 * width}x}")
        out.append(f"GLOBL pow_{name}<>(SB), RODATA|NOPTR, $64")
    open("pow_amd64.s", "w").write("\n".join(out) + "\n")


def fit():
    """Prints pow.go's coefficients: weighted minimax fits (Remez exchange)
    in 50-digit arithmetic."""
    import mpmath as mp
    mp.mp.dps = 50

    def remez(target, weight, basis, a, b, iters=40, grid=4000):
        n = len(basis)
        ref = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / n) for i in range(n + 1)]
        for _ in range(iters):
            A, rhs = mp.matrix(n + 1, n + 1), mp.matrix(n + 1, 1)
            for i, x in enumerate(ref):
                for j, phi in enumerate(basis):
                    A[i, j] = phi(x)
                A[i, n] = (-1) ** i / weight(x)
                rhs[i] = target(x)
            sol = mp.lu_solve(A, rhs)
            c, level = [sol[j] for j in range(n)], abs(sol[n])
            xs = [a + (b - a) * mp.mpf(k) / grid for k in range(grid + 1)]
            es = [weight(x) * (sum(cj * phi(x) for cj, phi in zip(c, basis)) - target(x)) for x in xs]
            # The local extrema, one per sign run, trimmed to n+1 alternating.
            alt = []
            for k, e in enumerate(es):
                if (k == 0 or abs(e) >= abs(es[k - 1])) and (k == grid or abs(e) >= abs(es[k + 1])):
                    if alt and mp.sign(alt[-1][1]) == mp.sign(e):
                        if abs(e) > abs(alt[-1][1]):
                            alt[-1] = (xs[k], e)
                    else:
                        alt.append((xs[k], e))
            while len(alt) > n + 1:
                alt.pop(0 if abs(alt[0][1]) < abs(alt[-1][1]) else -1)
            maxe = max(abs(e) for e in es)
            if len(alt) == n + 1:
                ref = [x for x, _ in alt]
            if maxe <= level * (1 + mp.mpf("1e-6")):
                break
        return c, maxe

    ln2 = mp.log(2)
    c1 = 2 / ln2
    # 2^r = 1 + r*E(r), |r| <= 1/2, relative error.
    ce, ee = remez(lambda r: mp.power(2, r) - 1, lambda r: 1 / mp.power(2, r),
                   [(lambda j: lambda r: r ** j)(j) for j in range(1, 12)], mp.mpf(-0.5), mp.mpf(0.5))
    # log2((1+s)/(1-s)) = s*C1 + s^3*Q(s^2), relative error.
    smax = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
    p = lambda s: mp.log((1 + s) / (1 - s)) / ln2
    g = lambda z: c1 / 3 if z == 0 else (p(mp.sqrt(z)) / mp.sqrt(z) - c1) / z
    w = lambda z: mp.mpf("1e-30") if z == 0 else z * mp.sqrt(z) / p(mp.sqrt(z))
    cl, el = remez(g, w, [(lambda j: lambda z: z ** j)(j) for j in range(7)], mp.mpf(0), smax ** 2)
    print(f"\tpowLogC1 = {float(c1).hex()} // 2/ln 2")
    for i, v in enumerate(cl):
        print(f"\tpowLogQ{i} = {float(v).hex()}")
    print(f"\t// log2: max relative error {mp.nstr(el, 3)}")
    for i, v in enumerate(ce):
        print(f"\tpowExpE{i + 1} = {float(v).hex()}")
    print(f"\t// exp2: max relative error {mp.nstr(ee, 3)}")


if __name__ == "__main__":
    fit() if sys.argv[1:] == ["fit"] else gen()
