//go:build ort

// Command ort-profile shows what ONNX Runtime makes of a model: it writes the
// graph as ORT will run it (after its QDQ fusions), counts the op types in it
// (QLinearConv, QLinearAdd, ... are integer kernels; a DequantizeLinear or
// QuantizeLinear left over is a float op with conversions around it), and
// profiles the runs, summing the time per op type:
//
//	go run -tags ort ./examples/ort-profile -input x.npy -runs 20 model.qdq.onnx
//
// Run it on the float model and on the QDQ model to see where the time goes.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	input := flag.String("input", "", "the input tensor (.npy), fed to the model's one data input")
	runs := flag.Int("runs", 20, "profiled runs (after one warm-up)")
	threads := flag.Int("threads", 1, "ONNX Runtime intra-op threads")
	level := flag.String("level", "all", "ORT graph optimization level: none, basic, extended or all")
	optimized := flag.String("o", "", "also keep ORT's optimized model at this path")
	nodes := flag.Int("nodes", 0, "also print the N slowest nodes")
	flag.Parse()
	levels := map[string]ortref.Optimization{"none": ortref.OptNone, "basic": ortref.OptBasic, "extended": ortref.OptExtended, "all": ortref.OptAll}
	lv, ok := levels[*level]
	if *input == "" || flag.NArg() != 1 || *runs < 1 || *threads < 1 || !ok {
		fmt.Fprintln(os.Stderr, "usage: ort-profile -input x.npy [-runs N] [-threads T] [-level all] [-o optimized.onnx] [-nodes N] MODEL.onnx")
		os.Exit(2)
	}
	if err := profile(flag.Arg(0), *input, *optimized, lv, *runs, *threads, *nodes); err != nil {
		fmt.Fprintln(os.Stderr, "ort-profile:", err)
		os.Exit(1)
	}
}

func profile(path, input, optimized string, level ortref.Optimization, runs, threads, slowest int) error {
	lib := testdata.ORTLibraryPath()
	if err := ortref.Init(lib); err != nil {
		return fmt.Errorf("ONNX Runtime at %s: %v (run make testdata)", lib, err)
	}
	m, err := graph.Load(path)
	if err != nil {
		return err
	}
	ins := dataset.InputsOf(m)
	if len(ins) == 0 {
		return fmt.Errorf("%s has no data input", path)
	}
	x, err := npy.ReadFile(input)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ort-profile")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if optimized == "" {
		optimized = filepath.Join(tmp, "optimized.onnx")
	}
	s, err := ortref.NewSessionOpts(path, ortref.Options{Threads: threads, Level: level, OptimizedModel: optimized, ProfilePrefix: filepath.Join(tmp, "prof")})
	if err != nil {
		return err
	}
	feed := map[string]*graph.Tensor{ins[0].Name: x}
	for r := 0; r <= runs; r++ {
		if _, err := s.Run(feed); err != nil {
			s.Close()
			return err
		}
	}
	s.Close() // writes the trace
	if err := printOps(optimized); err != nil {
		return err
	}
	traces, _ := filepath.Glob(filepath.Join(tmp, "prof*.json"))
	if len(traces) != 1 {
		return fmt.Errorf("ORT wrote %d profile traces, want 1", len(traces))
	}
	return printProfile(traces[0], runs+1, slowest)
}

// printOps counts the op types of ORT's optimized graph.
func printOps(path string) error {
	m, err := graph.Load(path)
	if err != nil {
		return fmt.Errorf("ORT's optimized model: %v", err)
	}
	count := map[string]int{}
	for _, n := range m.Graph.Nodes {
		count[n.OpType]++
	}
	fmt.Printf("ORT's optimized graph: %d nodes\n", len(m.Graph.Nodes))
	printSorted(count, func(v int) string { return fmt.Sprintf("%4d", v) })
	return nil
}

// event is one record of ORT's Chrome-trace profile.
type event struct {
	Cat  string  `json:"cat"`
	Name string  `json:"name"`
	Dur  float64 `json:"dur"` // microseconds
	Args struct {
		OpName string `json:"op_name"`
	} `json:"args"`
}

// printProfile sums the kernel times per op type over the runs (the first,
// warm-up run included in the trace, so it divides by all of them).
func printProfile(path string, runs, slowest int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var evs []event
	if err := json.Unmarshal(b, &evs); err != nil {
		return fmt.Errorf("profile %s: %v", path, err)
	}
	perOp := map[string]float64{}
	perNode := map[string]float64{}
	var total, model float64
	for _, e := range evs {
		switch {
		case e.Cat == "Node" && strings.HasSuffix(e.Name, "_kernel_time"):
			perOp[e.Args.OpName] += e.Dur
			perNode[strings.TrimSuffix(e.Name, "_kernel_time")+" ("+e.Args.OpName+")"] += e.Dur
			total += e.Dur
		case e.Cat == "Session" && e.Name == "model_run":
			model += e.Dur
		}
	}
	fmt.Printf("kernel time per run: %.2f ms (model_run %.2f ms), by op type:\n", total/float64(runs)/1000, model/float64(runs)/1000)
	ms := map[string]int{}
	for k, v := range perOp {
		ms[k] = int(v / float64(runs))
	}
	printSorted(ms, func(v int) string {
		return fmt.Sprintf("%8.3f ms %5.1f%%", float64(v)/1000, 100*float64(v)*float64(runs)/total)
	})
	if slowest > 0 {
		mn := map[string]int{}
		for k, v := range perNode {
			mn[k] = int(v / float64(runs))
		}
		keys := sortedKeys(mn)
		if len(keys) > slowest {
			keys = keys[:slowest]
		}
		fmt.Println("slowest nodes:")
		for _, k := range keys {
			fmt.Printf("  %8.3f ms  %s\n", float64(mn[k])/1000, k)
		}
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

func printSorted(m map[string]int, format func(int) string) {
	for _, k := range sortedKeys(m) {
		fmt.Printf("  %s  %s\n", format(m[k]), k)
	}
}
