package dataset

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG decoding
	_ "image/png"  // registers PNG decoding
	"io"
	"math"
	"os"
	"slices"
	"sync"

	"github.com/onnxq/onnxq/graph"
)

// ImageOptions turn an image file into a model input.
type ImageOptions struct {
	// Resize is the interpolation: "bilinear" (default), "nearest" or "bicubic".
	Resize string
	// ShortSide, when set, resizes the shorter side to this length keeping the
	// aspect ratio, then center-crops to Height x Width; otherwise the image is
	// resized to exactly Height x Width.
	ShortSide int
	// Height and Width of the input; by default the model input's static size.
	Height, Width int
	// Channels is "RGB" (default), "BGR" or "GRAY".
	Channels string
	// Layout is "NCHW" (default) or "NHWC".
	Layout string
	// Scale multiplies pixel values (0..255) first (default 1/255); then
	// (value - Mean[c]) / Std[c] per channel (defaults 0 and 1).
	Scale     float32
	Mean, Std []float32
}

func (o ImageOptions) withDefaults() (ImageOptions, error) {
	if o.Resize == "" {
		o.Resize = "bilinear"
	}
	if o.Channels == "" {
		o.Channels = "RGB"
	}
	if o.Layout == "" {
		o.Layout = "NCHW"
	}
	if o.Scale == 0 {
		o.Scale = 1.0 / 255
	}
	switch o.Resize {
	case "nearest", "bilinear", "bicubic":
	default:
		return o, fmt.Errorf("image resize %q is not nearest, bilinear or bicubic", o.Resize)
	}
	switch o.Channels {
	case "RGB", "BGR", "GRAY":
	default:
		return o, fmt.Errorf("image channels %q are not RGB, BGR or GRAY", o.Channels)
	}
	if o.Layout != "NCHW" && o.Layout != "NHWC" {
		return o, fmt.Errorf("image layout %q is not NCHW or NHWC", o.Layout)
	}
	c := o.channels()
	for _, v := range [][]float32{o.Mean, o.Std} {
		if v != nil && len(v) != c && len(v) != 1 {
			return o, fmt.Errorf("image mean/std have %d values for %d channels", len(v), c)
		}
	}
	for _, s := range o.Std {
		if s == 0 {
			return o, fmt.Errorf("image std must not be 0")
		}
	}
	return o, nil
}

func (o ImageOptions) channels() int {
	if o.Channels == "GRAY" {
		return 1
	}
	return 3
}

// target returns the input height and width: the options', else the input's
// static dims for the layout.
func (o ImageOptions) target(in Input) (int, int, error) {
	h, w := o.Height, o.Width
	if len(in.Dims) == 4 {
		hi, wi := 2, 3
		if o.Layout == "NHWC" {
			hi, wi = 1, 2
		}
		if h == 0 && in.Dims[hi] > 0 {
			h = int(in.Dims[hi])
		}
		if w == 0 && in.Dims[wi] > 0 {
			w = int(in.Dims[wi])
		}
	}
	if h <= 0 || w <= 0 {
		return 0, 0, fmt.Errorf("input %q has no static image size: give the image height and width", in.Name)
	}
	return h, w, nil
}

func (o ImageOptions) shape(h, w int) []int {
	if o.Layout == "NHWC" {
		return []int{1, h, w, o.channels()}
	}
	return []int{1, o.channels(), h, w}
}

// imageShape checks that the file is a readable image and returns the input shape it becomes.
func imageShape(path string, in Input, opt ImageOptions) ([]int, error) {
	o, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := readImage(path, func(r io.Reader) (image.Config, error) {
		c, _, err := image.DecodeConfig(r)
		return c, err
	}); err != nil {
		return nil, err
	}
	h, w, err := o.target(in)
	if err != nil {
		return nil, err
	}
	return o.shape(h, w), nil
}

// readImage opens path and decodes it (the header or the whole image), with
// one message for a file that cannot be opened and one for one that is not
// an image, whichever part is read.
func readImage[T any](path string, decode func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("%s: %v", path, unwrap(err))
	}
	defer f.Close()
	v, err := decode(f)
	if err != nil {
		return zero, fmt.Errorf("%s: not a readable PNG or JPEG image: %v", path, err)
	}
	return v, nil
}

// toPlanes writes the pixels of the image in bounds b, read by at, into
// three planes of 8-bit R, G and B values.
func toPlanes[C interface{ RGBA() (r, g, b, a uint32) }](planes [][]float32, b image.Rectangle, at func(x, y int) C) {
	iw := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < iw; x++ {
			r, g, bl, _ := at(b.Min.X+x, b.Min.Y+y).RGBA()
			planes[0][y*iw+x] = float32(r >> 8)
			planes[1][y*iw+x] = float32(g >> 8)
			planes[2][y*iw+x] = float32(bl >> 8)
		}
	}
}

