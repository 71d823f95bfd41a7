#!/usr/bin/env python3
"""Writes math_amd64.s: AVX2+FMA and AVX-512 float32 transcendentals (run: python3 gen_math.py).

Each routine mirrors its Go specification in transcendental.go operation by
operation (same constants, same FMAs, same order), eight floats per step over n
(a multiple of 8) for AVX2, sixteen over any n for AVX-512 (the same bodies on
Z registers, lane masks in K registers). Polynomial coefficients are read from
coeffs.go.

Erf and GeluErf have two more AVX-512 forms, which Erf and GeluErf run: one
that takes the dear large branch only on the lanes that need it
(split_routine) and the one-pass form on two vectors a step (routine_x2).
Both give the one-pass form's bits.

Go assembler operand order is Intel's reversed: "VSUBPS b, a, d" is d = a - b,
"VFMADD213PS c, b, a" is a = b*a + c, "VFMADD231PS c, b, a" is a = b*c + a,
"VBLENDVPS m, b, a, d" is d = m ? b : a. VMINPS/VMAXPS return their first Go
operand when either is NaN, so "VMAXPS x, lo, x" keeps a NaN x.
"""
import re
import struct

coef = {}
for name, val in re.findall(r"^\s*(\w+)\s*=\s*(-?0x[0-9a-fp.+-]+)", open("coeffs.go").read(), re.M):
    coef[name] = float.fromhex(val)


def f32bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


consts = {}  # name -> 32-bit pattern, emitted as 8 copies


def c(name, value=None, bits=None):
    if name not in consts:
        consts[name] = bits if bits is not None else f32bits(value)
    return f"c_{name}<>(SB)"


ONE = 13  # Y13 = 1.0 in every routine
HI, LO = 14, 15  # exp's clamp bounds


ISA = "avx2"  # routines are written once and emitted for each ISA
KREG = {10: 1, 1: 2, 3: 3, 4: 4, 5: 5, 6: 2}  # AVX-512: which K register holds a mask "in" Yi


def Y(i):
    return f"Z{i}" if ISA == "avx512" else f"Y{i}"


def M(i):
    """A lane mask that AVX2 keeps in Yi (all ones or zeros) and AVX-512 in a K register."""
    return f"K{KREG[i]}" if ISA == "avx512" else Y(i)


def cmp(pred, b, a, m):
    """Mask m = a <pred> b (VCMPPS predicate numbers); b a register string or constant."""
    return f"VCMPPS ${pred}, {b}, {Y(a)}, {M(m)}"


def blend(m, b, a, d):
    """d = m ? b : a, b a register string or constant, a a register string."""
    if ISA == "avx512":
        return [f"VBLENDMPS {b}, {a}, {M(m)}, {Y(d)}"]
    return [f"VBLENDVPS {Y(m)}, {b}, {a}, {Y(d)}"]


def blend_sign(x, b, a, d):
    """d = (x's sign bit set) ? b : a; AVX-512 tests the bit into K6."""
    if ISA == "avx512":
        return [f"VPTESTMD {c('sign', bits=0x80000000)}, {Y(x)}, K6", f"VBLENDMPS {b}, {a}, K6, {Y(d)}"]
    return [f"VBLENDVPS {Y(x)}, {b}, {a}, {Y(d)}"]


def zero_where(m, v):
    """v = m ? +0 : v."""
    if ISA == "avx512":
        return [f"VPXORD {Y(v)}, {Y(v)}, {M(m)}, {Y(v)}"]
    return [f"VANDNPS {Y(v)}, {Y(m)}, {Y(v)}"]


def const_where(m, k, d):
    """d = m ? constant k : +0."""
    if ISA == "avx512":
        return [f"VMOVUPS.Z {k}, {M(m)}, {Y(d)}"]
    return [f"VANDPS {k}, {Y(m)}, {Y(d)}"]


def exp_reduce(x, n, em, t, sq=None):
    """x (clamped) -> n (int32 lanes) and em = expm1(r); x is clobbered (holds r).
    r*r goes to sq (t unless given)."""
    sq = t if sq is None else sq
    return [
        f"VMULPS {c('log2e', coef_or('log2e'))}, {Y(x)}, {Y(n)}",
        f"VCVTPS2DQ {Y(n)}, {Y(n)}",
        f"VCVTDQ2PS {Y(n)}, {Y(t)}",
        f"VFMADD231PS {c('nln2hi', -LN2HI)}, {Y(t)}, {Y(x)}",
        f"VFMADD231PS {c('nln2lo', -LN2LO)}, {Y(t)}, {Y(x)}",
        f"VMOVUPS {c('expm16', coef['expm16'])}, {Y(em)}",
        f"VFMADD213PS {c('expm15', coef['expm15'])}, {Y(x)}, {Y(em)}",
        f"VFMADD213PS {c('expm14', coef['expm14'])}, {Y(x)}, {Y(em)}",
        f"VFMADD213PS {c('expm13', coef['expm13'])}, {Y(x)}, {Y(em)}",
        f"VFMADD213PS {c('expm12', coef['expm12'])}, {Y(x)}, {Y(em)}",
        f"VMULPS {Y(x)}, {Y(x)}, {Y(sq)}",
        f"VFMADD213PS {Y(x)}, {Y(sq)}, {Y(em)}",
    ]


def scale512(n, p, keep=None):
    """AVX-512: p = p * 2^n (n a whole float) rounded once, VSCALEFPS's one
    step for the shifts, adds and multiplies that build and apply 2^n in
    halves (exp) or from 2^-25 (exp_nonpositive): the same single rounding,
    so the same bits as the AVX2 forms, in 1 instruction instead of 4-7.
    With keep (a mask "in" Y10), lanes outside it are +0."""
    if keep is None:
        return [f"VSCALEFPS {Y(n)}, {Y(p)}, {Y(p)}"]
    return [f"VSCALEFPS.Z {Y(n)}, {Y(p)}, {M(keep)}, {Y(p)}"]


def pow2(n):
    """int lanes n -> float 2^n in place."""
    return [f"VPADDD {c('i127', bits=127)}, {Y(n)}, {Y(n)}", f"VPSLLD $23, {Y(n)}, {Y(n)}"]


def exp(x, out, t1, t2):
    """out = expf(x); x, t1, t2 and Y10 clobbered. Clamp keeps NaN.

    Lanes below expLo (result 0 after rounding anyway) get a second scale of +0
    instead of 2^-75: the product is the same 0 without an underflow, which
    costs a microcode assist per instruction (masked attention logits of -1e4
    are half of some Softmax rows)."""
    if ISA == "avx512":
        # n rounded to even as VCVTPS2DQ rounds it, kept as a float for the
        # scale; lanes below expLo (and not NaN) masked to +0.
        red = exp_reduce(x, t1, out, t2, sq=t1)
        red[0:3] = [f"VMULPS {c('log2e', coef_or('log2e'))}, {Y(x)}, {Y(t2)}", f"VRNDSCALEPS $0, {Y(t2)}, {Y(t2)}"]
        return [cmp(5, Y(LO), x, 10), f"VMINPS {Y(x)}, {Y(HI)}, {Y(x)}", f"VMAXPS {Y(x)}, {Y(LO)}, {Y(x)}"] + red + [
            f"VADDPS {Y(ONE)}, {Y(out)}, {Y(out)}"] + scale512(t2, out, keep=10)
    return [cmp(1, Y(LO), x, 10),
            f"VMINPS {Y(x)}, {Y(HI)}, {Y(x)}", f"VMAXPS {Y(x)}, {Y(LO)}, {Y(x)}"] + exp_reduce(x, t1, out, t2) + [
        f"VADDPS {Y(ONE)}, {Y(out)}, {Y(out)}",
        f"VPSRAD $1, {Y(t1)}, {Y(t2)}",
        f"VPSUBD {Y(t2)}, {Y(t1)}, {Y(t1)}",
    ] + pow2(t1) + pow2(t2) + zero_where(10, t1) + [
        f"VMULPS {Y(t2)}, {Y(out)}, {Y(out)}", f"VMULPS {Y(t1)}, {Y(out)}, {Y(out)}"]


def expm1(x, out, t1, t2):
    """out = expm1f(x) for x in [-20, 20]; x, t1, t2 clobbered."""
    return exp_reduce(x, t1, out, t2) + pow2(t1) + [
        f"VSUBPS {Y(ONE)}, {Y(t1)}, {Y(t2)}",
        f"VFMADD213PS {Y(t2)}, {Y(t1)}, {Y(out)}",
    ]


