package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

// failsWith checks a failed run: the exit code, and one "onnxq:" line with
// want (plus the usage hint for usage errors).
func failsWith(t *testing.T, what string, code int, stderr string, wantCode int, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if wantCode == 2 && len(lines) == 2 && strings.Contains(lines[1], "see 'onnxq --help'") {
		lines = lines[:1]
	}
	if code != wantCode || len(lines) != 1 || !strings.Contains(lines[0], want) || strings.Contains(stderr, "panic") {
		t.Errorf("%s: exit %d (want %d), stderr %q, want one line with %q", what, code, wantCode, stderr, want)
	}
}

// llmModel is X [2, 3, 40] x W [40, 24] and, when withInput, that result x
// a graph input [24, 16] (a MatMul whose weight is not a constant).
func llmModel(t *testing.T, withInput bool) string {
	b := testmodels.NewBuilder(7, 17)
	y := b.MatMul(b.Input("x", 2, 3, 40), b.Const("proj.weight", []int{40, 24}, b.Normal(40*24, 0, 0.3)))
	if withInput {
		y = b.MatMul(y, b.Input("w2", 24, 16))
	}
	b.Output(y)
	p := filepath.Join(t.TempDir(), "llm.onnx")
	if err := graph.Save(b.M, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncodingsExportWeights(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	cal := demoCalib(t, dir, 4, func(i, j int) float32 { return float32((i*5+j)%11) / 4 })
	q := filepath.Join(dir, "demo.qdq.onnx")
	if code, _, errOut := runCLI("convert", model, "-o", q, "--calib", cal, "--no-measure"); code != 0 {
		t.Fatalf("convert: %s", errOut)
	}
	st := filepath.Join(dir, "w8a8.safetensors")
	code, out, errOut := runCLI("encodings", "export", q, "--format", "safetensors", "-o", st)
	if code != 0 || !strings.Contains(out, "4 layers (4 W8A8), 28 tensors") {
		t.Fatalf("export: exit %d, %q %q", code, out, errOut)
	}
	var desc map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "w8a8.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &desc); err != nil || desc["Conv_1.quant_bias"] != "W8A8" || desc["model_quant_type"] != "W8A8" {
		t.Errorf("description %v (%v)", desc, err)
	}
	folder := filepath.Join(dir, "npy")
	if code, out, errOut := runCLI("encodings", "export", q, "--format", "npy", "-o", folder); code != 0 || !strings.Contains(out, "one .npy per tensor") {
		t.Fatalf("npy export: exit %d, %q %q", code, out, errOut)
	}
	w, err := npy.ReadFile(filepath.Join(folder, "Gemm_1.weight.npy"))
	if err != nil || w.DType != graph.Int8 || len(w.Shape) != 2 || w.Shape[0] != 10 {
		t.Errorf("Gemm_1.weight.npy: %v %v", w, err)
	}

	// Bad input: one line, the right exit code, nothing written.
	bad := filepath.Join(dir, "bad")
	code, _, errOut = runCLI("encodings", "export", model, "--format", "safetensors", "-o", bad)
	failsWith(t, "float model", code, errOut, 1, "no quantized weights")
	code, _, errOut = runCLI("encodings", "export", q, "--format", "gguf", "-o", bad)
	failsWith(t, "unknown format", code, errOut, 2, `--format "gguf" is not one of`)
	code, _, errOut = runCLI("encodings", "export", q, "-o", bad)
	failsWith(t, "a model with an encodings format", code, errOut, 2, "is a model: --format aimet-1.0 reads an encodings file; a quantized model's weights are exported with --format safetensors, npy")
	code, _, errOut = runCLI("encodings", "export", q, "--format", "npy", "-o", filepath.Join(q, "out"))
	failsWith(t, "output under a file", code, errOut, 1, "cannot write")
	code, _, errOut = runCLI("encodings", "export", q, "--format", "safetensors", "-o", filepath.Join(dir, "missing", "deeper", "w.safetensors"))
	failsWith(t, "output in a missing folder", code, errOut, 1, "no such file or directory")
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("%s was written", bad)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
}

// TestWeightOnlyBadInput is issue 12's "Bad input" check, from the command
// line: block sizes that are not a power of two or are larger than K,
// MatMulNBits for a MatMul whose weight is not a constant, token samples of
// the wrong type or rank.
func TestWeightOnlyBadInput(t *testing.T) {
	dir := t.TempDir()
	model := llmModel(t, false)
	out := filepath.Join(dir, "q.onnx")
	var code int
	var errOut string
	wo := []string{"convert", model, "-o", out, "--no-measure", "--weight-only", "--weight-type", "int4"}
	rules := 0
	rule := func(r string) string {
		rules++
		p := filepath.Join(dir, fmt.Sprintf("rule%d.json", rules))
		if err := os.WriteFile(p, []byte(r), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"block 24", []string{"--weight-block-size", "24"}, "weight block size 24 is not a power of two"},
		{"block 64 > K 40", []string{"--weight-block-size", "64"}, "weight block size 64 is larger than K of every MatMul/Gemm weight (the largest K is 40)"},
		{"block 64 > K 40, matmulnbits", []string{"--weight-block-size", "64", "--weight-format", "matmulnbits"}, "larger than K"},
		{"defaults block 64 > K 40", []string{"--overrides", rule(`{"version": 1, "defaults": {"weight_granularity": "per_block", "weight_block_size": 64}}`)}, "weight block size 64 is larger than K of every MatMul/Gemm weight"},
		{"rule block 24", []string{"--overrides", rule(`{"version": 1, "tensors": {"proj.weight": {"granularity": "per_block", "block_size": 24}}}`)}, "block size 24 is not a power of two"},
	} {
		code, _, errOut := runCLI(append(wo, c.args...)...)
		failsWith(t, c.name, code, errOut, 1, c.want)
	}
	code, _, errOut = runCLI(append(wo, "--overrides", rule(`{"version": 1, "tensors": {"proj.weight": {"granularity": "per_block", "block_size": 64}}}`))...)
	failsWith(t, "rule block 64 > K", code, errOut, 1, "block size 64 is larger than K = 40")
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a model was written despite the errors")
	}
	// A block that fits K is fine; the same flag on a model whose second
	// MatMul reads a graph input leaves that one float (it is an activation
	// product) but a rule asking to pack it is an error.
	if code, _, errOut := runCLI(append(wo, "--weight-block-size", "32")...); code != 0 {
		t.Fatalf("block 32: %s", errOut)
	}
	// Beside a weight the block fits, one with a smaller K is per channel,
	// with a warning.
	b := testmodels.NewBuilder(7, 17)
	y := b.MatMul(b.Input("x", 2, 40), b.Const("a.weight", []int{40, 24}, b.Normal(40*24, 0, 0.3)))
	b.Output(b.MatMul(y, b.Const("b.weight", []int{24, 8}, b.Normal(24*8, 0, 0.3))))
	two := filepath.Join(dir, "two.onnx")
	if err := graph.Save(b.M, two); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI("convert", two, "-o", out, "--no-measure", "--weight-only", "--weight-type", "int4", "--weight-block-size", "32")
	if code != 0 || !strings.Contains(errOut, `1 weight(s) have K below the block size 32 (e.g. "b.weight"): each is one group per column`) {
		t.Errorf("K below the block: exit %d, %s", code, errOut)
	}
	mixed := llmModel(t, true)
	args := []string{"convert", mixed, "-o", out, "--no-measure", "--weight-only", "--weight-type", "int4", "--weight-block-size", "16", "--weight-format", "matmulnbits"}
	if code, _, errOut := runCLI(args...); code != 0 {
		t.Fatalf("mixed model: %s", errOut)
	}
	code, _, errOut = runCLI(append(args, "--overrides", rule(`{"version": 1, "nodes": {"MatMul_2": {"weight_dtype": "int4"}}}`))...)
	failsWith(t, "rule on a non-constant weight", code, errOut, 1, `MatMul "MatMul_2" reads "w2", a graph input, not a constant weight: it cannot be quantized as a weight or packed into MatMulNBits`)

	// Token samples: int64 [1, S] ids for a Gather embedding; float ids, int32
	// ids and [S] or [1, 1, S] arrays are refused by name.
	tok := tokenModel(t)
	write := func(name string, x *graph.Tensor) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteFile(filepath.Join(d, "0.npy"), x); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ids := []int64{1, 5, 9, 2, 31, 0, 7, 3}
	f := make([]float32, len(ids))
	i32 := make([]int32, len(ids))
	for i, v := range ids {
		f[i], i32[i] = float32(v), int32(v)
	}
	i32t, _ := graph.TensorOf(graph.Int32, []int{1, 8}, i32)
	if code, _, errOut := runCLI("convert", tok, "-o", out, "--no-measure", "--calib", write("good", graph.Int64Tensor([]int{1, 8}, ids))); code != 0 {
		t.Fatalf("int64 [1, 8] tokens: %s", errOut)
	}
	for _, c := range []struct {
		name string
		x    *graph.Tensor
		want string
	}{
		{"float", graph.Float32Tensor([]int{1, 8}, f), `input "input_ids" expects int64, the file holds float32`},
		{"int32", i32t, `input "input_ids" expects int64, the file holds int32`},
		{"rank1", graph.Int64Tensor([]int{8}, ids), `input "input_ids" expects rank 2 [1 8], the file holds rank 1 [8]`},
		{"rank3", graph.Int64Tensor([]int{1, 1, 8}, ids), `input "input_ids" expects rank 2 [1 8], the file holds rank 3 [1 1 8]`},
	} {
		code, _, errOut := runCLI("convert", tok, "-o", out, "--no-measure", "--calib", write(c.name, c.x))
		failsWith(t, "tokens "+c.name, code, errOut, 1, c.want)
	}
}

