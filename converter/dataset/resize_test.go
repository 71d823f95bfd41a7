package dataset

import (
	"math"
	"math/rand/v2"
	"testing"
)

// resizeRef is the resize as first written (taps per output pixel, one
// pixel at a time): resizePlane must give its bits.
func resizeRef(p []float32, h, w, oh, ow int, mode string) []float32 {
	tmp := make([]float32, h*ow)
	tx := taps1D(w, ow, mode)
	for y := 0; y < h; y++ {
		for x, tp := range tx {
			var s float64
			for _, t := range tp {
				s += t.w * float64(p[y*w+t.i])
			}
			tmp[y*ow+x] = float32(s)
		}
	}
	out := make([]float32, oh*ow)
	ty := taps1D(h, oh, mode)
	for y, tp := range ty {
		for x := 0; x < ow; x++ {
			var s float64
			for _, t := range tp {
				s += t.w * float64(tmp[t.i*ow+x])
			}
			out[y*ow+x] = float32(s)
		}
	}
	return out
}

// TestResizePlaneMatchesReference: every mode, down and up, odd sizes,
// pixel values with zeros of both signs, bit for bit.
func TestResizePlaneMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, mode := range []string{"nearest", "bilinear", "bicubic"} {
		for _, sz := range [][4]int{{480, 640, 352, 352}, {7, 5, 13, 11}, {33, 17, 9, 31}, {1, 9, 3, 4}} {
			h, w, oh, ow := sz[0], sz[1], sz[2], sz[3]
			p := make([]float32, h*w)
			for i := range p {
				switch r.IntN(8) {
				case 0:
					p[i] = 0
				case 1:
					p[i] = float32(math.Copysign(0, -1))
				default:
					p[i] = float32(r.IntN(256))
				}
			}
			dst, tmp := make([]float32, oh*ow), make([]float32, h*ow)
			resizePlane(dst, tmp, p, h, w, oh, ow, mode)
			want := resizeRef(p, h, w, oh, ow, mode)
			for i := range want {
				if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s %v: pixel %d %v, want %v", mode, sz, i, dst[i], want[i])
				}
			}
		}
	}
}

// BenchmarkResizePlane: a 480x640 plane to 352x352, bilinear, as loaded
// now and as first written.
func BenchmarkResizePlane(b *testing.B) {
	p := make([]float32, 480*640)
	for i := range p {
		p[i] = float32(i % 251)
	}
	dst, tmp := make([]float32, 352*352), make([]float32, 480*352)
	b.Run("rows-then-row-vectors", func(b *testing.B) {
		for b.Loop() {
			resizePlane(dst, tmp, p, 480, 640, 352, 352, "bilinear")
		}
	})
	b.Run("first-written", func(b *testing.B) {
		for b.Loop() {
			resizeRef(p, 480, 640, 352, 352, "bilinear")
		}
	})
}
