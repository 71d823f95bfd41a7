package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLerp64MatchesScalar: the bits of linear Resize's scalar loop, for
// every length through the vector loop and the tail, with -0 products on
// both sides, NaN, ±Inf and subnormal values, and weights of both signs.
func TestLerp64MatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-41, -3e38}
	pick := func() float32 {
		if r.IntN(4) == 0 {
			return specials[r.IntN(len(specials))]
		}
		return float32(r.NormFloat64())
	}
	for n := 0; n <= 45; n++ {
		for _, w := range [][2]float64{{0.25, 0.75}, {1, 0}, {0, 1}, {-0.125, 1.125}, {r.Float64(), r.Float64()}} {
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				a[i], b[i] = pick(), pick()
			}
			dst := make([]float32, n)
			Lerp64(dst, a, b, w[0], w[1])
			for i := range dst {
				s := 0.0
				s += w[0] * float64(a[i])
				s += w[1] * float64(b[i])
				if want := float32(s); math.Float32bits(dst[i]) != math.Float32bits(want) {
					t.Fatalf("n=%d w=%v: Lerp64(%v, %v) = %v (%#x), want %v (%#x)", n, w, a[i], b[i], dst[i], math.Float32bits(dst[i]), want, math.Float32bits(want))
				}
			}
		}
	}
}
