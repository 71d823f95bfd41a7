package main

import (
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

// TestTokenSamples: samples for stories260K_kv (int64 ids, caches
// [1, 4, 0, 8]) and tiny-random-gpt2 (int32 ids, mask and positions, stacked
// caches [2, 1, 4, 0, 8]) are what the dataset reader accepts for each model,
// with the windows' tokens.
func TestTokenSamples(t *testing.T) {
	ids := testdata.SharedModel(t, "stories260K", "tinystories_dev_ids.npy")
	windows, err := npy.ReadFile(ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		model, file, cache string
		cacheShape         []int
		idType             graph.DataType
	}{
		{"stories260K", "stories260K_kv.onnx", "past_key_values.3.value", []int{1, 4, 0, 8}, graph.Int64},
		{"tiny-random-gpt2", "past.onnx", "past_2", []int{2, 1, 4, 0, 8}, graph.Int32},
	} {
		model := testdata.SharedModel(t, c.model, c.file)
		out := filepath.Join(t.TempDir(), "calib")
		if err := run(model, ids, 3, 2, 10, out); err != nil {
			t.Fatal(err)
		}
		m, err := graph.Load(model)
		if err != nil {
			t.Fatal(err)
		}
		src, err := dataset.Open(out, dataset.InputsOf(m), dataset.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := src.Sample(1)
		if err != nil {
			t.Fatal(err)
		}
		x, cache := s["input_ids"], s[c.cache]
		if src.Len() != 2 || x.DType != c.idType || len(x.Shape) != 2 || x.Shape[1] != 10 || cache == nil || graph.Numel(cache.Shape) != 0 || len(cache.Shape) != len(c.cacheShape) {
			t.Fatalf("%s: %d samples, input_ids %s%v, %s %v", c.model, src.Len(), x.DType.Short(), x.Shape, c.cache, cache.Shape)
		}
		for i, d := range c.cacheShape {
			if cache.Shape[i] != d {
				t.Errorf("%s: %s is %v, want %v", c.model, c.cache, cache.Shape, c.cacheShape)
			}
		}
		// Sample 1 is window 4's first 10 tokens.
		for i := 0; i < 10; i++ {
			var got int64
			if c.idType == graph.Int64 {
				got = x.Int64s()[i]
			} else {
				got = int64(x.Data().([]int32)[i])
			}
			if want := windows.Int64s()[4*windows.Shape[1]+i]; got != want {
				t.Fatalf("%s: token %d is %d, window 4 has %d", c.model, i, got, want)
			}
		}
	}
	if err := run(testdata.SharedModel(t, "stories260K", "stories260K.onnx"), ids, 117, 2, 10, t.TempDir()); err == nil {
		t.Error("asking for windows past the end was accepted")
	}
}
