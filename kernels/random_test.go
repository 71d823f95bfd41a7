package kernels

import (
	"math"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestRandomOpsDeterministicAndDistributed: every run of a node draws the
// same values (a build step must be reproducible), nodes with other seeds
// draw others, and the values follow the distribution the attributes give.
func TestRandomOpsDeterministicAndDistributed(t *testing.T) {
	f := graph.Float
	shape := graph.AttrIntsOf("shape", 200, 500)
	g := cfGraph("main", []*onnxpb.NodeProto{
		cfNode("RandomNormal", nil, []string{"n"}, shape, graph.AttrFloatOf("mean", 2), graph.AttrFloatOf("scale", 3)),
		cfNode("RandomNormal", nil, []string{"n2"}, shape, graph.AttrFloatOf("mean", 2), graph.AttrFloatOf("scale", 3), graph.AttrFloatOf("seed", 7)),
		cfNode("RandomUniformLike", []string{"x"}, []string{"u"}, graph.AttrFloatOf("low", -1), graph.AttrFloatOf("high", 3)),
		cfNode("Bernoulli", []string{"p"}, []string{"b"}, graph.AttrIntOf("dtype", int64(graph.Bool))),
	}, []*onnxpb.ValueInfoProto{cfInfo("x", f), cfInfo("p", f)},
		[]*onnxpb.ValueInfoProto{cfInfo("n", f), cfInfo("n2", f), cfInfo("u", f), cfInfo("b", graph.Bool)})
	s, err := NewSession(cfModel(t, 17, g), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := graph.Float32Tensor([]int{100, 1000}, make([]float32, 100000))
	p := make([]float32, 100000)
	for i := range p {
		p[i] = []float32{0, 1, 0.25}[i%3]
	}
	in := map[string]*graph.Tensor{"x": x, "p": graph.Float32Tensor([]int{100000}, p)}
	first, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n", "u"} {
		if !slices.Equal(first[name].Float32s(), again[name].Float32s()) {
			t.Fatalf("%s differs between runs", name)
		}
	}
	if !slices.Equal(first["b"].Data().([]bool), again["b"].Data().([]bool)) {
		t.Fatal("Bernoulli differs between runs")
	}
	if slices.Equal(first["n"].Float32s(), first["n2"].Float32s()) {
		t.Fatal("two RandomNormal nodes with other seeds drew the same values")
	}
	moments := func(v []float32) (mean, std float64) {
		for _, x := range v {
			mean += float64(x)
		}
		mean /= float64(len(v))
		for _, x := range v {
			std += (float64(x) - mean) * (float64(x) - mean)
		}
		return mean, math.Sqrt(std / float64(len(v)))
	}
	if m, sd := moments(first["n"].Float32s()); math.Abs(m-2) > 0.05 || math.Abs(sd-3) > 0.05 || !slices.Equal(first["n"].Shape, []int{200, 500}) {
		t.Fatalf("RandomNormal %v: mean %.3f std %.3f, want 2 and 3", first["n"].Shape, m, sd)
	}
	u := first["u"].Float32s()
	if lo, hi := slices.Min(u), slices.Max(u); lo < -1 || hi >= 3 || !slices.Equal(first["u"].Shape, x.Shape) {
		t.Fatalf("RandomUniformLike %v spans [%g, %g], want within [-1, 3)", first["u"].Shape, lo, hi)
	}
	if m, _ := moments(u); math.Abs(m-1) > 0.02 {
		t.Fatalf("RandomUniformLike mean %.3f, want 1", m)
	}
	var ones [3]int
	for i, v := range first["b"].Data().([]bool) {
		if v {
			ones[i%3]++
		}
	}
	if n := 100000 / 3; ones[0] != 0 || ones[1] < n || math.Abs(float64(ones[2])/float64(n)-0.25) > 0.02 {
		t.Fatalf("Bernoulli ones at p = 0, 1, 0.25: %v of ~%d each", ones, n)
	}
	in["p"] = graph.Float32Tensor([]int{1}, []float32{1.5})
	if _, err := s.Run(in); err == nil {
		t.Fatal("a probability of 1.5 ran")
	}
}