def exp_nonpositive(x, out, t1, t2):
    """out = expf(x) for x <= 0 or NaN, as exp() computes it with fewer steps
    (the sigmoid forms spend most of their time here): x <= 0 needs no upper
    clamp, and with n in [-150, 0] the scale is one multiply: p*2^-25 (p in
    [0.7, 1.42], exact) times 2^(n+25), a normal number, rounds once, as
    exp()'s two halves do, so the bits are the same. Below expLo the product
    p*2^-150 rounds to 0 as in exp() (p = e^-0.028 there), so exp()'s mask
    against underflow assists is left out: the sigmoid forms rarely see such
    inputs. x, t1 and t2 clobbered."""
    # n = RoundToEven(x*log2e) by adding M = 1.5*2^23 + 152, even, so the
    # sum's ties go to even n too: M+n as a float is n + 152 in its low bits,
    # which shifted left by 23 are 2^(n+25)'s bits.
    red = exp_reduce(x, t1, out, t2, sq=t1 if ISA == "avx512" else None)
    red[0:3] = [f"VMULPS {c('log2e', coef_or('log2e'))}, {Y(x)}, {Y(t2)}",
                f"VADDPS {c('rndM', 1.5 * 2 ** 23 + 152)}, {Y(t2)}, {Y(t1)}",
                f"VSUBPS {c('rndM', 1.5 * 2 ** 23 + 152)}, {Y(t1)}, {Y(t2)}"]
    if ISA == "avx512":
        # (1 + em) * 2^n in one rounding (scale512), n the float in t2.
        return [f"VMAXPS {Y(x)}, {Y(LO)}, {Y(x)}"] + red + [f"VADDPS {Y(ONE)}, {Y(out)}, {Y(out)}"] + scale512(t2, out)
    return [f"VMAXPS {Y(x)}, {Y(LO)}, {Y(x)}"] + red + [
        # (1 + em) * 2^-25 in one FMA: scaling by 2^-25 commutes with the rounding.
        f"VMOVUPS {c('twom25', 2.0 ** -25)}, {Y(t2)}",
        f"VFMADD213PS {Y(t2)}, {Y(t2)}, {Y(out)}",
        f"VPSLLD $23, {Y(t1)}, {Y(t1)}",
        f"VMULPS {Y(t1)}, {Y(out)}, {Y(out)}",
    ]


def exp_nonpositive_flush(x, out, t1, t2):
    """exp_nonpositive with exp()'s guard against underflow assists: lanes
    below expLo get a scale of +0, so the product is exp()'s 0 without an
    underflow (a Softmax row's masked logits, -1e4 or -1e9, are often half of
    it). x, t1, t2 and Y10 clobbered."""
    body = exp_nonpositive(x, out, t1, t2)
    if ISA == "avx512":
        assert body[-1].startswith("VSCALEFPS")
        return [cmp(5, Y(LO), x, 10)] + body[:-1] + scale512(t2, out, keep=10)
    assert body[-1].startswith("VMULPS")
    return [cmp(1, Y(LO), x, 10)] + body[:-1] + zero_where(10, t1) + [body[-1]]


def sigmoid(x, out, t1, t2, t3, t4):
    """out = sigmoidf(x); x kept."""
    return [f"VORPS {c('sign', bits=0x80000000)}, {Y(x)}, {Y(t1)}"] + exp_nonpositive(t1, t4, t2, t3) + [
        f"VADDPS {Y(ONE)}, {Y(t4)}, {Y(t1)}",
    ] + blend_sign(x, Y(t4), Y(ONE), t4) + [
        f"VDIVPS {Y(t1)}, {Y(t4)}, {Y(out)}",
    ]


def horner(names, x, acc):
    """acc = polynomial with coefficients names (highest first) at x."""
    out = [f"VMOVUPS {c(names[0], coef[names[0]])}, {Y(acc)}"]
    for n in names[1:]:
        out.append(f"VFMADD213PS {c(n, coef[n])}, {Y(x)}, {Y(acc)}")
    return out


def erf_small(a, out, s):
    """out = erfSmallPoly(a); s clobbered."""
    return [f"VMULPS {Y(a)}, {Y(a)}, {Y(s)}"] + horner([f"erfSmall{i}" for i in range(6, -1, -1)], s, out) + [
        f"VFMADD213PS {Y(a)}, {Y(a)}, {Y(out)}"]


def erfc_large(a, out, t1, t2, t3, t4, t5, extra=None, cap=False):
    """out = erfcLarge(a, extra): exp(P(a) - a^2) with the exponent split exactly, 0 where a > 6.

    The exponent's small corrections gather in extra (Y9 when none is given).
    With cap (AVX-512, erfcMax in Z31), the steps before the last run on
    min(a, 6) (in Y10; a NaN kept): the same values where a <= 6, and where
    a > 6, whose result is +0 whatever they give, no subnormal e^(P(a)-a^2)
    (a in [9, 10.5] or [12, 20]), whose microcode assists made such inputs
    8-10x slower."""
    cr = extra if extra is not None else 9
    ca = a
    pre = []
    if cap:
        assert ISA == "avx512"
        ca, pre = 10, [f"VMINPS {Y(a)}, Z31, {Y(10)}"]
    return pre + erfc_large_steps(ca, out, t1, t2, t3, t4, t5, extra, cr) + [cmp(0x0e, c('erfcMax', 6.0), a, t1)] + zero_where(t1, out)


def erfc_large_steps(a, out, t1, t2, t3, t4, t5, extra, cr):
    """erfc_large before its last step (the zeroing past erfcMax)."""
    return [f"VSUBPS {c('erfcCenter', 3.4609375)}, {Y(a)}, {Y(t5)}"] + horner(
        [f"logErfc{i}" for i in range(11, -1, -1)], t5, t1) + [
        f"VADDPS {c('erfcCenter', 3.4609375)}, {Y(t5)}, {Y(t4)}",
        f"VSUBPS {Y(t4)}, {Y(a)}, {Y(t4)}",  # vl = a - (v + center)
        f"VMOVUPS {c('erfcSlope', -0.57)}, {Y(t3)}",
    ] + ([f"VFMADD213PS {Y(cr)}, {Y(t3)}, {Y(t4)}"] if extra is not None else [f"VMULPS {Y(t3)}, {Y(t4)}, {Y(t4)}"]) + [
        f"VMOVUPS {Y(t4)}, {Y(cr)}",
        f"VMULPS {Y(a)}, {Y(a)}, {Y(t2)}",  # s
        f"VMOVUPS {Y(t2)}, {Y(t3)}",
        f"VFMSUB231PS {Y(a)}, {Y(a)}, {Y(t3)}",  # sl = a*a - s
        f"VSUBPS {Y(t2)}, {Y(t1)}, {Y(t4)}",  # qh = m - s
        f"VSUBPS {Y(t1)}, {Y(t4)}, {Y(t5)}",  # bb = qh - m
        f"VSUBPS {Y(t5)}, {Y(t4)}, {Y(out)}",  # qh - bb
        f"VSUBPS {Y(out)}, {Y(t1)}, {Y(out)}",  # m - (qh - bb)
        f"VXORPS {c('sign', bits=0x80000000)}, {Y(t2)}, {Y(t2)}",  # -s
        f"VSUBPS {Y(t5)}, {Y(t2)}, {Y(t2)}",  # -s - bb
        f"VADDPS {Y(t2)}, {Y(out)}, {Y(out)}",
        f"VSUBPS {Y(t3)}, {Y(out)}, {Y(t5)}",  # ql
        f"VADDPS {Y(cr)}, {Y(t5)}, {Y(t5)}",
    ] + exp(t4, out, t1, t2) + [
        f"VFMADD213PS {Y(out)}, {Y(t5)}, {Y(out)}",  # e * (1 + ql)
    ]


def log_positive_normal(u, out, t1, t2):
    """out = logPositive(u) for normal u > 0; u clobbered."""
    return [
        f"VPADDD {c('logoff', bits=0x3f800000 - 0x3f3504f3)}, {Y(u)}, {Y(u)}",
        f"VPSRLD $23, {Y(u)}, {Y(t1)}",
        f"VPSUBD {c('i127', bits=127)}, {Y(t1)}, {Y(t1)}",
        f"VCVTDQ2PS {Y(t1)}, {Y(t1)}",
    ] + log_mantissa(u, out, t1, t2)


