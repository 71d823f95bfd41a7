//go:build unix

package converter

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/rss"
	"github.com/onnxq/onnxq/testmodels"
)

// BenchmarkStreamingLlama converts a Llama-shaped model with TinyLlama's
// widths and random weights (external data) to int4 blocks of 32, weight-only,
// in both weight formats, and reports MB of float weights per second (wall and
// per CPU second) and the conversion's peak RSS. ONNXQ_STREAM_MB sets the
// model size (default 768, one layer at these widths; `make bench-stream` runs 3072); the model is written to
// the temp folder and deleted after.
//
//	ONNXQ_STREAM_MB=3072 go test ./converter -run '^$' -bench StreamingLlama -benchtime 1x
func BenchmarkStreamingLlama(b *testing.B) {
	mb := int64(768)
	if s := os.Getenv("ONNXQ_STREAM_MB"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			b.Fatalf("ONNXQ_STREAM_MB=%q is not a size in MB", s)
		}
		mb = v
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "llama.onnx")
	c := testmodels.LlamaForSize(testmodels.TinyLlamaWidths, mb<<20)
	if err := testmodels.WriteLlama(src, c); err != nil {
		b.Fatal(err)
	}
	weights := float64(c.WeightBytes()) / 1e6
	for _, format := range []string{FormatONNX, FormatMatMulNBits} {
		b.Run(format, func(b *testing.B) {
			var wall, cpu time.Duration
			var peak int64
			for i := 0; i < b.N; i++ {
				debug.FreeOSMemory()
				rss.ResetPeak()
				cpu0 := cpuTime()
				start := time.Now()
				rep, err := Convert(context.Background(), Options{Model: src, Output: filepath.Join(dir, "q.onnx"), WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, WeightFormat: format, NoMeasure: true})
				if err != nil {
					b.Fatal(err)
				}
				wall += time.Since(start)
				cpu += cpuTime() - cpu0
				peak = max(peak, rep.PeakRSSBytes)
			}
			n := float64(b.N)
			b.ReportMetric(weights*n/wall.Seconds(), "MB/s")
			b.ReportMetric(weights*n/cpu.Seconds(), "MB/cpu-s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
			b.ReportMetric(weights, "model-MB")
		})
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
