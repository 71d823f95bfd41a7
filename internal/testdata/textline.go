package testdata

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// PadGray is the grey that PaddleOCR's rec and cls preprocessing pads a
// line with: 0 after mapping 0..255 to [-1, 1].
const PadGray = 127.5

// Cls labels: PaddleOCR's direction classifier's class 0 is an upright
// line, class 1 a line turned 180 degrees.
const (
	ClsUpright = "0"
	ClsFlipped = "180"
)

var (
	lineFontsOnce sync.Once
	lineFonts     []*opentype.Font
)

// fonts are Go's TrueType faces a printed document could use; small caps
// are left out because their lowercase would be read as capitals.
func fonts() []*opentype.Font {
	lineFontsOnce.Do(func() {
		for _, b := range [][]byte{goregular.TTF, gomedium.TTF, gobold.TTF, goitalic.TTF, gomono.TTF, gomonobold.TTF} {
			f, err := opentype.Parse(b)
			if err != nil {
				panic(fmt.Sprintf("testdata: Go font does not parse: %v", err)) // compiled-in data
			}
			lineFonts = append(lineFonts, f)
		}
	})
	return lineFonts
}

// TextLine renders a seeded, labelled text line as a text detector would
// hand it to PaddleOCR's recognizer: 1-4 words (or figures) in one of Go's
// TrueType fonts, drawn at a random crop height and resized to h (which
// blurs or sharpens the glyphs a little), with jittered ink, paper, lighting
// and sensor noise, then padded on the right to w with PadGray, as
// PaddleOCR pads a crop narrower than the input. Values are 0..255
// grayscale, h x w; the label is the text drawn.
func TextLine(h, w int, seed uint64) ([]float32, string) {
	r := rand.New(rand.NewPCG(seed, 0x6c696e65))
	crop, cw, text := lineCrop(r, h, w, 4)
	return padRight(crop, h, cw, w), text
}

// ClsLine renders a seeded line for PaddleOCR's direction classifier: a
// line of 1-8 words as TextLine draws them, turned 180 degrees for about
// half the seeds, then preprocessed as the classifier's pipeline does:
// resized to height h keeping the aspect ratio, squeezed to w when wider,
// padded with PadGray when narrower. The label is ClsUpright or ClsFlipped.
func ClsLine(h, w int, seed uint64) ([]float32, string) {
	r := rand.New(rand.NewPCG(seed, 0x636c73))
	crop, cw, _ := lineCrop(r, h, 3*w, 8)
	label := ClsUpright
	if r.IntN(2) == 1 {
		label = ClsFlipped
		for i, j := 0, len(crop)-1; i < j; i, j = i+1, j-1 {
			crop[i], crop[j] = crop[j], crop[i]
		}
	}
	if cw > w {
		crop, cw = resizeBilinear(crop, h, cw, h, w), w
	}
	return padRight(crop, h, cw, w), label
}

// lineCrop draws up to maxWords words whose crop, at height h, is at most
// maxW wide, and returns the crop (h x cw) and its text.
func lineCrop(r *rand.Rand, h, maxW, maxWords int) ([]float32, int, string) {
	ff := fonts()
	f := ff[r.IntN(len(ff))]
	// The crop as the camera or scanner saw it, before the resize to h.
	sh := max(8, int(float64(h)*(0.45+0.95*r.Float64())))
	scale := float64(h) / float64(sh)
	margin := int(float64(sh) * (0.05 + 0.2*r.Float64()))
	maxSrc := int(float64(maxW)/scale) - 2*margin
	size := float64(sh) * (0.58 + 0.18*r.Float64())
	var face font.Face
	text := ""
	// Phrases that do not fit lose words; a width too small for any word
	// gets a smaller face, and below 4 px an empty line.
	for n, tries := 1+r.IntN(maxWords), 0; ; tries++ {
		if face == nil {
			if size < 4 {
				text = ""
				break
			}
			var err error
			if face, err = opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone}); err != nil {
				panic(fmt.Sprintf("testdata: font face: %v", err)) // size is positive by construction
			}
		}
		text = phrase(r, n)
		if font.MeasureString(face, text).Ceil() <= maxSrc {
			break
		}
		n = max(1, n-1)
		if tries%16 == 15 {
			face.Close()
			face, size = nil, size*0.8
		}
	}
	if face == nil {
		return nil, 0, ""
	}
	defer face.Close()
	tw := font.MeasureString(face, text).Ceil()
	sw := min(tw+2*margin, int(float64(maxW)/scale))
	mask := image.NewGray(image.Rect(0, 0, sw, sh))
	m := face.Metrics()
	// Vertical placement: the text's box centred, give or take a little.
	asc, desc := float64(m.Ascent)/64, float64(m.Descent)/64
	base := (float64(sh)+asc-desc)/2 + float64(sh)*0.06*(2*r.Float64()-1)
	d := font.Drawer{Dst: mask, Src: image.White, Face: face, Dot: fixed.P(margin, int(math.Round(base)))}
	d.DrawString(text)

	paper := 150 + 100*r.Float64()
	ink := 5 + (paper-60)*r.Float64()
	noise := 1 + 9*r.Float64()
	light := 0.12 * (2*r.Float64() - 1) // brightness slope across the crop
	src := make([]float32, sw*sh)
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			a := float64(mask.Pix[y*mask.Stride+x]) / 255
			lit := 1 + light*(float64(x)/float64(sw)-0.5)
			v := ((1-a)*paper+a*ink)*lit + r.NormFloat64()*noise
			src[y*sw+x] = float32(min(255, max(0, v)))
		}
	}
	cw := max(1, int(math.Round(float64(sw)*scale)))
	return resizeBilinear(src, sh, sw, h, cw), cw, text
}

