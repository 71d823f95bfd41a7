package dataset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
)

// kvInputs are a decoder's inputs with a KV cache, as stories260K_kv declares them.
var kvInputs = []Input{
	{Name: "input_ids", DType: graph.Int64, Dims: []int64{-1, -1}, Params: []string{"batch", "seq"}},
	{Name: "past.key", DType: graph.Float, Dims: []int64{-1, 4, -1, 8}, Params: []string{"batch", "", "past_seq", ""}},
	{Name: "past.value", DType: graph.Float, Dims: []int64{-1, 4, -1, 8}, Params: []string{"batch", "", "past_seq", ""}},
}

func writeTensor(t *testing.T, path string, x *graph.Tensor) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(path, x); err != nil {
		t.Fatal(err)
	}
}

func tokens(ids ...int64) *graph.Tensor { return graph.Int64Tensor([]int{1, len(ids)}, ids) }

// TestTokenSamples: token-id samples with empty KV caches read in both
// multi-input layouts (a subfolder per input, a subfolder per sample with
// files named after the inputs), with their values and empty shapes intact.
func TestTokenSamples(t *testing.T) {
	perInput, perSample := t.TempDir(), t.TempDir()
	empty := graph.NewTensor(graph.Float, []int{1, 4, 0, 8})
	for i, ids := range [][]int64{{1, 5, 9}, {1, 7, 300, 2}} {
		name := []string{"a", "b"}[i]
		writeTensor(t, filepath.Join(perInput, "input_ids", name+".npy"), tokens(ids...))
		writeTensor(t, filepath.Join(perSample, "sample_"+name, "input_ids.npy"), tokens(ids...))
		for _, kv := range []string{"past.key", "past.value"} {
			writeTensor(t, filepath.Join(perInput, kv, name+".npy"), empty)
			writeTensor(t, filepath.Join(perSample, "sample_"+name, kv+".npy"), empty)
		}
	}
	for _, dir := range []string{perInput, perSample} {
		src, err := Open(dir, kvInputs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := src.Sample(1)
		if err != nil {
			t.Fatal(err)
		}
		if src.Len() != 2 || !sameShape(s["input_ids"].Shape, 1, 4) || s["input_ids"].Int64s()[2] != 300 || !sameShape(s["past.value"].Shape, 1, 4, 0, 8) {
			t.Errorf("%s: %d samples, sample 1 input_ids %v %v, past.value %v", dir, src.Len(), s["input_ids"].Shape, s["input_ids"].Int64s(), s["past.value"].Shape)
		}
	}
}

func sameShape(s []int, want ...int) bool {
	if len(s) != len(want) {
		return false
	}
	for i := range s {
		if s[i] != want[i] {
			return false
		}
	}
	return true
}

// TestTokenSampleErrors: token data of the wrong type or rank, inputs of one
// sample that disagree on the batch or past length, and sample folders that
// miss an input or hold another are refused before anything runs, with the
// file, the input and the fix.
func TestTokenSampleErrors(t *testing.T) {
	empty := func(past int) *graph.Tensor { return graph.NewTensor(graph.Float, []int{1, 4, past, 8}) }
	i32 := graph.NewTensor(graph.Int32, []int{1, 3})
	for _, c := range []struct {
		name  string
		files map[string]*graph.Tensor // input -> its file in sample "s0"
		want  string
	}{
		{"int32 ids", map[string]*graph.Tensor{"input_ids": i32, "past.key": empty(0), "past.value": empty(0)},
			`input "input_ids" expects int64, the file holds int32 (write it as int64)`},
		{"float ids", map[string]*graph.Tensor{"input_ids": graph.NewTensor(graph.Float, []int{1, 3}), "past.key": empty(0), "past.value": empty(0)},
			`input "input_ids" expects int64, the file holds float32`},
		{"rank 1 ids", map[string]*graph.Tensor{"input_ids": graph.Int64Tensor([]int{3}, []int64{1, 2, 3}), "past.key": empty(0), "past.value": empty(0)},
			`input "input_ids" expects rank 2 [batch seq], the file holds rank 1 [3]`},
		{"cache rank", map[string]*graph.Tensor{"input_ids": tokens(1, 2), "past.key": graph.NewTensor(graph.Float, []int{4, 0, 8}), "past.value": empty(0)},
			`input "past.key" expects rank 4 [batch 4 past_seq 8], the file holds rank 3 [4 0 8]`},
		{"batch", map[string]*graph.Tensor{"input_ids": tokens(1, 2), "past.key": graph.NewTensor(graph.Float, []int{2, 4, 0, 8}), "past.value": empty(0)},
			`has batch = 2 (dimension 0), but`},
		{"past length", map[string]*graph.Tensor{"input_ids": tokens(1, 2), "past.key": empty(0), "past.value": empty(3)},
			`input "past.value" has past_seq = 3 (dimension 2), but`},
		{"missing input", map[string]*graph.Tensor{"input_ids": tokens(1, 2), "past.key": empty(0)},
			`sample folder "s0" has no file for input "past.value" (want past.value.npy`},
		{"extra file", map[string]*graph.Tensor{"input_ids": tokens(1, 2), "past.key": empty(0), "past.value": empty(0), "attention_mask": tokens(1, 1)},
			`sample folder "s0" has "attention_mask.npy", which is not a model input`},
	} {
		dir := t.TempDir()
		for name, x := range c.files {
			writeTensor(t, filepath.Join(dir, "s0", name+".npy"), x)
		}
		_, err := Open(dir, kvInputs, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}
