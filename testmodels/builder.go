// Package testmodels builds small, seeded ONNX models for tests, benchmarks and
// the demo: Conv+BN+ReLU chains, residual blocks, a ResNet-50-shaped network.
package testmodels

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// Builder adds layers to a model, tracking static shapes and drawing weights from
// a seeded generator, so the same calls always give the same model.
type Builder struct {
	M      *graph.Model
	G      *graph.Graph
	rng    *rand.Rand
	shapes map[*graph.Value][]int
	count  map[string]int
	blocks []string // block outputs, see MarkBlock

	// The probe (see probe.go), on after Probe.
	probeN   int
	probeRng *rand.Rand
	probe    map[*graph.Value]*act
	gapVar   map[*graph.Value][]float64 // per-channel input-to-input variance after pooling
	seed     uint64
}

// NewBuilder starts an empty model importing the default domain at opset.
func NewBuilder(seed uint64, opset int64) *Builder {
	m := graph.NewModel(graph.Opset{Domain: "", Version: opset})
	m.Proto.ProducerName = strPtr("onnxq-testmodels")
	return &Builder{M: m, G: m.Graph, rng: rand.New(rand.NewPCG(seed, 0x6f6e6e78)), shapes: map[*graph.Value][]int{}, count: map[string]int{}, seed: seed}
}

func strPtr(s string) *string { return &s }

// Probe turns on the builder's probe (see probe.go): from here on, image ops are
// also computed on n sample images, and BatchNormalization statistics and head
// scales come from them. Call it before Input.
func (b *Builder) Probe(n int) {
	b.probeN = n
	b.probeRng = rand.New(rand.NewPCG(b.seed, 0x70726f6265))
	b.probe = map[*graph.Value]*act{}
	b.gapVar = map[*graph.Value][]float64{}
}

// setProbe computes y's probe activation when the probe is on.
func (b *Builder) setProbe(y *graph.Value, f func() *act) {
	if b.probeN > 0 {
		b.probe[y] = f()
	}
}

// Shape is the static shape the builder tracked for v.
func (b *Builder) Shape(v *graph.Value) []int { return b.shapes[v] }

// name returns "prefix_N" with N counting per prefix, for readable node names.
func (b *Builder) name(prefix string) string {
	b.count[prefix]++
	return fmt.Sprintf("%s_%d", prefix, b.count[prefix])
}

// Input adds a float32 graph input of a static shape.
func (b *Builder) Input(name string, shape ...int) *graph.Value {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	v := b.G.AddInput(name, graph.Float, dims)
	b.shapes[v] = append([]int(nil), shape...)
	if b.probeN > 0 && len(shape) == 4 {
		b.probe[v] = probeImages(b.probeRng, b.probeN, shape[1], shape[2], shape[3])
	}
	return v
}

// Output marks v as a graph output and declares its type.
func (b *Builder) Output(v *graph.Value) {
	dims := make([]int64, len(b.shapes[v]))
	for i, d := range b.shapes[v] {
		dims[i] = int64(d)
	}
	v.SetTensorType(graph.Float, dims)
	b.G.AddOutput(v)
}

// Normal returns n samples of N(mean, std^2).
func (b *Builder) Normal(n int, mean, std float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(mean + std*b.rng.NormFloat64())
	}
	return out
}

// Uniform returns n samples of U(lo, hi).
func (b *Builder) Uniform(n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*b.rng.Float64())
	}
	return out
}

// Const adds a float32 initializer.
func (b *Builder) Const(prefix string, shape []int, data []float32) *graph.Value {
	v := b.G.AddInitializer(b.G.UniqueName(prefix), graph.Float32Tensor(shape, data))
	b.shapes[v] = append([]int(nil), shape...)
	return v
}

// Int64Const adds an int64 initializer.
func (b *Builder) Int64Const(prefix string, data ...int64) *graph.Value {
	v := b.G.AddInitializer(b.G.UniqueName(prefix), graph.Int64Tensor([]int{len(data)}, data))
	b.shapes[v] = []int{len(data)}
	return v
}

// node adds a node whose single output has the given shape.
func (b *Builder) node(op string, inputs []*graph.Value, shape []int, attrs ...*onnxpb.AttributeProto) *graph.Value {
	name := b.name(op)
	n := b.G.AddNode(op, name, inputs, []string{name + "_out"}, attrs...)
	b.shapes[n.Output()] = shape
	return n.Output()
}

// ConvOpts are the optional settings of a convolution.
type ConvOpts struct {
	Stride, Pad, Group, Dilation int
	NoBias                       bool
}

