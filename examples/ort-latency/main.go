//go:build ort

// Command ort-latency times models with the same input in ONNX Runtime
// (the library `make testdata` installs), interleaved so that load on a
// shared machine hits every model alike, and prints each model's median and
// its ratio to the first model's:
//
//	go run -tags ort ./examples/ort-latency -input x.npy -runs 30 float.onnx a.qdq.onnx b.qdq.onnx
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	input := flag.String("input", "", "the input tensor (.npy), fed to every model's one input")
	runs := flag.Int("runs", 20, "timed runs per model (after one warm-up)")
	threads := flag.Int("threads", 1, "ONNX Runtime intra-op threads")
	flag.Parse()
	if *input == "" || flag.NArg() == 0 || *runs < 1 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "usage: ort-latency -input x.npy [-runs N] [-threads T] MODEL.onnx...")
		os.Exit(2)
	}
	if err := timeModels(*input, flag.Args(), *runs, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "ort-latency:", err)
		os.Exit(1)
	}
}

func timeModels(input string, models []string, runs, threads int) error {
	lib := testdata.ORTLibraryPath()
	if err := ortref.Init(lib); err != nil {
		return fmt.Errorf("ONNX Runtime at %s: %v (run make testdata)", lib, err)
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
	times := make([][]time.Duration, len(models))
	for r := 0; r < runs; r++ {
		for i, s := range sessions {
			start := time.Now()
			if _, err := s.Run(feeds[i]); err != nil {
				return fmt.Errorf("%s: %v", models[i], err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	med := make([]float64, len(models))
	for i := range models {
		sort.Slice(times[i], func(a, b int) bool { return times[i][a] < times[i][b] })
		med[i] = float64(times[i][len(times[i])/2].Microseconds()) / 1000
	}
	for i, p := range models {
		fmt.Printf("%-50s median %8.2f ms  min %8.2f ms  x%.2f of %s\n", p, med[i], float64(times[i][0].Microseconds())/1000, med[i]/med[0], filepath.Base(models[0]))
	}
	return nil
}
