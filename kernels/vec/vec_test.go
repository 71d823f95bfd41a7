package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSIMDMatchesGo runs every routine with and without AVX2 on lengths around the
// 32-element step, with NaN, infinities and signed zeros, and requires equal bits.
func TestSIMDMatchesGo(t *testing.T) {
	if !useSIMD {
		t.Skip("no AVX2 on this machine: only the Go path runs")
	}
	r := rand.New(rand.NewPCG(1, 2))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 6, -3}
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 40, 47, 64, 100, 1000} {
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()*4), float32(r.NormFloat64())
			if r.IntN(10) == 0 {
				a[i] = special[r.IntN(len(special))]
			}
			if r.IntN(10) == 0 {
				b[i] = special[r.IntN(len(special))]
			}
		}
		ops := map[string]func(dst []float32){
			"Add":        func(d []float32) { Add(d, a, b) },
			"Mul":        func(d []float32) { Mul(d, a, b) },
			"AddScalar":  func(d []float32) { AddScalar(d, a, 0.3) },
			"MulScalar":  func(d []float32) { MulScalar(d, a, -1.7) },
			"DivScalar":  func(d []float32) { DivScalar(d, a, 6) },
			"Sub":        func(d []float32) { Sub(d, a, b) },
			"SubScalar":  func(d []float32) { SubScalar(d, a, 0.3) },
			"RSubScalar": func(d []float32) { RSubScalar(d, a, 0.3) },
			"RDivScalar": func(d []float32) { RDivScalar(d, a, -1.5) },
			"Div":        func(d []float32) { Div(d, a, b) },
			"Affine":     func(d []float32) { Affine(d, a, 0.16666667, 0.5) },
			"Clip":       func(d []float32) { Clip(d, a, 0, 6) },
			"Relu":       func(d []float32) { Clip(d, a, 0, float32(math.Inf(1))) },
			"Axpy":       func(d []float32) { copy(d, b); Axpy(d, a, 0.7) },
			"HardSwish":  func(d []float32) { HardSwish(d, a) },
			"HardSwish6": func(d []float32) { HardSwish6(d, a) },
			"Quantize":   func(d []float32) { QuantizeRound(d, a, 0.05, 128, 0, 255) },
			"NormAffine": func(d []float32) { NormAffine(d, a, b, a, -0.3, 1.7) },
			"NormScale":  func(d []float32) { NormAffine(d, a, b, nil, 0.25, -0.9) },
			"HardSwish3": func(d []float32) { // the three passes it replaces
				t := make([]float32, len(d))
				Affine(t, a, 1.0/6, 0.5)
				Clip(t, t, 0, 1)
				Mul(d, a, t)
			},
		}
		// MinMax: equal values (the sign of a zero may depend on the lane order).
		useSIMD = true
		slo, shi := MinMax(a)
		useSIMD = false
		plo, phi := MinMax(a)
		useSIMD = true
		if slo != plo || shi != phi {
			t.Fatalf("MinMax n=%d: AVX2 [%v, %v], Go [%v, %v]", n, slo, shi, plo, phi)
		}
		for name, f := range ops {
			simd, plain := make([]float32, n), make([]float32, n)
			useSIMD = true
			f(simd)
			useSIMD = false
			f(plain)
			useSIMD = true
			for i := range simd {
				if math.Float32bits(simd[i]) != math.Float32bits(plain[i]) {
					t.Fatalf("%s n=%d [%d]: AVX2 %v, Go %v (a=%v b=%v)", name, n, i, simd[i], plain[i], a[i], b[i])
				}
			}
		}
	}
}

func TestValues(t *testing.T) {
	d := make([]float32, 3)
	Clip(d, []float32{-1, 3, 9}, 0, 6)
	if d[0] != 0 || d[1] != 3 || d[2] != 6 {
		t.Errorf("Clip = %v", d)
	}
	Affine(d, []float32{1, 2, 3}, 2, 1)
	if d[0] != 3 || d[2] != 7 {
		t.Errorf("Affine = %v", d)
	}
}

