//go:build ort

// Command benchort times onnxq's executor against ONNX Runtime on the same models,
// inputs and thread counts, and prints median milliseconds and the ratio
// onnxq / ORT as a Markdown table. Run it with `make bench`.
//
// At 1 thread it also prints each engine's median CPU time of the calling
// thread and their ratio (-clock): both engines then compute on that thread,
// and its CPU time leaves out the waits for a core that make wall time swing
// 2-5x when the machine is shared.
//
// The models: the testmodels zoo (YOLOX-nano-style detector, SqueezeNet 1.1,
// CIFAR ResNet-56 and -20, MobileNetV2, transformer encoder, LSTM) on their
// seeded sample inputs, ResNet-50 with BN folded, the tiny Llama stories260K
// from ../shared/models on a 256-token window, and the three PaddleOCR models
// on a rendered text page. onnxq and ORT runs alternate, so a change in the
// machine's load hits both alike.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

type model struct {
	name, path string
	inputs     map[string]*graph.Tensor
}

func main() {
	maxRuns := flag.Int("runs", 25, "at most this many timed runs per engine, model and thread count (after warm-up)")
	minRuns := flag.Int("min-runs", 7, "at least this many timed runs")
	budget := flag.Duration("budget", 4*time.Second, "time for the timed runs of one model at one thread count, both engines")
	only := flag.String("only", "", "time only models whose name contains this")
	bin := flag.String("onnxq", "bin/onnxq", "onnxq binary, for the peak RSS of `onnxq run`")
	threadList := flag.String("threads", "1,2", "comma-separated thread counts to time (not with -scaling)")
	scaling := flag.Bool("scaling", false, "print each engine's 2-thread speedup over 1 thread instead of onnxq / ORT")
	clockFlag := flag.String("clock", "both", "wall, thread (CPU time of the calling thread, 1 thread only) or both (thread CPU beside wall at 1 thread)")
	flag.Parse()
	var threadCounts []int
	for _, f := range strings.Split(*threadList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			usage(fmt.Errorf("-threads %q: want positive integers separated by commas", *threadList))
		}
		threadCounts = append(threadCounts, n)
	}
	if v := os.Getenv("ONNXQ_FORCE_SPLIT"); v != "" {
		usage(fmt.Errorf("ONNXQ_FORCE_SPLIT=%s is set: it makes every session, 1-thread ones too, split work across the pool (unset it to time)", v))
	}
	clock, err := parseClock(*clockFlag)
	if err != nil {
		usage(err)
	}
	if clock == clockThread {
		if *scaling {
			usage(fmt.Errorf("-clock thread: -scaling compares thread counts, and thread CPU time covers 1 thread only (use -clock wall)"))
		}
		for _, n := range threadCounts {
			if n != 1 {
				usage(fmt.Errorf("-clock thread: thread CPU time covers the calling thread only, so it needs -threads 1 (got %q)", *threadList))
			}
		}
	}
	tb := tbShim{}
	if err := ortref.Init(testdata.ORTLibrary(tb)); err != nil {
		fail(err)
	}
	tmp, err := os.MkdirTemp("", "benchort")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(tmp)

	var models []model
	for _, name := range testmodels.Zoo() {
		if *only != "" && !strings.Contains(name, *only) {
			continue
		}
		m, err := testmodels.Build(name, 1)
		if err != nil {
			fail(err)
		}
		p := filepath.Join(tmp, name+".onnx")
		if err := graph.Save(m, p); err != nil {
			fail(err)
		}
		in, err := testmodels.Samples(name, m, 1, 1)
		if err != nil {
			fail(err)
		}
		models = append(models, model{name, p, in[0]})
	}
	resnet := filepath.Join(tmp, "resnet50-bnfolded.onnx")
	if err := graph.Save(testmodels.ResNet50(1, 1, false), resnet); err != nil {
		fail(err)
	}
	models = append(models, model{"resnet50 (BN folded)", resnet, image("input", 224, 224)})
	if m, ok := stories(); ok {
		models = append(models, m)
	}
	models = append(models,
		model{"PaddleOCR det", testdata.OCRModel(tb, "det"), image("x", 640, 640)},
		model{"PaddleOCR rec", testdata.OCRModel(tb, "rec"), image("x", 48, 320)},
		model{"PaddleOCR cls", testdata.OCRModel(tb, "cls"), image("x", 48, 192)},
	)
	if *only != "" {
		var keep []model
		for _, m := range models {
			if strings.Contains(m.name, *only) {
				keep = append(keep, m)
			}
		}
		models = keep
	}

	fmt.Printf("GEMM micro-kernel: %s; %d CPUs; load average at start %s\n", gemm.KernelName(), runtime.NumCPU(), loadavg())
	if *scaling {
		fmt.Printf("medians of %d-%d runs per engine and thread count, in %d blocks alternating between the four (2 warm-ups per block; ORT's sessions closed outside their blocks)\n\n", *minRuns, *maxRuns, blocks)
		fmt.Println("| model | onnxq 1T ms | onnxq 2T ms | onnxq 1T/2T | ORT 1T ms | ORT 2T ms | ORT 1T/2T |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
		for _, m := range models {
			t := timeScaling(m, *minRuns, *maxRuns, 2**budget)
			fmt.Printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", m.name, t[0], t[1], t[0]/t[1], t[2], t[3], t[2]/t[3])
		}
		fmt.Printf("\nload average at the end %s\n", loadavg())
		return
	}
	fmt.Printf("medians of %d-%d runs per engine, in %d alternating blocks (2 warm-ups per block; ORT's session closed outside its blocks)\n", *minRuns, *maxRuns, blocks)
	if clock != clockWall {
		fmt.Println("CPU ms: CPU time of the thread that ran the pass (CLOCK_THREAD_CPUTIME_ID), at 1 thread only, where both engines compute on the calling thread; it leaves out time spent waiting for a core, so on a loaded machine its ratio is the steadier one")
	}
	fmt.Println()
	t := table{clock: clock}
	t.header()
	for _, m := range models {
		for _, threads := range threadCounts {
			ours, theirs := timePair(m, threads, *minRuns, *maxRuns, *budget)
			t.row(m, threads, ours, theirs)
		}
	}
	t.footer()

	// Peak RSS of the CLI on the det model, one forward pass.
	if *only != "" {
		return
	}
	in := filepath.Join(tmp, "det.npy")
	if err := npy.WriteFile(in, testdata.ImageNetNormalized(testdata.TextImage(640, 640, 1), 640, 640)); err != nil {
		fail(err)
	}
	out, err := exec.Command(*bin, "run", testdata.OCRModel(tb, "det"), "--input", in, "--timing", "--threads", "1").CombinedOutput()
	if err != nil {
		fail(fmt.Errorf("%s: %v: %s", *bin, err, out))
	}
	if m := regexp.MustCompile(`peak RSS ([0-9.]+ MiB)`).FindSubmatch(out); m != nil {
		fmt.Printf("peak RSS of `onnxq run` on PaddleOCR det (1x3x640x640): %s\n", m[1])
	}
}

