package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/kernels"
	"github.com/urfave/cli/v3"
)

// profileFlag is run's --profile: a switch that may carry the trace file
// (--profile=trace.json). Written with a space (--profile trace.json) the
// path arrives as a second argument, which modelArg tells from the model.
type profileFlag struct {
	on    bool
	trace string
}

func (f *profileFlag) Set(v string) error {
	f.on = true
	if v != "true" {
		f.trace = v
	}
	return nil
}

func (f *profileFlag) Get() any         { return f }
func (f *profileFlag) String() string   { return f.trace }
func (f *profileFlag) IsBoolFlag() bool { return true }

// modelArg returns the MODEL argument; with a bare --profile, a second
// argument ending in .json is the trace file.
func (f *profileFlag) modelArg(cmd *cli.Command) (string, error) {
	if args := cmd.Args().Slice(); f.on && f.trace == "" && len(args) == 2 {
		for i, a := range args {
			if strings.HasSuffix(strings.ToLower(a), ".json") && !strings.HasSuffix(strings.ToLower(args[1-i]), ".json") {
				f.trace = a
				return args[1-i], nil
			}
		}
	}
	return oneArg(cmd, "MODEL")
}

// report prints the time per op type and the slowest steps, and writes the
// trace when asked. times are the forward passes the profile covers.
func (f *profileFlag) report(w io.Writer, p *kernels.Profile, times []time.Duration) error {
	var forward time.Duration
	for _, t := range times {
		forward += t
	}
	steps := p.StepTotal()
	share := func(d time.Duration) float64 { return 100 * float64(d) / float64(max(steps, 1)) }
	fmt.Fprintf(w, "profile: %d runs, %d steps per run; the steps take %.2f ms of %.2f ms measured (%.1f%%)\n",
		len(p.Runs), len(p.Steps), ms(steps), ms(forward), 100*float64(steps)/float64(max(forward, 1)))
	var inLanes time.Duration
	for _, e := range p.Events {
		if e.Lane > 0 {
			inLanes += e.Dur
		}
	}
	if inLanes > 0 {
		// Steps of independent branches ran at once, one a core: their
		// times overlap, so the steps can add up to more than the runs.
		fmt.Fprintf(w, "  %.1f%% of the step time ran in branch lanes, beside other steps (tid 2 and 3 in the trace)\n", 100*float64(inLanes)/float64(max(steps, 1)))
	}
	// The session's thread trials may have kept steps on one thread (the
	// machine handed their work to the other core slowly): say how many,
	// in the last run, so a worker share of 0 is not a mystery.
	last, one, inLast := -1, 0, 0
	for _, e := range p.Events {
		last = max(last, e.Run)
	}
	for _, e := range p.Events {
		if e.Run == last && e.Lane == 0 {
			inLast++
			if e.OneThread {
				one++
			}
		}
	}
	if one > 0 {
		fmt.Fprintf(w, "  %d of %d steps ran on one thread in the last run: the session's thread trials timed them faster so on this machine (\"threads\": 1 in the trace)\n", one, inLast)
	}
	ops := p.ByOpType()
	wOp := len("op type")
	for _, o := range ops {
		wOp = max(wOp, min(len(o.OpType), 48))
	}
	fmt.Fprintf(w, "  %-*s  %10s  %6s  %6s\n", wOp, "op type", "total ms", "share", "calls")
	for _, o := range ops {
		fmt.Fprintf(w, "  %-*s  %10.2f  %5.1f%%  %6d\n", wOp, shorten(o.OpType, 48), ms(o.Total), share(o.Total), o.Calls)
	}
	slow := p.ByStep()[:min(10, len(p.Steps))]
	wName, wOp, wShape := len("node"), len("op type"), len("output")
	for _, st := range slow {
		wName, wOp = max(wName, min(len(st.Name), 48)), max(wOp, min(len(st.OpType), 32))
		wShape = max(wShape, len(kernels.ShapeString(st.Shape)))
	}
	fmt.Fprintf(w, "  %-*s  %-*s  %-*s  %10s  %6s\n", wName, fmt.Sprintf("slowest %d nodes", len(slow)), wOp, "op type", wShape, "output", "total ms", "share")
	for _, st := range slow {
		fmt.Fprintf(w, "  %-*s  %-*s  %-*s  %10.2f  %5.1f%%\n", wName, shorten(st.Name, 48), wOp, shorten(st.OpType, 32), wShape, kernels.ShapeString(st.Shape), ms(st.Total), share(st.Total))
	}
	var regions, helped int64
	for _, r := range p.Runs {
		regions, helped = regions+r.Regions, helped+r.Helped
	}
	if regions > 0 {
		// A loop that no worker joined took its 1-thread time: read a
		// multi-thread profile with that share in mind. On the idle
		// 2-vCPU VM workers joined 76-98% of ResNet-56's loops (the
		// short ones a worker is late for go to the caller), with a busy
		// loop on one CPU 7%.
		fmt.Fprintf(w, "  parallel loops: %d a run; a worker took part in %.0f%% of them", regions/int64(max(1, len(p.Runs))), 100*float64(helped)/float64(regions))
		if 2*helped < regions {
			fmt.Fprintf(w, " (the rest ran on the calling thread alone: the workers did not get a core in time; a loaded or shared machine)")
		}
		fmt.Fprintln(w)
	}
	if f.trace == "" {
		return nil
	}
	if err := atomicfile.Write(f.trace, p.WriteTrace); err != nil {
		return fmt.Errorf("--profile %s: %w", f.trace, err)
	}
	fmt.Fprintf(w, "trace: %s (%d events; open in https://ui.perfetto.dev or chrome://tracing)\n", f.trace, len(p.Events)+len(p.Runs))
	return nil
}

// shorten keeps long fused-region names readable in the table (the trace has them whole).
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
