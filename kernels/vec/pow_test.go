package vec

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func powRef(x, y float32) float32 { return float32(math.Pow(float64(x), float64(y))) }

// powPaths lists the implementations this machine runs, Go first; restore
// puts the switches back.
func powPaths() (paths []string, set func(string), restore func()) {
	saved2, saved512 := usePowAVX2, usePowAVX512
	paths = []string{"Go"}
	if saved2 {
		paths = append(paths, "AVX2")
	}
	if saved512 {
		paths = append(paths, "AVX-512")
	}
	set = func(p string) { usePowAVX2, usePowAVX512 = p != "Go", p == "AVX-512" }
	return paths, set, func() { usePowAVX2, usePowAVX512 = saved2, saved512 }
}

// ulpDiff is how many float32 steps apart a and b are (0 for two NaNs,
// MaxInt for a NaN and a number or opposite signs).
func ulpDiff(a, b float32) int {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxInt
	}
	ba, bb := math.Float32bits(a), math.Float32bits(b)
	if ba == bb {
		return 0
	}
	if ba>>31 != bb>>31 {
		return math.MaxInt
	}
	d := int(ba&^(1<<31)) - int(bb&^(1<<31))
	return max(d, -d)
}

// powExactInt is x^y correctly rounded to float32 for an integer y, from
// 256-bit products: it decides who is right where Pow and math.Pow differ.
func powExactInt(x, y float32) float32 {
	n := int64(math.Abs(float64(y)))
	prec := uint(256)
	acc := new(big.Float).SetPrec(prec).SetInt64(1)
	b := new(big.Float).SetPrec(prec).SetFloat64(float64(x))
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			acc.Mul(acc, b)
		}
		b.Mul(b, b)
	}
	if y < 0 {
		acc.Quo(new(big.Float).SetPrec(prec).SetInt64(1), acc)
	}
	f, _ := acc.Float32()
	return f
}

type powCase struct {
	name string
	x, y []float32
}

// powDistributions are the 10^7 inputs of the accuracy test.
func powDistributions() []powCase {
	r := rand.New(rand.NewPCG(7, 11))
	var cases []powCase
	add := func(name string, n int, gen func() (float32, float32)) {
		c := powCase{name, make([]float32, n), make([]float32, n)}
		for i := range c.x {
			c.x[i], c.y[i] = gen()
		}
		cases = append(cases, c)
	}
	// Activations and exponents as models have them; a fifth of x negative,
	// a third of y integers.
	add("typical", 5_000_000, func() (float32, float32) {
		x := float32(math.Exp2(r.Float64()*40 - 20))
		if r.IntN(5) == 0 {
			x = -x
		}
		y := float32(r.Float64()*16 - 8)
		if r.IntN(3) == 0 {
			y = float32(r.IntN(21) - 10)
		}
		return x, y
	})
	// Any finite x (subnormal ones too) with y putting x^y anywhere from
	// below the smallest subnormal to above the largest float32.
	add("full range", 3_000_000, func() (float32, float32) {
		var x float32
		for x == 0 || math.IsInf(float64(x), 0) || x != x {
			x = math.Float32frombits(r.Uint32() &^ (1 << 31))
		}
		l := math.Log2(float64(x))
		y := float32((r.Float64()*310 - 155) / l)
		if r.IntN(5) == 0 {
			x = -x
			y = float32(math.Round(float64(y)))
		}
		return x, y
	})
	// x near 1 with |y| up to ~10^9, half of them integers: math.Pow's
	// repeated squaring is least accurate here.
	add("big y", 1_000_000, func() (float32, float32) {
		k := r.IntN(1<<16) + 1
		x := float32(1 + float64(k)*0x1p-23)
		if r.IntN(2) == 0 {
			x = float32(1 - float64(k)*0x1p-24)
		}
		y := float32((r.Float64()*300 - 150) / math.Log2(float64(x)))
		if r.IntN(2) == 0 {
			y = float32(math.Round(float64(y)))
		}
		return x, y
	})
	// Random bits: NaNs, infinities, zeros, subnormals, overflow.
	add("random bits", 1_000_000, func() (float32, float32) {
		return math.Float32frombits(r.Uint32()), math.Float32frombits(r.Uint32())
	})
	return cases
}

