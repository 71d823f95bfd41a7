package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestErrorSums: the AVX2 loop and the Go loop give the same bits at every
// length through the 8- and 4-wide steps and the tail, with infinities,
// NaNs and huge values among normal ones; the sums are within 1e-12 of
// plainly summed ones, and the largest error is exact (NaN when one is).
func TestErrorSums(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	r := rand.New(rand.NewPCG(61, 62))
	edges := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3e38, -3e38, 0, float32(math.Copysign(0, -1)), 1e-42}
	lengths := []int{0, 1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 33, 64, 1000, 4099}
	for _, n := range lengths {
		for trial := 0; trial < 6; trial++ {
			ref, test := make([]float32, n), make([]float32, n+r.IntN(3))
			for i := range ref {
				ref[i] = float32(r.NormFloat64())
				test[i] = ref[i] + float32(r.NormFloat64()*0.01)
				if trial >= 3 && r.IntN(50) == 0 {
					ref[i] = edges[r.IntN(len(edges))]
				}
			}
			var got [2][5]float64
			for k, simd := range []bool{false, true} {
				useSIMD = simd && saved
				a, b, c, d, e := ErrorSums(ref, test)
				got[k] = [5]float64{a, b, c, d, e}
			}
			useSIMD = saved
			for j := range 5 {
				if math.Float64bits(got[0][j]) != math.Float64bits(got[1][j]) && !(math.IsNaN(got[0][j]) && math.IsNaN(got[1][j])) {
					t.Fatalf("n %d trial %d: sum %d is %v with AVX2, %v without", n, trial, j, got[1][j], got[0][j])
				}
			}
			var want [5]float64
			nan := false
			for i, v := range ref {
				x, y := float64(v), float64(test[i])
				want[0] += x * x
				want[1] += y * y
				want[2] += x * y
				want[3] += (x - y) * (x - y)
				if a := math.Abs(x - y); a != a {
					nan = true
				} else {
					want[4] = max(want[4], a)
				}
			}
			if nan {
				want[4] = math.NaN()
			}
			for j, w := range want {
				g := got[1][j]
				if math.IsNaN(w) || math.IsInf(w, 0) {
					if math.IsNaN(w) != math.IsNaN(g) || math.IsInf(w, 1) != math.IsInf(g, 1) {
						t.Fatalf("n %d trial %d: sum %d is %v, want %v", n, trial, j, g, w)
					}
					continue
				}
				if tol := 1e-12 * math.Max(1, math.Abs(w)); math.Abs(g-w) > tol || j == 4 && g != w {
					t.Fatalf("n %d trial %d: sum %d is %v, want %v", n, trial, j, g, w)
				}
			}
		}
	}
}

func BenchmarkErrorSums(b *testing.B) {
	ref, test := make([]float32, 1<<16), make([]float32, 1<<16)
	for i := range ref {
		ref[i], test[i] = float32(i%97), float32(i%89)
	}
	b.SetBytes(8 << 16)
	for b.Loop() {
		ErrorSums(ref, test)
	}
}
