package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// float16 and bfloat16 graphs run in float32: NewSession compiles a lowered
// copy of the model in which every half-precision constant is decoded once,
// every half type attribute says float32, and the nodes that round to a half
// type in the model (Cast, CastLike, DequantizeLinear with a half scale) run
// their float32 form and then round to that type's precision, ties to even. So
// kernels, fusion and taps only ever see float32, and values are rounded where
// the model rounds them explicitly; other ops keep float32 precision between
// those points, as ONNX Runtime's CPU kernels do for half types they compute in
// float32. Graph inputs of a half type are widened at Run, and graph outputs of
// a half type are returned in it.

// halfDomain holds the rounding forms of the lowered Cast, CastLike and
// DequantizeLinear; its opset version is the model's ai.onnx version, so the
// wrapped standard kernel is chosen as for the original node.
const halfDomain = "onnxq.half"

// roundAttr names the half type a lowered node rounds its outputs to.
const roundAttr = "onnxq_round_to"

func isHalf(dt graph.DataType) bool { return dt == graph.Float16 || dt == graph.BFloat16 }

// halfIO converts a session's half-precision graph inputs and outputs; a nil
// *halfIO converts nothing.
type halfIO struct {
	inputs  map[string]graph.DataType
	outputs map[string]graph.DataType
}

func init() {
	for _, op := range []string{"Cast", "CastLike", "DequantizeLinear"} {
		Register(halfDomain, op, 1, roundingFactory)
	}
}

// roundingFactory compiles a lowered node: the standard kernel of its op, whose
// float32 outputs are then rounded to the half type named by roundAttr.
func roundingFactory(ni *NodeInfo) (Kernel, error) {
	to, err := ni.Node.AttrInt(roundAttr, 0)
	if err != nil {
		return nil, err
	}
	dt := graph.DataType(to)
	if !isHalf(dt) {
		return nil, fmt.Errorf("%s: %s is not a half-precision type", roundAttr, dt.Short())
	}
	inner := *ni.Node
	inner.Domain = ""
	inner.Attrs = nil
	for _, a := range ni.Node.Attrs {
		if a.GetName() != roundAttr {
			inner.Attrs = append(inner.Attrs, a)
		}
	}
	f, err := lookup("", inner.OpType, ni.Opset)
	if err != nil {
		return nil, err
	}
	ini := *ni
	ini.Node = &inner
	k, err := f(&ini)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		outs, err := k.Run(ctx, in)
		if err != nil {
			return nil, err
		}
		for i, t := range outs {
			if t == nil || t.DType != graph.Float {
				continue
			}
			dst := t
			if aliases(t, in) { // Cast to the type it has returns its input
				dst = ctx.Float32(t.Shape)
			}
			roundHalf(dst.Float32s(), t.Float32s(), dt)
			outs[i] = dst
		}
		return outs, nil
	}), nil
}

// aliases reports whether t shares its buffer with one of in.
func aliases(t *graph.Tensor, in []*graph.Tensor) bool {
	k, ok := bufKey(t)
	if !ok {
		return false
	}
	for _, x := range in {
		if xk, ok := bufKey(x); ok && xk == k {
			return true
		}
	}
	return false
}

// roundHalf writes src rounded to dt's precision (ties to even) into dst.
func roundHalf(dst, src []float32, dt graph.DataType) {
	if dt == graph.BFloat16 {
		for i, v := range src {
			dst[i] = graph.ToBFloat16(v).Float32()
		}
		return
	}
	for i, v := range src {
		dst[i] = graph.ToFloat16(v).Float32()
	}
}

// widen returns a float32 copy of a half tensor (other tensors as they are).
func widen(t *graph.Tensor) (*graph.Tensor, error) {
	if t == nil || !isHalf(t.DType) {
		return t, nil
	}
	if err := t.Materialize(); err != nil {
		return nil, err
	}
	d, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	out := graph.Float32Tensor(append([]int(nil), t.Shape...), d)
	out.Name = t.Name
	return out, nil
}

// HalfTypes maps every value of m that holds float16 or bfloat16 data to its
// type: the declared type where the model declares one, else the type its
// producer gives it (Cast's to, a Constant's tensor, DequantizeLinear's scale,
// the first floating-point input of most ops). Empty for a model without half
// types.
func HalfTypes(m *graph.Model) map[string]graph.DataType {
	out := map[string]graph.DataType{}
	for v, dt := range elemTypes(m) {
		if isHalf(dt) {
			out[v.Name] = dt
		}
	}
	return out
}

// nonFloatOuts lists ops whose outputs after the first are integer or bool
// (indices, masks, counts) whatever their input type.
var nonFloatOuts = map[string]bool{"TopK": true, "MaxPool": true, "Dropout": true, "Unique": true}

// nonFloatOps have no floating-point output whatever their inputs.
var nonFloatOps = map[string]bool{
	"Shape": true, "Size": true, "ArgMax": true, "ArgMin": true, "NonZero": true,
	"Equal": true, "Less": true, "LessOrEqual": true, "Greater": true, "GreaterOrEqual": true,
	"IsNaN": true, "IsInf": true, "Not": true, "And": true, "Or": true, "Xor": true,
	"QuantizeLinear": true, "DynamicQuantizeLinear": true, "Multinomial": true,
	"NonMaxSuppression": true, "StringNormalizer": true,
}