// withDefaults fills the zero fields with their ONNX defaults.
func (o ConvOpts) withDefaults() ConvOpts {
	if o.Stride == 0 {
		o.Stride = 1
	}
	if o.Group == 0 {
		o.Group = 1
	}
	if o.Dilation == 0 {
		o.Dilation = 1
	}
	return o
}

// outSize is the output length of one spatial axis of input length in.
func (o ConvOpts) outSize(in, k int) int {
	return (in+2*o.Pad-(o.Dilation*(k-1)+1))/o.Stride + 1
}

// Conv adds a 2-D convolution with k x k kernels and He-initialized weights.
func (b *Builder) Conv(x *graph.Value, outC, k int, o ConvOpts) *graph.Value {
	o = o.withDefaults()
	c := b.shapes[x][1]
	fanIn := c / o.Group * k * k
	w := b.Normal(outC*c/o.Group*k*k, 0, math.Sqrt(2/float64(fanIn)))
	var bias []float32
	if !o.NoBias {
		bias = b.Normal(outC, 0, 0.05)
	}
	y := b.convWith(x, w, bias, outC, k, o)
	b.setProbe(y, func() *act { return probeConv(b.probe[x], w, bias, outC, k, o, b.shapes[y][2], b.shapes[y][3]) })
	return y
}

// convWith adds a convolution with the given weights [outC, C/group, k, k] and
// bias (nil for none).
func (b *Builder) convWith(x *graph.Value, w, bias []float32, outC, k int, o ConvOpts) *graph.Value {
	return b.convRectWith(x, w, bias, outC, k, k, o.Pad, o.Pad, o)
}

// convRectWith is convWith for a kh x kw kernel, padded ph above and below
// and pw left and right (o.Pad unused).
func (b *Builder) convRectWith(x *graph.Value, w, bias []float32, outC, kh, kw, ph, pw int, o ConvOpts) *graph.Value {
	o = o.withDefaults()
	s := b.shapes[x]
	n, c, h, wd := s[0], s[1], s[2], s[3]
	inputs := []*graph.Value{x, b.Const("conv_w", []int{outC, c / o.Group, kh, kw}, w)}
	if bias != nil {
		inputs = append(inputs, b.Const("conv_b", []int{outC}, bias))
	}
	attrs := []*onnxpb.AttributeProto{
		graph.AttrIntsOf("kernel_shape", int64(kh), int64(kw)),
		graph.AttrIntsOf("strides", int64(o.Stride), int64(o.Stride)),
		graph.AttrIntsOf("pads", int64(ph), int64(pw), int64(ph), int64(pw)),
		graph.AttrIntsOf("dilations", int64(o.Dilation), int64(o.Dilation)),
	}
	if o.Group != 1 {
		attrs = append(attrs, graph.AttrIntOf("group", int64(o.Group)))
	}
	alongH, alongW := o, o
	alongH.Pad, alongW.Pad = ph, pw
	return b.node("Conv", inputs, []int{n, outC, alongH.outSize(h, kh), alongW.outSize(wd, kw)}, attrs...)
}

// BatchNorm adds an inference BatchNormalization with non-trivial statistics.
func (b *Builder) BatchNorm(x *graph.Value) *graph.Value {
	c := b.shapes[x][1]
	scale := b.Const("bn_scale", []int{c}, b.Uniform(c, 0.5, 1.5))
	bias := b.Const("bn_bias", []int{c}, b.Normal(c, 0, 0.1))
	mean := b.Const("bn_mean", []int{c}, b.Normal(c, 0, 0.1))
	variance := b.Const("bn_var", []int{c}, b.Uniform(c, 0.5, 1.5))
	y := b.node("BatchNormalization", []*graph.Value{x, scale, bias, mean, variance}, b.shapes[x], graph.AttrFloatOf("epsilon", 1e-5))
	b.setProbe(y, func() *act {
		k, s := foldBN(scale.Const.Float32s(), bias.Const.Float32s(), mean.Const.Float32s(), variance.Const.Float32s())
		return b.probe[x].affine(k, s)
	})
	return y
}

// Relu adds a ReLU.
func (b *Builder) Relu(x *graph.Value) *graph.Value {
	y := b.node("Relu", []*graph.Value{x}, b.shapes[x])
	b.setProbe(y, func() *act { return b.probe[x].mapf(func(v float64) float64 { return math.Max(v, 0) }) })
	return y
}

