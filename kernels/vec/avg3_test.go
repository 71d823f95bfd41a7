package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAvg3x3Rows: output widths 1..40 and 56, 1 to 4 rows, padded rows with
// room to spare, output and divisor rows with gaps, values with NaNs,
// infinities, signed zeros and subnormals, divisors 4, 6 and 9 (a pool's
// corners, edges and inside) and 0.5: the assembly and the Go loop give the
// bits of the separable passes (Add3 along x, Add3 of three rows, Div), and
// write nothing outside the output rows.
func TestAvg3x3Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		math.Float32frombits(1), math.Float32frombits(0x80000005), math.MaxFloat32}
	widths := []int{56}
	for n := 1; n <= 40; n++ {
		widths = append(widths, n)
	}
	checked := 0
	for _, n := range widths {
		rows := 1 + r.IntN(4)
		srcRow, dstRow, divRow := n+2+r.IntN(3), n+r.IntN(3), n+r.IntN(2)
		src := make([]float32, (rows+2)*srcRow)
		for i := range src {
			src[i] = float32(r.NormFloat64())
			if r.IntN(10) == 0 {
				src[i] = special[r.IntN(len(special))]
			}
		}
		div := make([]float32, rows*divRow)
		for i := range div {
			div[i] = []float32{4, 6, 9, 0.5}[r.IntN(4)]
		}
		// The separable passes, over whole padded rows.
		h := make([]float32, len(src)-2)
		Add3(h, src[:len(src)-2], src[1:len(src)-1], src[2:])
		want := make([]float32, rows*srcRow)
		m := rows*srcRow - 2 // a row's last two sums are past its outputs
		Add3(want[:m], h[:m], h[srcRow:srcRow+m], h[2*srcRow:2*srcRow+m])
		for i := 0; i < rows; i++ {
			Div(want[i*srcRow:i*srcRow+n], want[i*srcRow:i*srcRow+n], div[i*divRow:i*divRow+n])
		}
		for _, simd := range simdModes() {
			dst := outputRows(t, simd, rows, dstRow, n, func(dst []float32) { Avg3x3Rows(dst, dstRow, src, srcRow, div, divRow, rows, n) })
			for i := 0; i < rows; i++ {
				for x := 0; x < n; x++ {
					got, w := dst[i*dstRow+x], want[i*srcRow+x]
					if math.Float32bits(got) != math.Float32bits(w) && (got == got || w == w) {
						t.Fatalf("simd=%v n=%d row %d col %d: got %g (%#x), want %g (%#x)", simd, n, i, x, got, math.Float32bits(got), w, math.Float32bits(w))
					}
					checked++
				}
			}
		}
	}
	t.Logf("%d outputs checked", checked)
}
