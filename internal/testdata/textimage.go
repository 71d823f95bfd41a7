package testdata

import (
	"image"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// words feed the rendered lines: common English words, numbers and
// punctuation, as on the receipts and pages OCR models are trained on.
var words = strings.Fields(`the of and to in is for on with as by at from this that be are
was it an or not have has new all one two page total price date name order number
item amount cash card paid tax invoice store open hours road street city phone
email www com net report chapter section table figure value result data model
2024 2025 19.99 4.50 100 350 12:30 No. Tel: $ % - # ( ) ,`)

// TextImage renders a seeded page of real text: lines of words in a bitmap
// font (Go's 7x13 face) scaled to the line height, dark ink on a light
// background, with jittered ink, paper, scale, spacing and sensor noise. An
// image less than 64 pixels high holds one line, as text recognizers and
// direction classifiers see it. Values are 0..255 grayscale, h x w.
func TextImage(h, w int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x7465787469))
	paper := 200 + 45*r.Float64()
	ink := 10 + 60*r.Float64()
	img := make([]float32, h*w)
	for i := range img {
		img[i] = float32(paper + r.NormFloat64()*3)
	}
	lineH := max(14, h/10+r.IntN(h/20+1))
	if h < 64 {
		lineH = h*2/3 + r.IntN(h/6+1)
	}
	y0 := r.IntN(max(1, lineH/3))
	if h < 64 {
		y0 = (h - lineH) / 2
	}
	for ; y0+lineH <= h; y0 += lineH + lineH/4 + r.IntN(lineH/2+1) {
		x0 := 2 + r.IntN(lineH)
		drawLine(img, w, h, x0, y0, lineH, paper, ink, r)
		if h < 64 {
			break
		}
	}
	return img
}

// drawLine writes words at 13 px into a mask, then samples it bilinearly,
// scaled to lineH, onto the page.
func drawLine(img []float32, w, h, x0, y0, lineH int, paper, ink float64, r *rand.Rand) {
	face := basicfont.Face7x13
	scale := float64(lineH) / 13
	srcW := int(float64(w-x0)/scale) + 1
	mask := image.NewGray(image.Rect(0, 0, srcW, 13))
	var text strings.Builder
	for text.Len()*7 < srcW {
		text.WriteString(words[r.IntN(len(words))])
		text.WriteString(" ")
	}
	d := font.Drawer{Dst: mask, Src: image.White, Face: face, Dot: fixed.P(0, 11)}
	d.DrawString(text.String())
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= srcW || y >= 13 {
			return 0
		}
		return float64(mask.GrayAt(x, y).Y) / 255
	}
	for y := y0; y < min(h, y0+lineH); y++ {
		sy := (float64(y-y0)+0.5)/scale - 0.5
		for x := x0; x < w; x++ {
			sx := (float64(x-x0)+0.5)/scale - 0.5
			fx, fy := math.Floor(sx), math.Floor(sy)
			ax, ay := sx-fx, sy-fy
			ix, iy := int(fx), int(fy)
			a := (1-ay)*((1-ax)*at(ix, iy)+ax*at(ix+1, iy)) + ay*((1-ax)*at(ix, iy+1)+ax*at(ix+1, iy+1))
			if a > 0 {
				img[y*w+x] = float32((1-a)*float64(img[y*w+x]) + a*ink)
			}
		}
	}
}

// ImageNetNormalized turns grayscale 0..255 pixels into a 1 x 3 x h x w tensor with
// the ImageNet mean and standard deviation, as PaddleOCR's detector preprocessing does.
func ImageNetNormalized(gray []float32, h, w int) *graph.Tensor {
	return normalized(gray, h, w, [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225})
}

// HalfNormalized maps 0..255 to [-1, 1] on three channels, as PaddleOCR's
// recognizer and direction classifier preprocessing does.
func HalfNormalized(gray []float32, h, w int) *graph.Tensor {
	return normalized(gray, h, w, [3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5})
}

// OCRInput is a rendered text image normalized the way the PaddleOCR model
// kind (det, rec, cls) expects.
func OCRInput(kind string, h, w int, seed uint64) *graph.Tensor {
	if kind == "det" {
		return ImageNetNormalized(TextImage(h, w, seed), h, w)
	}
	return HalfNormalized(TextImage(h, w, seed), h, w)
}

func normalized(gray []float32, h, w int, mean, std [3]float32) *graph.Tensor {
	out := make([]float32, 3*h*w)
	for c := 0; c < 3; c++ {
		for i, v := range gray {
			out[c*h*w+i] = (v/255 - mean[c]) / std[c]
		}
	}
	return graph.Float32Tensor([]int{1, 3, h, w}, out)
}
