package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCmpScalarAndBoolToF32: every predicate gives Go's operator's result
// (false with NaN, -0 equal to +0) for every length through the vector loop
// and the tail, and BoolToF32 gives 0 and 1 in order.
func TestCmpScalarAndBoolToF32(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	vals := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	ops := []func(x, v float32) bool{
		func(x, v float32) bool { return x == v }, func(x, v float32) bool { return x < v }, func(x, v float32) bool { return x > v },
		func(x, v float32) bool { return x <= v }, func(x, v float32) bool { return x >= v },
	}
	for n := 0; n <= 100; n += 1 + n/10 {
		a := make([]float32, n)
		for i := range a {
			a[i] = vals[r.IntN(len(vals))]
		}
		for op, f := range ops {
			for _, v := range vals {
				o := make([]bool, n)
				CmpScalar(op, o, a, v)
				for i := range a {
					if o[i] != f(a[i], v) {
						t.Fatalf("n=%d op %d: %v vs %v = %v, want %v", n, op, a[i], v, o[i], !o[i])
					}
				}
				d := make([]float32, n+1)
				d[n] = 7
				BoolToF32(d[:n], o)
				for i, b := range o {
					if want := map[bool]float32{false: 0, true: 1}[b]; math.Float32bits(d[i]) != math.Float32bits(want) {
						t.Fatalf("n=%d: BoolToF32(%v) = %v", n, b, d[i])
					}
				}
				if d[n] != 7 {
					t.Fatalf("n=%d: BoolToF32 wrote past n", n)
				}
			}
		}
	}
}
