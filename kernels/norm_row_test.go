package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/vec"
)

// TestNormalizeRowLargeMean: the two-operation float64 form keeps rows with
// a mean 1000 standard deviations from 0 within an ulp of the direct
// (x - mean) * inv * scale + bias.
func TestNormalizeRowLargeMean(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	row := make([]float32, 4096)
	for i := range row {
		row[i] = float32(1000 + r.NormFloat64())
	}
	mean, variance := meanVar(row)
	inv := 1 / math.Sqrt(variance+1e-5)
	dst := make([]float32, len(row))
	normalizeRow(dst, row, mean, inv, 1.7, -0.3)
	for j, v := range row {
		want := float32((float64(v)-mean)*inv*float64(float32(1.7)) + float64(float32(-0.3)))
		if d := math.Abs(float64(dst[j] - want)); d > ulp32(want) {
			t.Fatalf("x[%d] = %v: %v, direct %v", j, v, dst[j], want)
		}
	}
}

// TestLayerNormOutputs: LayerNormalization over rows of 48 (ConvNeXt's
// channels-last norm) gives, row by row, the bits of the four passes
// (x - mean, * 1/sqrt(var + eps), * scale, + bias) it fuses into one; the
// Mean and InvStdDev outputs come only when the node has them, and then
// hold each row's statistics.
func TestLayerNormOutputs(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	const rows, cols = 37, 48
	x := graph.NewTensor(graph.Float, []int{1, rows, cols})
	scale, bias := graph.NewTensor(graph.Float, []int{cols}), graph.NewTensor(graph.Float, []int{cols})
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(r.NormFloat64()*2 + 0.5)
	}
	for i := 0; i < cols; i++ {
		scale.Float32s()[i], bias.Float32s()[i] = float32(0.5+r.Float64()), float32(r.NormFloat64()*0.1)
	}
	want := make([]float32, rows*cols)
	means, invs := make([]float32, rows), make([]float32, rows)
	for i := 0; i < rows; i++ {
		row, dst := x.Float32s()[i*cols:(i+1)*cols], want[i*cols:(i+1)*cols]
		mean, variance := meanVar(row)
		inv := 1 / math.Sqrt(variance+1e-5)
		means[i], invs[i] = float32(mean), float32(inv)
		vec.AddScalar(dst, row, -float32(mean))
		vec.MulScalar(dst, dst, float32(inv))
		vec.Mul(dst, dst, scale.Float32s())
		vec.Add(dst, dst, bias.Float32s())
	}
	for _, outs := range [][]string{{"y"}, {"y", "mean", "inv"}} {
		got, err := runNode(t, "", "LayerNormalization", 17, nil, outs, x, scale, bias)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(outs) {
			t.Fatalf("outputs %v: got %d tensors", outs, len(got))
		}
		for i, v := range got["y"].Float32s() {
			if math.Float32bits(v) != math.Float32bits(want[i]) {
				t.Fatalf("outputs %v: y[%d] = %v, four passes %v", outs, i, v, want[i])
			}
		}
		if len(outs) == 3 {
			if m, iv := got["mean"], got["inv"]; !slices.Equal(m.Shape, []int{1, rows, 1}) || !slices.Equal(m.Float32s(), means) || !slices.Equal(iv.Float32s(), invs) {
				t.Fatalf("stats: mean %v %v, inv %v", m.Shape, m.Float32s()[:3], iv.Float32s()[:3])
			}
		}
	}
}

// TestLayerNormBroadcastParams: a scale and bias smaller than the
// normalized shape (axis 1 of [2, 3, 16] with a [16] scale and a [1, 16]
// bias) give the bits of the same parameters written out in full, and a
// scale that does not broadcast is an error. (Parameters of the full size
// are read in place; smaller ones are broadcast into scratch.)
func TestLayerNormBroadcastParams(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	x := graph.NewTensor(graph.Float, []int{2, 3, 16})
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(r.NormFloat64())
	}
	scale, bias := graph.NewTensor(graph.Float, []int{16}), graph.NewTensor(graph.Float, []int{1, 16})
	fullScale, fullBias := graph.NewTensor(graph.Float, []int{3, 16}), graph.NewTensor(graph.Float, []int{3, 16})
	for i := 0; i < 16; i++ {
		scale.Float32s()[i], bias.Float32s()[i] = float32(0.5+r.Float64()), float32(r.NormFloat64())
		for j := 0; j < 3; j++ {
			fullScale.Float32s()[j*16+i], fullBias.Float32s()[j*16+i] = scale.Float32s()[i], bias.Float32s()[i]
		}
	}
	attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1)}
	got, err := runNode(t, "", "LayerNormalization", 17, attrs, []string{"y"}, x, scale, bias)
	if err != nil {
		t.Fatal(err)
	}
	want, err := runNode(t, "", "LayerNormalization", 17, attrs, []string{"y"}, x, fullScale, fullBias)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got["y"].Float32s() {
		if w := want["y"].Float32s()[i]; math.Float32bits(v) != math.Float32bits(w) {
			t.Fatalf("y[%d] = %v with broadcast parameters, %v written out", i, v, w)
		}
	}
	if _, err := runNode(t, "", "LayerNormalization", 17, attrs, []string{"y"}, x, graph.NewTensor(graph.Float, []int{5}), bias); err == nil {
		t.Fatal("a [5] scale over a [3, 16] normalized shape: no error")
	}
}
