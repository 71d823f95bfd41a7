package vec

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSumTapsMatchesAxpy checks SumTaps against its definition (bias, then one
// Axpy per tap) bit for bit, with and without AVX2, on lengths around the 8-
// and 32-float steps, 1 to 25 taps at random offsets, NaN and infinities.
func TestSumTapsMatchesAxpy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	saved := useSIMD
	defer func() { useSIMD = saved }()
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 95, 96, 200, 1001} {
		for _, taps := range []int{1, 2, 9, 25} {
			src := make([]float32, n+40)
			for i := range src {
				src[i] = float32(r.NormFloat64())
				if r.IntN(50) == 0 {
					src[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(3)]
				}
			}
			offs, w := make([]int, taps), make([]float32, taps)
			for i := range offs {
				offs[i], w[i] = r.IntN(41), float32(r.NormFloat64())
			}
			want := make([]float32, n)
			for i := range want {
				want[i] = 0.25
			}
			for i := range offs {
				for j := range want {
					want[j] += w[i] * src[offs[i]+j]
				}
			}
			for _, simd := range []bool{false, saved} {
				useSIMD = simd
				got := make([]float32, n)
				if err := SumTaps(got, src, offs, w, 0.25); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
						t.Fatalf("n=%d taps=%d simd=%v [%d]: got %v, want %v", n, taps, simd, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func TestSumTapsRejectsOutOfRange(t *testing.T) {
	dst, src := make([]float32, 8), make([]float32, 10)
	if err := SumTaps(dst, src, []int{3}, []float32{1}, 0); err == nil || !strings.Contains(err.Error(), "reads past") {
		t.Fatalf("offset 3 + 8 outputs over a source of 10: got %v", err)
	}
	if err := SumTaps(dst, src, []int{0, 1}, []float32{1}, 0); err == nil {
		t.Fatal("2 offsets for 1 weight: no error")
	}
}

func BenchmarkSumTaps25(b *testing.B) {
	n := 2 * 100
	src, dst := make([]float32, n+4*100+8), make([]float32, n)
	offs, w := make([]int, 25), make([]float32, 25)
	for i := range offs {
		offs[i] = (i/5)*100 + i%5
	}
	b.SetBytes(int64(4 * n))
	for i := 0; i < b.N; i++ {
		SumTaps(dst, src, offs, w, 0)
	}
}

func TestStride2(t *testing.T) {
	saved := useSIMD
	defer func() { useSIMD = saved }()
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 56, 57, 112} {
		for _, extra := range []int{0, 1} { // src of 2n-1 (the minimum) or 2n
			src := make([]float32, max(0, 2*n-1+extra))
			for i := range src {
				src[i] = float32(i)
			}
			for _, simd := range []bool{false, saved} {
				useSIMD = simd
				dst := make([]float32, n)
				Stride2(dst, src)
				for j := range dst {
					if dst[j] != float32(2*j) {
						t.Fatalf("n=%d len(src)=%d simd=%v: dst[%d] = %v, want %d", n, len(src), simd, j, dst[j], 2*j)
					}
				}
			}
		}
	}
}

func TestStrided(t *testing.T) {
	for _, stride := range []int{1, 2, 3, 4} {
		for _, n := range []int{0, 1, 9, 17, 56} {
			src := make([]float32, max(0, (n-1)*stride+1))
			for i := range src {
				src[i] = float32(i)
			}
			dst := make([]float32, n)
			Strided(dst, src, stride)
			for j := range dst {
				if dst[j] != float32(j*stride) {
					t.Fatalf("stride %d n=%d: dst[%d] = %v, want %d", stride, n, j, dst[j], j*stride)
				}
			}
		}
	}
}
