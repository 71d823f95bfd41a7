package converter

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// peakHeap converts the test model on n samples and returns the largest live heap
// seen after a collection every 5 calibration steps, above the live heap just
// before the conversion (so what earlier tests left behind does not count).
func peakHeap(t *testing.T, n int, obs calib.Config) uint64 {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	if err := graph.Save(testmodels.ConvBNReLU(1), model); err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(dir, "calib")
	mustMkdir(t, cal)
	randomSamples(t, cal, n, []int{1, 3, 32, 32}, 7)
	var peak uint64
	var ms runtime.MemStats
	settle := func() { // twice: sync.Pool's victim cache survives one collection
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
	}
	settle()
	base := ms.HeapAlloc
	_, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, "q.onnx"), Calib: cal, Observer: obs, Threads: 1, NoMeasure: true,
		Progress: func(done, _ int) {
			if done%5 == 0 {
				settle()
				peak = max(peak, ms.HeapAlloc)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if peak < base {
		return 0
	}
	return peak - base
}

// TestMemoryIndependentOfSamples: calibration streams samples and observers keep
// fixed-size state, so 500 samples need no more memory than 50.
func TestMemoryIndependentOfSamples(t *testing.T) {
	for _, kind := range []string{"minmax", "entropy"} {
		small := peakHeap(t, 50, calib.Config{Kind: kind})
		large := peakHeap(t, 500, calib.Config{Kind: kind})
		t.Logf("%s: peak live heap during conversion %.2f MiB with 50 samples, %.2f MiB with 500", kind, float64(small)/(1<<20), float64(large)/(1<<20))
		// 10% plus 256 KiB: the live heap here is under 1 MiB, so buffers of
		// other tests' pools settling can move it by 10% alone; keeping the
		// 450 extra samples (12 KiB each) would add 5 MiB, and even 600 bytes
		// retained per sample would cross the slack.
		if float64(large) > 1.1*float64(small)+256<<10 {
			t.Errorf("%s: heap grew from %d to %d bytes", kind, small, large)
		}
	}
}
