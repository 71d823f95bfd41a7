package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAddEveryOther: the bits of the scalar loop for every length through
// the vector loop and its tail, with -0, NaN and Inf in both operands, the
// odd elements and everything past 2n-1 untouched.
func TestAddEveryOther(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-40}
	pick := func() float32 {
		if r.IntN(5) == 0 {
			return specials[r.IntN(len(specials))]
		}
		return float32(r.NormFloat64())
	}
	for n := 0; n <= 50; n++ {
		x := make([]float32, n)
		for i := range x {
			x[i] = pick()
		}
		m := max(2*n-1, 0)
		dst := make([]float32, m+4)
		for i := range dst {
			dst[i] = pick()
		}
		want := append([]float32(nil), dst...)
		for i, v := range x {
			want[2*i] += v
		}
		AddEveryOther(dst[:m], x)
		for i := range dst {
			if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: dst[%d] = %v (%#x), want %v (%#x)", n, i, dst[i], math.Float32bits(dst[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
}
