package kernels

import (
	"math"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
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

// TestRunGarbageZoo bounds what every zoo model allocates per run at one
// thread (outputs recycled, as calibration runs), and checks the outputs'
// bits after eight runs against a session that reuses no tensor struct: a run's garbage is fresh
// heap until the collector's goal is reached, and on the 2-vCPU VM each
// fresh page cost 13-15 us to fault in, so ViT's first ~200 runs took
// 10-25% longer at 48 KB a run (6-12 faults) than after. What is left per
// step is a view's tensor, a parallel loop's closure and the result
// slice; a kernel that lays out shapes, index maps or copies of constants
// on every run shows up here (Resize's taps: 21 allocations a step,
// LayerNorm's scale and bias copies, Pad's maps at 53 KB a call: mended in
// session 47, the zoo's total 11892 -> 8093 allocations a run; then 5834
// with dead tensors' structs reused, bufferPool.putShell; 4585 with the
// hottest loops run without a closure at one thread, Gather's and Slice's
// index lists off the heap; 4357 with a broadcast walk's state in one
// allocation).
func TestRunGarbageZoo(t *testing.T) {
	if splitForced() {
		t.Skip("the forced split's goroutines allocate; the bounds are the default's")
	}
	const (
		perStep = 11   // recurrent models (gru, lstm) allocate per time step: 10.4 and 9.6
		total   = 5300 // 4585 when written
	)
	sum := 0.0
	for _, name := range testmodels.Names() {
		// The reference for the reused tensors' bits: a session that
		// makes every tensor afresh (no shells, see bufferPool.putShell).
		noShells = true
		ref, in := zooSessionWith(t, name, Options{Threads: 1})
		want, err := ref.Run(in)
		noShells = false
		if err != nil {
			t.Fatal(err)
		}
		s, _ := zooSessionWith(t, name, Options{Threads: 1})
		var out map[string]*graph.Tensor
		for range 2 { // first runs lay out what later runs reuse
			s.Recycle(out)
			out, _ = s.Run(in)
		}
		allocs := testing.AllocsPerRun(5, func() {
			s.Recycle(out)
			out, _ = s.Run(in)
		})
		for o, w := range want {
			if g := out[o]; g == nil || !slices.Equal(g.Shape, w.Shape) || !sameBits(g.Float32s(), w.Float32s()) {
				t.Fatalf("%s: output %q after 8 runs differs from a session that makes every tensor afresh", name, o)
			}
		}
		sum += allocs
		t.Logf("%-18s %5.0f allocations a run, %3d steps", name, allocs, len(s.steps))
		if allocs > perStep*float64(len(s.steps)) {
			t.Errorf("%s: %.0f allocations a run over %d steps, want at most %d a step", name, allocs, len(s.steps), perStep)
		}
	}
	t.Logf("zoo total %.0f allocations a run", sum)
	if sum > total {
		t.Errorf("the zoo allocates %.0f times a run in all, want at most %d", sum, total)
	}
}

// TestRunGarbageWide bounds what the squeeze-excitation models allocate per
// run at 2 threads with every step split: their broadcast Muls walk the
// tensor in chunks (parallelIter), which made seven allocations a chunk
// until one buffer held every seat's walk (allocations a run at 2 threads:
// EfficientNet 1219 -> 403, MobileNetV3 478 -> 172; 370 and 158 with
// parallel.For's closure gone).
func TestRunGarbageWide(t *testing.T) {
	if splitForced() {
		t.Skip("the forced split's goroutines allocate; the bounds are the default's")
	}
	noStepThreads, noLanes = true, true
	defer func() { noStepThreads, noLanes = false, false }()
	for _, tc := range []struct {
		name string
		max  float64
	}{{"efficientnet", 480}, {"mobilenetv3", 220}} {
		s, in := zooSessionWith(t, tc.name, Options{Threads: 2})
		var out map[string]*graph.Tensor
		for range 3 {
			s.Recycle(out)
			out, _ = s.Run(in)
		}
		allocs := testing.AllocsPerRun(5, func() {
			s.Recycle(out)
			out, _ = s.Run(in)
		})
		t.Logf("%s: %.0f allocations a run at 2 threads, every step split", tc.name, allocs)
		if allocs > tc.max {
			t.Errorf("%s: %.0f allocations a run at 2 threads, want at most %.0f", tc.name, allocs, tc.max)
		}
	}
}
