// Command ocrsamples writes seeded synthetic inputs for the PaddleOCR models
// (text lines for rec and cls, pages for det) as .npy files, for the demo and
// for calibration and evaluation data in experiments.
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
	kind := flag.String("kind", "rec", "rec (48x320 text lines), cls (48x192 lines) or det (pages)")
	out := flag.String("o", "", "output folder (required)")
	n := flag.Int("n", 16, "how many samples")
	seed := flag.Uint64("seed", 0, "first seed; sample i uses seed+i")
	h := flag.Int("h", 0, "height (default by kind)")
	w := flag.Int("w", 0, "width (default by kind)")
	flag.Parse()
	sizes := map[string][2]int{"rec": {48, 320}, "cls": {48, 192}, "det": {320, 320}}
	size, ok := sizes[*kind]
	if !ok || *out == "" || *n <= 0 {
		fmt.Fprintln(os.Stderr, "ocrsamples: usage: ocrsamples -kind rec|cls|det -o DIR [-n N] [-seed S] [-h H -w W]")
		os.Exit(2)
	}
	if *h > 0 {
		size[0] = *h
	}
	if *w > 0 {
		size[1] = *w
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ocrsamples:", err)
		os.Exit(1)
	}
	for i := 0; i < *n; i++ {
		x := testdata.OCRInput(*kind, size[0], size[1], *seed+uint64(i))
		if err := npy.WriteFile(filepath.Join(*out, fmt.Sprintf("%s%04d.npy", *kind, i)), x); err != nil {
			fmt.Fprintln(os.Stderr, "ocrsamples:", err)
			os.Exit(1)
		}
	}
}
