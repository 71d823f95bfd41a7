package kernels

import (
	"bufio"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// Profile is what a Session with Options.Profile recorded: how long every
// step of every run took. A step is one node, or a fused region of several
// run as one kernel (named after all of them).
type Profile struct {
	Steps  []ProfiledStep
	Events []StepEvent
	// Runs holds each Run call, tap and bookkeeping included.
	Runs []RunTime
}

// RunTime is one Run call: its start since the first profiled run began,
// its wall time, and the parallel loops in it that offered work to the
// pool's workers (Regions) and in how many a worker took part (Helped). A
// loop no worker joined ran on the calling thread alone: with Helped well
// under Regions the machine did not give the workers their cores (another
// process, or a hypervisor's other guests), whatever the thread count. The
// loop counts are the process's: runs of other sessions at the same time
// add theirs.
type RunTime struct {
	Start, Dur      time.Duration
	Regions, Helped int64
}

// ProfiledStep names a step of the compiled graph.
type ProfiledStep struct {
	// Name is the node's name, or the names of a fused region's nodes joined by "+".
	Name string
	// OpType is the node's op type, or a fused region's op types joined by "+".
	OpType string
	// Nodes is how many graph nodes the step runs.
	Nodes int
	// Shape is the shape of the step's first output in the last profiled
	// run (nil before one): what a slow step computed tells why it is slow.
	Shape []int
}

// StepEvent is one step of one run.
type StepEvent struct {
	Run, Step int
	// Start is the time since the first profiled run began.
	Start, Dur time.Duration
	// Lane is 0 for a step run by itself, else the seat (1, 2) of the
	// branch lane that ran it beside others (lanes.go): such steps
	// overlap in time, so their sum can exceed the run's.
	Lane int
	// OneThread is set on a step run on one thread in a session of more:
	// its thread trials found the step (or the whole run) faster so on
	// this machine (stepthreads.go).
	OneThread bool
}

// OpTypeTime is the time spent in the steps of one op type.
type OpTypeTime struct {
	OpType string
	Total  time.Duration
	Calls  int
}

// StepTime is the time one step took over all runs.
type StepTime struct {
	ProfiledStep
	Total time.Duration
}

// profiler collects step times while the session runs.
type profiler struct {
	steps  []ProfiledStep
	events []StepEvent
	runs   []RunTime
	epoch  time.Time
	run    int
}

// Profile returns a copy of what was recorded since the session was made or
// since ResetProfile; nil without Options.Profile.
func (s *Session) Profile() *Profile {
	if s.prof == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Profile{Steps: slices.Clone(s.prof.steps), Events: slices.Clone(s.prof.events), Runs: slices.Clone(s.prof.runs)}
}

// ResetProfile drops what was recorded so far (a warm-up run, say).
func (s *Session) ResetProfile() {
	if s.prof == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prof.events, s.prof.runs, s.prof.run = nil, nil, 0
}

// nameSteps names every step after the nodes it runs: compiled steps as they
// were before fusion (orig) are matched to the fused ones by data flow, since
// a fused region or Conv epilogue keeps only one node of its region.
func nameSteps(orig, steps []step) []ProfiledStep {
	producer := map[int]int{} // slot -> original step
	for i, st := range orig {
		for _, o := range st.out {
			if o >= 0 {
				producer[o] = i
			}
		}
	}
	present := map[*graph.Node]bool{}
	for _, st := range steps {
		present[st.node] = true
	}
	out := make([]ProfiledStep, len(steps))
	for i, st := range steps {
		member := map[int]bool{}
		var walk func(slot int)
		walk = func(slot int) {
			j, ok := producer[slot]
			if !ok || member[j] || (present[orig[j].node] && orig[j].node != st.node) {
				return
			}
			member[j] = true
			for _, in := range orig[j].in {
				if in >= 0 {
					walk(in)
				}
			}
		}
		for _, o := range st.out {
			if o >= 0 {
				walk(o)
			}
		}
		idx := make([]int, 0, len(member))
		for j := range member {
			idx = append(idx, j)
		}
		slices.Sort(idx)
		var names, ops []string
		for _, j := range idx {
			names = append(names, orig[j].node.Name)
			ops = append(ops, orig[j].node.OpType)
		}
		if len(idx) == 0 { // not traceable to its nodes: its own node alone
			names, ops = []string{st.node.Name}, []string{st.node.OpType}
		}
		out[i] = ProfiledStep{Name: strings.Join(names, "+"), OpType: strings.Join(ops, "+"), Nodes: len(names)}
	}
	return out
}

// ByOpType sums the step times per op type, the slowest first.
func (p *Profile) ByOpType() []OpTypeTime {
	at := map[string]int{}
	var out []OpTypeTime
	for _, e := range p.Events {
		op := p.Steps[e.Step].OpType
		i, ok := at[op]
		if !ok {
			i = len(out)
			at[op] = i
			out = append(out, OpTypeTime{OpType: op})
		}
		out[i].Total += e.Dur
		out[i].Calls++
	}
	slices.SortStableFunc(out, func(a, b OpTypeTime) int { return int(b.Total - a.Total) })
	return out
}

// ByStep sums each step's time over the runs, the slowest first.
func (p *Profile) ByStep() []StepTime {
	out := make([]StepTime, len(p.Steps))
	for i, st := range p.Steps {
		out[i].ProfiledStep = st
	}
	for _, e := range p.Events {
		out[e.Step].Total += e.Dur
	}
	slices.SortStableFunc(out, func(a, b StepTime) int { return int(b.Total - a.Total) })
	return out
}

// StepTotal is the time of all steps of all runs.
func (p *Profile) StepTotal() time.Duration {
	var t time.Duration
	for _, e := range p.Events {
		t += e.Dur
	}
	return t
}

// traceEvent is a Chrome trace event of phase "X" (complete): a span with a
// start and duration in microseconds, which Perfetto and chrome://tracing show.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	Ts   float64        `json:"ts"`
	Dur  float64        `json:"dur"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// WriteTrace writes the profile in the Chrome trace event format (a JSON
// object with traceEvents): one complete event per step per run, named after
// the step's nodes with its op type as category, and one per run.
func (p *Profile) WriteTrace(w io.Writer) error {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	var evs []traceEvent
	for r, rt := range p.Runs {
		evs = append(evs, traceEvent{Name: "run " + strconv.Itoa(r), Cat: "run", Ph: "X", Ts: us(rt.Start), Dur: us(rt.Dur), Pid: 1, Tid: 1})
	}
	for _, e := range p.Events {
		st := p.Steps[e.Step]
		args := map[string]any{"run": e.Run, "nodes": st.Nodes}
		if st.Shape != nil {
			args["shape"] = ShapeString(st.Shape)
		}
		if e.OneThread {
			args["threads"] = 1
		}
		evs = append(evs, traceEvent{Name: st.Name, Cat: st.OpType, Ph: "X", Ts: us(e.Start), Dur: us(e.Dur), Pid: 1, Tid: 1 + e.Lane, Args: args})
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(struct {
		TraceEvents     []traceEvent `json:"traceEvents"`
		DisplayTimeUnit string       `json:"displayTimeUnit"`
	}{evs, "ms"}); err != nil {
		return err
	}
	return bw.Flush()
}

// runStart is what endRun needs of a run's beginning: its time and the
// process's parallel loop counts.
type runStart struct {
	at              time.Time
	regions, helped int64
}

// beginRun starts a run's clock (the first run starts the profile's).
func (p *profiler) beginRun() runStart {
	now := time.Now()
	if p.epoch.IsZero() || len(p.runs) == 0 && len(p.events) == 0 {
		p.epoch = now
	}
	r, h := parallel.Regions()
	return runStart{at: now, regions: r, helped: h}
}

func (p *profiler) endRun(start runStart) {
	r, h := parallel.Regions()
	p.runs = append(p.runs, RunTime{Start: start.at.Sub(p.epoch), Dur: time.Since(start.at), Regions: r - start.regions, Helped: h - start.helped})
	p.run++
}

// step records step i, run from t0 to t1 in lane (see StepEvent), with its
// outputs.
func (p *profiler) step(i int, t0, t1 time.Time, lane int, one bool, outs []*graph.Tensor) {
	p.events = append(p.events, StepEvent{Run: p.run, Step: i, Start: t0.Sub(p.epoch), Dur: t1.Sub(t0), Lane: lane, OneThread: one})
	if len(outs) > 0 && outs[0] != nil && !slices.Equal(p.steps[i].Shape, outs[0].Shape) {
		p.steps[i].Shape = slices.Clone(outs[0].Shape)
	}
}

// ShapeString writes a shape as 1x3x224x224 ("scalar" for rank 0).
func ShapeString(shape []int) string {
	if len(shape) == 0 {
		return "scalar"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return strings.Join(parts, "x")
}
