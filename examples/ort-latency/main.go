//go:build ort

// Command ort-latency times models with the same input in ONNX Runtime
// (the library `make testdata` installs), interleaved so that load on a
// shared machine hits every model alike:
//
//	go run -tags ort ./examples/ort-latency -input x.npy -runs 30 float.onnx a.qdq.onnx b.qdq.onnx
//
// Each round runs every model once, starting from a different model each
// round so no model always follows the same one. Per model it prints the
// median time and, against the first model, the median of the per-round
// ratios with their quartiles: a ratio taken within one round sees the same
// load on both sides, so its spread says whether a difference is beyond the
// noise. At 1 thread ONNX Runtime computes on the calling thread, and the
// ratios are also given in that thread's CPU time (-clock thread or both),
// which leaves out the waits for a core that swing wall time on a loaded
// machine.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	input := flag.String("input", "", "the input tensor (.npy), fed to every model's one input")
	runs := flag.Int("runs", 20, "timed rounds (after one warm-up run per model)")
	threads := flag.Int("threads", 1, "ONNX Runtime intra-op threads")
	clock := flag.String("clock", "both", "wall, thread (CPU time of the calling thread; 1 thread only) or both")
	flag.Parse()
	if *input == "" || flag.NArg() == 0 || *runs < 1 || *threads < 1 || (*clock != "wall" && *clock != "thread" && *clock != "both") {
		fmt.Fprintln(os.Stderr, "usage: ort-latency -input x.npy [-runs N] [-threads T] [-clock wall|thread|both] MODEL.onnx...")
		os.Exit(2)
	}
	if *clock == "thread" && *threads != 1 {
		fmt.Fprintln(os.Stderr, "ort-latency: -clock thread needs -threads 1 (with more, ONNX Runtime computes on its own pool threads)")
		os.Exit(2)
	}
	if err := timeModels(*input, flag.Args(), *runs, *threads, *clock); err != nil {
		fmt.Fprintln(os.Stderr, "ort-latency:", err)
		os.Exit(1)
	}
}

// sample is one run's wall time and the CPU time of the thread that ran it.
type sample struct{ wall, thread time.Duration }

func timeModels(input string, models []string, runs, threads int, clock string) error {
	if err := ortref.InitBundled(); err != nil {
		return err
	}
	x, err := npy.ReadFile(input)
	if err != nil {
		return err
	}
	sessions := make([]*ortref.Session, len(models))
	feeds := make([]map[string]*graph.Tensor, len(models))
	for i, p := range models {
		m, err := graph.Load(p)
		if err != nil {
			return err
		}
		ins := dataset.InputsOf(m)
		if len(ins) == 0 {
			return fmt.Errorf("%s has no data input", p)
		}
		feeds[i] = map[string]*graph.Tensor{ins[0].Name: x}
		if sessions[i], err = ortref.NewSession(p, threads); err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
		defer sessions[i].Close()
		if _, err := sessions[i].Run(feeds[i]); err != nil { // warm-up
			return fmt.Errorf("%s: %v", p, err)
		}
	}
	// The thread clock is read on the thread that calls into ONNX Runtime.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	times := make([][]sample, len(models))
	for r := 0; r < runs; r++ {
		for k := range sessions {
			i := (r + k) % len(sessions)
			s, err := timeRun(func() error { _, err := sessions[i].Run(feeds[i]); return err })
			if err != nil {
				return fmt.Errorf("%s: %v", models[i], err)
			}
			times[i] = append(times[i], s)
		}
	}
	clocks := []string{"wall", "thread"}
	if clock != "both" {
		clocks = []string{clock}
	} else if threads != 1 {
		clocks = []string{"wall"}
	}
	base := filepath.Base(models[0])
	for _, c := range clocks {
		pick := func(s sample) float64 {
			if c == "thread" {
				return float64(s.thread.Microseconds()) / 1000
			}
			return float64(s.wall.Microseconds()) / 1000
		}
		fmt.Printf("%s clock, %d threads, %d rounds; ratio: median [quartiles] of the per-round ratios to %s\n", c, threads, runs, base)
		for i, p := range models {
			ms := make([]float64, runs)
			ratio := make([]float64, runs)
			for r := range runs {
				ms[r] = pick(times[i][r])
				ratio[r] = ms[r] / pick(times[0][r])
			}
			q := quartiles(ratio)
			fmt.Printf("  %-48s median %8.2f ms  min %8.2f ms  ratio %.3f [%.3f %.3f]\n", p, quartiles(ms)[1], minOf(ms), q[1], q[0], q[2])
		}
	}
	return nil
}

// timeRun runs f and reads the wall clock and the calling thread's CPU clock
// around it (the caller has locked its OS thread).
func timeRun(f func() error) (sample, error) {
	start := time.Now()
	t0, err := threadCPU()
	if err != nil {
		return sample{}, err
	}
	if err := f(); err != nil {
		return sample{}, err
	}
	t1, err := threadCPU()
	if err != nil {
		return sample{}, err
	}
	return sample{wall: time.Since(start), thread: t1 - t0}, nil
}

func threadCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime: %v", err)
	}
	return time.Duration(ts.Nano()), nil
}

// quartiles returns the first quartile, the median and the third quartile
// (nearest rank).
func quartiles(v []float64) [3]float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	at := func(p float64) float64 { return s[int(p*float64(len(s)-1)+0.5)] }
	return [3]float64{at(0.25), at(0.5), at(0.75)}
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}
