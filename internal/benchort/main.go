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
	"math/rand/v2"
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
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
	"golang.org/x/sys/unix"
)

type model struct {
	name, path string
	inputs     map[string]*graph.Tensor
	files      map[string]string // the inputs as .npy files, for the child processes
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		if err := childMain(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "benchort child:", err)
			os.Exit(1)
		}
		return
	}
	maxRuns := flag.Int("runs", 25, "at most this many timed runs per engine, model and thread count (after warm-up)")
	minRuns := flag.Int("min-runs", 7, "at least this many timed runs")
	budget := flag.Duration("budget", 4*time.Second, "time for the timed runs of one model at one thread count, both engines")
	only := flag.String("only", "", "time only models whose name contains this")
	bin := flag.String("onnxq", "bin/onnxq", "onnxq binary, for the peak RSS of `onnxq run`")
	threadList := flag.String("threads", "1,2", "comma-separated thread counts to time (not with -scaling)")
	scaling := flag.Bool("scaling", false, "print each engine's 2-thread speedup over 1 thread instead of onnxq / ORT")
	flag.DurationVar(&near.limit, "near", 0, "before each block of 2-thread runs, wait up to this long for the two CPUs' cross-core round trip to be under 150 ns (a VM that moves its virtual CPUs apart for minutes); 0: do not wait")
	flag.DurationVar(&quiet.limit, "quiet", 0, "before each block of runs, wait up to this long for the machine's CPUs to be 90% idle (a shared machine); 0: do not wait")
	flag.IntVar(&run.pin, "pin", -2, "run every 1-thread block, both engines', on this CPU (-2: the first CPU this process may use; -1: wherever the kernel places it): a VM's virtual CPUs can differ in speed for minutes (the Zen 5 VM's CPU 1 ran onnxq's YOLO 15.6 ms against CPU 0's 11.8), and blocks placed at random then mix them")
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
	if err := choosePin(); err != nil {
		usage(err)
	}
	tb := tbShim{}
	run.ortLib = testdata.ORTLibrary(tb)
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	run.exe = exe
	tmp, err := os.MkdirTemp("", "benchort")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(tmp)

	var models []model
	for _, name := range append(testmodels.Zoo(), testmodels.Families()...) {
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
		models = append(models, model{name, p, in[0], nil})
	}
	resnet := filepath.Join(tmp, "resnet50-bnfolded.onnx")
	if err := graph.Save(testmodels.ResNet50(1, 1, false), resnet); err != nil {
		fail(err)
	}
	models = append(models, model{"resnet50 (BN folded)", resnet, image("input", 224, 224), nil})
	if m, ok := stories(); ok {
		models = append(models, m)
	}
	models = append(models, sharedModels()...)
	models = append(models,
		model{"PaddleOCR det", testdata.OCRModel(tb, "det"), image("x", 640, 640), nil},
		model{"PaddleOCR rec", testdata.OCRModel(tb, "rec"), image("x", 48, 320), nil},
		model{"PaddleOCR cls", testdata.OCRModel(tb, "cls"), image("x", 48, 192), nil},
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
	for i := range models {
		m := &models[i]
		m.files = map[string]string{}
		for name, t := range m.inputs {
			p := filepath.Join(tmp, fmt.Sprintf("input%d-%d.npy", i, len(m.files)))
			if err := npy.WriteFile(p, t); err != nil {
				fail(err)
			}
			m.files[name] = p
		}
	}

	fmt.Printf("GEMM micro-kernel: %s; %d CPUs; load average at start %s; %s\n", gemm.KernelName(), runtime.NumCPU(), loadavg(), crossCore(true))
	if *scaling {
		fmt.Printf("medians of %d-%d runs per engine and thread count, in %d blocks rotating between the six (each block a process of its own that loads one engine and model; 2 warm-ups per block)\n", *minRuns, *maxRuns, blocks)
		var rows []scalingRow
		for _, m := range models {
			r := timeScaling(m, *minRuns, *maxRuns, 2**budget)
			r.name = m.name
			rows = append(rows, r)
		}
		printScaling(rows)
		reportGates()
		fmt.Printf("\nload average at the end %s; %s\n", loadavg(), crossCore(false))
		return
	}
	fmt.Printf("medians of %d-%d runs per engine, in %d alternating blocks (each block a process of its own that loads one engine and model, as a user deploys it; 2 warm-ups per block); above 1 thread ORT is timed with its workers spinning between runs (its default) and not, and the faster counts\n", *minRuns, *maxRuns, blocks)
	if clock != clockWall {
		fmt.Println("CPU ms: CPU time of the thread that ran the pass (CLOCK_THREAD_CPUTIME_ID), at 1 thread only, where both engines compute on the calling thread; it leaves out time spent waiting for a core, so on a loaded machine its ratio is the steadier one")
	}
	fmt.Println()
	t := table{clock: clock}
	t.header()
	for _, m := range models {
		for _, threads := range threadCounts {
			ours, theirs, noSpin := timePair(m, threads, *minRuns, *maxRuns, *budget)
			t.row(m, threads, ours, theirs, noSpin)
		}
	}
	t.footer()
	reportGates()

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
	return model{"stories260K (no KV cache)", filepath.Join(dir, "stories260K.onnx"), map[string]*graph.Tensor{"input_ids": window}, nil}, true
}

