//go:build ort

package main

import (
	"math"
	"math/rand/v2"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// mb is a tiny model builder over the graph API (any op, any attrs).
type mb struct {
	m     *graph.Model
	g     *graph.Graph
	rng   *rand.Rand
	feeds map[string]*graph.Tensor
	k     int
}

func newMB(opset int64) *mb {
	m := graph.NewModel(graph.Opset{Domain: "", Version: opset})
	return &mb{m: m, g: m.Graph, rng: rand.New(rand.NewPCG(7, 11)), feeds: map[string]*graph.Tensor{}}
}

func dims64(shape []int) []int64 {
	d := make([]int64, len(shape))
	for i, v := range shape {
		d[i] = int64(v)
	}
	return d
}

func (b *mb) normal(n int, std float64) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = float32(std * b.rng.NormFloat64())
	}
	return o
}

// in adds a float32 graph input fed with N(0,1) data.
func (b *mb) in(name string, shape ...int) *graph.Value {
	v := b.g.AddInput(name, graph.Float, dims64(shape))
	b.feeds[name] = graph.Float32Tensor(shape, b.normal(graph.Numel(shape), 1))
	return v
}

// inT adds a graph input fed with t.
func (b *mb) inT(name string, t *graph.Tensor) *graph.Value {
	v := b.g.AddInput(name, t.DType, dims64(t.Shape))
	b.feeds[name] = t
	return v
}

// w adds a random float initializer N(0, std^2).
func (b *mb) w(std float64, shape ...int) *graph.Value {
	return b.fc(shape, b.normal(graph.Numel(shape), std))
}

// he adds a random weight with std sqrt(2/fanIn).
func (b *mb) he(fanIn int, shape ...int) *graph.Value {
	return b.w(math.Sqrt(2/float64(fanIn)), shape...)
}

func (b *mb) fc(shape []int, data []float32) *graph.Value {
	return b.g.AddInitializer(b.g.UniqueName("c"), graph.Float32Tensor(shape, data))
}

// ct adds t as an initializer (any element type: quantized weights, zero points).
func (b *mb) ct(t *graph.Tensor) *graph.Value { return b.g.AddInitializer(b.g.UniqueName("c"), t) }

func (b *mb) scalar(v float32) *graph.Value { return b.fc(nil, []float32{v}) }

func (b *mb) i64(data ...int64) *graph.Value {
	return b.g.AddInitializer(b.g.UniqueName("i"), graph.Int64Tensor([]int{len(data)}, data))
}

func (b *mb) i64scalar(v int64) *graph.Value {
	return b.g.AddInitializer(b.g.UniqueName("i"), graph.Int64Tensor(nil, []int64{v}))
}

func (b *mb) op(op string, ins []*graph.Value, attrs ...*onnxpb.AttributeProto) *graph.Value {
	return b.opN(op, 1, ins, attrs...)[0]
}

// msOp adds a com.microsoft node (ONNX Runtime's contrib ops), importing
// the domain.
func (b *mb) msOp(op string, ins []*graph.Value, attrs ...*onnxpb.AttributeProto) *graph.Value {
	const ms = "com.microsoft"
	b.m.SetOpset(ms, 1)
	out := b.op(op, ins, attrs...)
	out.Producer.Domain = ms
	return out
}

func (b *mb) opN(op string, n int, ins []*graph.Value, attrs ...*onnxpb.AttributeProto) []*graph.Value {
	b.k++
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.g.UniqueName(op + "_out")
	}
	nd := b.g.AddNode(op, b.g.UniqueName(op), ins, outs, attrs...)
	return nd.Outputs
}

func (b *mb) out(v *graph.Value, dt graph.DataType) {
	v.SetTensorType(dt, nil)
	b.g.AddOutput(v)
}

func vs(v ...*graph.Value) []*graph.Value { return v }

var (
	aI  = graph.AttrIntOf
	aIs = graph.AttrIntsOf
	aF  = graph.AttrFloatOf
	aS  = graph.AttrStringOf
)

type onnxAttr = onnxpb.AttributeProto
