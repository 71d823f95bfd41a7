package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExtremeMatchesMathMaxMin: MaxInto, MinInto and Extreme give the bits
// of math.Max and math.Min folded in order, for every length through the
// vector loops and the Go tails, with NaNs (of other payloads too), ±0,
// ±Inf and ties in both operands.
func TestExtremeMatchesMathMaxMin(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), math.Float32frombits(0xffc12345), float32(math.Inf(1)), float32(math.Inf(-1)), 1, -1}
	pick := func(p int) float32 {
		if r.IntN(p) == 0 {
			return specials[r.IntN(len(specials))]
		}
		return float32(r.IntN(7) - 3) // ties
	}
	same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }
	for _, isMax := range []bool{true, false} {
		ref := func(a, b float32) float32 {
			if isMax {
				return float32(math.Max(float64(a), float64(b)))
			}
			return float32(math.Min(float64(a), float64(b)))
		}
		for n := 0; n <= 45; n++ {
			for _, p := range []int{3, 50} {
				dst := make([]float32, n)
				x := make([]float32, n)
				for i := range dst {
					dst[i], x[i] = pick(p), pick(p)
				}
				orig := append([]float32(nil), dst...)
				want := make([]float32, n)
				for i := range want {
					want[i] = ref(dst[i], x[i])
				}
				row := append([]float32(nil), x...)
				if isMax {
					MaxInto(dst, x)
				} else {
					MinInto(dst, x)
				}
				for i := range want {
					if !same(dst[i], want[i]) {
						t.Fatalf("isMax=%v n=%d i=%d: %v into %v (%#x) = %#x, want %#x", isMax, n, i, x[i], orig[i], math.Float32bits(orig[i]), math.Float32bits(dst[i]), math.Float32bits(want[i]))
					}
				}
				w := float32(math.Inf(1))
				if isMax {
					w = float32(math.Inf(-1))
				}
				for _, v := range row {
					w = ref(w, v)
				}
				if got := Extreme(row, isMax); !same(got, w) {
					t.Fatalf("isMax=%v n=%d: Extreme(%v) = %#x, want %#x", isMax, n, row, math.Float32bits(got), math.Float32bits(w))
				}
			}
		}
	}
}
