package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMax3Stride2Rows: every output width 1..40 (and SqueezeNet's 13, 27,
// 55), 1 to 4 output rows, input rows exactly 2n+1 wide and wider, output
// rows with gaps between them, values with many ties, NaNs of two payloads,
// infinities and signed zeros: the assembly and the Go loop give the bits of
// Max applied down the columns and then across them, computed here one
// window at a time, and write nothing outside the output rows.
func TestMax3Stride2Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	nan1, nan2 := math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002)
	special := []float32{nan1, nan2, float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1, -1}
	pick := func(a, b float32) float32 { // Max's rule, written out again
		if b != b || (a == a && b > a) {
			return b
		}
		return a
	}
	widths := []int{55, 27, 13}
	for n := 1; n <= 40; n++ {
		widths = append(widths, n)
	}
	checked := 0
	for _, n := range widths {
		for extra := 0; extra < 3; extra++ {
			w := 2*n + 1 + extra
			rows := 1 + r.IntN(4)
			src := make([]float32, (2*rows+1)*w)
			for i := range src {
				src[i] = float32(r.IntN(5)) // many ties
				if r.IntN(4) == 0 {
					src[i] = special[r.IntN(len(special))]
				}
			}
			dstRow := n + r.IntN(3)
			for _, simd := range []bool{false, true} {
				if simd && !useSIMD {
					continue
				}
				saved := useSIMD
				useSIMD = simd
				dst := make([]float32, rows*dstRow+1)
				for i := range dst {
					dst[i] = 42
				}
				Max3Stride2Rows(dst, dstRow, src, w, rows, n)
				useSIMD = saved
				for i, v := range dst {
					if (i%dstRow >= n || i == rows*dstRow) && v != 42 {
						t.Fatalf("simd=%v n=%d: wrote [%d] outside the output rows", simd, n, i)
					}
				}
				for i := 0; i < rows; i++ {
					for j := 0; j < n; j++ {
						var want float32
						for c := 0; c < 3; c++ {
							x := 2*i*w + 2*j + c
							v := pick(pick(src[x], src[x+w]), src[x+2*w])
							if c == 0 {
								want = v
							} else {
								want = pick(want, v)
							}
						}
						if got := dst[i*dstRow+j]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("simd=%v n=%d w=%d row %d: [%d] = %v (%#x), want %v (%#x)", simd, n, w, i, j,
								got, math.Float32bits(got), want, math.Float32bits(want))
						}
						checked++
					}
				}
			}
		}
	}
	t.Logf("%d outputs checked bit for bit", checked)
}

func BenchmarkMax3Stride2Rows(b *testing.B) {
	const n, rows = 55, 55
	w := 2*n + 1
	src := make([]float32, (2*rows+1)*w)
	for i := range src {
		src[i] = float32(i % 17)
	}
	dst := make([]float32, rows*n)
	b.SetBytes(int64(4 * len(src)))
	for i := 0; i < b.N; i++ {
		Max3Stride2Rows(dst, n, src, w, rows, n)
	}
}
