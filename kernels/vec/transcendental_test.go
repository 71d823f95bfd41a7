package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// limitAtMinusInf gives x*g(x) functions their limit 0 at -Inf (float64 would say -Inf*0 = NaN).
func limitAtMinusInf(f func(float64) float64) func(float64) float64 {
	return func(x float64) float64 {
		if math.IsInf(x, -1) {
			return 0
		}
		return f(x)
	}
}

type mathCase struct {
	name string
	run  func(dst, x []float32)
	ref  func(float64) float64
	// dense range sampled uniformly besides the stride over all bit patterns
	lo, hi float64
	// maxULP bounds the error in ulps of the float32 result (subnormal results
	// in units of 2^-149) wherever |ref| >= tiny; below tiny the absolute error
	// must stay under tinyAbs.
	maxULP        float64
	tiny, tinyAbs float64
}

var mathCases = []mathCase{
	{"Exp", Exp, math.Exp, -110, 90, 1.05, 0, 0},
	{"Log", Log, math.Log, 0, 4, 1, 0, 0},
	{"Sigmoid", Sigmoid, sigmoid64, -110, 30, 2.5, 0, 0},
	{"Tanh", Tanh, math.Tanh, -10, 10, 2.5, 0, 0},
	{"Erf", Erf, math.Erf, -5, 5, 2, 0, 0},
	// x * e^x with e^x subnormal: that rounding (2^-150) is multiplied by |x| <= 104.
	{"Silu", Silu, limitAtMinusInf(func(x float64) float64 { return x * sigmoid64(x) }), -110, 30, 3.5, 0x1p-126 * 104, 104 * 0x1p-149},
	{"GeluErf", GeluErf, limitAtMinusInf(func(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }), -12, 8, 6, 1e-16, 1e-16},
	// x * sigmoid(2z) with sigmoid(2z) subnormal: its rounding times |x| <= 200.
	{"GeluTanh", GeluTanh, limitAtMinusInf(func(x float64) float64 {
		return x * sigmoid64(2*math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x))
	}), -12, 8, 4, 0x1p-126 * 200, 256 * 0x1p-149},
	{"Mish", Mish, limitAtMinusInf(func(x float64) float64 { return x * math.Tanh(math.Log1p(math.Exp(x))) }), -110, 30, 4.5, 0x1p-126 * 104, 104 * 0x1p-149},
	{"Softplus", Softplus, func(x float64) float64 { return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }, -110, 30, 2, 0, 0},
	{"Elu", func(d, x []float32) { Elu(d, x, 1) }, func(x float64) float64 {
		if x > 0 {
			return x
		}
		return math.Expm1(x)
	}, -25, 5, 2, 0, 0},
}

// ulp32 is the spacing of float32 values at |v| (2^-149 in the subnormal range).
func ulp32(v float64) float64 {
	a := math.Abs(v)
	if a < 0x1p-126 {
		return 0x1p-149
	}
	_, e := math.Frexp(a) // a = f * 2^e, f in [0.5, 1)
	return math.Ldexp(1, e-24)
}

type errStats struct {
	maxULP, maxRel, maxTinyAbs float64
	maxULPCore                 float64 // unscaled, over |x| <= 3
	atULP, atRel               float32
	n                          int
	bad                        []string
}

// check compares got with ref(x) for every x and accumulates the error.
func (s *errStats) check(c *mathCase, x, got []float32) {
	for i, v := range x {
		s.n++
		ref := c.ref(float64(v))
		g := got[i]
		r32 := float32(ref)
		switch {
		case math.IsNaN(ref):
			if g == g {
				s.fail(fmt.Sprintf("%s(%g) = %g, want NaN", c.name, v, g))
			}
			continue
		case math.IsInf(float64(r32), 0) || g != g || math.IsInf(float64(g), 0):
			if g != r32 {
				s.fail(fmt.Sprintf("%s(%g) = %g, want %g", c.name, v, g, ref))
			}
			continue
		}
		d := math.Abs(float64(g) - ref)
		if math.Abs(ref) < c.tiny {
			s.maxTinyAbs = math.Max(s.maxTinyAbs, d)
			continue
		}
		u := d / ulp32(ref)
		if math.Abs(float64(v)) <= 3 {
			s.maxULPCore = math.Max(s.maxULPCore, u)
		}
		if u > s.maxULP {
			s.maxULP, s.atULP = u, v
		}
		if math.Abs(ref) >= 0x1p-126 {
			if r := d / math.Abs(ref); r > s.maxRel {
				s.maxRel, s.atRel = r, v
			}
		}
	}
}