def log_mantissa(u, out, e, t2):
    """Given bits u (offset added) and exponent e (float), out = e*ln2 + log1p(m-1)."""
    return [
        f"VPAND {c('mantmask', bits=0x007fffff)}, {Y(u)}, {Y(u)}",
        f"VPADDD {c('sqrthalf', bits=0x3f3504f3)}, {Y(u)}, {Y(u)}",
        f"VSUBPS {Y(ONE)}, {Y(u)}, {Y(u)}",
    ] + horner([f"log1p{i}" for i in range(11, 2, -1)], u, out) + [
        f"VFMADD213PS {c('mhalf', -0.5)}, {Y(u)}, {Y(out)}",
        f"VMULPS {Y(u)}, {Y(u)}, {Y(t2)}",
        f"VFMADD213PS {Y(u)}, {Y(t2)}, {Y(out)}",
        f"VFMADD231PS {c('ln2lo', LN2LO)}, {Y(e)}, {Y(out)}",
        f"VFMADD231PS {c('ln2hi', LN2HI)}, {Y(e)}, {Y(out)}",
    ]


LN2HI = float.fromhex("0x1.62e43p-01")
LN2LO = -float.fromhex("0x1.05c61p-29")


def coef_or(name):
    return {"log2e": float.fromhex("0x1.715476p+00")}[name]


def clamp_low(x, value, t):
    """x = max(x, value), keeping NaN."""
    return [f"VMOVUPS {c('lo' + str(value).replace('-', 'm'), float(value))}, {Y(t)}", f"VMAXPS {Y(x)}, {Y(t)}, {Y(x)}"]


# Each body reads Y0 (x) and leaves the result in the returned register.
def body_exp():
    return exp(0, 1, 2, 3), 1


def body_log():
    return [
        # subnormals scaled by 2^23, exponent adjusted by -23
        cmp(1, c('minnorm', float.fromhex('0x1p-126')), 0, 1),
        f"VMULPS {c('two23', float(2**23))}, {Y(0)}, {Y(2)}",
    ] + blend(1, Y(2), Y(0), 2) + const_where(1, c('m23', -23.0), 1) + [
        f"VPADDD {c('logoff', bits=0x3f800000 - 0x3f3504f3)}, {Y(2)}, {Y(2)}",
        f"VPSRLD $23, {Y(2)}, {Y(3)}",
        f"VPSUBD {c('i127', bits=127)}, {Y(3)}, {Y(3)}",
        f"VCVTDQ2PS {Y(3)}, {Y(3)}",
        f"VADDPS {Y(1)}, {Y(3)}, {Y(3)}",
    ] + log_mantissa(2, 4, 3, 5) + [
        cmp(1, c('zero', 0.0), 0, 1),
    ] + blend(1, c('nan', bits=0x7fc00000), Y(4), 4) + [
        cmp(0, c('zero', 0.0), 0, 1),
    ] + blend(1, c('ninf', bits=0xff800000), Y(4), 4) + [
        cmp(5, c('inf', bits=0x7f800000), 0, 1),
    ] + blend(1, Y(0), Y(4), 4), 4


def body_sigmoid():
    return sigmoid(0, 1, 2, 3, 4, 5), 1


def body_silu():
    return clamp_low(0, -200, 1) + sigmoid(0, 1, 2, 3, 4, 5) + [f"VMULPS {Y(0)}, {Y(1)}, {Y(1)}"], 1


def body_tanh():
    return [
        f"VANDPS {c('abs', bits=0x7fffffff)}, {Y(0)}, {Y(1)}",
        f"VMOVUPS {c('tanhmax', 9.5)}, {Y(2)}",
        f"VMINPS {Y(1)}, {Y(2)}, {Y(1)}",
        f"VADDPS {Y(1)}, {Y(1)}, {Y(1)}",
    ] + expm1(1, 2, 3, 4) + [
        f"VADDPS {c('two', 2.0)}, {Y(2)}, {Y(3)}",
        f"VDIVPS {Y(3)}, {Y(2)}, {Y(2)}",
        f"VANDPS {c('sign', bits=0x80000000)}, {Y(0)}, {Y(3)}",
        f"VORPS {Y(3)}, {Y(2)}, {Y(2)}",
    ], 2


def erf_parts(cap=False):
    """body_erf in parts: (shared start, small branch, large branch, sign),
    Y1 = |x|; the small result in Y2, the large (1 - erfc) in Y4."""
    return ([f"VANDPS {c('abs', bits=0x7fffffff)}, {Y(0)}, {Y(1)}"], erf_small(1, 2, 3),
            erfc_large(1, 3, 4, 5, 6, 7, 8, cap=cap) + [f"VSUBPS {Y(3)}, {Y(ONE)}, {Y(4)}"],
            lambda r: [f"VANDPS {c('sign', bits=0x80000000)}, {Y(0)}, {Y(5)}", f"VORPS {Y(5)}, {Y(r)}, {Y(r)}"])


def body_erf(cap=False):
    # Y1 = |x|, Y2 = small result, Y3 = erfc, Y4 = 1 - erfc
    pre, small, large, sign = erf_parts(cap)
    return pre + small + large + [cmp(1, c('erfSplit', 0.921875), 1, 5)] + blend(5, Y(2), Y(4), 4) + sign(4), 4


def gelu_erf_parts(cap=False):
    """body_gelu_erf in parts: (start: u in Y1, |u| in Y2 and the exponent's
    correction in Y8; the same without the correction; small branch, Y3 =
    1 + copysign(erf, u); large branch, Y5 = u < 0 ? erfc : 2 - erfc; the
    product 0.5 * x * factor, the factor's register given)."""
    rs2 = float.fromhex('0x1.6a09e6p-01')
    pre = clamp_low(0, -200, 1) + [f"VMULPS {c('rsqrt2', rs2)}, {Y(0)}, {Y(1)}"]
    absu = f"VANDPS {c('abs', bits=0x7fffffff)}, {Y(1)}, {Y(2)}"
    corr = [
        # Y8 = du = fma(x, lo, fma(x, c, -u)), then signed like u: |x/sqrt2| - |u|
        f"VMOVUPS {c('rsqrt2', rs2)}, {Y(8)}",
        f"VFMSUB213PS {Y(1)}, {Y(0)}, {Y(8)}",
        f"VFMADD231PS {c('rsqrt2lo', 0.7071067811865476 - rs2)}, {Y(0)}, {Y(8)}",
        f"VANDPS {c('sign', bits=0x80000000)}, {Y(1)}, {Y(9)}",
        f"VXORPS {Y(9)}, {Y(8)}, {Y(8)}",
        absu,
        # the exponent's correction -2|u|d
        f"VMULPS {Y(2)}, {Y(8)}, {Y(8)}",
        f"VMULPS {c('m2', -2.0)}, {Y(8)}, {Y(8)}",
    ]
    small = erf_small(2, 3, 5) + [
        # small: 1 + copysign(erf, u)
        f"VANDPS {c('sign', bits=0x80000000)}, {Y(1)}, {Y(5)}",
        f"VORPS {Y(5)}, {Y(3)}, {Y(3)}",
        f"VADDPS {Y(ONE)}, {Y(3)}, {Y(3)}",
    ]
    large = erfc_large(2, 4, 5, 6, 7, 11, 12, extra=8, cap=cap) + [
        # large: u < 0 ? erfc : 2 - erfc
        f"VMOVUPS {c('two', 2.0)}, {Y(5)}",
        f"VSUBPS {Y(4)}, {Y(5)}, {Y(5)}",
    ] + blend_sign(1, Y(4), Y(5), 5)
    return (pre + corr, pre + [absu], small, large,
            lambda r: [f"VMULPS {c('half', 0.5)}, {Y(0)}, {Y(6)}", f"VMULPS {Y(r)}, {Y(6)}, {Y(6)}"])


def body_gelu_erf(cap=False):
    # Y1 = u, Y2 = |u|, Y3 = small erf, Y4 = erfc, Y5..Y8 temps
    pre, _, small, large, prod = gelu_erf_parts(cap)
    erfc = large[:-len(blend_sign(1, Y(4), Y(5), 5)) - 2]
    # in the order it always had: both branches, then the small result's sign and 1 +, then the large one's
    return pre + small[:-3] + erfc + small[-3:] + large[len(erfc):] + [
        cmp(1, c('erfSplit', 0.921875), 2, 6),
    ] + blend(6, Y(3), Y(5), 5) + prod(5), 6


