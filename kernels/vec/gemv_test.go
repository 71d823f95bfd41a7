package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMulAddT checks y += x·A against float64 sums on sizes around the 64- and
// 8-column blocks, with a row stride wider than the columns used, on the
// assembly and the portable path.
func TestMulAddT(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	for _, fma := range []bool{useFMA, false} {
		saved := useFMA
		useFMA = fma
		for _, n := range []int{1, 7, 8, 9, 63, 64, 65, 72, 130, 512} {
			for _, k := range []int{1, 3, 128} {
				lda := n + r.IntN(3)
				a := make([]float32, k*lda)
				for i := range a {
					a[i] = float32(r.NormFloat64())
				}
				x := make([]float32, k)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				y := make([]float32, n)
				want := make([]float64, n)
				for j := range y {
					y[j] = float32(r.NormFloat64())
					want[j] = float64(y[j])
					for i := range x {
						want[j] += float64(x[i]) * float64(a[i*lda+j])
					}
				}
				MulAddT(y, x, a, lda)
				for j := range y {
					// float32 accumulation of k terms of size ~1.
					if e := math.Abs(float64(y[j]) - want[j]); !(e <= 4e-7*float64(k+1)*math.Sqrt(float64(k))) {
						t.Fatalf("fma=%v n=%d k=%d lda=%d: y[%d] = %g, want %g", fma, n, k, lda, j, y[j], want[j])
					}
				}
			}
		}
		useFMA = saved
	}
}

func BenchmarkMulAddT(b *testing.B) {
	const k, n = 128, 512
	a := make([]float32, k*n)
	x := make([]float32, k)
	y := make([]float32, n)
	for i := range a {
		a[i] = float32(i%7) - 3
	}
	for i := range x {
		x[i] = 0.25
	}
	b.Run("MulAddT", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			MulAddT(y, x, a, n)
		}
	})
	b.Run("Axpy", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for p, v := range x {
				Axpy(y, a[p*n:(p+1)*n], v)
			}
		}
	})
}
