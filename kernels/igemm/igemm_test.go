package igemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMulMatchesDefinition: Mul gives the int32 sums of the products (plus
// the column bias when given), exactly, for sizes off the tile (rows not
// of 6, K not of 4, columns not of 32), the extreme codes (255 x -128),
// into rows of c wider than n (left alone past n), at 1 and 2 threads, through the
// assembly where the CPU has VNNI and the portable tile everywhere; the
// column sums are B's.
func TestMulMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 7))
	t.Logf("VNNI tile: %v", Available())
	for _, sz := range [][3]int{{1, 1, 1}, {4, 4, 32}, {5, 7, 33}, {13, 768, 70}, {128, 768, 96}, {3, 1031, 31}, {9, 64, 1}, {12, 27, 40}, {6, 5, 3}, {18, 30, 64}, {49, 1, 1}, {12, 2, 5}, {13, 3, 33}, {1, 128, 512}, {1, 27, 200}, {2, 64, 100}, {1, 7, 3}} {
		m, k, n := sz[0], sz[1], sz[2]
		for _, extreme := range []bool{false, true} {
			lda := k + r.IntN(3)
			// a ends at the last row's K-th value: a tile must not read
			// past it.
			a := make([]uint8, (m-1)*lda+k)
			b := make([]int8, k*n)
			for i := range a {
				a[i] = uint8(r.IntN(256))
				if extreme {
					a[i] = 255
				}
			}
			for i := range b {
				b[i] = int8(r.IntN(256) - 128)
				if extreme {
					b[i] = -128
				}
			}
			want := make([]int32, m*n)
			for i := range m {
				for j := range n {
					var s int32
					for p := range k {
						s += int32(a[i*lda+p]) * int32(b[p*n+j])
					}
					want[i*n+j] = s
				}
			}
			pb := PackB(k, n, b, n)
			for j := range n {
				var s int32
				for p := range k {
					s += int32(b[p*n+j])
				}
				if pb.ColSums[j] != s {
					t.Fatalf("%v: column %d sum %d, want %d", sz, j, pb.ColSums[j], s)
				}
			}
			bias := make([]int32, n)
			for j := range bias {
				bias[j] = int32(r.IntN(1 << 20))
			}
			for _, portable := range []bool{false, true} {
				for _, threads := range []int{1, 2} {
					for _, withBias := range []bool{false, true} {
						name := fmt.Sprintf("%dx%dx%d extreme %v portable %v threads %d bias %v", m, k, n, extreme, portable, threads, withBias)
						var bv []int32
						if withBias {
							bv = bias
						}
						// c's rows ldc apart, with guards past each row's n.
						ldc := n + 3
						c := make([]int32, m*ldc)
						for i := range c {
							c[i] = -7
						}
						prev := useVNNIFor(!portable)
						Mul(m, a, lda, pb, c, ldc, bv, threads)
						useVNNIFor(prev)
						for i := range m {
							for j := range ldc {
								got := c[i*ldc+j]
								switch {
								case j >= n && got != -7:
									t.Fatalf("%s: wrote c[%d][%d] past the row", name, i, j)
								case j < n && withBias && got != want[i*n+j]+bias[j]:
									t.Fatalf("%s: c[%d][%d] = %d, want %d", name, i, j, got, want[i*n+j]+bias[j])
								case j < n && !withBias && got != want[i*n+j]:
									t.Fatalf("%s: c[%d][%d] = %d, want %d", name, i, j, got, want[i*n+j])
								}
							}
						}
					}
				}
			}
		}
	}
}

// BenchmarkMul times a BERT-base projection, 128 x 768 x 768 (75.5M
// products), at 1 thread.
func BenchmarkMul(b *testing.B) {
	const m, k, n = 128, 768, 768
	r := rand.New(rand.NewPCG(1, 1))
	a := make([]uint8, m*k)
	w := make([]int8, k*n)
	for i := range a {
		a[i] = uint8(r.IntN(256))
	}
	for i := range w {
		w[i] = int8(r.IntN(256) - 128)
	}
	p := PackB(k, n, w, n)
	c := make([]int32, m*n)
	b.ResetTimer()
	for range b.N {
		Mul(m, a, k, p, c, n, nil, 1)
	}
	b.ReportMetric(float64(m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}
