package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxDivSIMDMatchesGo: Max and Div give the same bits with and without
// AVX2, with NaNs (either or both sides), infinities and signed zeros, and
// Max follows its definition; b may run ahead of dst in the same slice.
func TestMaxDivSIMDMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nan1, nan2 := math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002)
	special := []float32{nan1, nan2, float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1}
	want := func(x, y float32) float32 {
		switch {
		case y != y:
			return y
		case x != x:
			return x
		case y > x:
			return y
		}
		return x
	}
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 40, 47, 64, 100, 1000} {
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			if r.IntN(6) == 0 {
				a[i] = special[r.IntN(len(special))]
			}
			if r.IntN(6) == 0 {
				b[i] = special[r.IntN(len(special))]
			}
		}
		for _, simd := range []bool{false, true} {
			if simd && !useSIMD {
				continue
			}
			saved := useSIMD
			useSIMD = simd
			mx, dv := make([]float32, n), make([]float32, n)
			Max(mx, a, b)
			Div(dv, a, b)
			// In place with b ahead of dst by s: dst[i] = max(dst[i], dst[i+s]).
			const s = 3
			buf := append(append([]float32(nil), a...), 1, 2, 3)
			Max(buf[:n], buf[:n], buf[s:s+n])
			useSIMD = saved
			for i := range mx {
				if w := want(a[i], b[i]); math.Float32bits(mx[i]) != math.Float32bits(w) {
					t.Fatalf("simd=%v Max n=%d [%d]: max(%v, %v) = %v, want %v", simd, n, i, a[i], b[i], mx[i], w)
				}
				if w := a[i] / b[i]; math.Float32bits(dv[i]) != math.Float32bits(w) && !(w != w && dv[i] != dv[i]) {
					t.Fatalf("simd=%v Div n=%d [%d]: %v / %v = %v, want %v", simd, n, i, a[i], b[i], dv[i], w)
				}
				next := append(append([]float32(nil), a...), 1, 2, 3)[i+s]
				if w := want(a[i], next); math.Float32bits(buf[i]) != math.Float32bits(w) {
					t.Fatalf("simd=%v in-place Max n=%d [%d]: %v, want %v", simd, n, i, buf[i], w)
				}
			}
		}
	}
}
