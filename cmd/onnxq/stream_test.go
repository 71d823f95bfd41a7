package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

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
	// The run config's external_data_chunk splits the same way; the flag
	// overrides it.
	cfg := writeConfig(t, dir, "run.toml", "external_data_chunk = \"64KiB\"\n")
	big := writeConfig(t, dir, "big.toml", "external_data_chunk = 1000000000\n")
	args := []string{"--weight-only", "--weight-type", "int4", "--weight-block-size", "32", "--weight-format", "matmulnbits", "--no-measure"}
	byConfig := filepath.Join(dir, "config", "q.onnx")
	byFlag := filepath.Join(dir, "flag", "q.onnx")
	for _, run := range [][]string{
		append([]string{"convert", src, "-o", byConfig, "--config", cfg}, args...),
		// 1 GB from the file alone would write one file; the flag wins.
		append([]string{"convert", src, "-o", byFlag, "--config", big, "--external-data-chunk", "64KiB"}, args...),
	} {
		os.MkdirAll(filepath.Dir(run[3]), 0o755)
		if code, _, errOut := runCLI(run...); code != 0 {
			t.Fatalf("%v: exit %d: %s", run, code, errOut)
		}
	}
	files := func(d string) []string {
		entries, _ := os.ReadDir(filepath.Join(dir, d))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if a, b := files("config"), files("flag"); len(a) < 3 || !slices.Equal(a, b) {
		t.Errorf("config run wrote %v, flag run %v: want the same model and two or more chunks", a, b)
	}
	for _, f := range files("config") {
		a, errA := os.ReadFile(filepath.Join(dir, "config", f))
		b, errB := os.ReadFile(filepath.Join(dir, "flag", f))
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Errorf("%s: config and flag runs differ (%v, %v)", f, errA, errB)
		}
	}
	code, stdout, errOut = runCLI("convert", src, "--config", cfg, "--external-data-chunk", "2GB", "--print-config")
	if code != 0 || !strings.Contains(stdout, "external_data_chunk = '2GB'") {
		t.Errorf("print-config: exit %d: %s %s", code, stdout, errOut)
	}
	// A bad size in the file names its line; nothing is written.
	code, _, errOut = runCLI("convert", src, "-o", filepath.Join(dir, "bad.onnx"), "--weight-only", "--config", writeConfig(t, dir, "bad.toml", "threads = 1\nexternal_data_chunk = \"2 XB\"\n"))
	if code != 1 || !strings.Contains(errOut, `bad.toml:2: external_data_chunk: "2 XB" is not a size`) {
		t.Errorf("bad chunk size in the config: exit %d: %s", code, errOut)
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

// writeConfig writes a run config named name into dir.
func writeConfig(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
