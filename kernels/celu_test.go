package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCeluMatchesFloat64 compares the vectorized Celu with the spec's formula
// in float64 for several alphas, over random values, the edges, and lengths
// that leave vector tails.
func TestCeluMatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 1))
	xs := []float32{0, float32(math.Copysign(0, -1)), 1e-38, -1e-38, 1e-7, -1e-7, 50, -50, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1))}
	for i := 0; i < 100003; i++ {
		xs = append(xs, float32(r.NormFloat64()*4))
	}
	for _, alpha := range []float32{1, 0.3, 2.5, -0.7} {
		fn, err := celu(alpha)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(xs))
		fn(got, xs)
		worst := 0.0
		for i, x := range xs {
			a, v := float64(alpha), float64(x)
			want := math.Max(0, v) + math.Min(0, a*math.Expm1(v/a))
			e := 0.0
			if float64(got[i]) != want {
				e = math.Abs(float64(got[i])-want) / math.Abs(want)
			}
			if !(e <= 4e-7) {
				t.Fatalf("Celu alpha=%g at %g: %g, want %g (error %.2g)", alpha, x, got[i], want, e)
			}
			worst = math.Max(worst, e)
		}
		t.Logf("alpha=%g: worst relative error %.2g over %d values", alpha, worst, len(xs))
	}
	nan := []float32{float32(math.NaN())}
	fn, _ := celu(1)
	if fn(nan, nan); !math.IsNaN(float64(nan[0])) {
		t.Errorf("Celu(NaN) = %g, want NaN", nan[0])
	}
	if _, err := celu(0); err == nil {
		t.Error("Celu with alpha 0 is accepted")
	}
}
