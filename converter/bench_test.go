package converter

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

// BenchmarkCalibrationRec converts the PaddleOCR rec model on 100 rendered lines
// with each observer (compare entropy against minmax: `make bench`).
func BenchmarkCalibrationRec(b *testing.B) {
	model := testdata.OCRModel(b, "rec")
	dir := b.TempDir()
	cal := filepath.Join(dir, "calib")
	mustMkdir(b, cal)
	for i := 0; i < 100; i++ {
		x := testdata.OCRInput("rec", 48, 320, uint64(i))
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%03d.npy", i)), x); err != nil {
			b.Fatal(err)
		}
	}
	for _, kind := range []string{"minmax", "entropy", "percentile", "mse"} {
		b.Run(kind, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, kind+".onnx"), Calib: cal, Observer: calib.Config{Kind: kind}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
