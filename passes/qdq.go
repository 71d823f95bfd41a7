package passes

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
)

// Encoding is how a tensor is quantized: q = saturate(round_half_even(x/scale) + zero_point).
type Encoding struct {
	DType     graph.DataType `json:"dtype"`
	Scale     []float32      `json:"scale"`
	ZeroPoint []int64        `json:"zero_point"`
	// Axis is the channel axis when Scale has one value per channel, or the
	// blocked axis.
	Axis int `json:"axis,omitempty"`
	// BlockSize > 0: scales per block of BlockSize along Axis, laid out with
	// ScaleShape (the tensor's shape with Axis divided into blocks).
	BlockSize  int   `json:"block_size,omitempty"`
	ScaleShape []int `json:"scale_shape,omitempty"`
}

// PerChannel reports whether the encoding has one scale per channel.
func (e *Encoding) PerChannel() bool { return len(e.Scale) > 1 && e.BlockSize == 0 }

// ScaleIndex maps a flat element index of a tensor of shape to its scale.
func (e *Encoding) ScaleIndex(shape []int) func(i int) int {
	switch {
	case e.BlockSize > 0:
		inner, dim := graph.Numel(shape[e.Axis+1:]), shape[e.Axis]
		blocks := (dim + e.BlockSize - 1) / e.BlockSize
		return func(i int) int {
			outer, a, in := i/(inner*dim), (i/inner)%dim, i%inner
			return (outer*blocks+a/e.BlockSize)*inner + in
		}
	case e.PerChannel():
		inner, dim := graph.Numel(shape[e.Axis+1:]), shape[e.Axis]
		return func(i int) int { return (i / inner) % dim }
	}
	return func(int) int { return 0 }
}

// PassThroughOps move values without computing: their outputs share their
// input's encoding, so the converter places no requantization on them (and
// diagnose groups them with the tensor they pass on).
var PassThroughOps = map[string]bool{
	"Reshape": true, "Transpose": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true,
	"MaxPool": true, "Slice": true, "Split": true, "Identity": true, "GlobalMaxPool": true,
}

// GroupedActivations run fused with the compute op before them in QDQ
// runtimes: the Q/DQ pair goes after the activation, not between.
var GroupedActivations = map[string]bool{"Relu": true, "Clip": true, "LeakyRelu": true}

// BiasPlan quantizes a bias to int32 with scale = input scale x weight scale.
type BiasPlan struct {
	Input  *Encoding // the layer input's encoding
	Weight *Encoding // the layer weight's encoding
}

// QDQPlan says what InsertQDQ quantizes.
type QDQPlan struct {
	// Activations maps value names to encodings: a QuantizeLinear/DequantizeLinear
	// pair goes after the value, shared by all its readers.
	Activations map[string]*Encoding
	// Weights maps initializer names to encodings: the initializer is stored
	// quantized and read through a DequantizeLinear.
	Weights map[string]*Encoding
	// Biases maps bias initializer names to int32 plans.
	Biases map[string]BiasPlan
}