func TestMinMax(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		x      []float32
		lo, hi float32
	}{
		{[]float32{3, -1, nan, 7, 2, 2, 2, 2, 2, 2, 2, 2, -5, 2, 2, 2, 2, 9.5}, -5, 9.5},
		{[]float32{nan, nan, nan, nan, nan, nan, nan, nan, 1}, 1, 1},
		{nil, float32(math.Inf(1)), float32(math.Inf(-1))},
	} {
		if lo, hi := MinMax(c.x); lo != c.lo || hi != c.hi {
			t.Errorf("MinMax(%v) = %v, %v; want %v, %v", c.x, lo, hi, c.lo, c.hi)
		}
	}
}

// TestMaxOf: MaxOf is MinMax's upper half on both paths, for lengths that end in
// each part of the assembly (32-wide blocks, 8-wide tail, scalar tail), with
// the largest value placed anywhere, NaNs ignored.
func TestMaxOf(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	nan := float32(math.NaN())
	for _, simd := range []bool{false, saved} {
		useSIMD = simd
		if got := MaxOf(nil); !math.IsInf(float64(got), -1) {
			t.Errorf("simd=%v: MaxOf(nil) = %v, want -Inf", simd, got)
		}
		if got := MaxOf([]float32{nan, nan, nan, nan, nan, nan, nan, nan, -3}); got != -3 {
			t.Errorf("simd=%v: MaxOf of NaNs and -3 = %v", simd, got)
		}
		for n := 1; n <= 75; n++ {
			for at := 0; at < n; at++ {
				// Past n lie larger values, which the masked last step
				// must not take.
				x := make([]float32, n, n+8)
				for i := range x[:n+8] {
					x[:n+8][i] = 1e30
				}
				for i := range x {
					x[i] = -float32((i*7)%13) - 1
				}
				x[at] = 4.5
				if n > 2 {
					x[(at+1)%n] = nan
				}
				_, want := MinMax(x)
				if got := MaxOf(x); got != want || want != 4.5 {
					t.Fatalf("simd=%v n=%d max at %d: MaxOf = %v, MinMax hi = %v, want 4.5", simd, n, at, got, want)
				}
			}
		}
	}
}

// TestHardSwishMatchesThreePasses: the one-pass HardSwish gives the bits of
// Affine(x/6 + 1/2), Clip(0, 1), Mul(x, .) and HardSwish6 those of x + 3,
// Clip(0, 6), Mul(x, .), / 6, on both paths, around the kinks at +-3 and on
// NaN, infinities and signed zeros.
func TestHardSwishMatchesThreePasses(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	var a []float32
	for i := -5000; i <= 5000; i++ {
		a = append(a, float32(i)/1000)
	}
	a = append(a, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 1e30, -1e30, 1e-40)
	for _, simd := range []bool{false, saved} {
		useSIMD = simd
		got, want := make([]float32, len(a)), make([]float32, len(a))
		HardSwish(got, a)
		Affine(want, a, 1.0/6, 0.5)
		Clip(want, want, 0, 1)
		Mul(want, a, want)
		for i := range a {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("simd=%v x=%v: HardSwish %v, three passes %v", simd, a[i], got[i], want[i])
			}
		}
		six := make([]float32, len(a))
		HardSwish6(six, a)
		AddScalar(want, a, 3)
		Clip(want, want, 0, 6)
		Mul(want, a, want)
		DivScalar(want, want, 6)
		for i := range a {
			if math.Float32bits(six[i]) != math.Float32bits(want[i]) {
				t.Fatalf("simd=%v x=%v: HardSwish6 %v, Add Clip Mul Div %v", simd, a[i], six[i], want[i])
			}
		}
		if got[8000] != 3 || got[2000] != 0 { // x = 3 and x = -3
			t.Fatalf("simd=%v: HardSwish(3) = %v, HardSwish(-3) = %v", simd, got[8000], got[2000])
		}
	}
}

