package kernels

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// lanesAlone keeps every step on the session's threads for the rest of
// the test: the steps' thread trials (stepthreads.go) come before the
// lanes' and would hold them back.
func lanesAlone(t *testing.T) {
	noStepThreads = true
	t.Cleanup(func() { noStepThreads = false })
}

// regionShape describes a session's lane regions as "chains:steps,..."
// per region, e.g. "4:8" for four chains over eight steps.
func regionShape(s *Session) string {
	var parts []string
	for _, r := range s.regionAt {
		if r != nil {
			parts = append(parts, fmt.Sprintf("%d:%d", len(r.comps), r.end-r.first))
		}
	}
	return strings.Join(parts, " ")
}

// TestLanesPlanInception: Inception's blocks are found as regions of their
// branches (two Inception-A blocks of four chains over eight steps, the
// reduction's two chains beside its max pool, Inception-C's four,
// Inception-E's four with their inner Concats), and a chain's steps stay
// in step order and read nothing of another chain.
func TestLanesPlanInception(t *testing.T) {
	if parallel.Workers() < 2 {
		t.Skip("one CPU: no lanes")
	}
	m, _ := zooModel(t, "inception")
	s, err := NewSession(m, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := regionShape(s)
	if want := "4:8 4:8 3:5 4:11 4:12"; got != want {
		t.Errorf("regions %q, want %q", got, want)
	}
	for _, r := range s.regionAt {
		if r == nil {
			continue
		}
		chainOf := map[int]int{} // slot -> chain
		for c, steps := range r.comps {
			if !slices.IsSorted(steps) {
				t.Errorf("region at %d: chain %d out of order: %v", r.first, c, steps)
			}
			for _, i := range steps {
				for _, j := range s.steps[i].out {
					chainOf[j] = c
				}
			}
		}
		for c, steps := range r.comps {
			for _, i := range steps {
				for _, j := range s.steps[i].in {
					if o, ok := chainOf[j]; ok && o != c {
						t.Errorf("region at %d: step %d (chain %d) reads chain %d", r.first, i, c, o)
					}
				}
			}
		}
	}
	one, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if one.regionAt != nil {
		t.Errorf("a 1-thread session has regions: %s", regionShape(one))
	}
}

// TestLanesSameBits runs every zoo model and family at 2 threads with every
// region in lanes and with none: the outputs must have the same bits.
func TestLanesSameBits(t *testing.T) {
	if parallel.Workers() < 2 {
		t.Skip("one CPU: no lanes")
	}
	lanesAlone(t)
	defer func() { noLanes, forceLanes = false, false }()
	names := append(testmodels.Zoo(), testmodels.Families()...)
	withRegions := 0
	for _, name := range names {
		m, in := zooModel(t, name)
		// run returns the outputs of the last of 4 runs (the Concat
		// placements take effect from the second), and the session.
		run := func(lanes bool) (map[string][]float32, *Session) {
			noLanes, forceLanes = !lanes, lanes
			s, err := NewSession(m, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			var out map[string][]float32
			for r := 0; r < 4; r++ {
				res, err := s.Run(in)
				if err != nil {
					t.Fatalf("%s (lanes %v): %v", name, lanes, err)
				}
				out = map[string][]float32{}
				for k, v := range res {
					out[k] = slices.Clone(v.Float32s())
				}
				s.Recycle(res)
			}
			return out, s
		}
		want, _ := run(false)
		got, s := run(true)
		if s.regionAt != nil {
			withRegions++
		}
		for k, w := range want {
			g := got[k]
			if len(g) != len(w) {
				t.Fatalf("%s %s: %d values, want %d", name, k, len(g), len(w))
			}
			for i := range w {
				if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
					t.Fatalf("%s %s[%d]: %v in lanes, %v without (regions %s)", name, k, i, g[i], w[i], regionShape(s))
				}
			}
		}
	}
	if withRegions < 4 {
		t.Errorf("only %d of %d models have lane regions", withRegions, len(names))
	}
}

// TestLanesDecide: a session runs step by step once, in lanes once, then
// laneTrials runs each way, and keeps one; the outputs are the same all
// along.
func TestLanesDecide(t *testing.T) {
	if parallel.Workers() < 2 {
		t.Skip("one CPU: no lanes")
	}
	lanesAlone(t)
	m, in := zooModel(t, "inception")
	s, err := NewSession(m, Options{Threads: 2, Profile: true})
	if err != nil {
		t.Fatal(err)
	}
	var first []float32
	if n := s.Settling(); n != 2+2*laneTrials {
		t.Errorf("Settling %d before the first run, want %d", n, 2+2*laneTrials)
	}
	for r := 0; r < 2+2*laneTrials; r++ {
		// One run fewer each run, or none left once decided early.
		if n := s.Settling(); n != 2+2*laneTrials-r && (n != 0 || !s.lanes.decided) {
			t.Errorf("Settling %d before run %d, want %d", n, r, 2+2*laneTrials-r)
		}
		res, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		got := res["logits"].Float32s()
		if first == nil {
			first = slices.Clone(got)
		} else if !slices.Equal(got, first) {
			t.Fatalf("run %d: outputs differ from the first run's", r)
		}
		s.Recycle(res)
	}
	if !s.lanes.decided || s.Settling() != 0 {
		t.Errorf("undecided after %d runs (Settling %d)", 2+2*laneTrials, s.Settling())
	}
	// The trial runs in lanes show in the profile: their steps carry the
	// seat that ran them.
	seats := map[int]bool{}
	for _, e := range s.Profile().Events {
		seats[e.Lane] = true
	}
	if !seats[1] {
		t.Errorf("no profiled step ran in a lane: %v", seats)
	}
	t.Logf("inception: lanes kept: %v", s.lanes.on)
}

// TestLaneChoiceEarly: the choice made from run times (made up here, so
// the test does not depend on the machine): a first run whose regions
// could save too little decides at once; runs that split cleanly decide
// after laneEarly each way; mixed runs wait for laneTrials and their
// medians.
func TestLaneChoiceEarly(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	// play feeds the runs the choice asks for, seq or ln by run, and
	// returns how many runs it took to decide.
	play := func(saving time.Duration, seq, ln func(k int) time.Duration) (*laneChoice, int) {
		var c laneChoice
		ks, kl := 0, 0
		for n := 1; n <= 100; n++ {
			if c.useLanes() {
				c.record(true, ln(kl), 0)
				kl++
			} else {
				c.record(false, seq(ks), saving)
				ks++
			}
			if c.decided {
				return &c, n
			}
		}
		return &c, -1
	}
	flat := func(v float64) func(int) time.Duration { return func(int) time.Duration { return ms(v) } }
	// The chains could take at most 3% off a run: not worth a trial.
	if c, n := play(ms(3), flat(100), flat(50)); n != 1 || c.on {
		t.Errorf("small saving: decided after %d runs, lanes %v; want 1, false", n, c.on)
	}
	// Lanes 20% faster in every run, or 20% slower: decided after the
	// costing run, the warm-up in lanes and laneEarly runs each way.
	want := 2 + 2*laneEarly
	if c, n := play(ms(40), flat(100), flat(80)); n != want || !c.on {
		t.Errorf("lanes faster: decided after %d runs, lanes %v; want %d, true", n, c.on, want)
	}
	if c, n := play(ms(40), flat(100), flat(120)); n != want || c.on {
		t.Errorf("lanes slower: decided after %d runs, lanes %v; want %d, false", n, c.on, want)
	}
	// Runs that overlap (lanes 10% faster at the median, one slow run
	// each way): the medians decide after laneTrials each way.
	jitter := func(v float64) func(int) time.Duration {
		return func(k int) time.Duration {
			if k == 1 {
				return ms(v * 1.5)
			}
			return ms(v + float64(k%3))
		}
	}
	want = 2 + 2*laneTrials
	if c, n := play(ms(40), jitter(100), jitter(90)); n != want || !c.on {
		t.Errorf("overlapping runs: decided after %d runs, lanes %v; want %d, true", n, c.on, want)
	}
	if c, n := play(ms(40), jitter(100), jitter(97)); n != want || c.on {
		t.Errorf("lanes 3%% faster: decided after %d runs, lanes %v; want %d, false", n, c.on, want)
	}
}

// TestLanesError: a step that fails in a lane fails the run with its
// node's error, as step by step, and the session runs again.
func TestLanesError(t *testing.T) {
	if parallel.Workers() < 2 {
		t.Skip("one CPU: no lanes")
	}
	lanesAlone(t)
	defer func() { forceLanes = false }()
	forceLanes = true
	md := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := md.Graph
	x := g.AddInput("x", graph.Float, nil)
	shape := g.AddInput("shape", graph.Int64, nil)
	a := g.AddNode("Relu", "relu", []*graph.Value{x}, []string{"a"}).Output()
	a = g.AddNode("Sigmoid", "sig", []*graph.Value{a}, []string{"a2"}).Output()
	b := g.AddNode("Reshape", "reshape", []*graph.Value{x, shape}, []string{"b"}).Output()
	b = g.AddNode("Neg", "neg", []*graph.Value{b}, []string{"b2"}).Output()
	y := g.AddNode("Concat", "cat", []*graph.Value{a, b}, []string{"y"})
	y.SetAttr(graph.AttrIntOf("axis", 0))
	g.AddOutput(y.Output())
	s, err := NewSession(md, Options{Threads: 2, NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	if regionShape(s) == "" {
		t.Fatal("no region found")
	}
	xs := graph.Float32Tensor([]int{2, 3}, []float32{1, -2, 3, -4, 5, -6})
	bad := graph.Int64Tensor([]int{1}, []int64{7})
	if _, err := s.Run(map[string]*graph.Tensor{"x": xs, "shape": bad}); err == nil || !strings.Contains(err.Error(), "reshape") {
		t.Fatalf("bad shape: err %v, want the Reshape node's error", err)
	}
	good := graph.Int64Tensor([]int{2}, []int64{2, 3})
	res, err := s.Run(map[string]*graph.Tensor{"x": xs, "shape": good})
	if err != nil {
		t.Fatal(err)
	}
	if got := res["y"].Shape; !slices.Equal(got, []int{4, 3}) {
		t.Errorf("shape %v, want [4 3]", got)
	}
}

// TestLanesPoolFlat: lanes take and give back buffers in an order that
// changes from run to run; the buffer pool must still stop making buffers
// after the first runs (taking the most recently freed buffer of larger classes,
// YOLO-SiLU's pool had grown from 17.5 to 20.5 MB over its first 8 runs).
func TestLanesPoolFlat(t *testing.T) {
	if parallel.Workers() < 2 || splitForced() {
		t.Skip("needs 2 CPUs, and loops not forced to split (their seats' scratch varies the pool too)")
	}
	lanesAlone(t)
	defer func() { forceLanes = false }()
	forceLanes = true
	for _, name := range []string{"inception", "yolo-silu", "yolov8"} {
		m, in := zooModel(t, name)
		s, err := NewSession(m, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		// A rare order of the lanes' gets needs one more buffer now and
		// then (yolov8: one of 320 KiB at run 93; inception in CI: four
		// small ones, 2.14 -> 2.23 MB, between runs 12 and 24). That is
		// bounded: get makes a buffer of class c only when every buffer of
		// c is out, held by a request of c or of the poolReach classes
		// below, so c never holds more buffers than the most such requests
		// live at once in any order. A buffer held per run is not bounded
		// and makes 12 buffers in these 12 runs, so the pool may make a
		// couple of buffers after run 12, or up to 6 if it grows by at
		// most 10% (the brief's memory bound).
		var at12, made12 int
		for r := 1; r <= 24; r++ {
			res, err := s.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			s.Recycle(res)
			_, b := s.ctx.pool.idle()
			switch r {
			case 12:
				at12, made12 = b, s.ctx.pool.made
			case 24:
				n := s.ctx.pool.made - made12
				t.Logf("%s: pool %d bytes after 12 runs, %d after 24 (%d buffers made between)", name, at12, b, n)
				if n > 2 && (n > 6 || float64(b) > 1.10*float64(at12)) {
					t.Errorf("%s: the pool made %d buffers between runs 12 and 24 (%d -> %d bytes; allowed: 2, or 6 within 10%%)", name, n, at12, b)
				}
			}
		}
	}
}
