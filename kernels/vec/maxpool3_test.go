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
			for _, simd := range simdModes() {
				dst := outputRows(t, simd, rows, dstRow, n, func(dst []float32) { Max3Stride2Rows(dst, dstRow, src, w, rows, n) })
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

// TestMax3Stride2Edges: windows reaching past the left and right ends of
// the rows (x0 -2..1, widths from too short for a block to several blocks
// and a ragged last one), rows repeated for the top and bottom, values with
// ties, NaNs of two payloads, infinities and signed zeros: the kernel gives
// the bits of Max down the columns present and then across them in order,
// and writes nothing outside the output rows.
func TestMax3Stride2Edges(t *testing.T) {
	if !use512 {
		t.Skip("no AVX-512 here: Max3Stride2Edges has no kernel and reports it")
	}
	r := rand.New(rand.NewPCG(9, 10))
	nan1, nan2 := math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002)
	special := []float32{nan1, nan2, float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1, -1}
	pick := func(a, b float32) float32 {
		if b != b || (a == a && b > a) {
			return b
		}
		return a
	}
	checked := 0
	for _, n := range []int{1, 2, 7, 15, 16, 17, 28, 31, 32, 33, 55, 56, 64, 100} {
		for x0 := -2; x0 <= 1; x0++ {
			for _, wd := range []int{-3, -1, 0, 1, 2} { // the last window short, or whole and more
				w := 2*(n-1) + x0 + 3 + wd
				if w < 1 {
					continue
				}
				rows := 1 + r.IntN(3)
				dr1, dr2 := []int{0, w, w}[r.IntN(3)], []int{0, w, 2 * w}[r.IntN(3)]
				srcRow := 2 * w
				src := make([]float32, (rows-1)*srcRow+max(dr1, dr2)+w)
				for i := range src {
					src[i] = float32(r.IntN(5))
					if r.IntN(4) == 0 {
						src[i] = special[r.IntN(len(special))]
					}
				}
				dstRow := n + r.IntN(3)
				dst := make([]float32, rows*dstRow+1)
				for i := range dst {
					dst[i] = 42
				}
				if !Max3Stride2Edges(dst, dstRow, src, w, rows, n, x0, dr1, dr2, srcRow) {
					t.Fatal("reported no kernel on an AVX-512 machine")
				}
				for i, v := range dst {
					if (i%dstRow >= n || i == rows*dstRow) && v != 42 {
						t.Fatalf("n=%d x0=%d w=%d: wrote [%d] outside the output rows", n, x0, w, i)
					}
				}
				for i := 0; i < rows; i++ {
					r0, r1, r2 := src[i*srcRow:], src[i*srcRow+dr1:], src[i*srcRow+dr2:]
					for j := 0; j < n; j++ {
						want := float32(math.Inf(-1)) // what a window with no columns gives
						for c := x0 + 2*j; c < x0+2*j+3; c++ {
							if c >= 0 && c < w {
								want = pick(want, pick(pick(r0[c], r1[c]), r2[c]))
							}
						}
						if got := dst[i*dstRow+j]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("n=%d x0=%d w=%d dr=%d,%d row %d: [%d] = %v (%#x), want %v (%#x)", n, x0, w, dr1, dr2, i, j,
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