func (s *errStats) fail(msg string) {
	if len(s.bad) < 5 {
		s.bad = append(s.bad, msg)
	}
}

// accuracyInputs is a stride over all float32 bit patterns (every sign,
// exponent, subnormals, infinities and NaNs) plus a dense uniform sample of
// [lo, hi] and the special values.
func accuracyInputs(c *mathCase, short bool) []float32 {
	stride, dense := uint64(431), 1_000_000
	if short {
		stride, dense = 4327, 500_000
	}
	var xs []float32
	for b := uint64(0); b < 1<<32; b += stride {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	r := rand.New(rand.NewPCG(7, uint64(len(c.name))))
	for i := 0; i < dense; i++ {
		xs = append(xs, float32(c.lo+(c.hi-c.lo)*r.Float64()))
	}
	inf := float32(math.Inf(1))
	xs = append(xs, 0, float32(math.Copysign(0, -1)), inf, -inf, float32(math.NaN()),
		0x1p-149, -0x1p-149, 0x1p-126, -0x1p-126, math.MaxFloat32, -math.MaxFloat32,
		88.72283, 88.72284, -87.33655, -103.27893, -103.97208, -104, 9.01, -9.01, 3.92, -3.92)
	return xs
}

// isaPath is one way the vec kernels run: the portable Go code, AVX2, or
// AVX-512 where a kernel has that form; flag is the switch of the AVX2 code
// the test drives (useFMA for the transcendentals, useSIMD for the rest).
type isaPath struct {
	name       string
	on, avx512 bool
	flag       *bool
}

// isaPaths lists the paths this machine can run with flag as the AVX2
// switch, Go first; restore undoes a use.
func isaPaths(flag *bool) (paths []isaPath, restore func()) {
	paths = []isaPath{{"Go", false, false, flag}}
	if *flag {
		paths = append(paths, isaPath{"AVX2", true, false, flag})
	}
	if *flag && use512 {
		paths = append(paths, isaPath{"AVX-512", true, true, flag})
	}
	on, z := *flag, use512
	return paths, func() { *flag, use512 = on, z }
}

func (p isaPath) use() { *p.flag, use512 = p.on, p.avx512 }

// mathPaths is isaPaths for the transcendentals (useFMA).
func mathPaths() ([]isaPath, func()) { return isaPaths(&useFMA) }

// TestAccuracy measures every function against float64 over more than 10^7
// inputs, on each assembly path and on the portable Go path, and asserts the
// bounds documented in transcendental.go.
func TestAccuracy(t *testing.T) {
	paths, restore := mathPaths()
	defer restore()
	for i := range mathCases {
		c := &mathCases[i]
		t.Run(c.name, func(t *testing.T) {
			xs := accuracyInputs(c, testing.Short())
			got := make([]float32, len(xs))
			for _, p := range paths {
				p.use()
				c.run(got, xs)
				var s errStats
				s.check(c, xs, got)
				path := p.name
				t.Logf("%-8s %-4s %d values: max %.3f ulp (at %g), %.3f ulp for |x| <= 3, max relative %.3g (at %g), abs below %g: %.3g",
					c.name, path, s.n, s.maxULP, s.atULP, s.maxULPCore, s.maxRel, s.atRel, c.tiny, s.maxTinyAbs)
				for _, b := range s.bad {
					t.Errorf("%s: %s", path, b)
				}
				if s.maxULP > c.maxULP {
					t.Errorf("%s %s: max error %.3f ulp (at x=%g) exceeds the bound %g", c.name, path, s.maxULP, s.atULP, c.maxULP)
				}
				if s.maxTinyAbs > c.tinyAbs {
					t.Errorf("%s %s: absolute error %.3g where |y| < %g exceeds %g", c.name, path, s.maxTinyAbs, c.tiny, c.tinyAbs)
				}
			}
		})
	}
}

// TestPathsAgree requires the assembly and Go paths to agree within one ulp on
// every input, lengths around the vector width included.
func TestPathsAgree(t *testing.T) {
	if !useFMA {
		t.Skip("no AVX2+FMA on this machine: only the Go path runs")
	}
	defer func(v bool) { useFMA = v }(useFMA)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range mathCases {
		c := &mathCases[i]
		for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 100, 4096} {
			xs := make([]float32, n)
			for j := range xs {
				xs[j] = float32(c.lo + (c.hi-c.lo)*r.Float64())
				if r.IntN(20) == 0 {
					xs[j] = math.Float32frombits(r.Uint32())
				}
			}
			a, b := make([]float32, n), make([]float32, n)
			useFMA = true
			c.run(a, xs)
			useFMA = false
			c.run(b, xs)
			for j := range a {
				if a[j] != b[j] && !(a[j] != a[j] && b[j] != b[j]) && math.Abs(float64(a[j])-float64(b[j])) > ulp32(float64(b[j])) {
					t.Fatalf("%s n=%d: x=%g AVX2 %g, Go %g", c.name, n, xs[j], a[j], b[j])
				}
			}
		}
	}
}

