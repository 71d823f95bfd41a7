//go:build ort

// Command benchort times onnxq's executor against ONNX Runtime on the same models,
// inputs and thread counts, and prints median milliseconds and the ratio
// onnxq / ORT. Run it with `make bench`.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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
	input      string
	shape      []int
}

func main() {
	runs := flag.Int("runs", 15, "timed runs per engine, model and thread count (after warm-up)")
	bin := flag.String("onnxq", "bin/onnxq", "onnxq binary, for the peak RSS of `onnxq run`")
	flag.Parse()
	tb := tbShim{}
	if err := ortref.Init(testdata.ORTLibrary(tb)); err != nil {
		fail(err)
	}
	tmp, err := os.MkdirTemp("", "benchort")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(tmp)
	resnet := filepath.Join(tmp, "resnet50-bnfolded.onnx")
	if err := graph.Save(testmodels.ResNet50(1, 1, false), resnet); err != nil {
		fail(err)
	}
	models := []model{
		{"PaddleOCR det", testdata.OCRModel(tb, "det"), "x", []int{1, 3, 640, 640}},
		{"PaddleOCR rec", testdata.OCRModel(tb, "rec"), "x", []int{1, 3, 48, 320}},
		{"PaddleOCR cls", testdata.OCRModel(tb, "cls"), "x", []int{1, 3, 48, 192}},
		{"ResNet-50 (BN folded)", resnet, "input", []int{1, 3, 224, 224}},
	}
	fmt.Printf("GEMM micro-kernel: %s; %d timed runs each, medians\n\n", gemm.KernelName(), *runs)
	fmt.Printf("%-24s %7s %12s %12s %8s\n", "model", "threads", "onnxq ms", "ORT ms", "ratio")
	for _, m := range models {
		h, w := m.shape[2], m.shape[3]
		x := testdata.ImageNetNormalized(testdata.TextImage(h, w, 1), h, w)
		in := map[string]*graph.Tensor{m.input: x}
		for _, threads := range []int{1, 2} {
			ours := timeOnnxq(m.path, in, threads, *runs)
			theirs := timeORT(m.path, in, threads, *runs)
			fmt.Printf("%-24s %7d %12.2f %12.2f %8.2f\n", m.name, threads, ours, theirs, ours/theirs)
		}
	}
	// Peak RSS of the CLI on the det model, one forward pass.
	in := filepath.Join(tmp, "det.npy")
	if err := npy.WriteFile(in, testdata.ImageNetNormalized(testdata.TextImage(640, 640, 1), 640, 640)); err != nil {
		fail(err)
	}
	out, err := exec.Command(*bin, "run", models[0].path, "--input", in, "--timing", "--threads", "1").CombinedOutput()
	if err != nil {
		fail(fmt.Errorf("%s: %v: %s", *bin, err, out))
	}
	if m := regexp.MustCompile(`peak RSS ([0-9.]+ MiB)`).FindSubmatch(out); m != nil {
		fmt.Printf("\npeak RSS of `onnxq run` on PaddleOCR det (1x3x640x640): %s\n", m[1])
	}
}

func median(ts []time.Duration) float64 {
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return float64(ts[len(ts)/2].Microseconds()) / 1000
}

func timeOnnxq(path string, in map[string]*graph.Tensor, threads, runs int) float64 {
	m, err := graph.Load(path)
	if err != nil {
		fail(err)
	}
	s, err := kernels.NewSession(m, kernels.Options{Threads: threads})
	if err != nil {
		fail(err)
	}
	return timeRuns(runs, func() error { _, err := s.Run(in); return err })
}

func timeORT(path string, in map[string]*graph.Tensor, threads, runs int) float64 {
	s, err := ortref.NewSession(path, threads)
	if err != nil {
		fail(err)
	}
	defer s.Close()
	return timeRuns(runs, func() error { _, err := s.Run(in); return err })
}

// timeRuns warms up twice, then returns the median milliseconds of runs calls.
func timeRuns(runs int, run func() error) float64 {
	for i := 0; i < 2; i++ {
		if err := run(); err != nil {
			fail(err)
		}
	}
	ts := make([]time.Duration, runs)
	for i := range ts {
		start := time.Now()
		if err := run(); err != nil {
			fail(err)
		}
		ts[i] = time.Since(start)
	}
	return median(ts)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchort:", err)
	os.Exit(1)
}
