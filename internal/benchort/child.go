//go:build ort

package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/npy"
	"golang.org/x/sys/unix"
)

// Each block of runs happens in a child process (benchort re-executed with
// "child" as its first argument) that loads one engine and one model, as a
// user deploys it: the engines share no heap, no threads and no Go runtime,
// and no engine's threads (ORT's spinning workers) outlive its block.
//
// The child writes one line per timed run to stdout,
//
//	run <wall> <thread CPU> <process CPU> <run-queue wait> <estimate>
//
// in nanoseconds (wait -1 when unknown, estimate 0 outside accounting mode),
// then "end <runs>", so a child that dies midway is told apart from a short
// block. Errors go to stderr as one line, with exit status 1.

// childArg is the first argument that selects the child mode.
const childArg = "child"

// block is one child's work: an engine on a model, and how many runs.
type block struct {
	onnxq      bool // else ONNX Runtime
	threads    int
	noSpinning bool // ORT: intra-op workers do not spin between runs
	account    bool // onnxq: the pool's accounting mode (parallel.Account)
	model      string
	inputs     map[string]string // input name -> .npy path
	ortLib     string
	warmups    int
	minRuns    int           // at least this many timed runs
	maxRuns    int           // at most this many
	slice      time.Duration // keep running past minRuns until this much time went by
	cpu        int           // the CPU the child runs on, -1 for any
}

func (b block) engineName() string {
	switch {
	case b.onnxq && b.account:
		return "onnxq (accounting)"
	case b.onnxq:
		return "onnxq"
	case b.noSpinning:
		return "ORT (no spinning)"
	}
	return "ORT"
}

// args is the child's command line for b.
func (b block) args() []string {
	engine := "ort"
	if b.onnxq {
		engine = "onnxq"
	}
	a := []string{childArg, "-engine", engine, "-threads", strconv.Itoa(b.threads), "-model", b.model,
		"-warmups", strconv.Itoa(b.warmups), "-min", strconv.Itoa(b.minRuns), "-max", strconv.Itoa(b.maxRuns),
		"-slice", b.slice.String(), "-cpu", strconv.Itoa(b.cpu)}
	if b.noSpinning {
		a = append(a, "-no-spinning")
	}
	if b.account {
		a = append(a, "-account")
	}
	if b.ortLib != "" {
		a = append(a, "-ort-lib", b.ortLib)
	}
	for name, path := range b.inputs {
		a = append(a, "-input", name+"="+path)
	}
	return a
}

// inputFlags collects repeated -input name=path.
type inputFlags map[string]string

func (f inputFlags) String() string { return fmt.Sprint(map[string]string(f)) }
func (f inputFlags) Set(s string) error {
	name, path, ok := strings.Cut(s, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want name=path, got %q", s)
	}
	f[name] = path
	return nil
}