// elemTypes gives the element type of every value it can tell (see HalfTypes).
func elemTypes(m *graph.Model) map[*graph.Value]graph.DataType {
	g := m.Graph
	types := map[*graph.Value]graph.DataType{}
	for _, v := range g.Values() {
		if dt := v.ElemType(); dt != graph.Undefined {
			types[v] = dt
		}
	}
	order, err := g.TopoOrder()
	if err != nil {
		return types
	}
	for _, n := range order {
		produced := producedType(n, types)
		for i, o := range n.Outputs {
			if o == nil {
				continue
			}
			if _, ok := types[o]; ok {
				continue // declared
			}
			if i > 0 && nonFloatOuts[n.OpType] {
				continue
			}
			if produced != graph.Undefined {
				types[o] = produced
			}
		}
	}
	return types
}

// producedType is the element type an undeclared output of n has, when it
// follows from the op; Undefined when it does not or is not floating point.
func producedType(n *graph.Node, types map[*graph.Value]graph.DataType) graph.DataType {
	if !graph.IsStandardDomain(n.Domain) || nonFloatOps[n.OpType] {
		return graph.Undefined
	}
	switch n.OpType {
	case "Cast":
		to, _ := n.AttrInt("to", 0)
		return graph.DataType(to)
	case "CastLike":
		return types[n.Input(1)]
	case "DequantizeLinear":
		if dt, _ := n.AttrInt("output_dtype", 0); dt != 0 {
			return graph.DataType(dt)
		}
		return types[n.Input(1)]
	case "Constant": // the type only: decoding the tensor would copy the weights
		if a := n.Attr("value"); a.GetT() != nil {
			return graph.DataType(a.GetT().GetDataType())
		}
		if n.HasAttr("value_float") || n.HasAttr("value_floats") {
			return graph.Float
		}
		return graph.Undefined
	case "ConstantOfShape":
		if a := n.Attr("value"); a.GetT() != nil {
			return graph.DataType(a.GetT().GetDataType())
		}
		return graph.Float
	case "EyeLike", "RandomNormalLike", "RandomUniformLike", "Bernoulli":
		if dt, _ := n.AttrInt("dtype", 0); dt != 0 {
			return graph.DataType(dt)
		}
		return types[n.Input(0)]
	case "RandomNormal", "RandomUniform":
		dt, _ := n.AttrInt("dtype", int64(graph.Float))
		return graph.DataType(dt)
	case "HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix":
		dt, _ := n.AttrInt("output_datatype", int64(graph.Float))
		return graph.DataType(dt)
	}
	for _, in := range n.Inputs {
		if dt := types[in]; dt.IsFloat() {
			return dt
		}
	}
	return graph.Undefined
}

// lowerHalf returns m unchanged (and a nil *halfIO) when no value of it has a
// half type, else the float32 model that computes it (see the top of this file).
// An invalid model is returned unchanged for NewSession to report.
func lowerHalf(m *graph.Model) (*graph.Model, *halfIO, error) {
	g := m.Graph
	types := elemTypes(m)
	found := false
	for _, dt := range types {
		found = found || isHalf(dt)
	}
	if !found || g.Validate() != nil {
		return m, nil, nil
	}
	order, err := g.TopoOrder()
	if err != nil {
		return m, nil, nil
	}
	lm := graph.NewModel(m.Opsets()...)
	lm.Proto.IrVersion = m.Proto.IrVersion
	lm.Dir = m.Dir
	lm.SetOpset(halfDomain, m.OpsetVersion(""))
	lg := lm.Graph
	h := &halfIO{inputs: map[string]graph.DataType{}, outputs: map[string]graph.DataType{}}

	vals := map[*graph.Value]*graph.Value{}
	lower := func(v *graph.Value) *graph.Value {
		if v == nil {
			return nil
		}
		if lv, ok := vals[v]; ok {
			return lv
		}
		lv := lg.NewValue(v.Name)
		vals[v] = lv
		return lv
	}
	for _, v := range g.Inputs {
		lv := lg.AddInput(v.Name, graph.Float, nil)
		lv.Info = floatInfo(v.Info)
		vals[v] = lv
		if dt := v.ElemType(); isHalf(dt) {
			h.inputs[v.Name] = dt
		}
	}
	for _, v := range g.Initializers {
		t, err := widen(v.Const)
		if err != nil {
			return nil, nil, fmt.Errorf("initializer %q: %v", v.Name, err)
		}
		if t == v.Const {
			if err := t.Materialize(); err != nil {
				return nil, nil, err
			}
		}
		vals[v] = lg.AddInitializer(v.Name, t)
	}
	for _, n := range order {
		ins := make([]*graph.Value, len(n.Inputs))
		for i, v := range n.Inputs {
			ins[i] = lower(v)
		}
		attrs, err := lowerAttrs(n, m.Dir)
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %v", n, err)
		}
		ln := lg.AddNode(n.OpType, "", ins, nil, attrs...)
		ln.Name, ln.Domain, ln.Proto = n.Name, n.Domain, n.Proto
		for _, o := range n.Outputs {
			if o == nil {
				ln.Outputs = append(ln.Outputs, nil)
				continue
			}
			lo := lower(o)
			lo.Producer = ln
			ln.Outputs = append(ln.Outputs, lo)
		}
		for _, v := range n.Implicit {
			ln.Implicit = append(ln.Implicit, lower(v))
		}
		if dt := roundsTo(n, types); isHalf(dt) {
			ln.Domain = halfDomain
			ln.Attrs = append(ln.Attrs, graph.AttrIntOf(roundAttr, int64(dt)))
		}
	}
	for _, v := range g.Outputs {
		lv := lower(v)
		if lv.Info == nil {
			lv.Info = floatInfo(v.Info)
		}
		lg.AddOutput(lv)
		if dt := types[v]; isHalf(dt) {
			h.outputs[v.Name] = dt
		}
	}
	return lm, h, nil
}