// sharedModels are the other models of ../shared/models, each as a deployed
// model is run: the real trained detector FastestDet on its reference
// input, and one decode step of the two KV-cache language models (one new
// token after a past of 255 for the tiny Llama, 127 for the GPT-2 graph of
// ONNX Runtime's fused contrib ops), the per-token cost of generation,
// where per-run overhead counts more than any kernel. Models absent are
// skipped with a message.
func sharedModels() []model {
	dir := filepath.Join(testdata.Root(), "..", "shared", "models")
	var out []model
	det, err := npy.ReadFile(filepath.Join(dir, "fastestdet", "reference", "000000000009_input.npy"))
	if err == nil {
		out = append(out, model{"FastestDet (trained COCO detector)", filepath.Join(dir, "fastestdet", "FastestDet.onnx"), map[string]*graph.Tensor{"input.1": det}, nil})
	} else {
		fmt.Fprintf(os.Stderr, "benchort: FastestDet skipped: %v\n", err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	normal := func(shape ...int) *graph.Tensor {
		t := graph.NewTensor(graph.Float, shape)
		for i, d := 0, t.Float32s(); i < len(d); i++ {
			d[i] = float32(r.NormFloat64())
		}
		return t
	}
	kv := filepath.Join(dir, "stories260K", "stories260K_kv.onnx")
	if _, err := os.Stat(kv); err == nil {
		in := map[string]*graph.Tensor{"input_ids": graph.Int64Tensor([]int{1, 1}, []int64{42})}
		for l := 0; l < 5; l++ {
			in[fmt.Sprintf("past_key_values.%d.key", l)] = normal(1, 4, 255, 8)
			in[fmt.Sprintf("past_key_values.%d.value", l)] = normal(1, 4, 255, 8)
		}
		out = append(out, model{"stories260K decode step (KV cache, past 255)", kv, in, nil})
	} else {
		fmt.Fprintf(os.Stderr, "benchort: stories260K_kv skipped: %v\n", err)
	}
	gpt2 := filepath.Join(dir, "tiny-random-gpt2", "past.onnx")
	if _, err := os.Stat(gpt2); err == nil {
		const past = 127
		mask := make([]int32, past+1)
		for i := range mask {
			mask[i] = 1
		}
		in := map[string]*graph.Tensor{
			"input_ids":      int32Tensor([]int{1, 1}, []int32{7}),
			"position_ids":   int32Tensor([]int{1, 1}, []int32{past}),
			"attention_mask": int32Tensor([]int{1, past + 1}, mask),
		}
		for l := 0; l < 5; l++ {
			in[fmt.Sprintf("past_%d", l)] = normal(2, 1, 4, past, 8)
		}
		out = append(out, model{"GPT-2 contrib ops decode step (past 127)", gpt2, in, nil})
	} else {
		fmt.Fprintf(os.Stderr, "benchort: tiny-random-gpt2 skipped: %v\n", err)
	}
	return out
}

// describe names the inputs' shapes, e.g. "1x3x224x224"; inputs of one
// shape and type are counted ("10 x 1x4x255x8") rather than listed when a
// model has more than three.
func describe(in map[string]*graph.Tensor) string {
	shapes := make(map[string]string, len(in)) // input name -> "1x4x255x8 int64"
	count := map[string]int{}
	for name, t := range in {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = fmt.Sprint(d)
		}
		s := strings.Join(dims, "x")
		if t.DType != graph.Float {
			s += " " + strings.ToLower(t.DType.String())
		}
		shapes[name] = s
		count[s]++
	}
	var parts []string
	listed := map[string]bool{} // shapes given as a count
	for name, s := range shapes {
		switch {
		case len(in) == 1:
			parts = append(parts, s)
		case count[s] > 1 && len(in) > 3:
			if !listed[s] {
				listed[s] = true
				parts = append(parts, fmt.Sprintf("%d x %s", count[s], s))
			}
		default:
			parts = append(parts, name+" "+s)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// blocks is how many alternating blocks each engine's timed runs are split
// into. The engines take turns by block, not by run, and each block runs in
// a process of its own (see child.go) that loads one engine and one model,
// as a user deploys it. The order of the engines rotates from block to
// block, so none always runs first.
//
// Until then both engines shared this process, and onnxq timed up to 1.6x
// slower at 2 threads there than in `onnxq run`. The cause was not sharing
// the process but the timing itself: each run held its OS thread
// (runtime.LockOSThread, for the thread CPU clock), and onnxq's pool then
// pays a hand-off between OS threads whenever the waiting goroutine yields
// or blocks (resnet20 at 2 threads, load 1.5: 1.46-1.55 ms locked in either
// setup, 1.03 unlocked, 1.02-1.05 in `onnxq run`). Runs above 1 thread now
// keep no thread (see childMain); at 1 thread, which has no pool, the
// shared process and a child timed alike (resnet20 1.24 and 1.25 ms).
const blocks = 6

// engine is one configuration timed: onnxq or ORT at a thread count.
type engine struct {
	onnxq      bool
	threads    int
	noSpinning bool
	// account runs the onnxq session in the pool's accounting mode, for
	// the estimate of its time on cores of its own (see parallel.Account).
	account bool
}

// run is where the child processes come from: this program, and ORT's
// library for them to load.
var run struct {
	exe, ortLib string
	pin         int // CPU for 1-thread blocks, -1 for none
}

// timeEngines times each engine's runs in blocks that rotate between the
// engines, each block a child process (warm-up, then timed runs), and
// returns each engine's timing, in order.
func timeEngines(m model, es []engine, minRuns, maxRuns int, budget time.Duration) []timing {
	n := len(es)
	ts := make([][]sample, n)
	perBlock := max(1, (minRuns+blocks-1)/blocks)
	slice := budget / blocks
	for b := 0; b < blocks; b++ {
		for k := 0; k < n; k++ {
			i := (k + b) % n
			if len(ts[i]) >= maxRuns {
				continue
			}
			e := es[i]
			quiet.before()
			if e.threads > 1 {
				near.before()
			}
			ss, err := runBlock(run.exe, block{onnxq: e.onnxq, threads: e.threads, noSpinning: e.noSpinning, account: e.account,
				model: m.path, inputs: m.files, ortLib: run.ortLib, warmups: 2, cpu: pinFor(e.threads),
				minRuns: perBlock, maxRuns: maxRuns - len(ts[i]), slice: slice / time.Duration(n)})
			if err != nil {
				fail(fmt.Errorf("%s: %v", m.name, err))
			}
			ts[i] = append(ts[i], ss...)
		}
	}
	out := make([]timing, n)
	for i := range ts {
		out[i] = summarize(ts[i])
	}
	return out
}

// timePair times onnxq and ORT at a thread count. Above 1 thread ORT runs
// with its workers spinning between runs (its default) and not, and the
// faster by median wall time counts (spinning hurts it on a loaded machine:
// yolo-silu at load 11, 108 ms spinning, 26 not); noSpin says which.
func timePair(m model, threads, minRuns, maxRuns int, budget time.Duration) (ours, theirs timing, noSpin bool) {
	es := []engine{{onnxq: true, threads: threads}, {threads: threads}}
	if threads > 1 {
		es = append(es, engine{threads: threads, noSpinning: true})
	}
	t := timeEngines(m, es, minRuns, maxRuns, budget)
	if len(t) == 3 && t[2].wall < t[1].wall {
		return t[0], t[2], true
	}
	return t[0], t[1], false
}

// timeScaling times onnxq at 1 and 2 threads (and at 2 in accounting mode,
// for the estimate) and ORT at 1 thread and at 2 threads with its workers
// spinning (its default) and not, in blocks that rotate between the six, so
// a change in the machine's load hits each alike.
func timeScaling(m model, minRuns, maxRuns int, budget time.Duration) scalingRow {
	es := []engine{{onnxq: true, threads: 1}, {onnxq: true, threads: 2}, {onnxq: true, threads: 2, account: true},
		{threads: 1}, {threads: 2}, {threads: 2, noSpinning: true}}
	t := timeEngines(m, es, minRuns, maxRuns, budget)
	return scalingRow{ours1: t[0], ours2: t[1], ours2est: t[2], ort1: t[3], ort2spin: t[4], ort2still: t[5]}
}

// timing is one engine's result on one model and thread count: the median
// wall and thread-CPU milliseconds, and process CPU time over thread CPU
// time, as the median over runs and over all runs summed. Those are 1 when
// the pass ran on the calling thread alone. A median above 1 means other
// threads worked in every run (a pool's workers) and thread CPU time
// undercounts the pass; a sum above the median means occasional work
// elsewhere: Go's garbage collector paying for the runs' allocations, or
// the runtime's own threads.
//
// The spread and the contention: wall p25 and p75; clean is the median wall
// over the runs in which this process's threads waited for a CPU less than
// cleanWait of the run (nClean of n runs; 0 when none did), and waited
// the median of the threads' run-queue time summed, as a share of the run
// (above 1 when several threads waited at once).
type timing struct {
	wall, thread                    float64
	procPerThread, procPerThreadAll float64

	p25, p75  float64
	clean     float64
	nClean, n int
	waited    float64
	estimate  float64 // accounting mode only: the median estimate on cores of its own
	// helped is the share of onnxq's parallel loops over all runs that a
	// worker took part in; -1 where there were none (ORT, 1 thread).
	helped float64
}

// cleanWait is the run-queue wait, as a share of a run's wall time, below
// which the run counts as having had the cores it asked for.
//
// It is strict on a pool that spins while idle, onnxq's most: a spinning
// worker with nothing to do is runnable, so it waits in the run queue
// whenever another process wants its CPU, and onnxq's worker yields
// (sched_yield) as it spins, which hands the core over at once. Measured
// with a busy shell on the same CPU, over 300 ms: a yielding loop ran 4 ms
// and waited 296, a plain spinner (as ORT's workers spin) ran 94 and waited
// 215; with that CPU merely shared at load 2, 16 ms waited against 4. So
// the worker's idle spin reads as waiting even when no work waited for it:
// lstm at 2 threads, load 2, median wait 133% of the run and 1/25 runs
// clean, while its wall time (1.08 ms) matched its 1-thread time (1.03).
// Which waits delayed work is not in the counters, so the criterion stays;
// read a 2-thread row with few clean onnxq runs by its all-runs median.
const cleanWait = 0.03

func summarize(ss []sample) timing {
	walls := make([]time.Duration, len(ss))
	threads := make([]time.Duration, len(ss))
	quotients := make([]float64, 0, len(ss))
	var clean []time.Duration
	var waits []float64
	var thread, process time.Duration
	for i, s := range ss {
		walls[i], threads[i] = s.wall, s.thread
		thread += s.thread
		process += s.process
		if s.thread > 0 {
			quotients = append(quotients, float64(s.process)/float64(s.thread))
		}
		if s.waited >= 0 && float64(s.waited) < cleanWait*float64(s.wall) {
			clean = append(clean, s.wall)
		}
		if s.waited >= 0 && s.wall > 0 {
			waits = append(waits, float64(s.waited)/float64(s.wall))
		}
	}
	t := timing{wall: median(walls), thread: median(threads), n: len(ss), nClean: len(clean), helped: -1}
	var regions, helped int64
	for _, s := range ss {
		regions, helped = regions+s.regions, helped+s.helped
	}
	if regions > 0 {
		t.helped = float64(helped) / float64(regions)
	}
	var ests []time.Duration
	for _, s := range ss {
		if s.estimate > 0 {
			ests = append(ests, s.estimate)
		}
	}
	if len(ests) > 0 {
		t.estimate = median(ests)
	}
	t.p25, t.p75 = quantile(walls, 0.25), quantile(walls, 0.75)
	if len(clean) > 0 {
		t.clean = median(clean)
	}
	if len(waits) > 0 {
		sort.Float64s(waits)
		t.waited = waits[len(waits)/2]
	}
	if len(quotients) > 0 {
		sort.Float64s(quotients)
		t.procPerThread = quotients[len(quotients)/2]
	}
	if thread > 0 {
		t.procPerThreadAll = float64(process) / float64(thread)
	}
	return t
}

// quantile is the q-th quantile of ts in milliseconds, the nearest rank.
func quantile(ts []time.Duration, q float64) float64 {
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := min(len(s)-1, int(q*float64(len(s))))
	return float64(s[i].Microseconds()) / 1000
}

func median(ts []time.Duration) float64 { return quantile(ts, 0.5) }

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

// pinFor is the CPU a block of threads runs on: -pin's at 1 thread, none (-1) above.
func pinFor(threads int) int {
	if threads == 1 {
		return run.pin
	}
	return -1
}

// choosePin resolves -pin against the CPUs this process may run on.
func choosePin() error {
	if run.pin == -1 {
		return nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("-pin: %v", err)
	}
	if run.pin >= 0 {
		if !set.IsSet(run.pin) {
			return fmt.Errorf("-pin %d: not one of the CPUs this process may use", run.pin)
		}
		return nil
	}
	for cpu := 0; cpu < 1024; cpu++ {
		if set.IsSet(cpu) {
			run.pin = cpu
			return nil
		}
	}
	return fmt.Errorf("-pin: this process may use no CPU")
}

// int32Tensor wraps an int32 slice of a constant shape.
func int32Tensor(shape []int, data []int32) *graph.Tensor {
	t, err := graph.TensorOf(graph.Int32, shape, data)
	if err != nil {
		panic(err)
	}
	return t
}