// TestAVX512MatchesAVX2: the AVX-512 routines perform the AVX2 ones'
// operations lane by lane, so every output has the same bits, the masked
// tails of every length and dst aliasing x included; ExpSum's sum too.
func TestAVX512MatchesAVX2(t *testing.T) {
	if !use512 {
		t.Skip("no AVX-512 on this machine")
	}
	_, restore := mathPaths()
	defer restore()
	same := func(a, b float32) bool {
		return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := range mathCases {
		c := &mathCases[i]
		xs := accuracyInputs(c, true)
		var n512, n2 int
		check := func(xs []float32, alias bool) {
			a, b := make([]float32, len(xs)), make([]float32, len(xs))
			if alias {
				copy(a, xs)
				copy(b, xs)
			}
			use512 = true
			if alias {
				c.run(a, a)
			} else {
				c.run(a, xs)
			}
			use512 = false
			if alias {
				c.run(b, b)
			} else {
				c.run(b, xs)
			}
			for j := range a {
				if !same(a[j], b[j]) {
					t.Fatalf("%s n=%d alias=%v: x=%g (%#x): AVX-512 %g (%#x), AVX2 %g (%#x)", c.name, len(xs), alias,
						xs[j], math.Float32bits(xs[j]), a[j], math.Float32bits(a[j]), b[j], math.Float32bits(b[j]))
				}
			}
			n512 += len(a)
			n2++
		}
		check(xs, false)
		for n := 0; n <= 48; n++ {
			part := make([]float32, n)
			for j := range part {
				part[j] = xs[r.IntN(len(xs))]
			}
			check(part, false)
			check(part, true)
		}
		t.Logf("%s: %d values in %d calls, same bits", c.name, n512, n2)
	}
	for n := 0; n <= 300; n++ {
		x := make([]float32, n)
		for j := range x {
			x[j] = float32(r.NormFloat64() * 20)
			if r.IntN(30) == 0 {
				x[j] = float32(math.Inf(-1))
			}
		}
		_, m := MinMax(x)
		a, b := make([]float32, n), make([]float32, n)
		use512 = true
		sa := ExpSum(a, x, m)
		use512 = false
		sb := ExpSum(b, x, m)
		if sa != sb {
			t.Fatalf("ExpSum n=%d: AVX-512 sum %.17g, AVX2 %.17g", n, sa, sb)
		}
		for j := range a {
			if !same(a[j], b[j]) {
				t.Fatalf("ExpSum n=%d: x=%g: AVX-512 %g, AVX2 %g", n, x[j], a[j], b[j])
			}
		}
	}
}

func TestExpSum(t *testing.T) {
	paths, restore := mathPaths()
	defer restore()
	for _, p := range paths {
		p.use()
		simd := p.name
		for _, n := range []int{1, 5, 8, 13, 15, 16, 17, 24, 31, 40, 64, 100, 256, 1000} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%17) - 8
			}
			dst := make([]float32, n)
			s := ExpSum(dst, x, 8)
			want := 0.0
			for i, v := range x {
				e := math.Exp(float64(v) - 8)
				want += e
				if math.Abs(float64(dst[i])-e) > 2e-7*e {
					t.Fatalf("n=%d: dst[%d] = %g, want %g", n, i, dst[i], e)
				}
			}
			if math.Abs(s-want) > 1e-6*want {
				t.Fatalf("n=%d %s: sum %g, want %g", n, simd, s, want)
			}
			// The sum of the values it wrote: float32 sums of four values
			// (AVX2) before float64 stay within two roundings.
			exact := 0.0
			for _, v := range dst {
				exact += float64(v)
			}
			if math.Abs(s-exact) > 1.2e-7*exact {
				t.Fatalf("n=%d %s: sum %.17g, its values sum to %.17g (relative %.2g)", n, simd, s, exact, math.Abs(s-exact)/exact)
			}
			// A row that goes on with -Inf (exp 0) sums to the same bits:
			// fused attention leaves a causal mask's tail out.
			for _, extra := range []int{1, 7, 16, 33} {
				long := append(append([]float32(nil), x...), make([]float32, extra)...)
				for i := n; i < len(long); i++ {
					long[i] = float32(math.Inf(-1))
				}
				ld := make([]float32, len(long))
				if ls := ExpSum(ld, long, 8); ls != s {
					t.Fatalf("n=%d %s: sum %.17g, with %d -Inf after it %.17g", n, simd, s, extra, ls)
				}
			}
		}
	}
}