// lineWords are what receipts, forms and printed pages say; phrase mixes
// them with figures drawn fresh for each line.
var lineWords = strings.Fields(`the of and to in is for on with as by at from this that be are
was it an or not have has new all one two page total price date name order number
item amount cash card paid tax invoice store open hours road street city phone
email www com net report chapter section table figure value result data model
account balance due customer service receipt discount qty unit subtotal change
monday friday january march june october north south west east park avenue
office hotel station please thank you see note free sale room floor level
No. Tel: Fax: ID: Ref. Inc. Ltd. & # % $ - + /`)

func phrase(r *rand.Rand, n int) string {
	ws := make([]string, n)
	for i := range ws {
		switch k := r.IntN(10); {
		case k == 0:
			ws[i] = figure(r)
		default:
			w := lineWords[r.IntN(len(lineWords))]
			switch c := r.IntN(12); {
			case c == 0:
				w = strings.ToUpper(w)
			case c < 4 || i == 0 && c < 6:
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			ws[i] = w
		}
		// Punctuation sticks to words, as it is printed.
		last := ws[i][len(ws[i])-1]
		if !('a' <= last && last <= 'z' || 'A' <= last && last <= 'Z' || '0' <= last && last <= '9') {
			continue
		}
		switch p := r.IntN(20); {
		case p < 3 && i < n-1:
			ws[i] += ","
		case p == 3:
			ws[i] += "."
		case p == 4 && i < n-1:
			ws[i] += ":"
		case p == 5:
			ws[i] = "(" + ws[i] + ")"
		}
	}
	return strings.Join(ws, " ")
}

// figure is a number as documents print them: a price, a date, a time, a
// count, a phone number or a code.
func figure(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))
	case 1:
		return fmt.Sprintf("%02d/%02d/%d", 1+r.IntN(28), 1+r.IntN(12), 2015+r.IntN(12))
	case 2:
		return fmt.Sprintf("%02d:%02d", r.IntN(24), r.IntN(60))
	case 3:
		return fmt.Sprint(r.IntN(10000))
	case 4:
		return fmt.Sprintf("%03d-%04d", r.IntN(1000), r.IntN(10000))
	default:
		return fmt.Sprintf("%c%c%d", 'A'+r.IntN(26), 'A'+r.IntN(26), 10+r.IntN(990))
	}
}

// resizeBilinear resamples an sh x sw image to dh x dw with pixel centres
// aligned, as OpenCV's INTER_LINEAR does (PaddleOCR resizes with it).
func resizeBilinear(src []float32, sh, sw, dh, dw int) []float32 {
	dst := make([]float32, dh*dw)
	fy, fx := float64(sh)/float64(dh), float64(sw)/float64(dw)
	for y := 0; y < dh; y++ {
		sy := min(max((float64(y)+0.5)*fy-0.5, 0), float64(sh-1))
		y0 := int(sy)
		y1 := min(y0+1, sh-1)
		ay := float32(sy - float64(y0))
		for x := 0; x < dw; x++ {
			sx := min(max((float64(x)+0.5)*fx-0.5, 0), float64(sw-1))
			x0 := int(sx)
			x1 := min(x0+1, sw-1)
			ax := float32(sx - float64(x0))
			top := src[y0*sw+x0]*(1-ax) + src[y0*sw+x1]*ax
			bot := src[y1*sw+x0]*(1-ax) + src[y1*sw+x1]*ax
			dst[y*dw+x] = top*(1-ay) + bot*ay
		}
	}
	return dst
}

// padRight places an h x cw crop at the left of an h x w image of PadGray.
func padRight(crop []float32, h, cw, w int) []float32 {
	if cw == w {
		return crop
	}
	out := make([]float32, h*w)
	for i := range out {
		out[i] = PadGray
	}
	for y := 0; y < h; y++ {
		copy(out[y*w:y*w+min(cw, w)], crop[y*cw:y*cw+min(cw, w)])
	}
	return out
}
