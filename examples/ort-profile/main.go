//go:build ort

// Command ort-profile shows what ONNX Runtime makes of a model: it writes the
// graph as ORT will run it (after its QDQ fusions), counts the op types in it
// (QLinearConv, QLinearAdd, ... are integer kernels; a DequantizeLinear or
// QuantizeLinear left over is a float op with conversions around it), and
// profiles the runs: each node's median time, summed per op type:
//
//	go run -tags ort ./examples/ort-profile -input x.npy -runs 20 model.qdq.onnx
//
// Give it the float model and the QDQ model together to see where the time
// goes: their runs alternate, so load on a shared machine reaches both alike,
// and -tsv writes each one's per-node medians.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	input := flag.String("input", "", "the input tensor (.npy), fed to the model's one data input")
	runs := flag.Int("runs", 20, "profiled runs (after one warm-up)")
	threads := flag.Int("threads", 1, "ONNX Runtime intra-op threads")
	level := flag.String("level", "all", "ORT graph optimization level: none, basic, extended or all")
	optimized := flag.String("o", "", "also keep ORT's optimized model at this path (one model only)")
	nodes := flag.Int("nodes", 0, "also print the N slowest nodes")
	fast := flag.Bool("min", false, "per node, the fastest run instead of the median (a shared, noisy machine's best case)")
	tsv := flag.String("tsv", "", "also write every node's median (with -min, fastest) kernel time to this file (node, op type, microseconds; tab-separated); with several models, to FILE.MODEL.tsv")
	flag.Parse()
	levels := map[string]ortref.Optimization{"none": ortref.OptNone, "basic": ortref.OptBasic, "extended": ortref.OptExtended, "all": ortref.OptAll}
	lv, ok := levels[*level]
	if *input == "" || flag.NArg() < 1 || *runs < 1 || *threads < 1 || !ok || (*optimized != "" && flag.NArg() > 1) {
		fmt.Fprintln(os.Stderr, "usage: ort-profile -input x.npy [-runs N] [-threads T] [-level all] [-o optimized.onnx] [-nodes N] [-tsv nodes.tsv] [-min] MODEL.onnx...")
		os.Exit(2)
	}
	if err := profile(flag.Args(), *input, *optimized, *tsv, lv, *runs, *threads, *nodes, *fast); err != nil {
		fmt.Fprintln(os.Stderr, "ort-profile:", err)
		os.Exit(1)
	}
}

// profile runs the models in turn, one run each per round, so that load on a
// shared machine reaches them alike, and reports each model's per-node
// medians over the rounds.
func profile(paths []string, input, optimized, tsv string, level ortref.Optimization, runs, threads, slowest int, fastest bool) error {
	if err := ortref.InitBundled(); err != nil {
		return err
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
	sessions := make([]*ortref.Session, len(paths))
	feeds := make([]map[string]*graph.Tensor, len(paths))
	opt := make([]string, len(paths))
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, path := range paths {
		m, err := graph.Load(path)
		if err != nil {
			return err
		}
		ins := dataset.InputsOf(m)
		if len(ins) == 0 {
			return fmt.Errorf("%s has no data input", path)
		}
		feeds[i] = map[string]*graph.Tensor{ins[0].Name: x}
		opt[i] = filepath.Join(tmp, fmt.Sprintf("optimized%d.onnx", i))
		if optimized != "" {
			opt[i] = optimized
		}
		o := ortref.Options{Threads: threads, Level: level, OptimizedModel: opt[i], ProfilePrefix: filepath.Join(tmp, fmt.Sprintf("prof%d-", i))}
		if sessions[i], err = ortref.NewSessionOpts(path, o); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	}
	for r := 0; r <= runs; r++ {
		for k := range sessions {
			i := (r + k) % len(sessions)
			if _, err := sessions[i].Run(feeds[i]); err != nil {
				return fmt.Errorf("%s: %v", paths[i], err)
			}
		}
	}
	for i, path := range paths {
		sessions[i].Close() // writes the trace
		sessions[i] = nil
		if len(paths) > 1 {
			fmt.Printf("== %s\n", path)
		}
		if err := printOps(opt[i]); err != nil {
			return err
		}
		traces, _ := filepath.Glob(filepath.Join(tmp, fmt.Sprintf("prof%d-*.json", i)))
		if len(traces) != 1 {
			return fmt.Errorf("ORT wrote %d profile traces for %s, want 1", len(traces), path)
		}
		out := tsv
		if tsv != "" && len(paths) > 1 {
			out = strings.TrimSuffix(tsv, ".tsv") + "." + strings.TrimSuffix(filepath.Base(path), ".onnx") + ".tsv"
		}
		if err := printProfile(traces[0], out, runs+1, slowest, fastest); err != nil {
			return err
		}
	}
	return nil
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

// printProfile reads the trace: each node's median kernel time over the
// runs (the warm-up run, the first, left out; a median because a loaded
// machine stalls single runs), summed per op type, and each run's median
// model_run time.
func printProfile(path, tsv string, runs, slowest int, fastest bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var evs []event
	if err := json.Unmarshal(b, &evs); err != nil {
		return fmt.Errorf("profile %s: %v", path, err)
	}
	perNode := map[string][]float64{}
	nodeOp := map[string]string{}
	var model []float64
	for _, e := range evs {
		switch {
		case e.Cat == "Node" && strings.HasSuffix(e.Name, "_kernel_time"):
			node := strings.TrimSuffix(e.Name, "_kernel_time")
			perNode[node] = append(perNode[node], e.Dur)
			nodeOp[node] = e.Args.OpName
		case e.Cat == "Session" && e.Name == "model_run":
			model = append(model, e.Dur)
		}
	}
	med := map[string]int{} // nanoseconds
	perOp := map[string]int{}
	total := 0
	for k, d := range perNode {
		if len(d) > 1 && len(d) == runs {
			d = d[1:]
		}
		if fastest {
			med[k] = int(slices.Min(d) * 1000) // a shared machine's best case: its neighbours stall single runs
		} else {
			med[k] = int(median(d) * 1000)
		}
		perOp[nodeOp[k]] += med[k]
		total += med[k]
	}
	if len(model) > 1 && len(model) == runs {
		model = model[1:]
	}
	stat := "medians"
	if fastest {
		stat = "fastest runs"
	}
	fmt.Printf("kernel time per run (sum of node %s): %.2f ms (median model_run %.2f ms), by op type:\n", stat, float64(total)/1e6, median(model)/1000)
	printSorted(perOp, func(v int) string {
		return fmt.Sprintf("%8.3f ms %5.1f%%", float64(v)/1e6, 100*float64(v)/float64(total))
	})
	if tsv != "" {
		var b strings.Builder
		for _, k := range sortedKeys(med) {
			fmt.Fprintf(&b, "%s\t%s\t%.1f\n", k, nodeOp[k], float64(med[k])/1000)
		}
		if err := os.WriteFile(tsv, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if slowest > 0 {
		keys := sortedKeys(med)
		if len(keys) > slowest {
			keys = keys[:slowest]
		}
		fmt.Println("slowest nodes:")
		for _, k := range keys {
			fmt.Printf("  %8.3f ms  %s (%s)\n", float64(med[k])/1e6, k, nodeOp[k])
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
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
