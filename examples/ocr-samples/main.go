// Command ocr-samples writes rendered text images (internal/testdata's
// seeded pages and lines) as .npy inputs for the PaddleOCR models, so that
// calibration and evaluation sets can be made with disjoint seeds:
//
//	go run ./examples/ocr-samples -kind rec -n 32 -seed 100 -o calib/
//	go run ./examples/ocr-samples -kind det -n 8 -seed 1000 -o eval/
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

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
	flag.Parse()
	size, ok := map[string][2]int{"det": {320, 320}, "rec": {48, 320}, "cls": {48, 192}}[*kind]
	if !ok || *out == "" || *n < 1 || *h < 0 || *w < 0 {
		fmt.Fprintln(os.Stderr, "usage: ocr-samples -kind det|rec|cls -n N -seed S -o DIR [-h H -w W]")
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
	for i := 0; i < *n; i++ {
		s := *seed + uint64(i)
		p := filepath.Join(*out, fmt.Sprintf("%s-%06d.npy", *kind, s))
		if err := npy.WriteFile(p, testdata.OCRInput(*kind, *h, *w, s)); err != nil {
			fmt.Fprintln(os.Stderr, "ocr-samples:", err)
			os.Exit(1)
		}
	}
}