K1X = 2 * 0.7978845608028654
K3X = 2 * 0.044715 * 0.7978845608028654


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def body_gelu_tanh():
    k1, k3 = f32(K1X), f32(K3X)
    return clamp_low(0, -200, 1) + [
        f"VMINPS {c('geluTanhMax', 20.0)}, {Y(0)}, {Y(11)}",  # xc
        f"VMULPS {Y(11)}, {Y(11)}, {Y(1)}",  # s
        f"VMOVUPS {Y(1)}, {Y(2)}",
        f"VFMSUB231PS {Y(11)}, {Y(11)}, {Y(2)}",  # sl = x*x - s
        f"VMULPS {c('geluK3', k3)}, {Y(1)}, {Y(3)}",  # p
        f"VMOVUPS {Y(3)}, {Y(4)}",
        f"VFMSUB231PS {c('geluK3', k3)}, {Y(1)}, {Y(4)}",  # pl = k3*s - p
        f"VADDPS {c('geluK1', k1)}, {Y(3)}, {Y(5)}",  # t
        f"VSUBPS {c('geluK1', k1)}, {Y(5)}, {Y(6)}",  # bb = t - k1
        f"VSUBPS {Y(6)}, {Y(5)}, {Y(7)}",  # t - bb
        f"VMOVUPS {c('geluK1', k1)}, {Y(8)}",
        f"VSUBPS {Y(7)}, {Y(8)}, {Y(7)}",  # k1 - (t - bb)
        f"VSUBPS {Y(6)}, {Y(3)}, {Y(6)}",  # p - bb
        f"VADDPS {Y(6)}, {Y(7)}, {Y(7)}",  # tl
        f"VMOVUPS {c('geluK3lo', K3X - k3)}, {Y(8)}",
        f"VFMADD213PS {c('geluK1lo', K1X - k1)}, {Y(1)}, {Y(8)}",  # fma(s, k3lo, k1lo)
        f"VFMADD231PS {c('geluK3', k3)}, {Y(2)}, {Y(8)}",  # fma(k3, sl, .)
        f"VADDPS {Y(8)}, {Y(4)}, {Y(4)}",  # pl + .
        f"VADDPS {Y(4)}, {Y(7)}, {Y(7)}",  # tl + .
        f"VMULPS {Y(5)}, {Y(11)}, {Y(6)}",  # w = xc*t
        f"VMOVUPS {Y(6)}, {Y(9)}",
        f"VFMSUB231PS {Y(5)}, {Y(11)}, {Y(9)}",  # xc*t - w
        f"VFMADD231PS {Y(7)}, {Y(11)}, {Y(9)}",  # wl = xc*tl + .
    ] + sigmoid(6, 1, 2, 3, 4, 5) + [
        f"VSUBPS {Y(1)}, {Y(ONE)}, {Y(2)}",  # 1 - sg
        f"VMULPS {Y(2)}, {Y(1)}, {Y(2)}",  # sg*(1-sg)
        f"VFMADD213PS {Y(1)}, {Y(9)}, {Y(2)}",  # fma(d, wl, sg)
        f"VMULPS {Y(2)}, {Y(0)}, {Y(2)}",
    ], 2


def body_mish():
    return clamp_low(0, -200, 1) + [
        f"VMINPS {c('mishmax', 20.0)}, {Y(0)}, {Y(1)}",
    ] + exp(1, 2, 3, 4) + [
        f"VADDPS {c('two', 2.0)}, {Y(2)}, {Y(3)}",
        f"VMULPS {Y(3)}, {Y(2)}, {Y(2)}",
        f"VADDPS {c('two', 2.0)}, {Y(2)}, {Y(3)}",
        f"VDIVPS {Y(3)}, {Y(2)}, {Y(2)}",
        f"VMULPS {Y(2)}, {Y(0)}, {Y(2)}",
    ], 2


def body_softplus():
    return [f"VORPS {c('sign', bits=0x80000000)}, {Y(0)}, {Y(1)}"] + exp(1, 2, 3, 4) + [
        f"VADDPS {Y(ONE)}, {Y(2)}, {Y(3)}",  # u
        f"VSUBPS {Y(ONE)}, {Y(3)}, {Y(4)}",  # u - 1
        f"VSUBPS {Y(4)}, {Y(2)}, {Y(4)}",  # e - (u - 1)
        f"VDIVPS {Y(3)}, {Y(4)}, {Y(4)}",  # c
    ] + log_positive_normal(3, 5, 6, 7) + [
        f"VADDPS {Y(4)}, {Y(5)}, {Y(5)}",
        f"VXORPS {Y(6)}, {Y(6)}, {Y(6)}",
        f"VMAXPS {Y(0)}, {Y(6)}, {Y(6)}",
        f"VADDPS {Y(5)}, {Y(6)}, {Y(5)}",
    ], 5


def body_elu():
    # Y12 = alpha; Y11 keeps x (a reload would need the tail's lane mask)
    return [f"VMOVUPS {Y(0)}, {Y(11)}"] + clamp_low(0, -20, 1) + expm1(0, 2, 3, 4) + [
        f"VMULPS {Y(12)}, {Y(2)}, {Y(2)}",
        cmp(0x0e, c('zero', 0.0), 11, 3),
    ] + blend(3, Y(11), Y(2), 2), 2


def setup():
    return [
        f"VMOVUPS {c('one', 1.0)}, {Y(ONE)}",
        f"VMOVUPS {c('expHi', 89.0)}, {Y(HI)}",
        f"VMOVUPS {c('expLo', -104.0)}, {Y(LO)}",
    ]


EVEX = {"VANDPS": "VPANDD", "VORPS": "VPORD", "VXORPS": "VPXORD", "VANDNPS": "VPANDND", "VPAND": "VPANDD"}


def evex(line):
    """The AVX-512 form of a generated line: bitwise ops on Z registers exist
    only as the integer D forms without AVX512DQ, so those are renamed (same
    bits, no DQ needed)."""
    op, _, rest = line.partition(" ")
    return EVEX.get(op, op) + " " + rest


def hoist_consts(blocks, reserved=()):
    """AVX-512: the constants the loop bodies read from memory (c_*<>(SB),
    a 64-byte load each use) go into Z registers no body uses, loaded once
    before the loops, most used first; blocks are lists of lines, rewritten
    in place. Zen 5 has two 512-bit load ports: exp's body read 12
    constants a vector, and its loop ran at 930 ns per 4096 floats where
    the same operations on registers took 500 (C, gcc). The same
    operations, so the same bits. Returns the loads for the setup."""
    used = set(int(r) for b in blocks for l in b for r in re.findall(r"\bZ(\d+)\b", l))
    used |= set(reserved) | {ONE, HI, LO}
    free = [r for r in range(32) if r not in used]
    count = {}
    for b in blocks:
        for l in b:
            for name in re.findall(r"c_(\w+)<>\(SB\)", l):
                count[name] = count.get(name, 0) + 1
    regs = {}
    for name in sorted(count, key=lambda k: -count[k]):
        if not free:
            break
        regs[name] = free.pop(0)
    for b in blocks:
        for i, l in enumerate(b):
            b[i] = re.sub(r"c_(\w+)<>\(SB\)", lambda m: f"Z{regs[m[1]]}" if m[1] in regs else m[0], l)
    return [f"\tVMOVUPS c_{name}<>(SB), Z{r}" for name, r in regs.items()]


def lane_mask(k, r):
    """K register k = the low r lanes (r in a register, 1..16; AX and CX clobbered)."""
    return [f"\tMOVQ {r}, CX", "\tMOVL $1, AX", "\tSHLL CX, AX", "\tDECL AX", f"\tKMOVW AX, K{k}"]