// TestNormAffineMatchesPasses: NormAffine gives the bits of AddScalar,
// MulScalar, Mul and Add (without the shift: the first three) on both
// paths, with NaN, infinities, signed zeros and subnormals among the inputs
// and a negated mean of -0 (RMS norm subtracts nothing).
func TestNormAffineMatchesPasses(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(5, 6))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-40, -3e38}
	for _, n := range []int{1, 8, 13, 48, 64, 255} {
		a, s, b := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], s[i], b[i] = float32(r.NormFloat64()*3), float32(r.NormFloat64()), float32(r.NormFloat64())
			if r.IntN(8) == 0 {
				a[i] = special[r.IntN(len(special))]
			}
			if r.IntN(8) == 0 {
				s[i] = special[r.IntN(len(special))]
			}
		}
		for _, simd := range []bool{false, saved} {
			useSIMD = simd
			for _, c := range [][2]float32{{-0.37, 2.5}, {float32(math.Copysign(0, -1)), 0.8}, {1e30, 1e-30}} {
				for _, shift := range [][]float32{b, nil} {
					got, want := make([]float32, n), make([]float32, n)
					NormAffine(got, a, s, shift, c[0], c[1])
					AddScalar(want, a, c[0])
					MulScalar(want, want, c[1])
					Mul(want, want, s)
					if shift != nil {
						Add(want, want, shift)
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("simd=%v n=%d neg=%v inv=%v shift=%v [%d]: NormAffine %v, passes %v", simd, n, c[0], c[1], shift != nil, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestScaleAddMaxMatchesPasses: MulAddMax and DivAddMax give the bits of
// MulScalar (DivScalar) then Add, and MaxOf's value of the result, on both
// paths, with NaN, infinities and signed zeros among scores and mask.
func TestScaleAddMaxMatchesPasses(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(3, 4))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), -1e9, -3.4028235e38}
	for _, simd := range []bool{false, saved} {
		useSIMD = simd
		for n := 0; n <= 70; n++ {
			for trial := 0; trial < 6; trial++ {
				a, b := make([]float32, n), make([]float32, n)
				for i := range a {
					a[i], b[i] = float32(r.NormFloat64()*6), float32(r.NormFloat64())
					if trial > 2 && r.IntN(6) == 0 {
						a[i] = special[r.IntN(len(special))]
					}
					if trial > 3 && r.IntN(6) == 0 {
						b[i] = special[r.IntN(len(special))]
					}
				}
				for _, div := range []bool{false, true} {
					v := float32(0.35355338)
					want := make([]float32, n)
					if div {
						v = 2.828427
						DivScalar(want, a, v)
					} else {
						MulScalar(want, a, v)
					}
					Add(want, want, b)
					wantMax := MaxOf(want)
					got := append([]float32(nil), a...) // in place, as attention calls it
					var gotMax float32
					if div {
						gotMax = DivAddMax(got, got, b, v)
					} else {
						gotMax = MulAddMax(got, got, b, v)
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("simd=%v div=%v n=%d [%d]: %v, passes give %v (a=%v b=%v)", simd, div, n, i, got[i], want[i], a[i], b[i])
						}
					}
					if gotMax != wantMax && !(gotMax != gotMax && wantMax != wantMax) {
						t.Fatalf("simd=%v div=%v n=%d: max %v, MaxOf %v", simd, div, n, gotMax, wantMax)
					}
				}
			}
		}
	}
}

// TestQuantizeRoundMatchesFloat64 checks QuantizeRound against
// QuantizeLinear's formula in float64 (round half to even of the float32
// quotient, plus the zero point, clamped) over random and edge values (ties
// at .5 after the division, ±0, subnormals, values far outside the range,
// ±Inf, NaN), for uint8, int8, uint16 and int16 ranges and several scales,
// at lengths that exercise the 32- and 8-wide steps and the scalar tail.
func TestQuantizeRoundMatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	edges := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1.5, 2.5, -2.5, 127.5, 128.5, -128.5, 255.5, 1e-45, -1e-45, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 16777216, -16777217, 3e9}
	ranges := [][2]float32{{0, 255}, {-128, 127}, {0, 65535}, {-32768, 32767}}
	n := 0
	for _, rg := range ranges {
		for _, sc := range []float32{1, 0.5, 0.1, 0.0078125, 3.7e-3, 1e-7, 250} {
			for _, zp := range []float32{0, 3, rg[0] + (rg[1]-rg[0]+1)/2} {
				for _, size := range []int{1, 7, 8, 31, 32, 45, 1000} {
					a := make([]float32, size)
					for i := range a {
						switch r.IntN(4) {
						case 0:
							a[i] = edges[r.IntN(len(edges))] * sc // ties land on .5 after the division
						case 1:
							a[i] = float32(r.IntN(600)-300) * sc / 2
						default:
							a[i] = float32(r.NormFloat64()) * sc * 100
						}
					}
					dst := make([]float32, size)
					QuantizeRound(dst, a, sc, zp, rg[0], rg[1])
					for i, x := range a {
						want := max(float64(rg[0]), min(float64(rg[1]), math.RoundToEven(float64(x/sc))+float64(zp)))
						got := float64(dst[i])
						if !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
							t.Fatalf("range %v scale %g zp %g: QuantizeRound(%g) = %g, want %g", rg, sc, zp, x, got, want)
						}
						n++
					}
				}
			}
		}
	}
	t.Logf("%d values", n)
}