// BenchmarkMath reports GB/s (input bytes) of each function against the scalar
// float64 loop the kernels ran before.
func BenchmarkMath(b *testing.B) {
	x := make([]float32, 4096)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
	}
	dst := make([]float32, len(x))
	paths, restore := mathPaths()
	defer restore()
	for _, c := range mathCases {
		for _, p := range paths {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				p.use()
				b.SetBytes(int64(4 * len(x)))
				for b.Loop() {
					c.run(dst, x)
				}
			})
		}
		restore()
		b.Run(c.name+"/scalar64", func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				for i, v := range x {
					dst[i] = float32(c.ref(float64(v)))
				}
			}
		})
	}
}

func TestSums(t *testing.T) {
	defer func(v bool) { useFMA = v }(useFMA)
	r := rand.New(rand.NewPCG(8, 9))
	for _, n := range []int{0, 1, 7, 8, 9, 31, 100, 1000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(1000 + r.NormFloat64()*3) // a large mean: the two-pass form must not cancel
		}
		var s, q float64
		for _, v := range x {
			s += float64(v)
		}
		mean := 0.0
		if n > 0 {
			mean = s / float64(n)
		}
		for _, v := range x {
			q += (float64(v) - mean) * (float64(v) - mean)
		}
		for _, simd := range []bool{false, useFMA} {
			useFMA = simd
			if got := Sum(x); math.Abs(got-s) > 1e-12*math.Abs(s) {
				t.Errorf("n=%d simd=%v: Sum %v, want %v", n, simd, got, s)
			}
			if got := SumSqDev(x, mean); math.Abs(got-q) > 1e-9*q {
				t.Errorf("n=%d simd=%v: SumSqDev %v, want %v", n, simd, got, q)
			}
		}
	}
}

// BenchmarkSoftmaxRow is Softmax's inner work on rows of 256 (the tiny Llama's
// attention rows): ExpSum and a scale, against the float64 loop it replaced.
func BenchmarkSoftmaxRow(b *testing.B) {
	x := make([]float32, 256)
	r := rand.New(rand.NewPCG(2, 2))
	for i := range x {
		x[i] = float32(r.NormFloat64() * 4)
	}
	dst := make([]float32, len(x))
	_, m := MinMax(x)
	paths, restore := mathPaths()
	defer restore()
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			p.use()
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				s := ExpSum(dst, x, m)
				MulScalar(dst, dst, float32(1/s))
			}
		})
	}
	restore()
	b.Run("scalar64", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			var s float64
			for j, v := range x {
				e := math.Exp(float64(v - m))
				s += e
				dst[j] = float32(e)
			}
			inv := float32(1 / s)
			for j := range dst {
				dst[j] *= inv
			}
		}
	})
}

// TestExpSumMatchesExp: ExpSum's shorter path for x <= sub writes Exp's bits
// of x - sub, over a sweep of 2^24 arguments from 0 down past the underflow
// at expLo, subnormal results, -0, -Inf and NaN, with a sub of 0 and of a
// row's largest value.
func TestExpSumMatchesExp(t *testing.T) {
	if !useFMA {
		t.Skip("no AVX2+FMA: ExpSum and Exp share the Go path")
	}
	const n = 1 << 24
	x := make([]float32, n)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range x {
		switch {
		case i < n/2: // evenly over [-110, 0]
			x[i] = -110 * float32(i) / (n / 2)
		case i < n/2+n/4: // every float32 just below 0 and around expLo
			x[i] = -math.Float32frombits(uint32(i - n/2))
		default:
			x[i] = expLo + float32(r.NormFloat64())
		}
	}
	specials := []float32{float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 0, expLo, math.Nextafter32(expLo, 0), math.Nextafter32(expLo, -200), -87.33655, -88.72284, -103.27893, -103.97208}
	copy(x[n-len(specials):], specials)
	var maxErr float64
	for _, sub := range []float32{0, 3.25} {
		in := x
		if sub != 0 { // a row whose largest value is sub
			in = make([]float32, n)
			for i, v := range x {
				in[i] = v + sub
			}
			in[0] = sub
		}
		got, want, d := make([]float32, n), make([]float32, n), make([]float32, n)
		ExpSum(got, in, sub)
		for i, v := range in {
			d[i] = v - sub
		}
		Exp(want, d)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
				t.Fatalf("sub=%v x=%v: ExpSum wrote %v (%#x), Exp gives %v (%#x)", sub, in[i], got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
			if e := math.Exp(float64(d[i])); e > 1e-30 {
				maxErr = math.Max(maxErr, math.Abs(float64(got[i])-e)/e)
			}
		}
	}
	t.Logf("%d arguments x 2 subs: Exp's bits; max relative error against float64 %.3g", n, maxErr)
}