def routine(name, body, extra_args=(), x2=False):
    """A unary routine over dst and x: AVX2, eight floats a step over n (a
    multiple of 8; the caller pads a tail), or AVX-512 (ISA), sixteen a step
    and a last partial step under a lane mask (K7), whose masked loads do not
    fault past the end. The same operations per lane, so the same bits.
    With x2 (AVX-512) the loop takes two vectors a step, the second on
    shift_regs' registers and interleaved with the first (as routine_x2):
    the bodies are chains of dependent operations that one vector at a time
    leaves the vector units waiting on; then one vector, then the tail."""
    lines, res = body()
    z = ISA == "avx512"
    w = 64 if z else 32
    lines = ["\t" + (evex(l) if z else l) for l in lines]
    frame = 24 + sum(sz for _, sz, _ in extra_args)
    sig = ", ".join(["dst *float32", "x *float32", "n int"] + [f"{a} {t}" for a, _, t in extra_args])
    out = [f"// func {name}({sig})", f"TEXT ·{name}(SB), NOSPLIT, $0-{frame}",
           "\tMOVQ dst+0(FP), DI", "\tMOVQ x+8(FP), SI", "\tMOVQ n+16(FP), CX"]
    off = 24
    for a, sz, t in extra_args:
        if t == "float32":
            out.append(f"\tVBROADCASTSS {a}+{off}(FP), {Y(12)}")
        off += sz
    out += ["\t" + l for l in setup()]
    second = shift_regs(lines) if z and x2 else []
    if z:
        out += hoist_consts([lines, second], reserved=(0, 16, 12, 28))
    if z and x2:
        if extra_args:
            out.append("\tVMOVUPS Z12, Z28")  # the float argument, for the second set
        out += ["\tMOVQ CX, R8", "\tSHRQ $5, CX", f"\tJEQ {name}_one", f"{name}_loop2:",
                "\tVMOVUPS (SI), Z0", "\tVMOVUPS 64(SI), Z16"] + [l for pair in zip(lines, second) for l in pair] + [
                f"\tVMOVUPS Z{res}, (DI)", f"\tVMOVUPS Z{res + 16}, 64(DI)",
                "\tADDQ $128, SI", "\tADDQ $128, DI", "\tDECQ CX", f"\tJNE {name}_loop2",
                f"{name}_one:", "\tMOVQ R8, CX", "\tANDQ $16, CX", "\tSHRQ $4, CX"]
    end = f"{name}_tail" if z else f"{name}_done"
    out += ([] if z and x2 else ["\tMOVQ CX, R8", "\tSHRQ $4, CX"] if z else ["\tSHRQ $3, CX"]) + [
        f"\tJEQ {end}", f"{name}_loop:", f"\tVMOVUPS (SI), {Y(0)}"]
    out += lines
    out += [f"\tVMOVUPS {Y(res)}, (DI)", f"\tADDQ ${w}, SI", f"\tADDQ ${w}, DI", "\tDECQ CX", f"\tJNE {name}_loop"]
    if z:
        out += [f"{name}_tail:", "\tANDQ $15, R8", f"\tJEQ {name}_done"] + lane_mask(7, "R8")
        out += ["\tVMOVUPS.Z (SI), K7, Z0"] + lines + [f"\tVMOVUPS Z{res}, K7, (DI)"]
    out += [f"{name}_done:", "\tVZEROUPPER", "\tRET", ""]
    return out


SPLIT_BLOCK = 512  # the most floats a split routine takes: splitBlock in erfsplit_amd64.go


def split_routine(name, small, a, large):
    """A three-pass AVX-512 routine over a block of n floats (at most
    SPLIT_BLOCK, any n below) for a function with a cheap branch below
    erfSplit and a dear one above (erf, gelu): most inputs take the cheap
    one, but nearly every sixteen lanes hold one that does not, and the
    one-pass routine pays both branches for all. Pass 1 runs the small
    branch on every lane and stores it, and packs the inputs of the other
    lanes (a not below erfSplit, NaN too: the lanes the one-pass blend gives
    the large value) into buf, with one lane mask per vector; pass 2 runs the
    large branch on buf in place; pass 3 expands each vector's packed results
    into its large lanes of dst. Every lane gets the one-pass routine's
    operations on its input, so the same bits (dst may be x: pass 1 reads a
    vector before it writes it, and the later passes read only buf and the
    masks). Pass 1 and 2 take two vectors a step, as routine_x2 does. The
    packing compresses into a register and stores all of it (the memory form
    of VCOMPRESSPS is microcoded on AMD Zen 4); the next store overwrites the
    lanes past the packed ones. Returns the number of large lanes.

    small and large are bodies (lines, result register); a is the register
    holding the value compared with erfSplit after small's lines."""
    sm, sres = small()
    lg, lres = large()
    sm = ["\t" + evex(l) for l in sm]
    lg = ["\t" + evex(l) for l in lg]
    split = c('erfSplit', 0.921875)

    def pack(keep, z=0, off=0):
        # K1 = the lanes of vector z not below erfSplit (within K7 on a
        # partial vector), packed through Z30
        return [f"\tVCMPPS $5, {split}, Z{a + z}, {keep}K1", f"\tVCOMPRESSPS Z{z}, K1, Z30",
                "\tVMOVUPS Z30, (R10)(R9*4)", "\tKMOVW K1, AX", f"\tMOVW AX, {off}(R11)",
                "\tPOPCNTL AX, AX", "\tADDQ AX, R9"]

    # the frame holds buf (and a vector past it, which the last packing
    # store may write) and the masks: the caller's Go arrays would be
    # zeroed on every call, 30-50 ns, a tenth of a 512-float block's time
    bufsize = 4 * (SPLIT_BLOCK + 16)
    out = [f"// func {name}(dst *float32, x *float32, n int) int",
           f"TEXT ·{name}(SB), ${bufsize + 2 * SPLIT_BLOCK // 16}-32",
           "\tMOVQ dst+0(FP), DI", "\tMOVQ x+8(FP), SI", "\tMOVQ n+16(FP), CX",
           "\tLEAQ 0(SP), R10", f"\tLEAQ {bufsize}(SP), R11"]
    out += ["\t" + l for l in setup()] + [f"\tVMOVUPS {c('erfcMax', 6.0)}, Z31"]
    # pass 1: R9 counts the packed lanes, R11 walks the masks
    sm2 = shift_regs(sm)
    out += hoist_consts([sm, sm2], reserved=(0, 16, 30, 31))
    out += ["\tXORQ R9, R9", "\tMOVQ CX, R8", "\tSHRQ $5, CX", f"\tJEQ {name}_one1", f"{name}_small:",
            "\tVMOVUPS (SI), Z0", "\tVMOVUPS 64(SI), Z16"] + [l for p in zip(sm, sm2) for l in p] + [
            f"\tVMOVUPS Z{sres}, (DI)", f"\tVMOVUPS Z{sres + 16}, 64(DI)"] + pack("") + pack("", 16, 2) + [
            "\tADDQ $128, SI", "\tADDQ $128, DI", "\tADDQ $4, R11", "\tDECQ CX", f"\tJNE {name}_small",
            f"{name}_one1:", "\tTESTQ $16, R8", f"\tJEQ {name}_tail1",
            "\tVMOVUPS (SI), Z0"] + sm + [f"\tVMOVUPS Z{sres}, (DI)"] + pack("") + [
            "\tADDQ $64, SI", "\tADDQ $64, DI", "\tADDQ $2, R11"]
    out += [f"{name}_tail1:", "\tANDQ $15, R8", f"\tJEQ {name}_large0"] + lane_mask(7, "R8") + [
            "\tVMOVUPS.Z (SI), K7, Z0"] + sm + [f"\tVMOVUPS Z{sres}, K7, (DI)"] + pack("K7, ")
    # pass 2, in place on buf
    lg2 = shift_regs(lg)
    both = [l for pair in zip(lg, lg2) for l in pair]
    out += [f"{name}_large0:", "\tTESTQ R9, R9", f"\tJEQ {name}_done"]
    out += hoist_consts([lg, lg2, both], reserved=(0, 16, 30, 31))  # pass 1's are dead here
    out += [
            "\tMOVQ R10, SI", "\tMOVQ R9, CX", "\tMOVQ R9, R8", "\tSHRQ $5, CX", f"\tJEQ {name}_one",
            f"{name}_large:", "\tVMOVUPS (SI), Z0", "\tVMOVUPS 64(SI), Z16"] + both + [f"\tVMOVUPS Z{lres}, (SI)",
            f"\tVMOVUPS Z{lres + 16}, 64(SI)", "\tADDQ $128, SI", "\tDECQ CX", f"\tJNE {name}_large",
            f"{name}_one:", "\tTESTQ $16, R8", f"\tJEQ {name}_tail2", "\tVMOVUPS (SI), Z0"] + lg + [
            f"\tVMOVUPS Z{lres}, (SI)", "\tADDQ $64, SI",
            f"{name}_tail2:", "\tANDQ $15, R8", f"\tJEQ {name}_scatter0"] + lane_mask(7, "R8") + [
            "\tVMOVUPS.Z (SI), K7, Z0"] + lg + [f"\tVMOVUPS Z{lres}, K7, (SI)"]
    # pass 3: each vector's packed results expanded into its large lanes
    out += [f"{name}_scatter0:", "\tMOVQ dst+0(FP), DI", f"\tLEAQ {bufsize}(SP), R11",
            "\tMOVQ n+16(FP), CX", "\tADDQ $15, CX", "\tSHRQ $4, CX",
            f"{name}_scatter:", "\tMOVWLZX (R11), AX", "\tKMOVW AX, K1",
            "\tVEXPANDPS (R10), K1, Z0", "\tVMOVUPS Z0, K1, (DI)",
            "\tPOPCNTL AX, AX", "\tLEAQ (R10)(AX*4), R10",
            "\tADDQ $64, DI", "\tADDQ $2, R11", "\tDECQ CX", f"\tJNE {name}_scatter"]
    out += [f"{name}_done:", "\tMOVQ R9, ret+24(FP)", "\tVZEROUPPER", "\tRET", ""]
    return out