// tokenModel is input_ids int64 [1, 8] -> Gather(embed [32, 16]) ->
// MatMul [16, 8]: the shape of a language model's first layer.
func tokenModel(t *testing.T) string {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	b := testmodels.NewBuilder(3, 17)
	ids := g.AddInput("input_ids", graph.Int64, []int64{1, 8})
	table := g.AddInitializer("embed.weight", graph.Float32Tensor([]int{32, 16}, b.Normal(32*16, 0, 1)))
	h := g.AddNode("Gather", "Gather_1", []*graph.Value{table, ids}, []string{"h"})
	h.Output().SetTensorType(graph.Float, []int64{1, 8, 16})
	w := g.AddInitializer("proj.weight", graph.Float32Tensor([]int{16, 8}, b.Normal(16*8, 0, 0.3)))
	y := g.AddNode("MatMul", "MatMul_1", []*graph.Value{h.Output(), w}, []string{"logits"})
	y.Output().SetTensorType(graph.Float, []int64{1, 8, 8})
	g.AddOutput(y.Output())
	p := filepath.Join(t.TempDir(), "tok.onnx")
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEncodingsExportPerToken: a per-token dynamic model, in both formats,
// exports from the command line as W8A8_DYNAMIC, the same tensors either way.
func TestEncodingsExportPerToken(t *testing.T) {
	dir := t.TempDir()
	model := llmModel(t, false)
	var files [][]byte
	for _, format := range []string{"onnx", "ort"} {
		q := filepath.Join(dir, format+".onnx")
		if code, _, errOut := runCLI("convert", model, "-o", q, "--dynamic", "--dynamic-granularity", "token", "--weight-format", format, "--no-measure"); code != 0 {
			t.Fatalf("%s convert: %s", format, errOut)
		}
		out := filepath.Join(dir, format)
		code, stdout, errOut := runCLI("encodings", "export", q, "--format", "safetensors", "-o", out)
		if code != 0 || !strings.Contains(stdout, "(1 W8A8_DYNAMIC), 3 tensors") {
			t.Fatalf("%s export: exit %d, %q %q", format, code, stdout, errOut)
		}
		b, err := os.ReadFile(filepath.Join(out, "quant_model_weight.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if string(files[0]) != string(files[1]) {
		t.Error("the standard and ORT per-token forms export different tensors")
	}
}
