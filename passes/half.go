package passes

import (
	"fmt"

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

// weightRewrites are the passes that compute new weights from float32 ones.
var weightRewrites = map[string]bool{"fold-bn": true, "fold-affine": true, "cle": true, "absorb-high-bias": true, "bias-correction": true, "replace-relu6": true}

// applyHalf runs a weight rewrite on a float16/bfloat16 model in float32
// (see inFloat32); other passes run as they are.
func applyHalf(p Pass, m *graph.Model, st *State) (*Change, error) {
	if !weightRewrites[p.Name()] {
		return p.Apply(m, st)
	}
	var c *Change
	err := inFloat32(m, func() error {
		var err error
		c, err = p.Apply(m, st)
		return err
	})
	return c, err
}

// inFloat32 runs f, which rewrites float32 weights, on a model whose weights
// may be float16/bfloat16: the half initializers are widened to float32 for
// f, and afterwards every initializer that was half, or that f made, is
// rounded back to the model's type (float32 initializers f did not make, such
// as Resize scales, stay float32).
func inFloat32(m *graph.Model, f func() error) error {
	g := m.Graph
	was := map[string]graph.DataType{}
	var dt graph.DataType
	for _, v := range g.Initializers {
		if isHalf(v.Const.DType) {
			was[v.Name], dt = v.Const.DType, v.Const.DType
		}
	}
	if len(was) == 0 {
		return f()
	}
	kept := map[*graph.Tensor]bool{}
	for _, v := range g.Initializers {
		if v.Const.DType == graph.Float {
			kept[v.Const] = true
			continue
		}
		if _, ok := was[v.Name]; ok {
			d, err := v.Const.AsFloat32()
			if err != nil {
				return fmt.Errorf("initializer %q: %v", v.Name, err)
			}
			w := graph.Float32Tensor(append([]int(nil), v.Const.Shape...), d)
			w.Name = v.Const.Name
			v.Const = w
		}
	}
	err := f()
	for _, v := range g.Initializers {
		if v.Const.DType != graph.Float || kept[v.Const] {
			continue
		}
		to := dt
		if t, ok := was[v.Name]; ok {
			to = t
		}
		t := scaleTensor(v.Const.Shape, v.Const.Float32s(), to)
		t.Name = v.Const.Name
		v.Const = t
	}
	return err
}

// halfTolerance is what verification enforces for a pass on m: a weight
// rewrite of a half model is exact in float32 but stores its weights rounded
// to the model's type, which moves outputs by a model-dependent amount
// (PaddleOCR rec in float16: fold-affine 1e-2, fold-bn 1.3e-3), so its change
// is reported, not enforced, like that of any rewrite that is not exact.
func halfTolerance(m *graph.Model, p Pass, tol float64) float64 {
	if tol < 0 || !weightRewrites[p.Name()] {
		return tol
	}
	for _, v := range m.Graph.Initializers {
		if isHalf(v.Const.DType) {
			return -1
		}
	}
	return tol
}