def shift_regs(lines):
    """lines on a second set of registers: Z0-Z12 -> Z16-Z28 (Z13-Z15, the
    constants, shared) and every mask in K3: the bodies' masks live from a
    compare to its use, one at a time, which is checked."""
    out, owner = [], None
    for line in lines:
        ks = re.findall(r"\bK(\d)\b", line)
        assert "3" not in ks and "7" not in ks and len(ks) <= 1, line
        if ks:
            if line.split()[0] in ("VCMPPS", "VPTESTMD"):
                owner = ks[0]  # a compare defines the mask
            assert owner == ks[0], f"mask K{ks[0]} used while K3 holds K{owner}: {line}"
        line = re.sub(r"\bZ(\d+)\b", lambda m: f"Z{int(m[1]) + 16}" if int(m[1]) < 13 else m[0], line)
        out.append(re.sub(r"\bK\d\b", "K3", line))
    return out


def erf_small_body():
    pre, small, _, sign = erf_parts()
    return pre + small + sign(2), 2


def erf_large_body():
    pre, _, large, sign = erf_parts(cap=True)
    return pre + large + sign(4), 4


def gelu_erf_small_body():
    _, pre, small, _, prod = gelu_erf_parts()
    return pre + small + prod(3), 6


def gelu_erf_large_body():
    pre, _, _, large, prod = gelu_erf_parts(cap=True)
    return pre + large + prod(5), 6


def routine_x2(name, body):
    """routine's AVX-512 loop on two vectors a step, their operations
    interleaved (the second vector on shift_regs' registers): erf's and
    gelu's bodies are long chains of dependent operations (a degree-11
    polynomial, then exp), and two in the same step keep the vector units
    busier than the out-of-order window alone did. Then one vector, then a
    masked partial one, as routine does: the same operations per lane, so the
    same bits (body with cap: see erfc_large). Returns the number of lanes not below erfSplit (NaN included),
    counted from the blend's mask, as split_routine does (the lanes past n of
    a partial vector are 0, below it)."""
    lines, res = body()
    lines = ["\t" + evex(l) for l in lines]
    at = [i for i, l in enumerate(lines) if "c_erfSplit" in l]
    assert len(at) == 1 and lines[at[0]].split()[0] == "VCMPPS" and lines[at[0]].split()[1] == "$1,", at
    # R9 counts the lanes below erfSplit, from the compare's mask
    count = lambda k: [f"\tKMOVW {k}, AX", "\tPOPCNTL AX, AX", "\tADDQ AX, R9"]
    k = lines[at[0]].split()[-1]
    one = lines[:at[0] + 1] + count(k) + lines[at[0] + 1:]
    second = shift_regs(lines)
    both = [l for pair in zip(lines, second) for l in pair]
    cut = 2 * at[0] + 2
    both = both[:cut] + count(k) + count("K3") + both[cut:]
    out = [f"// func {name}(dst *float32, x *float32, n int) int", f"TEXT ·{name}(SB), NOSPLIT, $0-32",
           "\tMOVQ dst+0(FP), DI", "\tMOVQ x+8(FP), SI", "\tMOVQ n+16(FP), CX"]
    out += ["\t" + l for l in setup()] + [f"\tVMOVUPS {c('erfcMax', 6.0)}, Z31"]
    out += hoist_consts([one, both], reserved=(0, 16, 31))
    out += ["\tXORQ R9, R9", "\tMOVQ CX, R8", "\tSHRQ $5, CX", f"\tJEQ {name}_one", f"{name}_loop:",
            "\tVMOVUPS (SI), Z0", "\tVMOVUPS 64(SI), Z16"] + both + [
            f"\tVMOVUPS Z{res}, (DI)", f"\tVMOVUPS Z{res + 16}, 64(DI)",
            "\tADDQ $128, SI", "\tADDQ $128, DI", "\tDECQ CX", f"\tJNE {name}_loop",
            f"{name}_one:", "\tTESTQ $16, R8", f"\tJEQ {name}_tail", "\tVMOVUPS (SI), Z0"] + one + [
            f"\tVMOVUPS Z{res}, (DI)", "\tADDQ $64, SI", "\tADDQ $64, DI",
            f"{name}_tail:", "\tANDQ $15, R8", f"\tJEQ {name}_done"] + lane_mask(7, "R8")
    out += ["\tVMOVUPS.Z (SI), K7, Z0"] + one + [f"\tVMOVUPS Z{res}, K7, (DI)"]
    # large = the lanes run (n rounded up to sixteen) - small
    out += [f"{name}_done:", "\tMOVQ n+16(FP), AX", "\tADDQ $15, AX", "\tANDQ $-16, AX", "\tSUBQ R9, AX",
            "\tMOVQ AX, ret+24(FP)", "\tVZEROUPPER", "\tRET", ""]
    return out


def exp_sum_prologue(name):
    """The header, argument loads and constants of expSubSum (ISA's
    registers): sub broadcast in register 12, acc in DX, the float64 sums
    (Y11, and Y14 for AVX2's lanes 4-7) zeroed."""
    return [f"// func {name}(dst *float32, x *float32, n int, sub float32, acc *[8]float64)",
            f"TEXT ·{name}(SB), NOSPLIT, $0-40",
            "\tMOVQ dst+0(FP), DI", "\tMOVQ x+8(FP), SI", "\tMOVQ n+16(FP), CX",
            f"\tVBROADCASTSS sub+24(FP), {Y(12)}", "\tMOVQ acc+32(FP), DX"
            ] + ["\t" + l for l in setup()] + ["\tVXORPD Y11, Y11, Y11", "\tVXORPD Y14, Y14, Y14"]


# How expSubSum sums (both ISAs, the same bits): the row in groups of 32
# values; lane i (of 8) of a group adds (v[i] + v[i+8]) + (v[i+16] +
# v[i+24]) in float32, widens it, and adds it to acc[i] in float64. A
# group's float32 sum is one widening and one float64 add for 32 values
# (the widening of every 16 and their lane shuffles held the AVX-512 loop
# to 970 ns per 4096 values, 675 this way). The values are not negative,
# so the two float32 roundings of a four-value sum bound the total's
# relative error by (1 + 2^-24)^2 - 1 < 1.2e-7; float64 adds the rest. A
# last partial group loads and stores under lane masks with -Inf past n
# (exp 0): its sum has the same bits as a longer row's that is 0 past n
# (fused attention skips a causal mask's zeros, Softmax does not). On
# AVX-512 a last group of 16 values or fewer is one vector: the second's
# lanes would all be 0, and x + 0 is x (exp gives no -0). Paired, rows of
# 65 (a small ViT's attention) 17.4-24.7 -> 14.9-21.6 ns a row, of 197
# 37.8-48.0 -> 35.7-44.1, of 5 8.5-13.1 -> 7.6-10.8; 17-31 left even.


def exp_sum512_core(name):
    """expSubSumAVX512's loop and tail, for x - sub (sub in Z12) at SI, its
    exp at DI and the float64 lane sums added into Z11, n in CX; they end at
    {name}_done (not emitted). R8, R10, AX, K6 and K7 clobbered. Returns the
    lines and the bodies, whose constants the caller hoists."""
    step = ["\t" + evex(l) for l in exp_nonpositive_flush(0, 1, 2, 3)]
    step2 = shift_regs(step)
    both = [l for pair in zip(step, step2) for l in pair]
    # h_A = lanes i + i+8 of the first vector, h_B of the second, then h_A + h_B.
    add = ["\tVEXTRACTF64X4 $1, Z1, Y3", "\tVEXTRACTF64X4 $1, Z17, Y19", "\tVADDPS Y3, Y1, Y1",
           "\tVADDPS Y19, Y17, Y17", "\tVADDPS Y17, Y1, Y1", "\tVCVTPS2PD Y1, Z2", "\tVADDPD Z2, Z11, Z11"]
    sub = ["\tVSUBPS Z12, Z0, Z0", "\tVSUBPS Z12, Z16, Z16"]
    out = ["\tMOVQ CX, R8", "\tSHRQ $5, CX", f"\tJEQ {name}_tail", f"{name}_loop:",
           "\tVMOVUPS (SI), Z0", "\tVMOVUPS 64(SI), Z16"] + sub + both + [
           "\tVMOVUPS Z1, (DI)", "\tVMOVUPS Z17, 64(DI)"] + add
    out += ["\tADDQ $128, SI", "\tADDQ $128, DI", "\tDECQ CX", f"\tJNE {name}_loop",
            f"{name}_tail:", "\tANDQ $31, R8", f"\tJEQ {name}_done",
            # 16 values or fewer left: one vector (K7), its lanes i and i+8
            # summed, the second vector's all zero in the group sum above.
            "\tCMPQ R8, $16", f"\tJG {name}_two"] + lane_mask(7, "R8")
    ninf = c('ninf', bits=0xff800000)
    add1 = ["\tVEXTRACTF64X4 $1, Z1, Y3", "\tVADDPS Y3, Y1, Y1", "\tVCVTPS2PD Y1, Z2", "\tVADDPD Z2, Z11, Z11"]
    out += [f"\tVMOVUPS {ninf}, Z0", "\tVMOVUPS (SI), K7, Z0", "\tVSUBPS Z12, Z0, Z0"] + step + [
            "\tVMOVUPS Z1, K7, (DI)"] + add1 + [f"\tJMP {name}_done"]
    out += [f"{name}_two:",
            # 17 to 31: the first vector whole, R10 = the lanes of the second
            "\tMOVQ R8, R10", "\tSUBQ $16, R10", "\tKXNORW K7, K7, K7"] + lane_mask(6, "R10")
    out += [f"\tVMOVUPS {ninf}, Z0", "\tVMOVUPS (SI), K7, Z0", f"\tVMOVUPS {ninf}, Z16", "\tVMOVUPS 64(SI), K6, Z16"]
    out += sub + both + ["\tVMOVUPS Z1, K7, (DI)", "\tVMOVUPS Z17, K6, 64(DI)"] + add
    return out


