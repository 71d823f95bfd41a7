package testmodels_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/testmodels"
)

// smallLlama is a few-MB decoder with every part of the big one (GQA included).
var smallLlama = testmodels.LlamaConfig{Dim: 64, Hidden: 176, Layers: 2, Heads: 8, KVHeads: 2, Vocab: 300, Seq: 5, Seed: 3}

func TestWriteLlama(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llama.onnx")
	if err := testmodels.WriteLlama(path, smallLlama); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path + ".data")
	if err != nil {
		t.Fatal(err)
	}
	// Every weight is external, each at a 4 KiB boundary.
	want := smallLlama.WeightBytes()
	if st.Size() < want || st.Size() > want+4096*int64(9*smallLlama.Layers+3) {
		t.Errorf("data file %d bytes for %d bytes of weights", st.Size(), want)
	}
	m, err := graph.LoadWith(path, graph.LoadOptions{LazyExternal: true})
	if err != nil {
		t.Fatal(err)
	}
	lazy := 0
	for _, v := range m.Graph.Initializers {
		if v.Const.Lazy() {
			lazy++
			if v.Const.Loaded() {
				t.Errorf("%s read at load", v.Name)
			}
		}
	}
	if lazy != 9*smallLlama.Layers+3 {
		t.Errorf("%d external weights, want %d", lazy, 9*smallLlama.Layers+3)
	}
	s, err := kernels.NewSession(m, kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := graph.Int64Tensor([]int{1, smallLlama.Seq}, []int64{1, 7, 42, 299, 0})
	out, err := s.Run(map[string]*graph.Tensor{"input_ids": ids})
	if err != nil {
		t.Fatal(err)
	}
	logits := out["logits"]
	if got := logits.Shape; len(got) != 3 || got[2] != smallLlama.Vocab || got[1] != smallLlama.Seq {
		t.Fatalf("logits shape %v", got)
	}
	// Weights of fan-in scale keep the logits finite and O(1)..O(10).
	var ss float64
	for _, v := range logits.Float32s() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("logits not finite")
		}
		ss += float64(v) * float64(v)
	}
	if rms := math.Sqrt(ss / float64(logits.Len())); rms < 0.1 || rms > 100 {
		t.Errorf("logits rms %g", rms)
	}
	// The same config gives the same bytes.
	again := filepath.Join(t.TempDir(), "llama.onnx")
	if err := testmodels.WriteLlama(again, smallLlama); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", ".data"} {
		a, _ := os.ReadFile(path + suffix)
		b, _ := os.ReadFile(again + suffix)
		if string(a) != string(b) {
			t.Errorf("llama.onnx%s differs between two writes", suffix)
		}
	}
}

func TestLlamaForSize(t *testing.T) {
	c := testmodels.LlamaForSize(testmodels.TinyLlamaWidths, 3<<30)
	if c.WeightBytes() > 3<<30 || c.Layers < 10 {
		t.Errorf("%d layers, %d bytes", c.Layers, c.WeightBytes())
	}
	c.Layers++
	if c.WeightBytes() <= 3<<30 {
		t.Error("one more layer would still fit")
	}
	if err := testmodels.WriteLlama(filepath.Join(t.TempDir(), "x.onnx"), testmodels.LlamaConfig{Dim: 10, Heads: 3}); err == nil {
		t.Error("bad config accepted")
	}
}
