// Command ocr-samples writes rendered text images (internal/testdata's
// seeded pages and lines) as .npy inputs for the PaddleOCR models, so that
// calibration and evaluation sets can be made with disjoint seeds:
//
//	go run ./examples/ocr-samples -kind rec -n 32 -seed 100 -o calib/
//	go run ./examples/ocr-samples -kind det -n 8 -seed 1000 -o eval/
//
// With -labelled, rec and cls samples are labelled lines instead
// (internal/testdata's TextLine and ClsLine), and labels.txt beside them
// lists each file and its label (PaddleOCR's format: name, tab, label; the
// text for rec, 0 or 180 for cls), which examples/ocr-accuracy -data reads:
//
//	go run ./examples/ocr-samples -kind rec -labelled -n 32 -seed 100 -o calib/
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	kind := flag.String("kind", "rec", "det (a page, ImageNet-normalized), rec or cls (one line, mapped to [-1, 1])")
	h := flag.Int("h", 0, "height (default: det 320, rec 48, cls 48)")
	w := flag.Int("w", 0, "width (default: det 320, rec 320, cls 192)")
	seed := flag.Uint64("seed", 100, "seed of the first image; image i has seed+i")
	n := flag.Int("n", 16, "number of images")
	out := flag.String("o", "", "output folder (created if missing)")
	labelled := flag.Bool("labelled", false, "rec and cls: labelled lines (TextLine, ClsLine) and their labels in labels.txt")
	flag.Parse()
	size, ok := map[string][2]int{"det": {320, 320}, "rec": {48, 320}, "cls": {48, 192}}[*kind]
	if !ok || *out == "" || *n < 1 || *h < 0 || *w < 0 {
		fmt.Fprintln(os.Stderr, "usage: ocr-samples -kind det|rec|cls [-labelled] -n N -seed S -o DIR [-h H -w W]")
		os.Exit(2)
	}
	if *labelled && *kind == "det" {
		fmt.Fprintln(os.Stderr, "ocr-samples: -labelled is for rec and cls lines; det pages have no labels")
		os.Exit(2)
	}
	if *h == 0 {
		*h = size[0]
	}
	if *w == 0 {
		*w = size[1]
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ocr-samples:", err)
		os.Exit(1)
	}
	var labels strings.Builder
	for i := 0; i < *n; i++ {
		s := *seed + uint64(i)
		name := fmt.Sprintf("%s-%06d.npy", *kind, s)
		x := testdata.OCRInput(*kind, *h, *w, s)
		if *labelled {
			var label string
			x, label = Labelled(*kind, *h, *w, s)
			fmt.Fprintf(&labels, "%s\t%s\n", name, label)
		}
		if err := npy.WriteFile(filepath.Join(*out, name), x); err != nil {
			fmt.Fprintln(os.Stderr, "ocr-samples:", err)
			os.Exit(1)
		}
	}
	if *labelled {
		if err := atomicfile.WriteBytes(filepath.Join(*out, "labels.txt"), []byte(labels.String())); err != nil {
			fmt.Fprintln(os.Stderr, "ocr-samples:", err)
			os.Exit(1)
		}
	}
}

// Labelled is the rec or cls line of a seed, mapped to [-1, 1], and its label.
func Labelled(kind string, h, w int, seed uint64) (*graph.Tensor, string) {
	img, label := testdata.TextLine(h, w, seed)
	if kind == "cls" {
		img, label = testdata.ClsLine(h, w, seed)
	}
	return testdata.HalfNormalized(img, h, w), label
}