def exp_sum512():
    """expSubSumAVX512: expSubSumAVX2 on sixteen-float vectors, a group (two
    vectors, their chains interleaved) a step; a partial last group under
    the lane masks K7 and K6."""
    name = "expSubSumAVX512"
    out = exp_sum_prologue(name)
    core = exp_sum512_core(name)
    out += hoist_consts([core], reserved=(0, 1, 2, 3, 11, 12, 16, 17, 18, 19))
    out += core + [f"{name}_done:", "\tVMOVUPD Z11, (DX)", "\tVZEROUPPER", "\tRET", ""]
    return out


# ExpSum's float64 total of the eight lanes in Z2, ((a0 + a1) + (a2 + a3))
# + ((a4 + a5) + (a6 + a7)), into X2 (Z3 clobbered): pairs, pairs of pairs,
# then the two halves; the adds commute, so the bits are Go's.
REDUCE8 = ["\tVPERMILPD $0x55, Z2, Z3", "\tVADDPD Z3, Z2, Z2",
           "\tVPERMPD $0x4e, Z2, Z3", "\tVADDPD Z3, Z2, Z2",
           "\tVEXTRACTF64X4 $1, Z2, Y3", "\tVADDSD X3, X2, X2"]


def softmax_rows512():
    """softmaxRowsAVX512: softmaxShortAVX512 for rows of any length: per
    row expSubSumAVX512's loop and tail into Z11, ExpSum's total, then a
    second pass scaling the row (in L1 by then) by float32(1 / sum), as
    MulScalar does. One call for the rows, where ExpSum and MulScalar per
    row paid two calls, their set-up and the float64 division's latency
    each (a detector's 8732 rows of 91 classes)."""
    name = "softmaxRowsAVX512"
    out = [f"// func {name}(dst, x *float32, rows, t, ld int, maxes *float32)",
           f"TEXT ·{name}(SB), NOSPLIT, $0-48",
           "\tMOVQ dst+0(FP), R9", "\tMOVQ x+8(FP), BX", "\tMOVQ rows+16(FP), R11",
           "\tMOVQ ld+32(FP), R12", "\tSHLQ $2, R12", "\tMOVQ maxes+40(FP), R13"
           ] + ["\t" + l for l in setup()]
    core = exp_sum512_core(name)
    out += hoist_consts([core], reserved=(0, 1, 2, 3, 4, 5, 11, 12, 16, 17, 18, 19, 30))
    out += ["\tVCVTSS2SD X13, X30, X30", "\tTESTQ R11, R11", f"\tJEQ {name}_end", f"{name}_row:",
            "\tMOVQ R9, DI", "\tMOVQ BX, SI", "\tMOVQ t+24(FP), CX",
            "\tVBROADCASTSS (R13), Z12", "\tVXORPD Z11, Z11, Z11"] + core
    out += [f"{name}_done:", "\tVMOVAPD Z11, Z2"] + REDUCE8 + [
            "\tVDIVSD X2, X30, X4", "\tVCVTSD2SS X4, X4, X4", "\tVBROADCASTSS X4, Z4",
            "\tMOVQ R9, DI", "\tMOVQ t+24(FP), CX",
            f"{name}_scale:", "\tCMPQ CX, $16", f"\tJLT {name}_scaleTail",
            "\tVMULPS (DI), Z4, Z5", "\tVMOVUPS Z5, (DI)", "\tADDQ $64, DI", "\tSUBQ $16, CX", f"\tJMP {name}_scale",
            f"{name}_scaleTail:", "\tTESTQ CX, CX", f"\tJEQ {name}_next"] + lane_mask(7, "CX") + [
            "\tVMOVUPS.Z (DI), K7, Z5", "\tVMULPS Z4, Z5, Z5", "\tVMOVUPS Z5, K7, (DI)",
            f"{name}_next:", "\tADDQ $4, R13", "\tADDQ R12, R9", "\tADDQ R12, BX", "\tDECQ R11", f"\tJNE {name}_row",
            f"{name}_end:", "\tVZEROUPPER", "\tRET", ""]
    return out


def softmax_short512():
    """softmaxShortAVX512: rows (t <= 16 values each, rows ld floats apart)
    of a Softmax given each row's largest value (maxes): per row one masked
    vector, expSubSumAVX512's exp and its sum of a last group of 16 or fewer
    (lanes i and i+8 in float32, widened), the eight float64 lanes summed in
    ExpSum's order ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), then
    float32(1 / sum) times the row, as MulScalar scales it: ExpSum and
    MulScalar's bits, row by row. One call for all the rows, whose chains
    are independent: the out-of-order core overlaps them, where a call of
    each per row of 16 waited on each one's latency (a Swin window
    attention's 768 rows of 16: 32 + 12 ns a row)."""
    name = "softmaxShortAVX512"
    out = [f"// func {name}(dst, x *float32, rows, t, ld int, maxes *float32)",
           f"TEXT ·{name}(SB), NOSPLIT, $0-48",
           "\tMOVQ t+24(FP), R8"] + lane_mask(7, "R8") + [
           "\tMOVQ dst+0(FP), DI", "\tMOVQ x+8(FP), SI", "\tMOVQ rows+16(FP), CX",
           "\tMOVQ ld+32(FP), R9", "\tSHLQ $2, R9", "\tMOVQ maxes+40(FP), BX"
           ] + ["\t" + l for l in setup()]
    load = [f"\tVMOVUPS {c('ninf', bits=0xff800000)}, Z0", "\tVMOVUPS (SI), K7, Z0",
            "\tVBROADCASTSS (BX), Z12", "\tVSUBPS Z12, Z0, Z0"]
    step = ["\t" + evex(l) for l in exp_nonpositive_flush(0, 1, 2, 3)]
    out += hoist_consts([load, step], reserved=(0, 1, 2, 3, 4, 5, 12, 30))
    # X30 = 1.0 in float64, from Z13's float32 1.0
    out += ["\tVCVTSS2SD X13, X30, X30", "\tTESTQ CX, CX", f"\tJEQ {name}_done", f"{name}_loop:"]
    out += load + step
    out += ["\tVEXTRACTF64X4 $1, Z1, Y3", "\tVADDPS Y3, Y1, Y2", "\tVCVTPS2PD Y2, Z2",
            ] + REDUCE8 + ["\tVDIVSD X2, X30, X4", "\tVCVTSD2SS X4, X4, X4", "\tVBROADCASTSS X4, Z4",
            "\tVMULPS Z4, Z1, Z1", "\tVMOVUPS Z1, K7, (DI)",
            "\tADDQ $4, BX", "\tADDQ R9, SI", "\tADDQ R9, DI", "\tDECQ CX", f"\tJNE {name}_loop",
            f"{name}_done:", "\tVZEROUPPER", "\tRET", ""]
    return out


