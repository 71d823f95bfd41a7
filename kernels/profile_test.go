package kernels

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// TestProfileNamesEveryNodeOnce: with fusion on, every node that runs is named
// by exactly one step (fused regions and Conv epilogues after all their
// nodes), every run records every step once, and the trace has one complete
// event per step per run.
func TestProfileNamesEveryNodeOnce(t *testing.T) {
	m := testmodels.ConvBNReLU(5)
	if s, _ := NewSession(m, Options{}); s.Profile() != nil {
		t.Fatal("a session without Options.Profile has a profile")
	}
	s, err := NewSession(m, Options{Threads: 1, Profile: true})
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float, []int{1, 3, 32, 32})}
	s.Run(in) // warm-up, dropped below
	s.ResetProfile()
	const runs = 3
	for i := 0; i < runs; i++ {
		if _, err := s.Run(in); err != nil {
			t.Fatal(err)
		}
	}
	p := s.Profile()
	seen := map[string]int{}
	fused := 0
	for _, st := range p.Steps {
		names, ops := strings.Split(st.Name, "+"), strings.Split(st.OpType, "+")
		if len(names) != st.Nodes || len(ops) != st.Nodes {
			t.Errorf("step %q (%s) claims %d nodes", st.Name, st.OpType, st.Nodes)
		}
		if st.Nodes > 1 {
			fused++
		}
		for _, n := range names {
			seen[n]++
		}
	}
	if fused == 0 {
		t.Error("no fused step: ConvBNReLU's BatchNorm and ReLU should run as Conv epilogues")
	}
	for _, n := range m.Graph.Nodes {
		if seen[n.Name] != 1 {
			t.Errorf("node %s (%s) is named by %d steps", n.Name, n.OpType, seen[n.Name])
		}
	}
	if len(p.Runs) != runs || len(p.Events) != runs*len(p.Steps) {
		t.Fatalf("%d runs, %d events for %d steps", len(p.Runs), len(p.Events), len(p.Steps))
	}
	for i, e := range p.Events {
		if e.Run != i/len(p.Steps) || e.Step != i%len(p.Steps) || e.Dur < 0 || e.Start < 0 {
			t.Fatalf("event %d: %+v", i, e)
		}
		if r := p.Runs[e.Run]; e.Start < r.Start || e.Start+e.Dur > r.Start+r.Dur {
			t.Fatalf("event %d (%v + %v) outside its run (%v + %v)", i, e.Start, e.Dur, r.Start, r.Dur)
		}
	}
	var calls int
	for _, o := range p.ByOpType() {
		calls += o.Calls
	}
	if calls != len(p.Events) {
		t.Errorf("op types count %d calls, %d events", calls, len(p.Events))
	}
	var buf bytes.Buffer
	if err := p.WriteTrace(&buf); err != nil {
		t.Fatal(err)
	}
	var tr struct {
		TraceEvents []struct {
			Name, Cat, Ph string
			Ts, Dur       float64
			Pid, Tid      int
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(buf.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	perStep := map[string]int{}
	for _, e := range tr.TraceEvents {
		if e.Ph != "X" || e.Ts < 0 || e.Dur < 0 || e.Pid != 1 || e.Tid != 1 {
			t.Fatalf("bad event %+v", e)
		}
		if e.Cat != "run" {
			perStep[e.Name+"|"+e.Cat]++
		}
	}
	for _, st := range p.Steps {
		if perStep[st.Name+"|"+st.OpType] != runs {
			t.Errorf("trace has %d events for %s, want %d", perStep[st.Name+"|"+st.OpType], st.Name, runs)
		}
	}
	if got := len(tr.TraceEvents); got != runs*(len(p.Steps)+1) {
		t.Errorf("%d trace events, want %d", got, runs*(len(p.Steps)+1))
	}
	slow := p.ByStep()
	if !slices.IsSortedFunc(slow, func(a, b StepTime) int { return int(b.Total - a.Total) }) {
		t.Error("ByStep is not slowest first")
	}
}
