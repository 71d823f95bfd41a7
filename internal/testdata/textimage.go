package testdata

import (
	"math/rand/v2"

	"github.com/onnxq/onnxq/graph"
)

// TextImage renders a seeded page of dark, glyph-like strokes on a light
// background: lines of "characters" made of vertical, horizontal and diagonal
// strokes. It gives OCR models inputs their outputs respond to, which random
// noise does not. Values are 0..255 grayscale in an h x w slice.
func TextImage(h, w int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x7465787469))
	img := make([]float32, h*w)
	bg := float32(220 + r.IntN(30))
	for i := range img {
		img[i] = bg + float32(r.NormFloat64()*3)
	}
	line := max(12, h/8)
	if h < 64 {
		line = h * 2 / 3 // a single line of text, as recognizers see it
	}
	for y0 := line / 4; y0+line <= h; y0 += line + line/3 + r.IntN(line/3+1) {
		x := 2 + r.IntN(line/2+1)
		for x+line/2 < w-2 {
			cw := line/2 + r.IntN(line/3+1)
			glyph(img, w, h, x, y0, cw, line, r)
			x += cw + line/8 + 1
			if r.IntN(7) == 0 {
				x += line / 2 // a space between words
			}
		}
	}
	return img
}

func glyph(img []float32, w, h, x0, y0, cw, ch int, r *rand.Rand) {
	ink := float32(20 + r.IntN(40))
	stroke := max(1, ch/10)
	set := func(x, y int) {
		for dy := 0; dy < stroke; dy++ {
			for dx := 0; dx < stroke; dx++ {
				if xx, yy := x+dx, y+dy; xx >= 0 && xx < w && yy >= 0 && yy < h {
					img[yy*w+xx] = ink
				}
			}
		}
	}
	for s := 0; s < 2+r.IntN(3); s++ {
		switch r.IntN(3) {
		case 0: // vertical
			x := x0 + r.IntN(cw)
			for y := y0 + r.IntN(ch/3+1); y < y0+ch-r.IntN(ch/3+1); y++ {
				set(x, y)
			}
		case 1: // horizontal
			y := y0 + r.IntN(ch)
			for x := x0; x < x0+cw; x++ {
				set(x, y)
			}
		default: // diagonal
			for t := 0; t < ch; t++ {
				set(x0+t*cw/ch, y0+t)
			}
		}
	}
}

// ImageNetNormalized turns grayscale 0..255 pixels into a 1 x 3 x h x w tensor with
// the ImageNet mean and standard deviation, as PaddleOCR's preprocessing does.
func ImageNetNormalized(gray []float32, h, w int) *graph.Tensor {
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	out := make([]float32, 3*h*w)
	for c := 0; c < 3; c++ {
		for i, v := range gray {
			out[c*h*w+i] = (v/255 - mean[c]) / std[c]
		}
	}
	return graph.Float32Tensor([]int{1, 3, h, w}, out)
}
