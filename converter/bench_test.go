package converter

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

// recCalib writes 100 rendered text lines for the PaddleOCR rec model.
func recCalib(b *testing.B) (model, dir, cal string) {
	model = testdata.OCRModel(b, "rec")
	dir = b.TempDir()
	cal = filepath.Join(dir, "calib")
	mustMkdir(b, cal)
	for i := 0; i < 100; i++ {
		x := testdata.OCRInput("rec", 48, 320, uint64(i))
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%03d.npy", i)), x); err != nil {
			b.Fatal(err)
		}
	}
	return model, dir, cal
}

// BenchmarkCalibrationRec converts the PaddleOCR rec model on 100 rendered lines
// with each observer.
func BenchmarkCalibrationRec(b *testing.B) {
	model, dir, cal := recCalib(b)
	for _, kind := range []string{"minmax", "entropy", "percentile", "mse"} {
		b.Run(kind, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, kind+".onnx"), Calib: cal, Observer: calib.Config{Kind: kind}, NoMeasure: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEntropyVsMinmax converts the PaddleOCR rec model on 100 rendered
// lines with minmax and with entropy, alternating, five times each, on all
// cores and on one thread, and reports the medians and their ratio (the
// machine is shared: alternating keeps slow spells from landing on one
// observer only). `make bench` runs it.
func BenchmarkEntropyVsMinmax(b *testing.B) {
	model, dir, cal := recCalib(b)
	for _, threads := range []int{0, 1} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				times := map[string][]float64{}
				for r := 0; r < 5; r++ {
					for _, kind := range []string{"minmax", "entropy"} {
						start := time.Now()
						if _, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, kind+".onnx"), Calib: cal, Observer: calib.Config{Kind: kind}, Threads: threads, NoMeasure: true}); err != nil {
							b.Fatal(err)
						}
						times[kind] = append(times[kind], time.Since(start).Seconds())
					}
				}
				mm, en := median(times["minmax"]), median(times["entropy"])
				b.ReportMetric(mm, "minmax-s")
				b.ReportMetric(en, "entropy-s")
				b.ReportMetric(en/mm, "ratio")
			}
		})
	}
}

func median(x []float64) float64 {
	x = slices.Clone(x)
	slices.Sort(x)
	return x[len(x)/2]
}
