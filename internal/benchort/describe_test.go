//go:build ort

package main

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// describe lists one input's shape bare, a few inputs by name, and counts
// the inputs of one shape when a model has many (a KV cache's pasts).
func TestDescribe(t *testing.T) {
	img := graph.NewTensor(graph.Float, []int{1, 3, 8, 8})
	if got := describe(map[string]*graph.Tensor{"x": img}); got != "1x3x8x8" {
		t.Errorf("one input: %q", got)
	}
	ids := graph.Int64Tensor([]int{1, 1}, []int64{3})
	if got := describe(map[string]*graph.Tensor{"ids": ids, "x": img}); got != "ids 1x1 int64, x 1x3x8x8" {
		t.Errorf("two inputs: %q", got)
	}
	in := map[string]*graph.Tensor{"ids": ids}
	for _, n := range []string{"k0", "v0", "k1", "v1"} {
		in[n] = graph.NewTensor(graph.Float, []int{1, 4, 5, 8})
	}
	if got := describe(in); got != "4 x 1x4x5x8, ids 1x1 int64" {
		t.Errorf("a KV cache: %q", got)
	}
}