// ycbcrPlanes is toPlanes for a JPEG's YCbCr image, its samples indexed
// directly (YCbCrAt's bounds test and the call through a function value
// were most of the per-pixel cost); each color converts as YCbCrAt's does.
func ycbcrPlanes(planes [][]float32, im *image.YCbCr) {
	b := im.Rect
	iw := b.Dx()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		o := (y - b.Min.Y) * iw
		for x := b.Min.X; x < b.Max.X; x++ {
			yi, ci := im.YOffset(x, y), im.COffset(x, y)
			r, g, bl, _ := color.YCbCr{Y: im.Y[yi], Cb: im.Cb[ci], Cr: im.Cr[ci]}.RGBA()
			planes[0][o] = float32(r >> 8)
			planes[1][o] = float32(g >> 8)
			planes[2][o] = float32(bl >> 8)
			o++
		}
	}
}

// loadImage decodes, resizes, crops, reorders and normalizes one image.
func loadImage(path string, in Input, opt ImageOptions) (*graph.Tensor, error) {
	o, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	img, err := readImage(path, func(r io.Reader) (image.Image, error) {
		img, _, err := image.Decode(r)
		return img, err
	})
	if err != nil {
		return nil, err
	}
	th, tw, err := o.target(in)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	ih, iw := b.Dy(), b.Dx()
	if ih == 0 || iw == 0 {
		return nil, fmt.Errorf("%s: empty image", path)
	}
	rh, rw := th, tw
	if o.ShortSide > 0 {
		if ih < iw {
			rh, rw = o.ShortSide, int(math.Round(float64(iw)*float64(o.ShortSide)/float64(ih)))
		} else {
			rw, rh = o.ShortSide, int(math.Round(float64(ih)*float64(o.ShortSide)/float64(iw)))
		}
		if rh < th || rw < tw {
			return nil, fmt.Errorf("%s: after resizing the short side to %d the image (%dx%d) is smaller than the %dx%d crop", path, o.ShortSide, rh, rw, th, tw)
		}
	}
	// Planes in RGB order, values 0..255, then the resize's rows and the
	// resized planes, in scratch kept between samples: a 640x480 JPEG
	// made 12 MB of garbage a sample, which sensitivity analysis, with
	// hundreds of sessions live, paid for in collections.
	resized := rh != ih || rw != iw
	need := 3 * ih * iw
	if resized {
		need += ih*rw + 3*rh*rw
	}
	buf := scratchFloats(need)
	defer putScratch(buf)
	f := *buf
	planes := make([][]float32, 3)
	for c := range planes {
		planes[c] = f[c*ih*iw : (c+1)*ih*iw]
	}
	// The decoders' own pixel types by their typed accessors: through
	// At, each pixel's color was boxed in an interface, an allocation a
	// pixel (a 640x480 JPEG: 17 ms a sample, half of convert's time on
	// FastestDet's 32 images). The colors, and so the values, are the same.
	switch im := img.(type) {
	case *image.YCbCr:
		ycbcrPlanes(planes, im)
	case *image.RGBA:
		toPlanes(planes, b, im.RGBAAt)
	case *image.NRGBA:
		toPlanes(planes, b, im.NRGBAAt)
	case *image.Gray:
		toPlanes(planes, b, im.GrayAt)
	default:
		toPlanes(planes, b, im.At)
	}
	if resized {
		tmp := f[3*ih*iw : 3*ih*iw+ih*rw]
		at := 3*ih*iw + ih*rw
		for c := range planes {
			dst := f[at+c*rh*rw : at+(c+1)*rh*rw]
			resizePlane(dst, tmp, planes[c], ih, iw, rh, rw, o.Resize)
			planes[c] = dst
		}
	}
	// Center crop to th x tw.
	y0, x0 := (rh-th)/2, (rw-tw)/2
	var order []int
	switch o.Channels {
	case "RGB":
		order = []int{0, 1, 2}
	case "BGR":
		order = []int{2, 1, 0}
	}
	nc := o.channels()
	out := graph.NewTensor(graph.Float, o.shape(th, tw))
	d := out.Float32s()
	for c := 0; c < nc; c++ {
		mean, std := float32(0), float32(1)
		if len(o.Mean) > 0 {
			mean = o.Mean[min(c, len(o.Mean)-1)]
		}
		if len(o.Std) > 0 {
			std = o.Std[min(c, len(o.Std)-1)]
		}
		for y := 0; y < th; y++ {
			for x := 0; x < tw; x++ {
				i := (y+y0)*rw + x + x0
				var v float32
				if o.Channels == "GRAY" {
					// ITU-R BT.601 luma, as PIL's "L" conversion.
					v = 0.299*planes[0][i] + 0.587*planes[1][i] + 0.114*planes[2][i]
				} else {
					v = planes[order[c]][i]
				}
				v = (v*o.Scale - mean) / std
				if o.Layout == "NHWC" {
					d[(y*tw+x)*nc+c] = v
				} else {
					d[(c*th+y)*tw+x] = v
				}
			}
		}
	}
	return out, nil
}

