package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1500": 1500, "64KiB": 64 << 10, "1.5GiB": 3 << 29, "2GB": 2e9, "512 MB": 512e6, "10B": 10} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1MB", "0", "12XB", "1e30GB", "NaN"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// A weight-only conversion of a model with external data streams; the output
// in chunks inspects and runs like the library's run of it.
func TestConvertStreamingChunks(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "llama.onnx")
	c := testmodels.LlamaConfig{Dim: 64, Hidden: 176, Layers: 2, Heads: 8, KVHeads: 2, Vocab: 300, Seq: 5, Seed: 3}
	if err := testmodels.WriteLlama(src, c); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "q.onnx")
	code, _, errOut := runCLI("convert", src, "-o", out, "--weight-only", "--weight-type", "int4", "--weight-block-size", "32", "--weight-format", "matmulnbits", "--external-data-chunk", "64KiB")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "streaming weight-only conversion") {
		t.Errorf("summary does not say the conversion streamed: %s", errOut)
	}
	for _, f := range []string{"q.onnx.data.0", "q.onnx.data.1"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	code, stdout, errOut := runCLI("inspect", out)
	if code != 0 || !strings.Contains(stdout, "MatMulNBits") || !strings.Contains(stdout, "q.onnx.data.0") {
		t.Errorf("inspect: exit %d: %s %s", code, stdout, errOut)
	}
	ids := graph.Int64Tensor([]int{1, c.Seq}, []int64{3, 1, 4, 1, 5})
	in := filepath.Join(dir, "ids.npy")
	if err := npy.WriteFile(in, ids); err != nil {
		t.Fatal(err)
	}
	res := filepath.Join(dir, "out")
	if code, _, errOut := runCLI("run", out, "--input", "input_ids="+in, "-o", res); code != 0 {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	got, err := npy.ReadFile(filepath.Join(res, "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kernels.NewSession(m, kernels.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Run(map[string]*graph.Tensor{"input_ids": ids})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Float32s()) != fmt.Sprint(want["logits"].Float32s()) {
		t.Error("onnxq run's logits differ from the library's")
	}
	// A bad size is a usage error that writes nothing.
	code, _, errOut = runCLI("convert", src, "-o", filepath.Join(dir, "bad.onnx"), "--weight-only", "--external-data-chunk", "12XB")
	if code != 2 || !strings.Contains(errOut, "--external-data-chunk") {
		t.Errorf("bad chunk size: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.onnx")); !os.IsNotExist(err) {
		t.Error("a usage error wrote a model")
	}
}
