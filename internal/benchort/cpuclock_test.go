//go:build ort

package main

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/testmodels"
)

var sink uint64

// spin does n steps of an LCG, work that only the CPU can do.
func spin(n int) func() error {
	return func() error {
		x := sink | 1
		for i := 0; i < n; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink = x
		return nil
	}
}

// The bounds below hold on a loaded machine too: waiting for a core adds
// wall time, never thread CPU time, and the CPU time of a fixed amount of work
// does not depend on how long the thread waited.
func TestMeasureCountsOnlyTheThreadsOwnWork(t *testing.T) {
	s, err := measure(func() error { time.Sleep(50 * time.Millisecond); return nil }, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.wall < 50*time.Millisecond || s.thread > 5*time.Millisecond {
		t.Errorf("50 ms sleep: wall %v, thread CPU %v; want wall >= 50 ms and (sleeping) thread CPU < 5 ms", s.wall, s.thread)
	}

	// The least CPU time of three tries at n and at 4n steps.
	const n = 2_000_000
	least := func(steps int) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			s, err := measure(spin(steps), true)
			if err != nil {
				t.Fatal(err)
			}
			if s.thread <= 0 || s.thread > s.wall {
				t.Errorf("%d steps: thread CPU %v, wall %v; want 0 < thread CPU <= wall", steps, s.thread, s.wall)
			}
			if s.process < s.thread-time.Millisecond {
				t.Errorf("%d steps: process CPU %v below this thread's %v", steps, s.process, s.thread)
			}
			best = min(best, s.thread)
		}
		return best
	}
	one, four := least(n), least(4*n)
	if r := float64(four) / float64(one); r < 2 || r > 8 {
		t.Errorf("thread CPU for 4x the work is %.2fx (%v vs %v); want 2x-8x", r, four, one)
	}
	t.Logf("%d LCG steps: %v thread CPU; %d: %v", n, one, 4*n, four)
}

func TestMeasureReturnsTheRunsError(t *testing.T) {
	want := errors.New("bad input")
	if _, err := measure(func() error { return want }, true); !errors.Is(err, want) {
		t.Errorf("measure returned %v, want %v", err, want)
	}
}

// The thread-CPU ratio is only meaningful if, at 1 thread, each engine does
// the whole forward pass on the calling thread. Process CPU time over the
// same runs tells: other threads' work (a pool's workers) would show there.
// Go's runtime adds a little of its own around long cgo calls (a few %),
// and more under make test's load: ORT read 1.16 and once 1.24 there (1.00
// alone), its Go-side garbage collected on other threads. A pass split
// over two threads reads about 2, so the bound is 1.5.
func TestOneThreadPassRunsOnTheCallingThread(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	const name = "squeezenet"
	m, err := testmodels.Build(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+".onnx")
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	in, err := testmodels.Samples(name, m, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := kernels.NewSession(g, kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := ortref.NewSession(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	for _, e := range []struct {
		engine string
		run    func() error
	}{
		// Outputs handed back as benchort's child does (child.go), so
		// the timed runs leave no garbage for a collection on other
		// threads. (Once, under make test's load and without it, this
		// read 1.24; the cause was not pinned down, and squeezenet's
		// output is small: this may not be what made the difference.)
		{"onnxq", recycling(ours, in[0])},
		{"ORT", func() error { _, err := theirs.Run(in[0]); return err }},
	} {
		runtime.GC() // as benchort does before each block
		var ss []sample
		for i := 0; i < 12; i++ {
			s, err := measure(e.run, true)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 2 { // warm-up
				ss = append(ss, s)
			}
		}
		tm := summarize(ss)
		if tm.procPerThread < 0.98 || tm.procPerThread > 1.5 {
			t.Errorf("%s at 1 thread: process / thread CPU %.3f, want 1 (within 0.98-1.5)", e.engine, tm.procPerThread)
		}
		t.Logf("%s at 1 thread: median wall %.2f ms, thread CPU %.2f ms, process / thread CPU %.3f", e.engine, tm.wall, tm.thread, tm.procPerThread)
	}
}