// TestPowAccuracy compares Pow with math.Pow on 10^7 inputs. A mismatch is
// allowed only where math.Pow is itself wrong: |y| large enough for its
// repeated squaring to lose ~1e-12, and, for an integer y, Pow's result the
// correctly rounded one.
func TestPowAccuracy(t *testing.T) {
	paths, set, restore := powPaths()
	defer restore()
	total := 0
	for _, c := range powDistributions() {
		total += len(c.x)
		want := make([]float32, len(c.x))
		for i := range want {
			want[i] = powRef(c.x[i], c.y[i])
		}
		for _, p := range paths {
			set(p)
			got := make([]float32, len(c.x))
			Pow(got, c.x, c.y)
			mismatches, maxUlp, oursRight, theirsRight := 0, 0, 0, 0
			for i := range got {
				d := ulpDiff(got[i], want[i])
				if d == 0 {
					continue
				}
				mismatches++
				maxUlp = max(maxUlp, d)
				x, y := c.x[i], c.y[i]
				if d > 1 || math.Abs(float64(y)) < 1000 {
					t.Errorf("%s/%s: Pow(%g, %g) = %g (%#x), math.Pow %g (%#x): %d ulp", c.name, p, x, y, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]), d)
					continue
				}
				if y == float32(math.Trunc(float64(y))) {
					switch exact := powExactInt(x, y); exact {
					case got[i]:
						oursRight++
					case want[i]:
						theirsRight++
						t.Errorf("%s/%s: Pow(%g, %g) = %g, correctly rounded %g as math.Pow has it", c.name, p, x, y, got[i], exact)
					}
				}
			}
			t.Logf("%-11s %-7s %9d values: %d differ from math.Pow (max %d ulp); of those with integer y, Pow correctly rounded in %d, math.Pow in %d",
				c.name, p, len(c.x), mismatches, maxUlp, oursRight, theirsRight)
			if (c.name == "typical" || c.name == "random bits") && mismatches > 0 {
				t.Errorf("%s/%s: %d mismatches, want 0", c.name, p, mismatches)
			}
		}
	}
	if total < 10_000_000 {
		t.Fatalf("%d values, want 10^7", total)
	}
}