// TestDequantizeMatchesExpression checks Dequantize against its Go
// expression bit for bit, over all byte values and zero point extremes, at
// lengths that exercise the 16- and 8-wide steps and the tail, with and
// without AVX2.
func TestDequantizeMatchesExpression(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	for _, simd := range []bool{false, true} {
		if simd && !saved {
			continue
		}
		useSIMD = simd
		for _, n := range []int{1, 7, 8, 15, 16, 17, 256, 1000} {
			u, s8 := make([]uint8, n), make([]int8, n)
			for i := range u {
				u[i], s8[i] = uint8(i*37+11), int8(i*53-7)
			}
			for _, zp := range []int32{0, 128, 255, -128, 127} {
				for _, sc := range []float32{1, 0.0235, 3e-5} {
					got := make([]float32, n)
					Dequantize(got, u, zp, sc)
					for i, v := range u {
						if want := float32(int32(v)-zp) * sc; math.Float32bits(got[i]) != math.Float32bits(want) {
							t.Fatalf("uint8 simd=%v n=%d zp=%d: %v -> %v, want %v", simd, n, zp, v, got[i], want)
						}
					}
					Dequantize(got, s8, zp, sc)
					for i, v := range s8 {
						if want := float32(int32(v)-zp) * sc; math.Float32bits(got[i]) != math.Float32bits(want) {
							t.Fatalf("int8 simd=%v n=%d zp=%d: %v -> %v, want %v", simd, n, zp, v, got[i], want)
						}
					}
				}
			}
		}
	}
}

// TestSelect checks Select against its definition, with and without AVX2,
// at lengths around the 8-wide step, with NaN and signed-zero operands.
func TestSelect(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(71, 72))
	for _, simd := range []bool{false, true} {
		if simd && !saved {
			continue
		}
		useSIMD = simd
		for _, n := range []int{1, 7, 8, 9, 64, 1000} {
			c := make([]bool, n)
			for i := range c {
				c[i] = r.IntN(2) == 0
			}
			for _, ab := range [][2]float32{{0, float32(math.Inf(-1))}, {float32(math.NaN()), float32(math.Copysign(0, -1))}, {1.5, -2}} {
				d := make([]float32, n)
				Select(d, c, ab[0], ab[1])
				for i := range d {
					want := ab[1]
					if c[i] {
						want = ab[0]
					}
					if math.Float32bits(d[i]) != math.Float32bits(want) {
						t.Fatalf("simd=%v n=%d: dst[%d] = %v, want %v", simd, n, i, d[i], want)
					}
				}
			}
		}
	}
}

