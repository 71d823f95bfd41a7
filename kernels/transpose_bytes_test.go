package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestTransposeBytes holds transposeBytes to its definition over shapes
// with and without whole 8 x 8 blocks, strides wider than the matrix (the
// bytes past it left alone), and both flips.
func TestTransposeBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for _, sz := range [][2]int{{1, 1}, {8, 8}, {16, 24}, {9, 17}, {64, 56}, {7, 3}, {3, 40}, {144, 56}} {
		rows, cols := sz[0], sz[1]
		for _, flip := range []byte{0, 0x80} {
			lds, ldd := cols+r.IntN(3), rows+r.IntN(3)
			src := make([]byte, (rows-1)*lds+cols)
			for i := range src {
				src[i] = byte(r.IntN(256))
			}
			dst := make([]byte, (cols-1)*ldd+rows)
			for i := range dst {
				dst[i] = 0x5a
			}
			transposeBytes(dst, ldd, src, lds, rows, cols, flip)
			for j := range cols {
				for i := range ldd {
					want := byte(0x5a)
					if i < rows {
						want = src[i*lds+j] ^ flip
					} else if j*ldd+i >= len(dst) {
						continue
					}
					if got := dst[j*ldd+i]; got != want {
						t.Fatalf("%dx%d flip %#x: dst[%d][%d] = %d, want %d", rows, cols, flip, j, i, got, want)
					}
				}
			}
		}
	}
}

// TestSumBytes holds sumBytes to a byte loop over lengths around the word
// size and past the 128 words a lane holds, all 0xff bytes (the lanes'
// worst case) and random ones, both flips.
func TestSumBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 1))
	for _, n := range []int{0, 1, 7, 8, 9, 1023, 1024, 1025, 2049, 5000} {
		for _, full := range []bool{true, false} {
			b := make([]byte, n)
			for i := range b {
				b[i] = 0xff
				if !full {
					b[i] = byte(r.IntN(256))
				}
			}
			for _, flip := range []byte{0, 0x80} {
				var want int64
				for _, v := range b {
					want += int64(v ^ flip)
				}
				if got := sumBytes(b, flip); got != want {
					t.Fatalf("%d bytes (all 0xff %v) flip %#x: %d, want %d", n, full, flip, got, want)
				}
			}
		}
	}
}
