package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSmallMatchesTiled: the small path gives the tiled path's bits (the
// same chains of FMAs, C added last) on every shape it takes, with A, B and
// C wider than the product, with and without accumulating into C, and
// writes nothing of C outside the product.
func TestSmallMatchesTiled(t *testing.T) {
	saved := active
	defer func() { active = saved }()
	tested := 0
	for _, kr := range kernels() {
		if kr.small == nil {
			continue
		}
		r := rand.New(rand.NewPCG(7, 8))
		shapes := [][3]int{{1, 1, 1}, {16, 16, 16}, {5, 5, 16}, {8, 64, 13}, {3, 17, 1}, {2, 33, 256}, {7, 48, 9}, {64, 32, 64}, {13, 31, 100}, {65, 32, 65}, {8, 8, 8}, {14, 20, 30}}
		for range 60 {
			shapes = append(shapes, [3]int{1 + r.IntN(40), 1 + r.IntN(smallMaxN), 1 + r.IntN(smallMaxK)})
		}
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			kt := kr
			if !smallFits(&kt, m, n, k, 1, Matrix{}, Matrix{}, 0, 1) {
				continue
			}
			lda, ldb, ldc := k+r.IntN(3), n+r.IntN(3), n+r.IntN(3)
			a, b := Matrix{Data: randMat(r, m*lda), Stride: lda}, Matrix{Data: randMat(r, k*ldb), Stride: ldb}
			c0 := randMat(r, m*ldc)
			for _, beta := range []float32{0, 1} {
				what := fmt.Sprintf("%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d beta=%v", kr.name, m, n, k, lda, ldb, ldc, beta)
				got := smallAgainstTiled(t, what, kr, c0, n, ldc, func(c []float32) { Sgemm(m, n, k, 1, a, b, beta, c, ldc, 1) })
				check(t, what, m, n, k, got, ldc, reference(m, n, k, 1, a, b, beta, c0, ldc))
				tested++
			}
		}
	}
	if tested == 0 {
		t.Skip("no kernel here has a small path")
	}
	t.Logf("%d products", tested)
}

// smallAgainstTiled runs product on a copy of c0 with kr (its small path)
// and with kr's small path off (the tiled path), fails unless the two agree
// bit for bit and leave the columns of C past n as they were, and returns
// the small path's C.
func smallAgainstTiled(t *testing.T, what string, kr kernel, c0 []float32, n, ldc int, product func(c []float32)) []float32 {
	t.Helper()
	var out [2][]float32
	for path := range out {
		active = kr
		if path == 1 {
			active.small = nil
		}
		out[path] = append([]float32(nil), c0...)
		product(out[path])
	}
	active = kr
	got, want := out[0], out[1]
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: C[%d] = %v, tiled %v", what, i, got[i], want[i])
		}
		if i%ldc >= n && got[i] != c0[i] {
			t.Fatalf("%s: C[%d] outside the product changed", what, i)
		}
	}
	return got
}

// BenchmarkSmall times products the small path takes against the tiled
// path (kernel.small off), ns per product, with each kernel that has one.
func BenchmarkSmall(b *testing.B) {
	saved := active
	defer func() { active = saved }()
	for _, kr := range kernels() {
		if kr.small == nil {
			continue
		}
		for _, s := range [][3]int{{16, 16, 16}, {5, 5, 16}, {8, 64, 13}, {49, 49, 32}, {8, 64, 256}} {
			m, n, k := s[0], s[1], s[2]
			r := rand.New(rand.NewPCG(1, 2))
			a, bm, c := randMat(r, m*k), randMat(r, k*n), make([]float32, m*n)
			for _, path := range []string{"small", "tiled"} {
				b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", kr.name, m, n, k, path), func(b *testing.B) {
					active = kr
					if path == "tiled" {
						active.small = nil
					}
					for range b.N {
						Sgemm(m, n, k, 1, Matrix{Data: a, Stride: k}, Matrix{Data: bm, Stride: n}, 0, c, n, 1)
					}
				})
			}
		}
	}
}

// TestSmallPackedMatchesTiled: MulPackedB through the small path gives the
// tiled path's bits, B packed once for both, n past two panels included.
func TestSmallPackedMatchesTiled(t *testing.T) {
	saved := active
	defer func() { active = saved }()
	tested := 0
	for _, kr := range kernels() {
		if kr.small == nil {
			continue
		}
		active = kr
		r := rand.New(rand.NewPCG(9, 10))
		shapes := [][3]int{{8, 64, 13}, {8, 16, 64}, {8, 1, 32}, {2, 100, 26}, {5, 33, 256}, {3, 7, 1}}
		for range 40 {
			shapes = append(shapes, [3]int{2 + r.IntN(20), 1 + r.IntN(130), 1 + r.IntN(smallMaxK)})
		}
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			lda, ldc := k+r.IntN(3), n+r.IntN(3)
			active = kr
			a := Matrix{Data: randMat(r, m*lda), Stride: lda}
			p := PackB(k, n, Matrix{Data: randMat(r, k*n), Stride: n})
			if !smallPackedFits(&kr, m, 1, a, p, 0) {
				continue
			}
			c0 := randMat(r, m*ldc)
			for _, beta := range []float32{0, 1} {
				what := fmt.Sprintf("%s m=%d n=%d k=%d ldc=%d beta=%v", kr.name, m, n, k, ldc, beta)
				smallAgainstTiled(t, what, kr, c0, n, ldc, func(c []float32) { MulPackedB(m, 1, a, p, beta, c, ldc, 1) })
				tested++
			}
		}
	}
	if tested == 0 {
		t.Skip("no kernel here has a small path")
	}
	t.Logf("%d products", tested)
}
