package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAvg2x2Stride2Rows: every output width 1..40 (and 28, 56, 112: a
// DenseNet transition's), 1 to 4 output rows, input rows exactly 2n wide and
// wider, output rows with gaps between them, random values with infinities,
// NaNs, signed zeros and subnormals (whose quarter rounds): the assembly and
// the Go loop give the bits of each window's sum computed here in
// AveragePool's order, and write nothing outside the output rows.
func TestAvg2x2Stride2Rows(t *testing.T) {
	testWindows2x2(t, Avg2x2Stride2Rows, func(a, b []float32) float32 { return ((a[0] + a[1]) + (b[0] + b[1])) * 0.25 }, false)
}

// TestMax2x2Stride2Rows is TestAvg2x2Stride2Rows for the max, taken down
// the columns and then across with Max's rule, written out here: a NaN wins
// (the later one), of equal values the first is kept (+0 before -0). NaNs
// of two payloads tell which one won.
func TestMax2x2Stride2Rows(t *testing.T) {
	max2 := func(x, y float32) float32 {
		if y != y || y > x {
			return y
		}
		return x
	}
	testWindows2x2(t, Max2x2Stride2Rows, func(a, b []float32) float32 { return max2(max2(a[0], b[0]), max2(a[1], b[1])) }, true)
}

// testWindows2x2 holds f, a 2x2 stride-2 pool of whole rows, to want of
// each window (a: its top row's two values, b: its bottom row's), bit for
// bit, on the assembly and the Go loop; a NaN's payload only with payloads
// (a sum of two NaNs may carry either: the compiler may swap an addition's
// operands).
func testWindows2x2(t *testing.T, f func(dst []float32, dstRow int, src []float32, w, rows, n int), want func(a, b []float32) float32, payloads bool) {
	r := rand.New(rand.NewPCG(3, 4))
	special := []float32{float32(math.NaN()), math.Float32frombits(0xffc00005), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		math.Float32frombits(1), math.Float32frombits(0x80000003), math.Float32frombits(0x007fffff), math.MaxFloat32}
	widths := []int{28, 56, 112}
	for n := 1; n <= 40; n++ {
		widths = append(widths, n)
	}
	checked := 0
	for _, n := range widths {
		for extra := 0; extra < 3; extra++ {
			w := 2*n + extra
			rows := 1 + r.IntN(4)
			src := make([]float32, 2*rows*w)
			for i := range src {
				src[i] = float32(r.NormFloat64())
				if r.IntN(8) == 0 {
					src[i] = special[r.IntN(len(special))]
				}
			}
			dstRow := n + r.IntN(3)
			for _, simd := range simdModes() {
				dst := outputRows(t, simd, rows, dstRow, n, func(dst []float32) { f(dst, dstRow, src, w, rows, n) })
				for i := 0; i < rows; i++ {
					for j := 0; j < n; j++ {
						want := want(src[2*i*w+2*j:], src[(2*i+1)*w+2*j:])
						got := dst[i*dstRow+j]
						if math.Float32bits(got) != math.Float32bits(want) && (payloads || got == got || want == want) {
							t.Fatalf("simd=%v n=%d w=%d row %d col %d: got %g (%#x), want %g (%#x)", simd, n, w, i, j,
								got, math.Float32bits(got), want, math.Float32bits(want))
						}
						checked++
					}
				}
			}
		}
	}
	t.Logf("%d outputs checked", checked)
}

func BenchmarkAvg2x2Stride2Rows(b *testing.B) {
	const n, rows = 28, 28 // one plane of a 56x56 map
	src := make([]float32, 2*rows*2*n)
	for i := range src {
		src[i] = float32(i % 7)
	}
	dst := make([]float32, rows*n)
	b.SetBytes(int64(4 * len(src)))
	for i := 0; i < b.N; i++ {
		Avg2x2Stride2Rows(dst, n, src, 2*n, rows, n)
	}
}

// TestDouble2Rows: every input width 1..40 (and 20, 40, 56, 80: a detector's
// upsampled maps), 1 to 4 rows, rows with gaps on both sides, NaNs of two
// payloads and signed zeros: each value lands, bit for bit, in its four
// places, and nothing is written outside the output rows.
func TestDouble2Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	special := []float32{math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00002), float32(math.Copysign(0, -1)), float32(math.Inf(-1))}
	widths := []int{20, 56, 80}
	for n := 1; n <= 40; n++ {
		widths = append(widths, n)
	}
	for _, n := range widths {
		rows := 1 + r.IntN(4)
		srcRow, dstRow := n+r.IntN(3), 2*n+r.IntN(3)
		src := make([]float32, rows*srcRow)
		for i := range src {
			src[i] = float32(r.NormFloat64())
			if r.IntN(6) == 0 {
				src[i] = special[r.IntN(len(special))]
			}
		}
		for _, simd := range []bool{false, true} {
			if simd && !useSIMD {
				continue
			}
			saved := useSIMD
			useSIMD = simd
			dst := make([]float32, 2*rows*dstRow+1)
			for i := range dst {
				dst[i] = 42
			}
			Double2Rows(dst, dstRow, src, srcRow, rows, n)
			useSIMD = saved
			for i, v := range dst {
				y, x := i/dstRow, i%dstRow
				want := float32(42)
				if y < 2*rows && x < 2*n {
					want = src[y/2*srcRow+x/2]
				}
				if math.Float32bits(v) != math.Float32bits(want) {
					t.Fatalf("simd=%v n=%d rows=%d: [%d] (row %d col %d) = %#x, want %#x", simd, n, rows, i, y, x, math.Float32bits(v), math.Float32bits(want))
				}
			}
		}
	}
}
