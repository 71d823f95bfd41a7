// Command token-samples writes calibration samples for a language model from
// windows of token ids (an int64 [windows, length] .npy such as stories260K's
// tinystories_dev_ids.npy): one subfolder per model input, the i-th file of
// each forming sample i, as `onnxq convert --calib` reads them. input_ids get a
// window's first -len tokens; an attention mask is all ones, position ids count
// from 0, and a KV-cache input (a float input with one symbolic dimension
// besides the batch, e.g. past_key_values.0.key [batch, 4, past, 8]) is empty
// along it: the first call of a generation.
//
//	go run ./examples/token-samples -model stories260K_kv.onnx -ids tinystories_dev_ids.npy -n 16 -len 64 -o calib/
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
)

func main() {
	model := flag.String("model", "", "the model whose inputs the samples feed")
	ids := flag.String("ids", "", "int64 [windows, length] .npy of token ids")
	first := flag.Int("first", 0, "first window to use")
	n := flag.Int("n", 16, "number of samples (one window each)")
	length := flag.Int("len", 64, "tokens per sample (at most the window length)")
	out := flag.String("o", "", "output folder (created if missing)")
	flag.Parse()
	if *model == "" || *ids == "" || *out == "" || *n < 1 || *length < 1 || *first < 0 {
		fmt.Fprintln(os.Stderr, "usage: token-samples -model M.onnx -ids windows.npy -n N -len S [-first W] -o DIR")
		os.Exit(2)
	}
	if err := run(*model, *ids, *first, *n, *length, *out); err != nil {
		fmt.Fprintln(os.Stderr, "token-samples:", err)
		os.Exit(1)
	}
}

func run(modelPath, idsPath string, first, n, length int, out string) error {
	m, err := graph.Load(modelPath)
	if err != nil {
		return err
	}
	win, err := npy.ReadFile(idsPath)
	if err != nil {
		return err
	}
	if win.DType != graph.Int64 || win.Rank() != 2 {
		return fmt.Errorf("%s: want int64 [windows, length] token ids, got %s%v", idsPath, win.DType.Short(), win.Shape)
	}
	if first+n > win.Shape[0] || length > win.Shape[1] {
		return fmt.Errorf("%s holds %d windows of %d tokens; asked for windows %d..%d of %d tokens", idsPath, win.Shape[0], win.Shape[1], first, first+n-1, length)
	}
	inputs := dataset.InputsOf(m)
	for _, in := range inputs {
		if err := os.MkdirAll(filepath.Join(out, in.Name), 0o755); err != nil {
			return err
		}
	}
	all := win.Int64s()
	for s := 0; s < n; s++ {
		row := all[(first+s)*win.Shape[1]:]
		for _, in := range inputs {
			t, err := tensorFor(in, row[:length])
			if err != nil {
				return err
			}
			if err := npy.WriteFile(filepath.Join(out, in.Name, fmt.Sprintf("%04d.npy", first+s)), t); err != nil {
				return err
			}
		}
	}
	return nil
}

// tensorFor builds one input of a sample from its token ids.
func tensorFor(in dataset.Input, tokens []int64) (*graph.Tensor, error) {
	s := len(tokens)
	vals := make([]int64, s)
	switch in.Name {
	case "input_ids":
		copy(vals, tokens)
	case "attention_mask":
		for i := range vals {
			vals[i] = 1
		}
	case "position_ids":
		for i := range vals {
			vals[i] = int64(i)
		}
	default:
		return emptyCache(in)
	}
	switch in.DType {
	case graph.Int64:
		return graph.Int64Tensor([]int{1, s}, vals), nil
	case graph.Int32:
		t := graph.NewTensor(graph.Int32, []int{1, s})
		d := t.Data().([]int32)
		for i, v := range vals {
			d[i] = int32(v)
		}
		return t, nil
	}
	return nil, fmt.Errorf("input %q is %s, want int64 or int32 token data", in.Name, in.DType.Short())
}

// emptyCache is a KV-cache input with batch 1 and its one other symbolic
// dimension (the past length) 0.
func emptyCache(in dataset.Input) (*graph.Tensor, error) {
	if in.DType != graph.Float || len(in.Dims) < 2 {
		return nil, fmt.Errorf("input %q (%s%v) is neither token data nor a float KV cache", in.Name, in.DType.Short(), in.Dims)
	}
	shape := make([]int, len(in.Dims))
	var free []int
	for i, d := range in.Dims {
		shape[i] = int(d)
		if d < 0 {
			free = append(free, i)
		}
	}
	// The batch is the first symbolic dimension (axis 0, or axis 1 for GPT-2's
	// stacked [2, batch, heads, past, head size]); the past length the last.
	if len(free) != 2 {
		return nil, fmt.Errorf("input %q %v: want a KV cache with two symbolic dimensions (batch, past length)", in.Name, in.Dims)
	}
	shape[free[0]], shape[free[1]] = 1, 0
	return graph.NewTensor(graph.Float, shape), nil
}
