package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTransposeCols8 checks every row count from 1 to 40 (whole 8-row
// blocks, and the rows after them) at several column offsets against the
// definition, NaN payloads and signed zeros included (the values are moved,
// not computed).
func TestTransposeCols8(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for rows := 1; rows <= 40; rows++ {
		for _, cols := range []int{8, 13, 85} {
			src := make([]float32, rows*cols)
			for i := range src {
				src[i] = r.Float32()*2 - 1
			}
			src[0] = math.Float32frombits(0x7fc00123)
			src[len(src)-1] = float32(math.Copysign(0, -1))
			for j := 0; j+8 <= cols; j += 5 {
				dst := make([]float32, cols*rows)
				for i := range dst {
					dst[i] = -7
				}
				TransposeCols8(dst, src, rows, cols, j)
				for c := 0; c < cols; c++ {
					for i := 0; i < rows; i++ {
						want := float32(-7)
						if c >= j && c < j+8 {
							want = src[i*cols+c]
						}
						if got := dst[c*rows+i]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("rows %d cols %d j %d: dst[%d][%d] = %v, want %v", rows, cols, j, c, i, got, want)
						}
					}
				}
			}
		}
	}
}

// BenchmarkTransposeCols8 transposes YOLO's head (85 x 3549, as in its
// output Transpose), 8 destination rows per call.
func BenchmarkTransposeCols8(b *testing.B) {
	rows, cols := 85, 3544
	src, dst := make([]float32, rows*cols), make([]float32, rows*cols)
	b.SetBytes(int64(8 * rows * cols))
	for b.Loop() {
		for j := 0; j+8 <= cols; j += 8 {
			TransposeCols8(dst, src, rows, cols, j)
		}
	}
}