// resizePlane resizes one h x w plane to oh x ow with pixel centers at half
// integers (as OpenCV and PIL do), separably: rows, then columns.
// dst (oh*ow floats) gets the result, tmp (h*ow) the rows between.
func resizePlane(dst, tmp, p []float32, h, w, oh, ow int, mode string) {
	// Each output pixel sums its taps in order from 0 in float64: rows one
	// pixel at a time from flat tap arrays, then columns a whole row at a
	// time (the same additions per pixel, so the same bits, in tighter
	// loops: a 640x480 plane to 352x352 bilinear 1.4-1.6 -> 0.61-0.65 ms).
	k, idx, wt := flatTaps(taps1D(w, ow, mode))
	for y := 0; y < h; y++ {
		row, out := p[y*w:(y+1)*w], tmp[y*ow:(y+1)*ow]
		for x := range out {
			var s float64
			for j := x * k; j < x*k+k; j++ {
				s += wt[j] * float64(row[idx[j]])
			}
			out[x] = float32(s)
		}
	}
	k, idx, wt = flatTaps(taps1D(h, oh, mode))
	acc := make([]float64, ow)
	for y := 0; y < oh; y++ {
		clear(acc)
		for j := y * k; j < y*k+k; j++ {
			c, src := wt[j], tmp[idx[j]*ow:(idx[j]+1)*ow]
			for x, v := range src {
				acc[x] += c * float64(v)
			}
		}
		out := dst[y*ow : (y+1)*ow]
		for x, s := range acc {
			out[x] = float32(s)
		}
	}
}

// flatTaps lays out taps (the same count for every output) as k taps per
// output in two flat arrays.
func flatTaps(taps [][]imgTap) (k int, idx []int, w []float64) {
	k = len(taps[0])
	idx, w = make([]int, 0, k*len(taps)), make([]float64, 0, k*len(taps))
	for _, tp := range taps {
		for _, t := range tp {
			idx, w = append(idx, t.i), append(w, t.w)
		}
	}
	return k, idx, w
}

// imageScratch keeps loadImage's scratch between samples: at most two
// buffers (a sample read ahead and the one read now), none over 64 MiB. A
// sync.Pool lost them at every collection, and zeroing fresh ones was a
// quarter of a JPEG's load.
var imageScratch struct {
	mu   sync.Mutex
	free []*[]float32
}

const maxScratchFloats = 16 << 20

// scratchFloats returns a buffer of n floats (contents undefined), to be
// given back by putScratch.
func scratchFloats(n int) *[]float32 {
	imageScratch.mu.Lock()
	defer imageScratch.mu.Unlock()
	for i, b := range imageScratch.free {
		if cap(*b) >= n {
			imageScratch.free = slices.Delete(imageScratch.free, i, i+1)
			*b = (*b)[:n]
			return b
		}
	}
	s := make([]float32, n)
	return &s
}

// putScratch gives b back for the next image.
func putScratch(b *[]float32) {
	if cap(*b) > maxScratchFloats {
		return
	}
	imageScratch.mu.Lock()
	defer imageScratch.mu.Unlock()
	if len(imageScratch.free) < 2 {
		imageScratch.free = append(imageScratch.free, b)
	}
}

type imgTap struct {
	i int
	w float64
}

func taps1D(in, out int, mode string) [][]imgTap {
	scale := float64(in) / float64(out)
	res := make([][]imgTap, out)
	clamp := func(i int) int { return max(0, min(in-1, i)) }
	for o := range res {
		src := (float64(o)+0.5)*scale - 0.5
		switch mode {
		case "nearest":
			res[o] = []imgTap{{clamp(int(math.Floor(float64(o) * scale))), 1}}
		case "bilinear":
			src = max(0, src)
			i0 := int(math.Floor(src))
			t := src - float64(i0)
			res[o] = []imgTap{{clamp(i0), 1 - t}, {clamp(i0 + 1), t}}
		default: // bicubic, a = -0.75 as OpenCV
			i0 := int(math.Floor(src))
			t := src - float64(i0)
			const a = -0.75
			cubic := func(x float64) float64 {
				x = math.Abs(x)
				switch {
				case x <= 1:
					return (a+2)*x*x*x - (a+3)*x*x + 1
				case x < 2:
					return a*x*x*x - 5*a*x*x + 8*a*x - 4*a
				}
				return 0
			}
			for k := -1; k <= 2; k++ {
				res[o] = append(res[o], imgTap{clamp(i0 + k), cubic(float64(k) - t)})
			}
		}
	}
	return res
}
