package testmodels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"google.golang.org/protobuf/proto"
)

// ToHalf converts a float32 model in place to dt (Float16 or BFloat16), as
// exporters' half-precision converters do: float32 initializers, Constant and
// ConstantOfShape tensors, Cast targets and declared types become dt, except
// the operands the ONNX spec keeps float32 (Resize and Upsample scales). With
// keepIO the float32 graph inputs and outputs stay float32 and Cast nodes
// convert at the boundary (the form a runtime without half I/O takes).
func ToHalf(m *graph.Model, dt graph.DataType, keepIO bool) error {
	if dt != graph.Float16 && dt != graph.BFloat16 {
		return fmt.Errorf("ToHalf: %s is not a half-precision type", dt.Short())
	}
	g := m.Graph
	keepFloat := func(v *graph.Value) bool { // read as float32 scales by the spec
		for _, c := range v.Consumers {
			if (c.OpType == "Resize" && c.Input(2) == v) || (c.OpType == "Upsample" && c.Input(1) == v) {
				return true
			}
		}
		return false
	}
	for _, v := range g.Initializers {
		if v.Const.DType == graph.Float && !keepFloat(v) {
			v.Const = graph.NarrowFloat32(v.Const, dt)
		}
	}
	for _, n := range g.Nodes {
		switch n.OpType {
		case "Constant", "ConstantOfShape":
			a := n.Attr("value")
			if a == nil || a.T == nil || graph.DataType(a.T.GetDataType()) != graph.Float || keepFloat(n.Output()) {
				continue
			}
			t, err := graph.TensorFromProto(a.T, m.Dir, false)
			if err != nil {
				return err
			}
			n.SetAttr(graph.AttrTensorOf("value", graph.NarrowFloat32(t, dt)))
		case "Cast":
			if to, _ := n.AttrInt("to", 0); graph.DataType(to) == graph.Float && !keepFloat(n.Output()) {
				n.SetAttr(graph.AttrIntOf("to", int64(dt)))
			}
		}
	}
	setType := func(v *graph.Value) {
		if tt := v.Info.GetType().GetTensorType(); tt != nil && graph.DataType(tt.GetElemType()) == graph.Float && !keepFloat(v) {
			tt.ElemType = proto.Int32(int32(dt))
		}
	}
	for _, v := range g.ValueInfo {
		setType(v)
	}
	for _, v := range g.Inputs {
		if v.Const != nil || v.ElemType() != graph.Float {
			continue
		}
		if !keepIO {
			setType(v)
			continue
		}
		readers := append([]*graph.Node(nil), v.Consumers...)
		c := g.AddNode("Cast", v.Name+"_to_half", []*graph.Value{v}, []string{v.Name + "_half"}, graph.AttrIntOf("to", int64(dt)))
		for _, r := range readers {
			for i, in := range r.Inputs {
				if in == v {
					g.SetInput(r, i, c.Output())
				}
			}
		}
	}
	for _, v := range g.Outputs {
		if v.ElemType() != graph.Float {
			continue
		}
		if !keepIO || v.Producer == nil {
			setType(v)
			continue
		}
		// The producer writes a half value; a Cast writes the float32 output.
		p := v.Producer
		half := g.NewValue(v.Name + "_half")
		for i, o := range p.Outputs {
			if o == v {
				p.Outputs[i] = half
			}
		}
		half.Producer = p
		c := g.AddNode("Cast", v.Name+"_to_float", []*graph.Value{half}, nil, graph.AttrIntOf("to", int64(graph.Float)))
		c.Outputs = []*graph.Value{v}
		v.Producer = c
	}
	return g.TopoSort()
}

// RoundWeights rounds every float32 initializer and Constant tensor of m to
// dt's precision and keeps them float32: the float32 twin of ToHalf's weights,
// a reference where a runtime has no kernels for dt.
func RoundWeights(m *graph.Model, dt graph.DataType) error {
	round := func(t *graph.Tensor) *graph.Tensor {
		h := graph.NarrowFloat32(t, dt)
		f, _ := h.AsFloat32()
		out := graph.Float32Tensor(t.Shape, f)
		out.Name = t.Name
		return out
	}
	for _, v := range m.Graph.Initializers {
		if v.Const.DType == graph.Float {
			v.Const = round(v.Const)
		}
	}
	for _, n := range m.Graph.Nodes {
		if a := n.Attr("value"); n.OpType == "Constant" && a != nil && a.T != nil && graph.DataType(a.T.GetDataType()) == graph.Float {
			t, err := graph.TensorFromProto(a.T, m.Dir, false)
			if err != nil {
				return err
			}
			n.SetAttr(graph.AttrTensorOf("value", round(t)))
		}
	}
	return nil
}