// parseBlock reads a child's command line (after childArg).
func parseBlock(args []string) (block, error) {
	fs := flag.NewFlagSet(childArg, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var b block
	engine := fs.String("engine", "", "onnxq or ort")
	fs.IntVar(&b.threads, "threads", 1, "")
	fs.BoolVar(&b.noSpinning, "no-spinning", false, "")
	fs.BoolVar(&b.account, "account", false, "")
	fs.StringVar(&b.model, "model", "", "")
	fs.StringVar(&b.ortLib, "ort-lib", "", "")
	fs.IntVar(&b.warmups, "warmups", 2, "")
	fs.IntVar(&b.minRuns, "min", 1, "")
	fs.IntVar(&b.maxRuns, "max", 1, "")
	fs.DurationVar(&b.slice, "slice", 0, "")
	fs.IntVar(&b.cpu, "cpu", -1, "")
	b.inputs = inputFlags{}
	fs.Var(inputFlags(b.inputs), "input", "")
	if err := fs.Parse(args); err != nil {
		return block{}, err
	}
	switch *engine {
	case "onnxq":
		b.onnxq = true
	case "ort":
		if b.ortLib == "" {
			return block{}, errors.New("-engine ort needs -ort-lib")
		}
	default:
		return block{}, fmt.Errorf("-engine %q: want onnxq or ort", *engine)
	}
	if b.model == "" || b.threads < 1 || b.minRuns < 0 || b.maxRuns < 1 || b.warmups < 0 {
		return block{}, fmt.Errorf("want -model, -threads >= 1, -max >= 1 (got %q)", strings.Join(args, " "))
	}
	return b, nil
}

// childMain is the child process: it times one block and prints its runs.
func childMain(args []string, stdout io.Writer) error {
	b, err := parseBlock(args)
	if err != nil {
		return err
	}
	if b.cpu >= 0 {
		if err := pinProcess(b.cpu); err != nil {
			return err
		}
	}
	in := map[string]*graph.Tensor{}
	for name, path := range b.inputs {
		t, err := npy.ReadFile(path)
		if err != nil {
			return err
		}
		in[name] = t
	}
	var run func() error
	settling := func() int { return 0 }
	if b.onnxq {
		g, err := graph.Load(b.model)
		if err != nil {
			return err
		}
		s, err := kernels.NewSession(g, kernels.Options{Threads: b.threads})
		if err != nil {
			return err
		}
		// A loop hands each run's outputs back with Recycle (recycling),
		// as the session's API asks of callers that run a model over and
		// over (calibration does): without it every run takes fresh
		// memory for its outputs, and until the first collection that
		// is fresh pages (12 us a page fault on the Zen 5 VM: YOLO's
		// 1.2 MB output made runs 3-27 of a block 25-30% slower:
		// 16.3-16.6 ms against 12.7-13.1 with Recycle; later runs not).
		pass := recycling(s, in)
		run = pass
		// Above 1 thread a session's first runs try its branches in
		// lanes and step by step (kernels/lanes.go): timed, they would
		// mix the two.
		settling = s.Settling
		if b.account {
			run = func() error {
				if err := parallel.Account(true); err != nil {
					return err
				}
				defer parallel.Account(false)
				return pass()
			}
		}
	} else {
		if err := ortref.Init(b.ortLib); err != nil {
			return err
		}
		r, err := ortref.NewSessionOpts(b.model, ortref.Options{Threads: b.threads, Level: ortref.OptAll, NoSpinning: b.noSpinning})
		if err != nil {
			return fmt.Errorf("ONNX Runtime: %v", err)
		}
		defer r.Close()
		run = func() error { _, err := r.Run(in); return err }
	}
	// The thread CPU clock needs the pass on one OS thread: at 1 thread,
	// and in accounting mode, the goroutine keeps its thread. Above 1
	// thread it must not: onnxq's pool then ran 1.4x slower (resnet20 at 2
	// threads: 1.46-1.55 ms locked, 1.03-1.05 not, 1.02-1.05 in `onnxq
	// run`), as each time the waiting goroutine yields or blocks the Go
	// scheduler has to hand its P to another thread and back to the locked
	// one, and the run-queue waits of those hand-offs made no 2-thread run
	// clean (0/25 locked, 20/25 not).
	lock := b.threads == 1 || b.account
	for i := 0; i < b.warmups || settling() > 0; i++ {
		if _, err := measure(run, lock); err != nil {
			return err
		}
	}
	// Collect the load's and the warm-ups' garbage now: a cycle started by
	// it in a timed run costs that run about 30 ms of CPU on Go's other
	// threads (resnet20, a 1.3 ms pass).
	runtime.GC()
	var ss []sample
	start := time.Now()
	for k := 0; k < b.maxRuns && (k < b.minRuns || time.Since(start) < b.slice); k++ {
		a0 := parallel.Adjustment()
		r0, h0 := parallel.Regions()
		s, err := measure(run, lock)
		if err != nil {
			return err
		}
		r1, h1 := parallel.Regions()
		s.regions, s.helped = r1-r0, h1-h0
		if b.account {
			s.estimate = s.thread + parallel.Adjustment() - a0
		}
		ss = append(ss, s)
	}
	return writeSamples(stdout, ss)
}

func writeSamples(w io.Writer, ss []sample) error {
	bw := bufio.NewWriter(w)
	for _, s := range ss {
		fmt.Fprintf(bw, "run %d %d %d %d %d %d %d\n", s.wall, s.thread, s.process, s.waited, s.estimate, s.regions, s.helped)
	}
	fmt.Fprintf(bw, "end %d\n", len(ss))
	return bw.Flush()
}

// parseSamples reads a child's stdout.
func parseSamples(r io.Reader) ([]sample, error) {
	var ss []sample
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "run" && len(f) == 8:
			var v [7]int64
			for i := range v {
				n, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("child output line %d: %q is not a count of nanoseconds", line, f[i+1])
				}
				v[i] = n
			}
			if v[0] <= 0 || v[1] < 0 || v[2] < 0 || v[3] < -1 || v[4] < 0 || v[5] < 0 || v[6] < 0 || v[6] > v[5] {
				return nil, fmt.Errorf("child output line %d: times out of range: %q", line, sc.Text())
			}
			ss = append(ss, sample{wall: time.Duration(v[0]), thread: time.Duration(v[1]), process: time.Duration(v[2]),
				waited: time.Duration(v[3]), estimate: time.Duration(v[4]), regions: v[5], helped: v[6]})
		case f[0] == "end" && len(f) == 2:
			n, err := strconv.Atoi(f[1])
			if err != nil || n != len(ss) {
				return nil, fmt.Errorf("child output line %d: %q after %d runs", line, sc.Text(), len(ss))
			}
			return ss, nil
		default:
			return nil, fmt.Errorf("child output line %d: unexpected %q", line, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("child output ended after %d runs without its end line", len(ss))
}

// runBlock runs b in a child process of exe (this program) and returns its
// timed runs. A child that fails gives a one-line error: the first line of
// its stderr (its error, or a panic's message), else how it exited.
func runBlock(exe string, b block) ([]sample, error) {
	cmd := exec.Command(exe, b.args()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	what := fmt.Sprintf("%s at %d thread(s)", b.engineName(), b.threads)
	if err != nil {
		if msg := firstLine(stderr.Bytes()); msg != "" {
			return nil, fmt.Errorf("%s: %s", what, msg)
		}
		return nil, fmt.Errorf("%s: child process: %v", what, err)
	}
	ss, err := parseSamples(&stdout)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	return ss, nil
}

func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// pinProcess moves every thread of the process to one CPU: the threads the
// Go runtime has started by now, one by one (an affinity is a thread's),
// and through them the threads started later (ORT's pool, Go's), which
// inherit their creator's.
func pinProcess(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("pin to CPU %d: %v", cpu, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin to CPU %d: %v", cpu, err)
		}
	}
	return nil
}

// recycling returns a pass of s over in that first hands the previous
// pass's outputs back (Session.Recycle), as a loop over a model does.
func recycling(s *kernels.Session, in map[string]*graph.Tensor) func() error {
	var outs map[string]*graph.Tensor
	return func() (err error) {
		s.Recycle(outs)
		outs, err = s.Run(in)
		return err
	}
}
