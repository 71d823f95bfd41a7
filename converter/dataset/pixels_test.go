package dataset

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTypedPixelsMatchAt: the planes read through each decoder type's own
// accessor equal those read through At, for the types JPEG and PNG decode
// to (a subsampled YCbCr from a real JPEG encoding, RGBA, NRGBA with
// transparency, Gray) and an offset bounds rectangle.
func TestTypedPixelsMatchAt(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := image.Rect(3, 2, 3+37, 2+29)
	rgba, nrgba, gray := image.NewRGBA(b), image.NewNRGBA(b), image.NewGray(b)
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(r.IntN(256))
		nrgba.Pix[i] = uint8(r.IntN(256))
	}
	for i := range gray.Pix {
		gray.Pix[i] = uint8(r.IntN(256))
	}
	// RGBA must be premultiplied: no channel above alpha.
	for i := 0; i < len(rgba.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			rgba.Pix[i+c] = min(rgba.Pix[i+c], rgba.Pix[i+3])
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, nrgba, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ycc, ok := dec.(*image.YCbCr)
	if !ok {
		t.Fatalf("JPEG decoded to %T", dec)
	}
	planes := func(n int) [][]float32 {
		return [][]float32{make([]float32, n), make([]float32, n), make([]float32, n)}
	}
	check := func(name string, img image.Image, typed func(p [][]float32)) {
		bb := img.Bounds()
		want, got := planes(bb.Dx()*bb.Dy()), planes(bb.Dx()*bb.Dy())
		toPlanes(want, bb, func(x, y int) color.Color { return img.At(x, y) })
		typed(got)
		for c := range want {
			if !slices.Equal(want[c], got[c]) {
				t.Errorf("%s: plane %d differs from At's", name, c)
			}
		}
	}
	check("YCbCr", ycc, func(p [][]float32) { ycbcrPlanes(p, ycc) })
	// Every chroma subsampling, random samples, odd offset bounds.
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		im := image.NewYCbCr(image.Rect(5, 3, 5+23, 3+19), ratio)
		for _, s := range [][]uint8{im.Y, im.Cb, im.Cr} {
			for i := range s {
				s[i] = uint8(r.IntN(256))
			}
		}
		check(ratio.String(), im, func(p [][]float32) { ycbcrPlanes(p, im) })
	}
	check("RGBA", rgba, func(p [][]float32) { toPlanes(p, b, rgba.RGBAAt) })
	check("NRGBA", nrgba, func(p [][]float32) { toPlanes(p, b, nrgba.NRGBAAt) })
	check("Gray", gray, func(p [][]float32) { toPlanes(p, b, gray.GrayAt) })
}
