package export

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// tokenQuant is onnxq's per-token activation quantizer
// (passes.ToDynamicPerToken), one int8 scale per row of x's last axis:
//
//	s = Max(ReduceMax(Abs(x), axis -1), tiny) / 127
//	q = Cast<uint8>(Round(x / s) + 128)
//
// rowScale is s, which the layers multiply their output rows by; consts are
// the quantizer's own constants (they are not weights).
type tokenQuant struct {
	rowScale *graph.Value
	offset   float32
	consts   []*graph.Value
}

// perTokenQuant reads the quantizer whose output is q, or nil when q is
// not quantized that way.
func perTokenQuant(q *graph.Value) *tokenQuant {
	cast := producer(q, "Cast")
	if cast == nil {
		return nil
	}
	if to, _ := cast.AttrInt("to", 0); to != int64(onnxpb.TensorProto_UINT8) {
		return nil
	}
	add := producer(cast.Input(0), "Add")
	if add == nil {
		return nil
	}
	rounded, off := splitConst(add)
	rd := producer(rounded, "Round")
	offset, ok := scalar(off)
	if rd == nil || !ok {
		return nil
	}
	div := producer(rd.Input(0), "Div")
	if div == nil {
		return nil
	}
	x, s := div.Input(0), div.Input(1)
	sdiv := producer(s, "Div")
	if sdiv == nil || sdiv.Input(0) == nil {
		return nil
	}
	if levels, ok := scalar(sdiv.Input(1)); !ok || levels != 127 {
		return nil
	}
	safe := producer(sdiv.Input(0), "Max")
	if safe == nil {
		return nil
	}
	reduced, tiny := splitConst(safe)
	if _, ok := scalar(tiny); !ok {
		return nil
	}
	rmax := producer(reduced, "ReduceMax")
	if rmax == nil || !lastAxis(rmax, x) {
		return nil
	}
	if abs := producer(rmax.Input(0), "Abs"); abs == nil || abs.Input(0) != x {
		return nil
	}
	return &tokenQuant{rowScale: s, offset: offset, consts: []*graph.Value{off, sdiv.Input(1), tiny, rmax.Input(1)}}
}

// lastAxis reports whether ReduceMax r keeps dims and reduces x's last axis
// alone (axes from its input, opset 18, or its attribute).
func lastAxis(r *graph.Node, x *graph.Value) bool {
	if k, _ := r.AttrInt("keepdims", 1); k != 1 {
		return false
	}
	axes, _ := r.AttrInts("axes", nil)
	if a := r.Input(1); a != nil {
		if a.Const == nil || a.Const.DType != graph.Int64 {
			return false
		}
		axes = a.Const.Data().([]int64)
	}
	if len(axes) != 1 {
		return false
	}
	if axes[0] == -1 {
		return true
	}
	shape, ok := x.StaticShape()
	return ok && axes[0] == int64(len(shape)-1)
}

// producer is v's producer when it is a standard op of this type.
func producer(v *graph.Value, op string) *graph.Node {
	if v == nil || v.Producer == nil || v.Producer.OpType != op || !graph.IsStandardDomain(v.Producer.Domain) {
		return nil
	}
	return v.Producer
}

// splitConst is a two-input node's non-constant input and its constant one
// (nil, nil unless exactly one is constant).
func splitConst(n *graph.Node) (v, c *graph.Value) {
	a, b := n.Input(0), n.Input(1)
	if a == nil || b == nil || len(n.Inputs) != 2 {
		return nil, nil
	}
	switch {
	case a.Const == nil && b.Const != nil:
		return a, b
	case a.Const != nil && b.Const == nil:
		return b, a
	}
	return nil, nil
}

// scalar reads a one-value float constant.
func scalar(v *graph.Value) (float32, bool) {
	if v == nil || v.Const == nil || v.Const.Len() != 1 || !v.Const.DType.IsFloat() {
		return 0, false
	}
	f, err := v.Const.AsFloat32()
	if err != nil {
		return 0, false
	}
	return f[0], true
}

// perTokenLayer reads onnxq's per-token dynamic forms after their quantizer
// tq: standard ONNX
//
//	MatMulInteger(q, W, 128[, w_zp]) -> Cast -> Mul(w_scale) -> Mul(s_row) [-> Add(bias)]
//
// and ONNX Runtime's
//
//	com.microsoft::MatMulIntegerToFloat(q, W, 1, w_scale, 128[, w_zp]) -> Mul(s_row) [-> Add(bias)]
//
// The row scales are computed at run time, so the layer exports like the
// per-tensor dynamic forms: weight, weight_scale, weight_offset and bias.
func (c *collector) perTokenLayer(n *graph.Node, tq *tokenQuant) error {
	var ws, wzp, azp, y *graph.Value
	if n.OpType == "MatMulIntegerToFloat" {
		if one, ok := scalar(n.Input(2)); !ok || one != 1 {
			return fmt.Errorf("its input scale is not the constant 1 (onnxq's per-token form scales rows after it)")
		}
		if len(n.Inputs) > 6 && n.Input(6) != nil {
			return fmt.Errorf("its bias input would be added before the row scale (not onnxq's per-token form)")
		}
		ws, azp, wzp, y = n.Input(3), n.Input(4), n.Input(5), n.Output()
		c.use(n.Input(2))
	} else {
		azp, wzp = n.Input(2), n.Input(3)
		if cast := soleConsumer(n.Output(), "Cast"); cast != nil {
			if mul := soleConsumer(cast.Output(), "Mul"); mul != nil {
				if f, k := splitConst(mul); f == cast.Output() {
					ws, y = k, mul.Output()
				}
			}
		}
		if ws == nil {
			return fmt.Errorf("its weight scale was not found (onnxq writes MatMulInteger -> Cast -> Mul(weight scale) -> Mul(row scale))")
		}
	}
	if azp == nil || azp.Const == nil || azp.Const.DType != graph.Uint8 || azp.Const.Len() != 1 || float32(azp.Const.Data().([]uint8)[0]) != tq.offset {
		return fmt.Errorf("its input zero point is not a uint8 constant equal to the quantizer's offset %g", tq.offset)
	}
	rows := soleConsumer(y, "Mul")
	if rows == nil || !(rows.Input(0) == y && rows.Input(1) == tq.rowScale || rows.Input(1) == y && rows.Input(0) == tq.rowScale) {
		return fmt.Errorf("its output is not multiplied by the per-token row scale")
	}
	var bias *graph.Value
	if add := soleConsumer(rows.Output(), "Add"); add != nil {
		_, bias = splitConst(add)
	}
	c.use(azp)
	c.use(tq.consts...)
	return c.dynamicLayer(n, n.Input(1), ws, wzp, bias)
}
