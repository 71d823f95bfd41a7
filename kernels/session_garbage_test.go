package kernels

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestRunGarbage: Session.Run keeps its slot values and reference counts
// from run to run but holds no tensor between runs, gives the same bits on
// every run, and allocates little per run (ResNet-20, one thread: 285
// allocations a run when written, 391 before the slots, the bound
// elementwise programs and the phase-copy plans were kept).
func TestRunGarbage(t *testing.T) {
	s, in := zooSessionWith(t, "resnet20", Options{Threads: 1})
	var first []float32
	for r := 0; r < 3; r++ {
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range s.vals {
			if v != nil {
				t.Fatalf("run %d: slot %d still holds a tensor after Run", r, i)
			}
		}
		if len(s.refs) != 0 {
			t.Fatalf("run %d: %d buffer counts left after Run", r, len(s.refs))
		}
		got := out["logits"].Float32s()
		if first == nil {
			first = append([]float32(nil), got...)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
				t.Fatalf("run %d: logits[%d] = %v, first run %v", r, i, got[i], first[i])
			}
		}
		s.Recycle(out)
	}
	if splitForced() {
		return // the chunks' goroutines allocate; the counts below are the default split's
	}
	var out map[string]*graph.Tensor
	allocs := testing.AllocsPerRun(20, func() {
		s.Recycle(out)
		out, _ = s.Run(in)
	})
	t.Logf("%.0f allocations a run", allocs)
	if allocs > 250 {
		t.Fatalf("%.0f allocations a run, want at most 250", allocs)
	}
	// At 2 threads the bands go to the pool's workers through state the
	// kernels keep (138 allocations a run when written, 275 before).
	s2, _ := zooSessionWith(t, "resnet20", Options{Threads: 2})
	out = nil
	allocs = testing.AllocsPerRun(20, func() {
		s2.Recycle(out)
		out, _ = s2.Run(in)
	})
	t.Logf("%.0f allocations a run at 2 threads", allocs)
	if allocs > 250 {
		t.Fatalf("2 threads: %.0f allocations a run, want at most 250", allocs)
	}
}