// image is a rendered text page, ImageNet-normalized, as the only input.
func image(name string, h, w int) map[string]*graph.Tensor {
	return map[string]*graph.Tensor{name: testdata.ImageNetNormalized(testdata.TextImage(h, w, 1), h, w)}
}

// stories is the tiny Llama without KV cache on the first 256-token window of
// its TinyStories data; false when ../shared/models is absent.
func stories() (model, bool) {
	dir := filepath.Join(testdata.Root(), "..", "shared", "models", "stories260K")
	ids, err := npy.ReadFile(filepath.Join(dir, "tinystories_dev_ids.npy"))
	if err != nil || ids.DType != graph.Int64 || len(ids.Shape) != 2 || ids.Shape[1] != 256 {
		fmt.Fprintf(os.Stderr, "benchort: stories260K skipped: no token windows in %s (%v)\n", dir, err)
		return model{}, false
	}
	window := graph.Int64Tensor([]int{1, 256}, append([]int64(nil), ids.Int64s()[:256]...))
	return model{"stories260K (no KV cache)", filepath.Join(dir, "stories260K.onnx"), map[string]*graph.Tensor{"input_ids": window}}, true
}

// describe names the inputs' shapes, e.g. "1x3x224x224".
func describe(in map[string]*graph.Tensor) string {
	var parts []string
	for name, t := range in {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = fmt.Sprint(d)
		}
		s := strings.Join(dims, "x")
		if t.DType != graph.Float {
			s += " " + strings.ToLower(t.DType.String())
		}
		if len(in) > 1 {
			s = name + " " + s
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// timePair opens both engines on a model and alternates single runs, onnxq then
// ORT, until the budget is spent (at least minRuns, at most maxRuns each),
// after two warm-up runs each. It returns the timing of each.
// blocks is how many alternating blocks each engine's timed runs are split
// into. The engines take turns by block, not by run, and ORT's session is
// closed while onnxq runs: ORT's intra-op workers keep spinning between its
// runs and hold a core, which made onnxq's 2-thread runs in this process as
// slow as its 1-thread ones (yolo-silu 30.1 ms either way; 18.8 ms at 2
// threads with ORT's spinning off, 19.0 ms in a process of its own).
const blocks = 3

// timeEngines times each engine's runs (warm-up, then timed runs in blocks
// that alternate between the engines, the ORT sessions open only during
// their block) and returns each engine's timing, in order.
// ours are onnxq sessions, theirs ORT thread counts.
func timeEngines(m model, ours []*kernels.Session, theirs []int, minRuns, maxRuns int, budget time.Duration) []timing {
	n := len(ours) + len(theirs)
	ts := make([][]sample, n)
	perBlock := max(1, (minRuns+blocks-1)/blocks)
	slice := budget / blocks
	for b := 0; b < blocks; b++ {
		for i := 0; i < n; i++ {
			var run func() error
			closeORT := func() {}
			if i < len(ours) {
				s := ours[i]
				run = func() error { _, err := s.Run(m.inputs); return err }
			} else {
				r, err := ortref.NewSession(m.path, theirs[i-len(ours)])
				if err != nil {
					fail(fmt.Errorf("%s: ONNX Runtime: %v", m.name, err))
				}
				run = func() error { _, err := r.Run(m.inputs); return err }
				closeORT = r.Close // its threads end with it
			}
			// Collect the garbage of earlier blocks and models now: a cycle
			// started by it in a timed run costs that run about 30 ms of CPU
			// on Go's other threads (resnet20, a 1.3 ms pass: process CPU
			// 1.54x the thread's over 40 runs with one cycle, 1.02x after a
			// collection up front).
			runtime.GC()
			timeOne(m.name, run) // warm-up of this block
			timeOne(m.name, run)
			start := time.Now()
			for k := 0; len(ts[i]) < maxRuns && (k < perBlock || time.Since(start) < slice/time.Duration(n)); k++ {
				ts[i] = append(ts[i], timeOne(m.name, run))
			}
			closeORT()
		}
	}
	out := make([]timing, n)
	for i := range ts {
		out[i] = summarize(ts[i])
	}
	return out
}

func timePair(m model, threads, minRuns, maxRuns int, budget time.Duration) (ours, theirs timing) {
	g, err := graph.Load(m.path)
	if err != nil {
		fail(err)
	}
	s, err := kernels.NewSession(g, kernels.Options{Threads: threads})
	if err != nil {
		fail(fmt.Errorf("%s: %v", m.name, err))
	}
	t := timeEngines(m, []*kernels.Session{s}, []int{threads}, minRuns, maxRuns, budget)
	return t[0], t[1]
}

// timeScaling times onnxq and ORT at 1 and 2 threads on a model, in blocks
// that alternate between the four, so a change in the machine's load hits
// each alike. It returns the median wall milliseconds of onnxq 1T, onnxq 2T,
// ORT 1T, ORT 2T.
func timeScaling(m model, minRuns, maxRuns int, budget time.Duration) [4]float64 {
	g, err := graph.Load(m.path)
	if err != nil {
		fail(err)
	}
	var ours []*kernels.Session
	for _, threads := range []int{1, 2} {
		s, err := kernels.NewSession(g, kernels.Options{Threads: threads})
		if err != nil {
			fail(fmt.Errorf("%s: %v", m.name, err))
		}
		ours = append(ours, s)
	}
	t := timeEngines(m, ours, []int{1, 2}, minRuns, maxRuns, budget)
	return [4]float64{t[0].wall, t[1].wall, t[2].wall, t[3].wall}
}

func timeOne(name string, run func() error) sample {
	s, err := measure(run)
	if err != nil {
		fail(fmt.Errorf("%s: %v", name, err))
	}
	return s
}

// timing is one engine's result on one model and thread count: the median
// wall and thread-CPU milliseconds, and process CPU time over thread CPU
// time, as the median over runs and over all runs summed. Those are 1 when
// the pass ran on the calling thread alone. A median above 1 means other
// threads worked in every run (a pool's workers) and thread CPU time
// undercounts the pass; a sum above the median means occasional work
// elsewhere: Go's garbage collector paying for the runs' allocations, or
// the runtime's own threads.
type timing struct {
	wall, thread                    float64
	procPerThread, procPerThreadAll float64
}

func summarize(ss []sample) timing {
	walls := make([]time.Duration, len(ss))
	threads := make([]time.Duration, len(ss))
	quotients := make([]float64, 0, len(ss))
	var thread, process time.Duration
	for i, s := range ss {
		walls[i], threads[i] = s.wall, s.thread
		thread += s.thread
		process += s.process
		if s.thread > 0 {
			quotients = append(quotients, float64(s.process)/float64(s.thread))
		}
	}
	t := timing{wall: median(walls), thread: median(threads)}
	if len(quotients) > 0 {
		sort.Float64s(quotients)
		t.procPerThread = quotients[len(quotients)/2]
	}
	if thread > 0 {
		t.procPerThreadAll = float64(process) / float64(thread)
	}
	return t
}

func median(ts []time.Duration) float64 {
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return float64(ts[len(ts)/2].Microseconds()) / 1000
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchort:", err)
	os.Exit(1)
}

// usage reports a bad flag and exits 2, as the CLI does.
func usage(err error) {
	fmt.Fprintln(os.Stderr, "benchort:", err)
	os.Exit(2)
}
