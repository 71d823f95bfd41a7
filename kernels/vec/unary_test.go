package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestUnaryExact: the SIMD unary maps give the scalar definition's bits on
// every element (lengths with and without a tail), for ordinary values,
// halves (RoundEven's ties), integers, +-0, +-Inf, NaN, subnormals and
// negatives (Sqrt's NaN).
func TestUnaryExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	special := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3, -3,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, -1e-40, 8388607.5, -8388608, 1e30, -1e30}
	for _, n := range []int{1, 7, 8, 9, 31, 32, 33, 100, 1000} {
		x := make([]float32, n)
		for i := range x {
			if i%3 == 0 {
				x[i] = special[r.IntN(len(special))]
			} else {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(8)-3)))
			}
		}
		for _, c := range []struct {
			name string
			fn   func(dst, a []float32)
			ref  func(float64) float64
		}{
			{"Sqrt", Sqrt, math.Sqrt}, {"Floor", Floor, math.Floor}, {"Ceil", Ceil, math.Ceil},
			{"RoundEven", RoundEven, math.RoundToEven}, {"Reciprocal", Reciprocal, func(v float64) float64 { return float64(1 / float32(v)) }},
			{"Abs", Abs, math.Abs}, {"Neg", Neg, func(v float64) float64 { return -v }},
			{"LeakyRelu", func(d, a []float32) { LeakyRelu(d, a, 0.1) }, func(v float64) float64 {
				if v < 0 {
					return float64(float32(0.1) * float32(v))
				}
				return v
			}},
		} {
			got := make([]float32, n)
			c.fn(got, x)
			for i := range x {
				want := float32(c.ref(float64(x[i])))
				if math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
					t.Fatalf("%s(%v) = %v, want %v (n=%d, i=%d)", c.name, x[i], got[i], want, n, i)
				}
			}
		}
	}
}

// TestAffineF64Exact: the AVX2 float64 affine gives the Go expression's
// bits, with a large mean cancelling (x near -c/k) and a tail.
func TestAffineF64Exact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 8, 9, 100, 1001} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(1000 + r.NormFloat64())
		}
		x[0] = float32(math.NaN())
		k, c := 1.7/0.98, -1000*1.7/0.98+0.25
		got := make([]float32, n)
		AffineF64(got, x, k, c)
		for i, v := range x {
			want := float32(float64(v)*k + c)
			if math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
				t.Fatalf("n=%d: x=%v: %v, want %v", n, v, got[i], want)
			}
		}
	}
}

// TestDouble2: every value twice, side by side, with and without a tail.
func TestDouble2(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 56, 101} {
		a := make([]float32, n)
		for i := range a {
			a[i] = float32(i) + 0.5
		}
		d := make([]float32, 2*n)
		Double2(d, a)
		for i := range d {
			if d[i] != a[i/2] {
				t.Fatalf("n=%d: dst[%d] = %v, want %v", n, i, d[i], a[i/2])
			}
		}
	}
}
