package kernels

import (
	"math"
	"testing"

	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// Splitting work over threads changes which goroutine computes an output,
// never how: every zoo model (and testmodels' Families) gives the same bits on one thread and with
// every kernel forced onto its parallel path (3 threads, so bands, tiles and
// chunks do not divide evenly), with items claimed as threads come free and
// handed out statically (the pool's accounting mode).
func TestParallelPathsMatchOneThread(t *testing.T) {
	for _, name := range append(testmodels.Zoo(), testmodels.Families()...) {
		t.Run(name, func(t *testing.T) { parallelMatchesOne(t, name, false) })
		t.Run(name+"/accounting", func(t *testing.T) { parallelMatchesOne(t, name, true) })
	}
}

func parallelMatchesOne(t *testing.T, name string, account bool) {
	m, err := testmodels.Build(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	in, err := testmodels.Samples(name, m, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	one, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, err := one.Run(in[0])
	if err != nil {
		t.Fatal(err)
	}
	parallel.ForceSplit(3)
	defer parallel.ForceSplit(0)
	if account {
		if err := parallel.Account(true); err != nil {
			t.Skip(err)
		}
		defer parallel.Account(false)
	}
	many, err := NewSession(m, Options{Threads: 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := many.Run(in[0])
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		g := got[k]
		if g == nil || g.Len() != w.Len() {
			t.Fatalf("output %s: missing or resized with threads", k)
		}
		gv, wv := g.Float32s(), w.Float32s()
		for i := range wv {
			if math.Float32bits(gv[i]) != math.Float32bits(wv[i]) {
				t.Fatalf("output %s[%d]: %g with 3 threads, %g with 1", k, i, gv[i], wv[i])
			}
		}
	}
}

// splitForced tells the tests that count a run's buffers or allocations
// that ONNXQ_FORCE_SPLIT (or ForceSplit) splits every loop: its chunks then
// run on goroutines even at one thread, take scratch from the pool in an
// order that changes from run to run (a rare order needs one more buffer),
// and allocate for the hand-offs, so only the default split's counts are
// checked.
func splitForced() bool { return parallel.ForcedSplit() != 0 }