// TestPowPathsAgree checks each assembly path against the Go path bit for
// bit, math.Pow's lanes included, on every distribution and the scalar form.
func TestPowPathsAgree(t *testing.T) {
	paths, set, restore := powPaths()
	defer restore()
	if len(paths) == 1 {
		t.Skip("no AVX2+FMA")
	}
	cases := powDistributions()
	goRes := make([][]float32, len(cases))
	set("Go")
	for ci, c := range cases {
		goRes[ci] = make([]float32, len(c.x))
		Pow(goRes[ci], c.x, c.y)
	}
	r := rand.New(rand.NewPCG(3, 5))
	x := make([]float32, 4099)
	for i := range x {
		x[i] = float32(math.Exp2(r.Float64()*60-30)) * float32(1-2*r.IntN(2))
	}
	ys := make([]float32, 300)
	for i := range ys {
		ys[i] = float32(r.NormFloat64() * 4)
		if r.IntN(3) == 0 {
			ys[i] = float32(math.Round(float64(ys[i])))
		}
	}
	for _, p := range paths[1:] {
		for ci, c := range cases {
			set(p)
			asmRes := make([]float32, len(c.x))
			Pow(asmRes, c.x, c.y)
			bad := 0
			for i, want := range goRes[ci] {
				if math.Float32bits(want) != math.Float32bits(asmRes[i]) {
					if bad++; bad <= 5 {
						t.Errorf("%s %s: Pow(%g, %g): %#x, Go %#x", p, c.name, c.x[i], c.y[i], math.Float32bits(asmRes[i]), math.Float32bits(want))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%s %s: %d of %d differ", p, c.name, bad, len(asmRes))
			}
		}
		// PowScalar over many exponents.
		goY, asmY := make([]float32, len(x)), make([]float32, len(x))
		for _, y := range ys {
			set("Go")
			PowScalar(goY, x, y)
			set(p)
			PowScalar(asmY, x, y)
			for i := range x {
				if math.Float32bits(goY[i]) != math.Float32bits(asmY[i]) {
					t.Fatalf("%s: PowScalar(%g, %g): %#x, Go %#x", p, x[i], y, math.Float32bits(asmY[i]), math.Float32bits(goY[i]))
				}
			}
		}
	}
}

// TestPowFastLanes checks that ordinary inputs stay in the fast lanes:
// math.Pow for more than a few lanes would be correct but slow.
func TestPowFastLanes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n, slow := 1_000_000, 0
	for range n {
		x := float32(math.Exp2(r.Float64()*20 - 10)) // results within float32's range
		y := float32(r.Float64()*16 - 8)
		if _, _, ok := powFast(x, y); !ok {
			slow++
		}
	}
	// A lane near a rounding boundary goes slow: 2*powTieUlps/2^29 = 1.5e-5.
	if slow > n/10000 {
		t.Errorf("%d of %d lanes took math.Pow", slow, n)
	}
	t.Logf("%d of %d lanes took math.Pow", slow, n)
	paths, set, restore := powPaths()
	defer restore()
	xs, ys, dst := make([]float32, powBlock), make([]float32, powBlock), make([]float32, powBlock)
	for _, p := range paths[1:] {
		set(p)
		groups := 0
		for range 200 {
			for i := range xs {
				xs[i] = float32(math.Exp2(r.Float64()*20 - 10))
				ys[i] = float32(r.Float64()*16 - 8)
			}
			for redo := powAsm(dst, xs, ys); redo != 0; redo &= redo - 1 {
				groups++
			}
		}
		if groups > 10 {
			t.Errorf("%s: the assembly flagged %d of %d groups", p, groups, 200*powBlock/8)
		}
	}
}

// powSpecials are the IEEE special values and boundaries of math.Pow.
func powSpecials() []float32 {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	v := []float32{0, 1, 0.5, 2, 3, 1.5, 0.25, 4, 10, 100, 7, 11, 1e-3, 1e10,
		inf, nan, math.MaxFloat32, math.SmallestNonzeroFloat32, 0x1p-126, 0x1p-127, 0x1p127, 0x1p-149 * 3,
		0x1.fffffep-1, 0x1.000002p0, 1 << 24, 1<<24 + 2, 1 << 30, 1 << 31, 1 << 32, 3e9, 1e30, 0.1, 1.0 / 3}
	out := make([]float32, 0, 2*len(v))
	for _, a := range v {
		out = append(out, a, -a)
	}
	return out
}

// TestPowSpecialCases runs every pair of special values, both forms.
func TestPowSpecialCases(t *testing.T) {
	paths, set, restore := powPaths()
	defer restore()
	sp := powSpecials()
	var xs, ys []float32
	for _, x := range sp {
		for _, y := range sp {
			xs, ys = append(xs, x), append(ys, y)
		}
	}
	for _, p := range paths {
		set(p)
		got := make([]float32, len(xs))
		Pow(got, xs, ys)
		for i := range got {
			if want := powRef(xs[i], ys[i]); math.Float32bits(got[i]) != math.Float32bits(want) &&
				!(got[i] != got[i] && want != want) {
				t.Errorf("%s: Pow(%g, %g) = %g (%#x), math.Pow %g (%#x)", p, xs[i], ys[i], got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
			}
		}
		for _, y := range sp {
			got := make([]float32, len(sp))
			PowScalar(got, sp, y)
			for i, x := range sp {
				if want := powRef(x, y); math.Float32bits(got[i]) != math.Float32bits(want) &&
					!(got[i] != got[i] && want != want) {
					t.Errorf("%s: PowScalar(%g, %g) = %g, math.Pow %g", p, x, y, got[i], want)
				}
			}
		}
	}
}

// TestPowTies runs results that are exactly halfway between two float32s
// (odd a^y with 25 significant bits, scaled by powers of two): only the
// near-tie fallback rounds them to even as math.Pow's exact value does.
func TestPowTies(t *testing.T) {
	paths, set, restore := powPaths()
	defer restore()
	var xs, ys []float32
	for a := int64(3); a < 1<<12; a += 2 {
		p := a
		for y := 1; p < 1<<25; y++ {
			if p > 1<<24 {
				for _, sh := range []int{-40, -3, 0, 5, 30} {
					for _, sx := range []float32{1, -1} {
						if sx < 0 && y%2 == 0 {
							continue
						}
						xs = append(xs, sx*float32(math.Ldexp(float64(a), sh)))
						ys = append(ys, float32(y))
					}
				}
			}
			p *= a
		}
	}
	if len(xs) < 50 {
		t.Fatalf("only %d ties", len(xs))
	}
	for _, p := range paths {
		set(p)
		got := make([]float32, len(xs))
		Pow(got, xs, ys)
		for i := range got {
			if want := powRef(xs[i], ys[i]); got[i] != want {
				t.Errorf("%s: Pow(%g, %g) = %g, math.Pow %g", p, xs[i], ys[i], got[i], want)
			}
		}
	}
	t.Logf("%d exact ties", len(xs))
}

// TestPowTails checks every length 0..40, aliasing and that nothing past
// dst's end is written.
func TestPowTails(t *testing.T) {
	paths, set, restore := powPaths()
	defer restore()
	r := rand.New(rand.NewPCG(5, 9))
	sp := powSpecials()
	gen := func(n int) (x, y []float32) {
		x, y = make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(math.Exp2(r.Float64()*20-10)) * float32(1-2*r.IntN(2))
			y[i] = float32(r.IntN(9) - 4)
			if r.IntN(2) == 0 {
				y[i] = float32(r.Float64()*6 - 3)
			}
			if r.IntN(6) == 0 {
				x[i] = sp[r.IntN(len(sp))]
			}
		}
		return x, y
	}
	same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b }
	const sentinel = float32(-12345)
	for _, p := range paths {
		set(p)
		for n := 0; n <= 40; n++ {
			for rep := 0; rep < 4; rep++ {
				x, y := gen(n)
				buf := make([]float32, n+9)
				for i := range buf {
					buf[i] = sentinel
				}
				dst := buf[:n]
				Pow(dst, x, y)
				for i := range dst {
					if want := powRef(x[i], y[i]); !same(dst[i], want) {
						t.Fatalf("%s n=%d: Pow(%g, %g) = %g, math.Pow %g", p, n, x[i], y[i], dst[i], want)
					}
				}
				var y0 float32 = 2.5
				if n > 0 {
					y0 = y[r.IntN(n)]
				}
				PowScalar(dst, x, y0)
				for i := range dst {
					if want := powRef(x[i], y0); !same(dst[i], want) {
						t.Fatalf("%s n=%d: PowScalar(%g, %g) = %g, math.Pow %g", p, n, x[i], y0, dst[i], want)
					}
				}
				for _, v := range buf[n:] {
					if v != sentinel {
						t.Fatalf("%s n=%d: wrote past dst", p, n)
					}
				}
				// In place: dst is x, then y; a rep with many math.Pow lanes
				// checks that flagged groups are read before written.
				want := make([]float32, n)
				for i := range want {
					want[i] = powRef(x[i], y[i])
				}
				xc, yc := append([]float32(nil), x...), append([]float32(nil), y...)
				Pow(xc, xc, y)
				Pow(yc, x, yc)
				for i := range want {
					if !same(xc[i], want[i]) || !same(yc[i], want[i]) {
						t.Fatalf("%s n=%d in place: Pow(%g, %g) = %g, %g; math.Pow %g", p, n, x[i], y[i], xc[i], yc[i], want[i])
					}
				}
				xc = append([]float32(nil), x...)
				PowScalar(xc, xc, y0)
				for i := range xc {
					if want := powRef(x[i], y0); !same(xc[i], want) {
						t.Fatalf("%s n=%d in place: PowScalar(%g, %g) = %g, math.Pow %g", p, n, x[i], y0, xc[i], want)
					}
				}
			}
		}
	}
}

// The ONNX Pow of a 1x256x56x56 activation: the new loop against math.Pow
// per element, in ns per element.
func BenchmarkPow(b *testing.B) {
	const n = 256 * 56 * 56
	r := rand.New(rand.NewPCG(1, 1))
	x, y, dst := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(r.Float64()*4 + 1e-3)
		y[i] = float32(r.Float64()*6 - 3)
	}
	perElem := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/elem")
	}
	run := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f()
			}
			perElem(b)
		})
	}
	run("math.Pow", func() {
		for i := range dst {
			dst[i] = float32(math.Pow(float64(x[i]), float64(y[i])))
		}
	})
	paths, set, restore := powPaths()
	defer restore()
	for _, p := range paths {
		set(p)
		run("Pow/"+p, func() { Pow(dst, x, y) })
		run("PowScalar/"+p, func() { PowScalar(dst, x, 1.7) })
		for i := range x {
			x[i] = -x[i]
		}
		run("PowScalar-negx-cube/"+p, func() { PowScalar(dst, x, 3) })
		for i := range x {
			x[i] = -x[i]
		}
	}
}