// Relu6 adds Clip(x, 0, 6) in the form of the model's opset (inputs from 11 on).
func (b *Builder) Relu6(x *graph.Value) *graph.Value {
	var y *graph.Value
	if b.M.OpsetVersion("") >= 11 {
		lo := b.G.AddInitializer(b.G.UniqueName("clip_min"), graph.Float32Tensor(nil, []float32{0}))
		hi := b.G.AddInitializer(b.G.UniqueName("clip_max"), graph.Float32Tensor(nil, []float32{6}))
		y = b.node("Clip", []*graph.Value{x, lo, hi}, b.shapes[x])
	} else {
		y = b.node("Clip", []*graph.Value{x}, b.shapes[x], graph.AttrFloatOf("min", 0), graph.AttrFloatOf("max", 6))
	}
	b.setProbe(y, func() *act { return b.probe[x].mapf(func(v float64) float64 { return math.Min(math.Max(v, 0), 6) }) })
	return y
}

// Add adds an elementwise sum of two same-shaped tensors.
func (b *Builder) Add(x, y *graph.Value) *graph.Value {
	z := b.node("Add", []*graph.Value{x, y}, broadcastShape(b.shapes[x], b.shapes[y]))
	b.setProbe(z, func() *act { return probeAdd(b.probe[x], b.probe[y]) })
	return z
}

// MaxPool adds a k x k max pooling.
func (b *Builder) MaxPool(x *graph.Value, k, stride, pad int) *graph.Value {
	s := b.shapes[x]
	oh := (s[2]+2*pad-k)/stride + 1
	ow := (s[3]+2*pad-k)/stride + 1
	y := b.node("MaxPool", []*graph.Value{x}, []int{s[0], s[1], oh, ow},
		graph.AttrIntsOf("kernel_shape", int64(k), int64(k)),
		graph.AttrIntsOf("strides", int64(stride), int64(stride)),
		graph.AttrIntsOf("pads", int64(pad), int64(pad), int64(pad), int64(pad)))
	b.setProbe(y, func() *act { return probeMaxPool(b.probe[x], k, stride, pad, oh, ow) })
	return y
}

// GlobalAveragePool averages over the spatial dims.
func (b *Builder) GlobalAveragePool(x *graph.Value) *graph.Value {
	s := b.shapes[x]
	y := b.node("GlobalAveragePool", []*graph.Value{x}, []int{s[0], s[1], 1, 1})
	if p := b.probe[x]; p != nil {
		b.probe[y] = probeGAP(p)
		// What varies from input to input after pooling is a fraction of the
		// per-position variance (see gapSpread).
		_, v := p.channelStats()
		for c := range v {
			v[c] *= gapSpread
		}
		b.gapVar[y] = v
	}
	return y
}

// Flatten flattens everything after the batch dimension.
func (b *Builder) Flatten(x *graph.Value) *graph.Value {
	s := b.shapes[x]
	y := b.node("Flatten", []*graph.Value{x}, []int{s[0], graph.Numel(s[1:])}, graph.AttrIntOf("axis", 1))
	if b.probeN > 0 && graph.Numel(s[2:]) == 1 {
		b.probe[y], b.gapVar[y] = b.probe[x], b.gapVar[x]
	}
	return y
}

// Gemm adds a fully connected layer y = x W^T + b with W of shape [out, in].
func (b *Builder) Gemm(x *graph.Value, out int) *graph.Value {
	s := b.shapes[x]
	in := s[1]
	w := b.Const("fc_w", []int{out, in}, b.Normal(out*in, 0, math.Sqrt(1/float64(in))))
	bias := b.Const("fc_b", []int{out}, b.Normal(out, 0, 0.05))
	return b.node("Gemm", []*graph.Value{x, w, bias}, []int{s[0], out}, graph.AttrIntOf("transB", 1))
}

// Softmax over the last axis.
func (b *Builder) Softmax(x *graph.Value) *graph.Value {
	return b.node("Softmax", []*graph.Value{x}, b.shapes[x], graph.AttrIntOf("axis", -1))
}

// ConvTranspose adds a 2-D transposed convolution with k x k kernels and the given stride.
func (b *Builder) ConvTranspose(x *graph.Value, outC, k, stride int) *graph.Value {
	s := b.shapes[x]
	n, c, h, w := s[0], s[1], s[2], s[3]
	wv := b.Const("convt_w", []int{c, outC, k, k}, b.Normal(c*outC*k*k, 0, math.Sqrt(1/float64(c*k*k))))
	bias := b.Const("convt_b", []int{outC}, b.Normal(outC, 0, 0.05))
	oh, ow := stride*(h-1)+k, stride*(w-1)+k
	return b.node("ConvTranspose", []*graph.Value{x, wv, bias}, []int{n, outC, oh, ow},
		graph.AttrIntsOf("kernel_shape", int64(k), int64(k)),
		graph.AttrIntsOf("strides", int64(stride), int64(stride)))
}