// InsertQDQ rewrites the model per the plan.
func InsertQDQ(m *graph.Model, plan *QDQPlan) error {
	g := m.Graph
	// In a half graph the scales take each tensor's type (qdqhalf.go).
	types := scaleTypes(m)
	scaleType := map[string]graph.DataType{}
	for _, encs := range []map[string]*Encoding{plan.Weights, plan.Activations} {
		for _, name := range sortedKeys(encs) {
			if v := g.Value(name); v != nil {
				scaleType[name] = scaleTypeOf(v, types)
				fitScales(encs[name], scaleType[name])
			}
		}
	}
	// Weights and biases first: their quantized initializers replace the float ones.
	for _, name := range sortedKeys(plan.Biases) {
		v := g.Value(name)
		if v == nil || v.Const == nil {
			return fmt.Errorf("bias %q is not an initializer", name)
		}
		bp := plan.Biases[name]
		scaleType[name] = scaleTypeOf(v, types)
		enc, q, err := quantizeBias(v.Const, bp, scaleType[name])
		if err != nil {
			return fmt.Errorf("bias %q: %v", name, err)
		}
		if err := dequantizedConst(g, v, q, enc, scaleType[name]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(plan.Weights) {
		v := g.Value(name)
		if v == nil || v.Const == nil {
			return fmt.Errorf("weight %q is not an initializer", name)
		}
		enc := plan.Weights[name]
		q, err := QuantizeTensor(v.Const, enc)
		if err != nil {
			return fmt.Errorf("weight %q: %v", name, err)
		}
		if err := dequantizedConst(g, v, q, enc, scaleType[name]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(plan.Activations) {
		v := g.Value(name)
		if v == nil {
			return fmt.Errorf("activation %q is not in the graph", name)
		}
		if err := qdqAfter(g, v, plan.Activations[name], scaleType[name]); err != nil {
			return err
		}
	}
	return g.TopoSort()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// encodingConsts adds the scale (of type st) and zero-point initializers of an encoding.
func encodingConsts(g *graph.Graph, base string, enc *Encoding, st graph.DataType) (*graph.Value, *graph.Value, error) {
	n := len(enc.Scale)
	shape := []int{n}
	switch {
	case enc.BlockSize > 0:
		shape = enc.ScaleShape
	case n == 1:
		shape = nil
	}
	scale := g.AddInitializer(g.UniqueName(base+"_scale"), scaleTensor(shape, enc.Scale, st))
	if _, _, ok := kernels.QuantRange(enc.DType); !ok {
		return nil, nil, fmt.Errorf("zero point type %s is not supported", enc.DType.Short())
	}
	zp := graph.NewTensor(enc.DType, shape)
	kernels.StoreInt64s(zp, enc.ZeroPoint)
	zpv := g.AddInitializer(g.UniqueName(base+"_zero_point"), zp)
	return scale, zpv, nil
}

func axisAttrs(enc *Encoding) []*onnxpb.AttributeProto {
	if enc.BlockSize > 0 {
		return []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(enc.Axis)), graph.AttrIntOf("block_size", int64(enc.BlockSize))}
	}
	if enc.PerChannel() {
		return []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(enc.Axis))}
	}
	return nil
}

// dequantizedConst replaces the float initializer v by q (its quantized form) read
// through a DequantizeLinear whose output takes over v's readers.
func dequantizedConst(g *graph.Graph, v *graph.Value, q *graph.Tensor, enc *Encoding, st graph.DataType) error {
	scale, zp, err := encodingConsts(g, v.Name, enc, st)
	if err != nil {
		return err
	}
	qv := g.AddInitializer(g.UniqueName(v.Name+"_quantized"), q)
	dq := g.AddNode("DequantizeLinear", v.Name+"_DequantizeLinear", []*graph.Value{qv, scale, zp}, []string{v.Name + "_dequantized"}, axisAttrs(enc)...)
	if err := g.ReplaceUses(v, dq.Output()); err != nil {
		return err
	}
	if len(v.Consumers) == 0 && !g.IsOutput(v) && !g.IsInput(v) && v.Const != nil {
		g.RemoveInitializer(v)
	}
	return nil
}

// qdqAfter inserts Q -> DQ after v; every reader of v reads the DQ output. A graph
// output keeps its name: the producer's output is renamed and DQ writes v.
func qdqAfter(g *graph.Graph, v *graph.Value, enc *Encoding, st graph.DataType) error {
	scale, zp, err := encodingConsts(g, v.Name, enc, st)
	if err != nil {
		return err
	}
	src := v
	if p := v.Producer; p != nil && g.IsOutput(v) {
		pre := g.NewValue(v.Name + "_float")
		for i, o := range p.Outputs {
			if o == v {
				p.Outputs[i] = pre
			}
		}
		pre.Producer = p
		v.Producer = nil
		src = pre
		q := g.AddNode("QuantizeLinear", v.Name+"_QuantizeLinear", []*graph.Value{src, scale, zp}, []string{v.Name + "_quantized"}, axisAttrs(enc)...)
		dq := g.AddNode("DequantizeLinear", v.Name+"_DequantizeLinear", []*graph.Value{q.Output(), scale, zp}, nil, axisAttrs(enc)...)
		dq.Outputs = []*graph.Value{v}
		v.Producer = dq
		return nil
	}
	readers := append([]*graph.Node(nil), v.Consumers...)
	q := g.AddNode("QuantizeLinear", v.Name+"_QuantizeLinear", []*graph.Value{src, scale, zp}, []string{v.Name + "_quantized"}, axisAttrs(enc)...)
	dq := g.AddNode("DequantizeLinear", v.Name+"_DequantizeLinear", []*graph.Value{q.Output(), scale, zp}, []string{v.Name + "_dequantized"}, axisAttrs(enc)...)
	for _, r := range readers {
		for i, in := range r.Inputs {
			if in == v {
				g.SetInput(r, i, dq.Output())
			}
		}
	}
	return nil
}

// QuantizeTensor quantizes a float tensor with an encoding, as QuantizeLinear does.
func QuantizeTensor(t *graph.Tensor, enc *Encoding) (*graph.Tensor, error) {
	x, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	lo, hi, ok := kernels.QuantRange(enc.DType)
	if !ok {
		return nil, fmt.Errorf("%s is not a quantized type", enc.DType.Short())
	}
	if enc.PerChannel() && (enc.Axis < 0 || enc.Axis >= t.Rank() || t.Shape[enc.Axis] != len(enc.Scale)) {
		return nil, fmt.Errorf("%d scales do not fit axis %d of %v", len(enc.Scale), enc.Axis, t.Shape)
	}
	if enc.BlockSize > 0 && (enc.Axis < 0 || enc.Axis >= t.Rank() || graph.Numel(enc.ScaleShape) != len(enc.Scale)) {
		return nil, fmt.Errorf("blocked scales %v do not fit %v", enc.ScaleShape, t.Shape)
	}
	out := graph.NewTensor(enc.DType, t.Shape)
	switch d := out.Data().(type) {
	case []int8:
		quantizeValues(d, x, enc, t.Shape, lo, hi)
	case []uint8:
		quantizeValues(d, x, enc, t.Shape, lo, hi)
	case []int16:
		quantizeValues(d, x, enc, t.Shape, lo, hi)
	case []uint16:
		quantizeValues(d, x, enc, t.Shape, lo, hi)
	case []int32:
		quantizeValues(d, x, enc, t.Shape, lo, hi)
	default: // 4-bit and wider types: stored through int64
		vals := make([]int64, len(x))
		quantizeValues(vals, x, enc, t.Shape, lo, hi)
		kernels.StoreInt64s(out, vals)
	}
	return out, nil
}

// quantizeValues quantizes x into dst element by element (QuantizeValue's
// float64 formula). Per channel it takes a channel's run of elements at a
// time, without a lookup per element (ResNet-50's 25.6 M weights).
func quantizeValues[T int8 | uint8 | int16 | uint16 | int32 | int64](dst []T, x []float32, enc *Encoding, shape []int, lo, hi float64) {
	if enc.PerChannel() && enc.BlockSize == 0 {
		inner, dim := graph.Numel(shape[enc.Axis+1:]), shape[enc.Axis]
		for i, k := 0, 0; i < len(x); i += inner {
			sc, zp := enc.Scale[k], int32(enc.ZeroPoint[k])
			for j := i; j < i+inner; j++ {
				dst[j] = T(kernels.QuantizeValue(x[j], sc, zp, lo, hi))
			}
			if k++; k == dim {
				k = 0
			}
		}
		return
	}
	at := enc.ScaleIndex(shape)
	for i, v := range x {
		k := at(i)
		dst[i] = T(kernels.QuantizeValue(v, enc.Scale[k], int32(enc.ZeroPoint[k]), lo, hi))
	}
}

// quantizeBias computes the int32 bias of a layer: scale_b = s_in * s_w (per
// channel where the weight is), zero point 0, stored as st.
func quantizeBias(b *graph.Tensor, bp BiasPlan, st graph.DataType) (*Encoding, *graph.Tensor, error) {
	if len(bp.Input.Scale) != 1 {
		return nil, nil, fmt.Errorf("the layer input needs a per-tensor encoding")
	}
	n := b.Len()
	enc := &Encoding{DType: graph.Int32, Scale: make([]float32, n), ZeroPoint: make([]int64, n)}
	for i := range enc.Scale {
		ws := bp.Weight.Scale[0]
		if bp.Weight.PerChannel() {
			if len(bp.Weight.Scale) != n {
				return nil, nil, fmt.Errorf("%d weight scales for %d bias values", len(bp.Weight.Scale), n)
			}
			ws = bp.Weight.Scale[i]
		}
		enc.Scale[i] = bp.Input.Scale[0] * ws
		if enc.Scale[i] == 0 {
			enc.Scale[i] = 1 // an all-zero channel: any scale represents 0 exactly
		}
	}
	if n == 1 {
		enc.Scale, enc.ZeroPoint = enc.Scale[:1], enc.ZeroPoint[:1]
	} else {
		enc.Axis = 0
	}
	fitScales(enc, st)
	q, err := QuantizeTensor(b, enc)
	return enc, q, err
}

// ComputeEncoding turns a calibrated range into an encoding of type dt. The range
// is widened to include 0 so zero is exactly representable; symmetric encodings
// center on zero (zero point 0 for signed types, the middle for unsigned).
func ComputeEncoding(lo, hi float32, dt graph.DataType, symmetric bool) (*Encoding, error) {
	qmin, qmax, ok := kernels.QuantRange(dt)
	if !ok || dt == graph.Int32 {
		return nil, fmt.Errorf("%s is not a quantized activation or weight type", dt.Short())
	}
	l, h := math.Min(float64(lo), 0), math.Max(float64(hi), 0)
	if math.IsNaN(l) || math.IsNaN(h) || math.IsInf(l, 0) || math.IsInf(h, 0) {
		return nil, fmt.Errorf("range [%v, %v] is not finite", lo, hi)
	}
	var scale float64
	var zp int64
	if symmetric {
		amax := math.Max(-l, h)
		if qmin < 0 {
			scale = amax / qmax // signed: [-qmax, qmax] around 0
		} else {
			scale = 2 * amax / (qmax - qmin)
			zp = int64((qmax + qmin + 1) / 2)
		}
	} else {
		scale = (h - l) / (qmax - qmin)
		if scale > 0 {
			zp = int64(math.Max(qmin, math.Min(qmax, math.RoundToEven(qmin-l/scale))))
		} else if qmin > 0 {
			zp = int64(qmin)
		}
	}
	if scale == 0 || float32(scale) == 0 {
		scale = 1 // all-zero data: any scale represents it exactly
	}
	return &Encoding{DType: dt, Scale: []float32{float32(scale)}, ZeroPoint: []int64{zp}}, nil
}
