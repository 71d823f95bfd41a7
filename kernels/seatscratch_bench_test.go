package kernels

import (
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// BenchmarkSeatScratchGap times SqueezeNet's stem (3 -> 64, 3x3 stride 2 on
// 224x224, BatchNormalization and Relu) with its fused 3x3 stride-2
// MaxPool, split in two bands on two threads, with the threads' scratch
// regions (313 KB each) side by side ("gap0") and seatGap apart ("gap"),
// alternating 20 runs of each; it reports each one's median ms. On the
// 2-vCPU VM with its CPUs apart (2026-12-05) the upper region's thread
// took 330-350 us a band side by side against 190-210 for the lower one's,
// and 193-212 with the regions 1 MiB apart; later the same day, the CPUs
// near (round trip 117 ns), the step took 0.24-0.37 ms side by side and
// 0.20-0.22 apart (-benchtime 20x, three counts).
func BenchmarkSeatScratchGap(b *testing.B) {
	if parallel.Workers() < 2 {
		b.Skip("one CPU")
	}
	bd := testmodels.NewBuilder(3, 17)
	x := bd.Input("input", 1, 3, 224, 224)
	x = bd.Relu(bd.ConvBN(x, 64, 3, testmodels.ConvOpts{Stride: 2}, testmodels.BNStyle{}, true))
	bd.Output(bd.MaxPoolWith(x, 3, testmodels.PoolOpts{Stride: 2, Ceil: true}))
	m := bd.Finish()
	in := graph.NewTensor(graph.Float, []int{1, 3, 224, 224})
	for i := range in.Float32s() {
		in.Float32s()[i] = float32(i%97) / 97
	}
	feed := map[string]*graph.Tensor{"input": in}
	noStepThreads = true
	parallel.ForceSplit(2)
	defer func() { noStepThreads, seatGap = false, 1<<18; parallel.ForceSplit(0) }()
	s, err := NewSession(m, Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	gaps := []int{0, 1 << 18}
	var times [2][]float64
	for b.Loop() {
		for i, g := range gaps {
			seatGap = g
			for r := 0; r < 20; r++ {
				t0 := time.Now()
				out, err := s.Run(feed)
				if err != nil {
					b.Fatal(err)
				}
				times[i] = append(times[i], float64(time.Since(t0).Microseconds())/1000)
				s.Recycle(out)
			}
		}
	}
	b.ReportMetric(medianOf(times[0]), "gap0-ms")
	b.ReportMetric(medianOf(times[1]), "gap-ms")
}