// roundsTo is the half type a node's output is rounded to in the model, when
// the node sets it explicitly.
func roundsTo(n *graph.Node, types map[*graph.Value]graph.DataType) graph.DataType {
	if !graph.IsStandardDomain(n.Domain) {
		return graph.Undefined
	}
	switch n.OpType {
	case "Cast":
		to, _ := n.AttrInt("to", 0)
		return graph.DataType(to)
	case "CastLike", "DequantizeLinear":
		if o := n.Output(); o != nil {
			return types[o]
		}
	}
	return graph.Undefined
}

// lowerAttrs rewrites the attributes that name or hold half-precision data to
// float32; others are shared.
func lowerAttrs(n *graph.Node, dir string) ([]*onnxpb.AttributeProto, error) {
	var out []*onnxpb.AttributeProto
	for _, a := range n.Attrs {
		switch {
		case a.GetType() == onnxpb.AttributeProto_TENSOR && a.T != nil && isHalf(graph.DataType(a.T.GetDataType())):
			t, err := graph.TensorFromProto(a.T, dir, false)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %v", a.GetName(), err)
			}
			w, err := widen(t)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %v", a.GetName(), err)
			}
			a = graph.AttrTensorOf(a.GetName(), w)
		case a.GetType() == onnxpb.AttributeProto_INT && isHalf(graph.DataType(a.GetI())) && halfTypeAttr(n.OpType, a.GetName()):
			a = graph.AttrIntOf(a.GetName(), int64(graph.Float))
		}
		out = append(out, a)
	}
	return out, nil
}

// halfTypeAttr reports whether attribute name of op is an element type.
func halfTypeAttr(op, name string) bool {
	switch name {
	case "to":
		return op == "Cast"
	case "dtype":
		return true
	case "output_dtype":
		return op == "DequantizeLinear"
	case "output_datatype": // the window ops and MelWeightMatrix
		return true
	}
	return false
}

// floatInfo copies a value info with its tensor element type set to float32
// when it is a half type.
func floatInfo(vi *onnxpb.ValueInfoProto) *onnxpb.ValueInfoProto {
	if vi == nil {
		return nil
	}
	c := proto.Clone(vi).(*onnxpb.ValueInfoProto)
	if tt := c.GetType().GetTensorType(); tt != nil && isHalf(graph.DataType(tt.GetElemType())) {
		tt.ElemType = proto.Int32(int32(graph.Float))
	}
	return c
}

// declareInputs gives the input specs the types the model declares.
func (h *halfIO) declareInputs(specs []InputSpec) {
	if h == nil {
		return
	}
	for i := range specs {
		if dt, ok := h.inputs[specs[i].Name]; ok {
			specs[i].DType = dt
		}
	}
}

// input checks a provided tensor against its spec and returns what the
// lowered graph reads: a half input accepts its declared type, widened
// exactly, or float32, rounded to the declared precision.
func (h *halfIO) input(in InputSpec, t *graph.Tensor) (*graph.Tensor, error) {
	dt, ok := h.inputType(in.Name)
	if !ok {
		return t, in.check(t)
	}
	if t.DType == graph.Float {
		spec := in
		spec.DType = graph.Float
		if err := spec.check(t); err != nil {
			return nil, err
		}
		out := graph.NewTensor(graph.Float, t.Shape)
		out.Name = t.Name
		roundHalf(out.Float32s(), t.Float32s(), dt)
		return out, nil
	}
	if err := in.check(t); err != nil {
		return nil, fmt.Errorf("%v (or float32)", err)
	}
	return widen(t)
}

func (h *halfIO) inputType(name string) (graph.DataType, bool) {
	if h == nil {
		return graph.Undefined, false
	}
	dt, ok := h.inputs[name]
	return dt, ok
}

// output converts a graph output to the type the model declares.
func (h *halfIO) output(name string, t *graph.Tensor) *graph.Tensor {
	if h == nil || t == nil || t.DType != graph.Float {
		return t
	}
	if dt, ok := h.outputs[name]; ok {
		return graph.NarrowFloat32(t, dt)
	}
	return t
}