// softmaxRowLengths: every length to 70 (the short routine's, one and two
// vectors of a group, a group and a tail), and longer rows.
var softmaxRowLengths = func() (ns []int) {
	for n := 1; n <= 70; n++ {
		ns = append(ns, n)
	}
	return append(ns, 91, 96, 128, 197, 256, 1000)
}()

// TestSoftmaxRows: SoftmaxRows gives, on every path, the bits of ExpSum and
// MulScalar row by row (the unfused Softmax's), for rows of 1 to 1000 values
// with a gap between them left untouched, masked values (-100, -1e9, -Inf),
// a row all -Inf, a NaN, and values far below the row's largest.
func TestSoftmaxRows(t *testing.T) {
	paths, restore := mathPaths()
	defer restore()
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range paths {
		p.use()
		for _, n := range softmaxRowLengths {
			rows, ld := 1+r.IntN(70), n+r.IntN(3)
			x := make([]float32, rows*ld)
			for i := range x {
				switch r.IntN(12) {
				case 0:
					x[i] = -100
				case 1:
					x[i] = -1e9
				case 2:
					x[i] = float32(math.Inf(-1))
				default:
					x[i] = float32(r.NormFloat64() * []float64{0.1, 3, 40}[i%3])
				}
			}
			if rows > 2 {
				for j := range n {
					x[ld+j] = float32(math.Inf(-1)) // row 1: all -Inf
				}
				x[2*ld+n/2] = float32(math.NaN())
			}
			maxes := make([]float32, rows)
			for i := range maxes {
				maxes[i] = MaxOf(x[i*ld : i*ld+n])
			}
			got := make([]float32, len(x))
			for i := range got {
				got[i] = 7 // the gap between rows stays 7
			}
			want := append([]float32(nil), got...)
			SoftmaxRows(got, x, rows, n, ld, maxes)
			for i := range rows {
				d := want[i*ld : i*ld+n]
				s := ExpSum(d, x[i*ld:i*ld+n], maxes[i])
				MulScalar(d, d, float32(1/s))
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("%s n=%d rows=%d ld=%d: dst[%d] = %v, row by row %v", p.name, n, rows, ld, i, got[i], want[i])
				}
			}
			// And against float64 on the rows with a finite largest value
			// (x - max rounded to float32 first, as Softmax computes it).
			for i := range rows {
				m := maxes[i]
				if math.IsInf(float64(m), 0) || m != m {
					continue
				}
				var s float64
				for _, v := range x[i*ld : i*ld+n] {
					s += math.Exp(float64(v - m))
				}
				for j, v := range x[i*ld : i*ld+n] {
					w := math.Exp(float64(v-m)) / s
					if g := float64(got[i*ld+j]); math.Abs(g-w) > 5e-7*w+1e-30 {
						t.Fatalf("%s n=%d: row %d [%d] = %g, want %g", p.name, n, i, j, g, w)
					}
				}
			}
		}
	}
}

// BenchmarkSoftmaxRows: 768 rows of 16 (a Swin window attention's), one
// call against ExpSum and MulScalar per row.
func BenchmarkSoftmaxRows(b *testing.B) {
	const rows, n = 768, 16
	x := make([]float32, rows*n)
	for i := range x {
		x[i] = float32(i%13) - 6
	}
	maxes := make([]float32, rows)
	for i := range maxes {
		maxes[i] = MaxOf(x[i*n : (i+1)*n])
	}
	dst := make([]float32, len(x))
	b.Run("rows", func(b *testing.B) {
		for range b.N {
			SoftmaxRows(dst, x, rows, n, n, maxes)
		}
	})
	b.Run("row-by-row", func(b *testing.B) {
		for range b.N {
			for i := range rows {
				d := dst[i*n : (i+1)*n]
				s := ExpSum(d, x[i*n:(i+1)*n], maxes[i])
				MulScalar(d, d, float32(1/s))
			}
		}
	})
}
