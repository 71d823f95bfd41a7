package vec

import (
	"math/rand/v2"
	"testing"
)

// TestDealRows deals rows of every width 1-70 (and 224, 4097 past the
// scratch) to 2, 4 and 8 destinations, on the SIMD and portable paths, and
// checks every value's place and that nothing past a row is written.
func TestDealRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	saved := useSIMD
	defer func() { useSIMD = saved }()
	for _, simd := range simdModes() {
		useSIMD = simd
		for _, s := range []int{2, 4, 8} {
			widths := []int{224, 4097}
			for w := 1; w <= 70; w++ {
				widths = append(widths, w)
			}
			for _, cols := range widths {
				rows := 1 + r.IntN(5)
				if cols > 1000 {
					rows = 3
				}
				srcRow := cols + r.IntN(3)
				dstRow := (cols+s-1)/s + r.IntN(3)
				src := make([]float32, (rows-1)*srcRow+cols)
				for i := range src {
					src[i] = float32(i) + 0.5
				}
				dst := make([][]float32, s)
				for i := range dst {
					dst[i] = make([]float32, rows*dstRow+1)
					for j := range dst[i] {
						dst[i][j] = -1
					}
				}
				if err := DealRows(dst, dstRow, src, srcRow, rows, cols); err != nil {
					t.Fatal(err)
				}
				for i := range dst {
					n := (cols - i + s - 1) / s
					for row := 0; row < rows; row++ {
						for j := 0; j < dstRow; j++ {
							want := float32(-1)
							if j < n {
								want = src[row*srcRow+j*s+i]
							}
							if got := dst[i][row*dstRow+j]; got != want {
								t.Fatalf("simd %v s=%d cols=%d rows=%d: dst[%d][%d*%d+%d] = %g, want %g", simd, s, cols, rows, i, row, dstRow, j, got, want)
							}
						}
					}
				}
			}
		}
	}
	if err := DealRows(make([][]float32, 3), 4, make([]float32, 12), 12, 1, 12); err == nil {
		t.Error("3 destinations accepted")
	}
	if err := DealRows([][]float32{make([]float32, 2), make([]float32, 3), make([]float32, 3), make([]float32, 3)}, 3, make([]float32, 12), 12, 1, 12); err == nil {
		t.Error("a destination too short accepted")
	}
}

// BenchmarkDealRows deals a ConvNeXt stem's input rows (224 wide, stride 4)
// against the gathers per phase it replaced.
func BenchmarkDealRows(b *testing.B) {
	const rows, cols, s = 224, 224, 4
	src := make([]float32, rows*cols)
	dst := make([][]float32, s)
	for i := range dst {
		dst[i] = make([]float32, rows*cols/s)
	}
	b.Run("deal", func(b *testing.B) {
		for b.Loop() {
			_ = DealRows(dst, cols/s, src, cols, rows, cols)
		}
	})
	b.Run("gathers", func(b *testing.B) {
		for b.Loop() {
			for i := range dst {
				for r := 0; r < rows; r++ {
					Strided(dst[i][r*cols/s:(r+1)*cols/s], src[r*cols+i:], s)
				}
			}
		}
	})
}
