package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCvtMatchesGo: the conversions give Go's conversion's bits for every
// length through the vector loop and its masked tail, with NaN, ±Inf, ±0,
// values beyond int64, halfway and large int64s, and leave dst past n alone.
func TestCvtMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		-0.5, 0.5, -1.5, 2.5, 0x1p63, -0x1p63, 0x1p62, -0x1p64, 1e-45, -7.99999, 123456789}
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1<<24 + 1, 1<<53 + 1, -(1<<40 + 3), 1<<62 + 1<<38 + 1}
	for n := 0; n <= 70; n++ {
		src := make([]float32, n)
		is := make([]int64, n)
		for i := range src {
			if r.IntN(4) == 0 {
				src[i] = specials[r.IntN(len(specials))]
				is[i] = ints[r.IntN(len(ints))]
			} else {
				src[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(25)-5)))
				is[i] = r.Int64() >> r.IntN(64)
			}
		}
		got := make([]int64, n+3)
		for i := range got {
			got[i] = 77
		}
		F32ToI64(got[:n], src)
		for i, v := range src {
			if want := int64(v); got[i] != want {
				t.Fatalf("n=%d: F32ToI64(%v) = %d, want %d", n, v, got[i], want)
			}
		}
		gf := make([]float32, n+3)
		for i := range gf {
			gf[i] = 77
		}
		I64ToF32(gf[:n], is)
		for i, v := range is {
			if want := float32(v); math.Float32bits(gf[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: I64ToF32(%d) = %v, want %v", n, v, gf[i], want)
			}
		}
		i32 := make([]int32, n)
		for i := range i32 {
			i32[i] = int32(is[i]) // with the specials' low halves: 0, -1, 1<<24+1, ...
		}
		g32 := make([]float32, n+3)
		for i := range g32 {
			g32[i] = 77
		}
		gi32 := make([]int32, n+3)
		for i := range gi32 {
			gi32[i] = 77
		}
		F32ToI32(gi32[:n], src)
		for i, v := range src {
			if want := int32(v); gi32[i] != want {
				t.Fatalf("n=%d: F32ToI32(%v) = %d, want %d", n, v, gi32[i], want)
			}
		}
		for i := n; i < n+3; i++ {
			if gi32[i] != 77 {
				t.Fatalf("n=%d: F32ToI32 wrote past n at %d", n, i)
			}
		}
		I32ToF32(g32[:n], i32)
		for i, v := range i32 {
			if want := float32(v); math.Float32bits(g32[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: I32ToF32(%d) = %v, want %v", n, v, g32[i], want)
			}
		}
		for i := n; i < n+3; i++ {
			if got[i] != 77 || gf[i] != 77 || g32[i] != 77 {
				t.Fatalf("n=%d: wrote past n at %d", n, i)
			}
		}
	}
}

func BenchmarkCvt(b *testing.B) {
	const n = 64 * 56 * 56
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i%1000) - 500.5
	}
	is := make([]int64, n)
	fs := make([]float32, n)
	b.Run("F32ToI64", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			F32ToI64(is, src)
		}
	})
	b.Run("I64ToF32", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			I64ToF32(fs, is)
		}
	})
	b.Run("go-loops", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j, v := range src {
				is[j] = int64(v)
			}
			for j, v := range is {
				fs[j] = float32(v)
			}
		}
	})
}
