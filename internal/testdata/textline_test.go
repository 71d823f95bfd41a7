package testdata

import (
	"slices"
	"strings"
	"testing"
)

func TestTextLineDeterministic(t *testing.T) {
	a, la := TextLine(48, 320, 5000)
	b, lb := TextLine(48, 320, 5000)
	if la != lb || !slices.Equal(a, b) {
		t.Fatal("the same seed rendered two different lines")
	}
	c, lc := TextLine(48, 320, 5001)
	if la == lc && slices.Equal(a, c) {
		t.Error("seeds 5000 and 5001 rendered the same line")
	}
	if len(a) != 48*320 {
		t.Errorf("%d pixels, want 48 x 320", len(a))
	}
}

// Lines are 1-4 printable ASCII words, drawn (ink darker than the paper)
// from the left, and padded on the right with PadGray.
func TestTextLineContent(t *testing.T) {
	const h, w = 48, 320
	padded, labels := 0, map[string]bool{}
	for s := uint64(0); s < 100; s++ {
		img, label := TextLine(h, w, s)
		labels[label] = true
		if n := len(strings.Fields(label)); n < 1 || n > 4 {
			t.Errorf("seed %d: %d words in %q", s, n, label)
		}
		for _, r := range label {
			if r < ' ' || r > '~' {
				t.Errorf("seed %d: %q has %q", s, label, r)
			}
		}
		lo, hi := float32(255), float32(0)
		for _, v := range img[:h*w/2] {
			lo, hi = min(lo, v), max(hi, v)
			if v < 0 || v > 255.001 { // bilinear weights may round a hair over
				t.Fatalf("seed %d: pixel %v outside 0..255", s, v)
			}
		}
		if hi-lo < 40 {
			t.Errorf("seed %d: ink and paper only %.0f apart", s, hi-lo)
		}
		lastPad := true
		for y := 0; y < h; y++ {
			lastPad = lastPad && img[y*w+w-1] == PadGray
		}
		if lastPad {
			padded++
		}
	}
	if len(labels) < 95 {
		t.Errorf("100 seeds gave only %d different labels", len(labels))
	}
	if padded < 50 {
		t.Errorf("only %d of 100 lines are padded on the right", padded)
	}
}

func TestClsLine(t *testing.T) {
	const h, w = 48, 192
	n := map[string]int{}
	for s := uint64(0); s < 200; s++ {
		img, label := ClsLine(h, w, s)
		n[label]++
		if len(img) != h*w {
			t.Fatalf("seed %d: %d pixels", s, len(img))
		}
	}
	if len(n) != 2 || n[ClsFlipped] < 80 || n[ClsUpright] < 80 {
		t.Errorf("labels over 200 seeds: %v, want about half each of %q and %q", n, ClsUpright, ClsFlipped)
	}
	a, la := ClsLine(h, w, 7)
	b, lb := ClsLine(h, w, 7)
	if la != lb || !slices.Equal(a, b) {
		t.Error("the same seed rendered two different cls lines")
	}
}

func TestResizeBilinear(t *testing.T) {
	// Centres aligned: halving 0 10 20 30 samples at 0.5 and 2.5.
	if got := resizeBilinear([]float32{0, 10, 20, 30}, 1, 4, 1, 2); !slices.Equal(got, []float32{5, 25}) {
		t.Errorf("1x4 -> 1x2: %v, want [5 25]", got)
	}
	// Doubling 0 8: samples at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
	if got := resizeBilinear([]float32{0, 8}, 1, 2, 1, 4); !slices.Equal(got, []float32{0, 2, 6, 8}) {
		t.Errorf("1x2 -> 1x4: %v, want [0 2 6 8]", got)
	}
	src := []float32{1, 2, 3, 4, 5, 6}
	if got := resizeBilinear(src, 2, 3, 2, 3); !slices.Equal(got, src) {
		t.Errorf("same size: %v, want %v", got, src)
	}
	if got := padRight([]float32{1, 2, 3, 4}, 2, 2, 3); !slices.Equal(got, []float32{1, 2, PadGray, 3, 4, PadGray}) {
		t.Errorf("padRight: %v", got)
	}
}

// A width no word fits gives an empty line, not a cut word or a hang.
func TestTextLineTooNarrow(t *testing.T) {
	img, label := TextLine(48, 3, 1)
	if label != "" || len(img) != 48*3 || img[0] != PadGray {
		t.Errorf("3 px wide: label %q, first pixel %v", label, img[0])
	}
}