// TestSelectXY: both paths copy x's or y's bits by the mask, for each of
// scalar/run x and y and lengths ending in each part of the loop, NaN
// payloads and signed zeros included.
func TestSelectXY(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(5, 9))
	for n := 0; n < 40; n++ {
		c := make([]bool, n)
		x, y := make([]float32, n), make([]float32, n)
		for i := range c {
			c[i] = r.IntN(2) == 0
			x[i] = math.Float32frombits(r.Uint32()) // any bits, NaN payloads too
			y[i] = math.Float32frombits(r.Uint32())
		}
		for _, sx := range []int{0, 1} {
			for _, sy := range []int{0, 1} {
				if n == 0 && (sx == 0 || sy == 0) {
					continue // a scalar needs one value
				}
				for _, simd := range []bool{false, saved} {
					useSIMD = simd
					d := make([]float32, n)
					SelectXY(d, c, x, sx, y, sy)
					for i := range d {
						want := y[i*sy]
						if c[i] {
							want = x[i*sx]
						}
						if math.Float32bits(d[i]) != math.Float32bits(want) {
							t.Fatalf("simd %v n=%d sx %d sy %d: [%d] = %x, want %x", simd, n, sx, sy, i, math.Float32bits(d[i]), math.Float32bits(want))
						}
					}
				}
			}
		}
	}
}

// TestQuantize8MatchesConversion checks Quantize8 against QuantizeRound
// followed by Go's conversion T(int32(v)), bit for bit, for uint8 and int8
// ranges (whole and narrowed, as a reduced range gives), random and edge
// values (ties, ±Inf, NaN, far out of range), at lengths that exercise the
// 16- and 32-wide steps and the tails, on the AVX-512, AVX2 and scalar
// paths.
func TestQuantize8MatchesConversion(t *testing.T) {
	saved, wide := useSIMD, quantWide
	defer func() { useSIMD, quantWide = saved, wide }()
	r := rand.New(rand.NewPCG(53, 54))
	edges := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1.5, 2.5, -2.5, 127.5, 128.5, -128.5, 255.5, 1e-45, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	n := 0
	for _, path := range []string{"avx512", "avx2", "scalar"} {
		useSIMD, quantWide = path != "scalar" && saved, path == "avx512" && wide
		for _, sc := range []float32{1, 0.5, 0.0078125, 3.7e-3, 250} {
			for _, size := range []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 1000} {
				a := make([]float32, size)
				for i := range a {
					switch r.IntN(3) {
					case 0:
						a[i] = edges[r.IntN(len(edges))] * sc
					default:
						a[i] = float32(r.NormFloat64()) * sc * 150
					}
				}
				n += quantize8Cases[uint8](t, a, sc, [][3]float32{{0, 255, 0}, {0, 255, 131}, {0, 127, 64}})
				n += quantize8Cases[int8](t, a, sc, [][3]float32{{-128, 127, 0}, {-128, 127, -7}, {-64, 63, 0}})
			}
		}
	}
	t.Logf("%d values", n)
}

// quantize8Cases checks Quantize8 into T over a for each range {lo, hi,
// zero point} and returns how many values it checked.
func quantize8Cases[T uint8 | int8](t *testing.T, a []float32, sc float32, ranges [][3]float32) int {
	t.Helper()
	rounded := make([]float32, len(a))
	got := make([]T, len(a))
	for _, rg := range ranges {
		QuantizeRound(rounded, a, sc, rg[2], rg[0], rg[1])
		Quantize8(got, a, sc, rg[2], rg[0], rg[1])
		for i, v := range rounded {
			if want := T(int32(v)); got[i] != want {
				t.Fatalf("%T %v scale %g: Quantize8(%g) = %d, want %d", got[i], rg, sc, a[i], got[i], want)
			}
		}
	}
	return len(ranges) * len(a)
}

