package passes

import (
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// Q/DQ in a float16 or bfloat16 graph: DequantizeLinear outputs the type of
// its scale and QuantizeLinear reads x of that type (both from opset 19), so a
// tensor's scales are stored in the tensor's own float type. The encodings are
// rounded to that type before anything is quantized with them, so weights and
// biases in the file are quantized with exactly the scales the file holds.

func isHalf(dt graph.DataType) bool { return dt == graph.Float16 || dt == graph.BFloat16 }

// scaleTypes gives the float type of each value's scales: its half type in a
// half graph, float32 otherwise (absent from the map).
func scaleTypes(m *graph.Model) map[string]graph.DataType { return kernels.HalfTypes(m) }

func scaleTypeOf(v *graph.Value, types map[string]graph.DataType) graph.DataType {
	if v.Const != nil && isHalf(v.Const.DType) {
		return v.Const.DType
	}
	if dt, ok := types[v.Name]; ok {
		return dt
	}
	return graph.Float
}

// fitScales rounds enc's scales to dt (nearest, ties to even), keeping each
// above zero: a scale that would underflow becomes dt's least positive value.
func fitScales(enc *Encoding, dt graph.DataType) {
	if enc == nil || !isHalf(dt) {
		return
	}
	for i, s := range enc.Scale {
		r := roundTo(s, dt)
		if r == 0 && s != 0 {
			r = leastPositive(dt)
		}
		enc.Scale[i] = r
	}
}

func roundTo(f float32, dt graph.DataType) float32 {
	if dt == graph.BFloat16 {
		return graph.ToBFloat16(f).Float32()
	}
	return graph.ToFloat16(f).Float32()
}

func leastPositive(dt graph.DataType) float32 {
	if dt == graph.BFloat16 {
		return graph.BFloat16Bits(1).Float32()
	}
	return graph.Float16Bits(1).Float32()
}

// scaleTensor stores scales in dt (float32 unless dt is a half type).
func scaleTensor(shape []int, scales []float32, dt graph.DataType) *graph.Tensor {
	if !isHalf(dt) {
		return graph.Float32Tensor(shape, append([]float32(nil), scales...))
	}
	t := graph.NewTensor(dt, shape)
	switch d := t.Data().(type) {
	case []graph.Float16Bits:
		for i, s := range scales {
			d[i] = graph.ToFloat16(s)
		}
	case []graph.BFloat16Bits:
		for i, s := range scales {
			d[i] = graph.ToBFloat16(s)
		}
	}
	return t
}

// sameTypeOperands lists, per op, the inputs the spec types like input 0 that
// an opset upgrade turns from attributes into float32 constants.
var sameTypeOperands = map[string][]int{"Clip": {1, 2}, "Pad": {2}}

// fitOperandTypes converts those constants to input 0's half type (half maps
// the values of the model before the upgrade to their half types).
func fitOperandTypes(g *graph.Graph, half map[string]graph.DataType) {
	for _, n := range g.Nodes {
		idx := sameTypeOperands[n.OpType]
		if len(idx) == 0 || !graph.IsStandardDomain(n.Domain) || n.Input(0) == nil {
			continue
		}
		dt := scaleTypeOf(n.Input(0), half)
		if !isHalf(dt) {
			continue
		}
		for _, i := range idx {
			if v := n.Input(i); v != nil && v.Const != nil && v.Const.DType == graph.Float {
				t := scaleTensor(v.Const.Shape, v.Const.Float32s(), dt)
				t.Name = v.Const.Name
				v.Const = t
			}
		}
	}
}
