package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// requantRef is Requant8's definition for one value, in float64 where the
// rounding is: float32(acc) * m rounded once to float32, half to even to
// an integer, plus zp, clamped; NaN gives 0.
func requantRef(acc int32, m, zp, lo, hi float32) int32 {
	v := float32(acc) * m
	if math.IsNaN(float64(v)) {
		return 0
	}
	r := math.RoundToEven(float64(v)) + float64(zp)
	return int32(math.Max(float64(lo), math.Min(float64(hi), r)))
}

// TestRequant8 holds Requant8 to requantRef bit for bit on the AVX-512 and
// scalar paths, one multiplier and one per element, into uint8 and int8,
// over random accumulators and the edges: int32's extremes, values past
// 2^24 (where float32 rounds them), products at exact halves, and NaN,
// infinite, zero and negative multipliers. Lengths cover the 16-wide step
// and the masked tail.
func TestRequant8(t *testing.T) {
	wide := quantWide
	defer func() { quantWide = wide }()
	r := rand.New(rand.NewPCG(7, 8))
	accEdges := []int32{0, 1, -1, 3, -3, 5, 1 << 24, 1<<24 + 1, -(1<<24 + 3), math.MaxInt32, math.MinInt32, 255, -256}
	multEdges := []float32{0.5, 1, 0, -0.5, 1e-9, 2e9, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1))}
	n := 0
	for _, path := range []string{"avx512", "scalar"} {
		quantWide = path == "avx512" && wide
		for _, size := range []int{0, 1, 15, 16, 17, 33, 1000} {
			acc := make([]int32, size)
			mult := make([]float32, size)
			for i := range acc {
				switch r.IntN(3) {
				case 0:
					acc[i] = accEdges[r.IntN(len(accEdges))]
				default:
					acc[i] = int32(r.NormFloat64() * 20000)
				}
				switch r.IntN(4) {
				case 0:
					mult[i] = multEdges[r.IntN(len(multEdges))]
				default:
					mult[i] = float32(r.ExpFloat64() * 0.004)
				}
			}
			for _, each := range []bool{false, true} {
				m := mult
				if !each {
					m = []float32{0.0037}
					if size > 0 {
						m[0] = mult[0]
					}
				}
				for _, rg := range [][3]float32{{0, 255, 0}, {0, 255, 131}, {-128, 127, 0}, {-128, 127, -9}, {-64, 63, 0}} {
					u := make([]uint8, size)
					s := make([]int8, size)
					if rg[0] >= 0 {
						Requant8(u, acc, m, rg[2], rg[0], rg[1])
					} else {
						Requant8(s, acc, m, rg[2], rg[0], rg[1])
					}
					for i := range acc {
						mi := m[0]
						if each {
							mi = m[i]
						}
						want := requantRef(acc[i], mi, rg[2], rg[0], rg[1])
						got := int32(u[i])
						if rg[0] < 0 {
							got = int32(s[i])
						}
						if got != want {
							t.Fatalf("%s, range %v: acc %d x %g = %d, want %d", path, rg, acc[i], mi, got, want)
						}
					}
					n += size
				}
			}
		}
	}
	t.Logf("%d values", n)
}

// BenchmarkRequant8 times requantizing 64 Ki accumulators into uint8, one
// multiplier: in one pass (Requant8) against the three passes it replaces
// (I32ToF32, MulScalar, Quantize8 at scale 1).
func BenchmarkRequant8(b *testing.B) {
	acc := make([]int32, 1<<16)
	for i := range acc {
		acc[i] = int32(i%5000) - 2500
	}
	dst := make([]uint8, len(acc))
	mult := []float32{0.013}
	b.Run("one-pass", func(b *testing.B) {
		b.SetBytes(int64(4 * len(acc)))
		for b.Loop() {
			Requant8(dst, acc, mult, 128, 0, 255)
		}
	})
	b.Run("three-passes", func(b *testing.B) {
		b.SetBytes(int64(4 * len(acc)))
		f := make([]float32, len(acc))
		for b.Loop() {
			I32ToF32(f, acc)
			MulScalar(f, f, mult[0])
			Quantize8(dst, f, 1, 128, 0, 255)
		}
	})
}

// TestRequantFloat8MatchesRequant8: sums held in float32 plus a bias give
// Requant8's codes for the int32 sums plus the bias, while their totals
// stay within 2^24 (RequantFloat8's condition), on both paths, for
// multipliers that tie, saturate or are NaN, into uint8 and int8.
func TestRequantFloat8MatchesRequant8(t *testing.T) {
	wide := quantWide
	defer func() { quantWide = wide }()
	r := rand.New(rand.NewPCG(11, 12))
	for _, path := range []string{"avx512", "scalar"} {
		quantWide = path == "avx512" && wide
		for _, size := range []int{1, 15, 16, 17, 100, 1000} {
			for _, mult := range []float32{0.5, 0.0031, 1e-7, 3, float32(math.NaN())} {
				bias := int32(r.IntN(1<<21) - 1<<20)
				sums := make([]float32, size)
				acc := make([]int32, size)
				for i := range sums {
					s := int32(r.NormFloat64() * 3000)
					if r.IntN(8) == 0 {
						s = int32(r.IntN(1<<23)) - 1<<22
					}
					sums[i], acc[i] = float32(s), s+bias
				}
				checkRequantFloat[uint8](t, path, sums, acc, bias, mult, [3]float32{0, 255, 128})
				checkRequantFloat[int8](t, path, sums, acc, bias, mult, [3]float32{-128, 127, -3})
			}
		}
	}
}

// checkRequantFloat compares RequantFloat8 of sums plus bias with Requant8
// of acc (the same totals in int32) into T, over range rg {lo, hi, zp}.
func checkRequantFloat[T uint8 | int8](t *testing.T, path string, sums []float32, acc []int32, bias int32, mult float32, rg [3]float32) {
	t.Helper()
	got, want := make([]T, len(sums)), make([]T, len(sums))
	RequantFloat8(got, sums, float32(bias), mult, rg[2], rg[0], rg[1])
	Requant8(want, acc, []float32{mult}, rg[2], rg[0], rg[1])
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s %T: (%g + %d) x %g = %d, want %d", path, got[i], sums[i], bias, mult, got[i], want[i])
		}
	}
}