// BenchmarkQuantize8 times QuantizeLinear of 64 KiB of floats into uint8:
// in one pass (Quantize8) and as it ran before, rounded in float32
// vectors and converted one value at a time.
func BenchmarkQuantize8(b *testing.B) {
	a := make([]float32, 16384)
	for i := range a {
		a[i] = float32(i%300) * 0.37
	}
	dst := make([]uint8, len(a))
	b.Run("one-pass", func(b *testing.B) {
		b.SetBytes(int64(4 * len(a)))
		for b.Loop() {
			Quantize8(dst, a, 0.5, 3, 0, 255)
		}
	})
	b.Run("round-then-convert", func(b *testing.B) {
		b.SetBytes(int64(4 * len(a)))
		var buf [1024]float32
		for b.Loop() {
			for i := 0; i < len(a); i += len(buf) {
				t := buf[:min(len(buf), len(a)-i)]
				QuantizeRound(t, a[i:i+len(t)], 0.5, 3, 0, 255)
				for k, v := range t {
					dst[i+k] = uint8(int32(v))
				}
			}
		}
	})
}

// v2 is an edge value one time in three, else a normal value of random
// magnitude (AddScalar2's scalars).
func v2(r *rand.Rand, edges []float32) float32 {
	if r.IntN(3) == 0 {
		return edges[r.IntN(len(edges))]
	}
	return float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(8)-4)))
}

// TestAdd3MatchesTwoAdds: Add3 gives the bits of (a + b) + c, and
// AddScalar2 those of (a + u) + v, with and without AVX2, at lengths
// through the 32- and 8-wide steps and the tail, values whose sums round
// (and signed zeros, infinities, NaN).
func TestAdd3MatchesTwoAdds(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(55, 56))
	edges := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e30, -1e30, 1e-40}
	for _, simd := range []bool{true, false} {
		useSIMD = simd && saved
		for _, n := range []int{0, 1, 7, 8, 31, 32, 33, 77, 1000} {
			v := func() []float32 {
				x := make([]float32, n)
				for i := range x {
					if r.IntN(6) == 0 {
						x[i] = edges[r.IntN(len(edges))]
					} else {
						x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(8)-4)))
					}
				}
				return x
			}
			a, b, c, got := v(), v(), v(), make([]float32, n)
			Add3(got, a, b, c)
			for i := range got {
				if want := (a[i] + b[i]) + c[i]; math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
					t.Fatalf("n %d simd %v: Add3(%g, %g, %g) = %g, want %g", n, simd, a[i], b[i], c[i], got[i], want)
				}
			}
			for trial := 0; trial < 8; trial++ {
				u, w := v2(r, edges), v2(r, edges)
				AddScalar2(got, a, u, w)
				for i := range got {
					if want := (a[i] + u) + w; math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
						t.Fatalf("n %d simd %v: AddScalar2(%g, %g, %g) = %g, want %g", n, simd, a[i], u, w, got[i], want)
					}
				}
			}
		}
	}
}

// TestSeekMatchesScan: SeekNotBelow and SeekAtMost give the first index
// the plain scan finds, from every start, at lengths through the 32- and
// 8-wide steps and the tail, with NaNs, infinities and ties at the
// threshold, with and without AVX2.
func TestSeekMatchesScan(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(57, 58))
	nan := float32(math.NaN())
	for _, simd := range []bool{true, false} {
		useSIMD = simd && saved
		for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 70, 300} {
			x := make([]float32, n)
			for trial := 0; trial < 20; trial++ {
				thr := float32(r.NormFloat64()) + 2
				for i := range x {
					x[i] = float32(r.NormFloat64())
					switch r.IntN(40) {
					case 0:
						x[i] = nan
					case 1:
						x[i] = thr
					case 2:
						x[i] = float32(math.Inf(1 - 2*r.IntN(2)))
					}
				}
				for from := 0; from <= n; from += 1 + r.IntN(5) {
					want := n
					for i := from; i < n; i++ {
						if !(x[i] < thr) {
							want = i
							break
						}
					}
					if got := SeekNotBelow(x, from, thr); got != want {
						t.Fatalf("simd=%v n=%d from=%d: SeekNotBelow = %d, want %d", simd, n, from, got, want)
					}
					want = n
					for i := from; i < n; i++ {
						if x[i] <= -thr {
							want = i
							break
						}
					}
					if got := SeekAtMost(x, from, -thr); got != want {
						t.Fatalf("simd=%v n=%d from=%d: SeekAtMost = %d, want %d", simd, n, from, got, want)
					}
				}
			}
		}
	}
}