def exp_sum():
    """expSubSumAVX2: dst = exp(x - sub), acc[0:8] = the values summed as
    described above, for x <= sub or NaN (sub is the row's largest value):
    exp()'s bits by exp_nonpositive's shorter path. A group is two steps of
    sixteen values (two vectors each, h = their sum); the first step's h
    waits in Y13 for the second's, lanes 0-3 of the group's sum go into Y11
    and 4-7 into Y14. A partial last group: a whole first step if there is
    one, then one under lane masks (Y8, Y9) with -Inf past n, or none (its h
    would be +0, and h_A + 0 is h_A)."""
    name = "expSubSumAVX2"
    out = exp_sum_prologue(name)
    def step():
        lines = ["\t" + l for l in exp_nonpositive_flush(0, 1, 2, 3) + exp_nonpositive_flush(4, 5, 6, 7)]
        assert not any(re.search(r"\bY1[34]\b", l) for l in lines), "Y13 and Y14 hold sums"
        return lines
    def half(off):
        at = lambda o, r: f"{off + o}({r})" if off + o else f"({r})"
        return ([f"\tVMOVUPS {at(0, 'SI')}, Y0", "\tVSUBPS Y12, Y0, Y0", f"\tVMOVUPS {at(32, 'SI')}, Y4",
                 "\tVSUBPS Y12, Y4, Y4"] + step() +
                [f"\tVMOVUPS Y1, {at(0, 'DI')}", f"\tVMOVUPS Y5, {at(32, 'DI')}", "\tVADDPS Y5, Y1, Y1"])
    def masked():
        # lane i of the two vectors is live when i < R8 (1..15)
        return (["\tVMOVQ R8, X0", "\tVPBROADCASTD X0, Y0",
                 "\tVPCMPGTD c_lanes16<>(SB), Y0, Y8", "\tVPCMPGTD c_lanes16<>+32(SB), Y0, Y9",
                 "\tVMASKMOVPS (SI), Y8, Y0", "\tVMASKMOVPS 32(SI), Y9, Y4",
                 f"\tVMOVUPS {c('ninf', bits=0xff800000)}, Y1",
                 "\tVBLENDVPS Y8, Y0, Y1, Y0", "\tVBLENDVPS Y9, Y4, Y1, Y4",
                 "\tVSUBPS Y12, Y0, Y0", "\tVSUBPS Y12, Y4, Y4"] + step() +
                ["\tVMASKMOVPS Y1, Y8, (DI)", "\tVMASKMOVPS Y5, Y9, 32(DI)", "\tVADDPS Y5, Y1, Y1"])
    add = ["\tVCVTPS2PD X1, Y2", "\tVADDPD Y2, Y11, Y11", "\tVEXTRACTF128 $1, Y1, X3",
           "\tVCVTPS2PD X3, Y3", "\tVADDPD Y3, Y14, Y14"]
    out += ["\tMOVQ CX, R8", "\tSHRQ $5, CX", f"\tJEQ {name}_tail", f"{name}_loop:"]
    out += half(0) + ["\tVMOVAPS Y1, Y13"] + half(64) + ["\tVADDPS Y1, Y13, Y1"] + add
    out += ["\tADDQ $128, SI", "\tADDQ $128, DI", "\tDECQ CX", f"\tJNE {name}_loop",
            f"{name}_tail:", "\tANDQ $31, R8", f"\tJEQ {name}_done",
            "\tCMPQ R8, $16", f"\tJLT {name}_short"]
    out += half(0) + ["\tVMOVAPS Y1, Y13", "\tADDQ $64, SI", "\tADDQ $64, DI", "\tSUBQ $16, R8",
                      f"\tJEQ {name}_first"]
    out += masked() + ["\tVADDPS Y1, Y13, Y1", f"\tJMP {name}_sum",
                       f"{name}_first:", "\tVMOVAPS Y13, Y1", f"\tJMP {name}_sum",
                       f"{name}_short:"] + masked()
    out += [f"{name}_sum:"] + add
    out += [f"{name}_done:", "\tVMOVUPD Y11, (DX)", "\tVMOVUPD Y14, 32(DX)", "\tVZEROUPPER", "\tRET", ""]
    return out


def sums():
    """sumF64AVX2: acc[0:4] = x summed in float64; sumSqDevAVX2: acc[0:4] = (x - mean)^2 summed
    in float64; n a multiple of 8. Four 4-lane sums over 16-float groups
    (floats 0-3, 4-7, 8-11, 12-15 of each), a last 8-float group into the
    first two, then (s0 + s1) + (s2 + s3) lane by lane (rowMeansAVX2 sums
    the same way): four chains of adds, where two left the loop waiting on
    the add's latency (InstanceNormalization on 1x64x56x56: 81 -> 62 us). Both write acc
    without reading it (no store-forwarding stall on an array the caller
    just zeroed)."""
    def routine(name, args, frame, pre, term):
        # term(src, r): the lines adding the four floats at src into Y(r)
        out = [f"// func {name}({args})", f"TEXT ·{name}(SB), NOSPLIT, $0-{frame}"] + pre + [
            "\tVXORPD Y11, Y11, Y11", "\tVXORPD Y12, Y12, Y12", "\tVXORPD Y13, Y13, Y13", "\tVXORPD Y14, Y14, Y14",
            "\tMOVQ CX, R8", "\tSHRQ $4, CX", f"\tJEQ {name}_eight", f"{name}_loop:"]
        for i in range(4):
            out += term(f"{16 * i}(SI)" if i else "(SI)", i, 11 + i)
        out += ["\tADDQ $64, SI", "\tDECQ CX", f"\tJNE {name}_loop",
                f"{name}_eight:", "\tTESTQ $8, R8", f"\tJEQ {name}_done"]
        out += term("(SI)", 0, 11) + term("16(SI)", 1, 12)
        out += [f"{name}_done:", "\tVADDPD Y12, Y11, Y11", "\tVADDPD Y14, Y13, Y13", "\tVADDPD Y13, Y11, Y11",
                "\tVMOVUPD Y11, (DX)", "\tVZEROUPPER", "\tRET", ""]
        return out
    out = routine("sumF64AVX2", "x *float32, n int, acc *[4]float64", 24,
                  ["\tMOVQ x+0(FP), SI", "\tMOVQ n+8(FP), CX", "\tMOVQ acc+16(FP), DX"],
                  lambda src, t, r: [f"\tVCVTPS2PD {src}, Y{t}", f"\tVADDPD Y{t}, Y{r}, Y{r}"])
    out += routine("sumSqDevAVX2", "x *float32, n int, mean float64, acc *[4]float64", 32,
                   ["\tMOVQ x+0(FP), SI", "\tMOVQ n+8(FP), CX", "\tVBROADCASTSD mean+16(FP), Y10",
                    "\tMOVQ acc+24(FP), DX"],
                   lambda src, t, r: [f"\tVCVTPS2PD {src}, Y{t}", f"\tVSUBPD Y10, Y{t}, Y{t}",
                                      f"\tVFMADD231PD Y{t}, Y{t}, Y{r}"])
    return out


out = ["// Code generated by gen_math.py. DO NOT EDIT.", "", "//go:build amd64 && !purego", "", '#include "textflag.h"', ""]
UNARY = [("exp", body_exp), ("log", body_log), ("sigmoid", body_sigmoid), ("tanh", body_tanh), ("erf", body_erf),
         ("silu", body_silu), ("geluErf", body_gelu_erf), ("geluTanh", body_gelu_tanh), ("mish", body_mish),
         ("softplus", body_softplus)]
for name, body in UNARY:
    out += routine(name + "AVX2", body)
out += routine("eluAVX2", body_elu, [("alpha", 4, "float32")])
out += exp_sum()
out += sums()
ISA = "avx512"
for name, body in UNARY:
    # erf's and gelu's one-pass forms stay one vector a step: the tests'
    # reference for the split routines, which run them otherwise.
    out += routine(name + "AVX512", body, x2=name not in ("erf", "geluErf"))
out += routine("eluAVX512", body_elu, [("alpha", 4, "float32")])  # its masks use K3
out += exp_sum512()
out += softmax_short512()
out += softmax_rows512()
out += routine_x2("erfX2AVX512", lambda: body_erf(cap=True))
out += routine_x2("geluErfX2AVX512", lambda: body_gelu_erf(cap=True))
out += split_routine("erfSplitAVX512", erf_small_body, 1, erf_large_body)
out += split_routine("geluErfSplitAVX512", gelu_erf_small_body, 2, gelu_erf_large_body)
for name, bits in consts.items():  # sixteen copies: AVX2 reads the first eight
    for i in range(16):
        out.append(f"DATA c_{name}<>+{4 * i}(SB)/4, ${bits:#010x}")
    out.append(f"GLOBL c_{name}<>(SB), RODATA|NOPTR, $64")
for i in range(16):  # lane numbers, for masks of a partial step
    out.append(f"DATA c_lanes16<>+{4 * i}(SB)/4, ${i:#010x}")
out.append("GLOBL c_lanes16<>(SB), RODATA|NOPTR, $64")
open("math_amd64.s", "w").write("\n".join(out) + "\n")
