package passes

import (
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// ToDynamicPerToken is ToDynamic with one activation scale per token (per
// row of the input's last axis), symmetric, as msModelSlim's w8a8_dynamic
// and MindSpore's per-token dynamic quantization do:
//
//	s_row = max(max|x_row|, 1e-30) / 127,  q = round(x / s_row) + 128 (uint8)
//
// i.e. int8 symmetric codes stored with the zero point 128, so one scalar
// zero point serves every row and ONNX Runtime's kernels (whose A zero point
// and scale are per tensor) take it. The quantizer is standard ONNX (Abs,
// ReduceMax, Max, Div, Round, Add, Cast), one per input tensor; the product
// is rescaled per column by the weight scale and per row by s_row:
//
//	ort false: MatMulInteger(q, Wq, 128[, w_zp]) -> Cast -> Mul(w_scale) -> Mul(s_row) [-> Add(bias)]
//	ort true:  com.microsoft::MatMulIntegerToFloat(q, Wq, 1, w_scale, 128[, w_zp]) -> Mul(s_row) [-> Add(bias)]
//
// ORT's MatMulIntegerToFloat and DynamicQuantizeMatMul take A's scale per
// tensor only, hence a_scale 1 there and the row scale after it.
func ToDynamicPerToken(m *graph.Model, ort bool) (*Change, error) {
	type rowQuant struct{ q, s, zp, one *graph.Value }
	quantized := map[*graph.Value]rowQuant{}
	opset := m.OpsetVersion("")
	ch, err := rewriteDynamic(m, ort, func(g *graph.Graph, name string, a, out *graph.Value, l dynLayer) {
		r, ok := quantized[a]
		if !ok {
			base := a.Name + "_per_token"
			abs := g.AddNode("Abs", g.UniqueName(base+"_Abs"), []*graph.Value{a}, []string{g.UniqueName(base + "_abs")})
			var mx *graph.Node
			if opset >= 18 {
				axes := g.AddInitializer(g.UniqueName(base+"_axes"), graph.Int64Tensor([]int{1}, []int64{-1}))
				mx = g.AddNode("ReduceMax", g.UniqueName(base+"_ReduceMax"), []*graph.Value{abs.Output(), axes}, []string{g.UniqueName(base + "_absmax")}, graph.AttrIntOf("keepdims", 1))
			} else {
				mx = g.AddNode("ReduceMax", g.UniqueName(base+"_ReduceMax"), []*graph.Value{abs.Output()}, []string{g.UniqueName(base + "_absmax")}, graph.AttrIntsOf("axes", -1), graph.AttrIntOf("keepdims", 1))
			}
			// An all-zero row keeps a tiny scale: its codes are all 128.
			tiny := g.AddInitializer(g.UniqueName(base+"_tiny"), graph.Float32Tensor(nil, []float32{1e-30}))
			safe := g.AddNode("Max", g.UniqueName(base+"_Max"), []*graph.Value{mx.Output(), tiny}, []string{g.UniqueName(base + "_range")})
			levels := g.AddInitializer(g.UniqueName(base+"_levels"), graph.Float32Tensor(nil, []float32{127}))
			s := g.AddNode("Div", g.UniqueName(base+"_scale_Div"), []*graph.Value{safe.Output(), levels}, []string{g.UniqueName(base + "_scale")})
			x := g.AddNode("Div", g.UniqueName(base+"_Div"), []*graph.Value{a, s.Output()}, []string{g.UniqueName(base + "_scaled")})
			rd := g.AddNode("Round", g.UniqueName(base+"_Round"), []*graph.Value{x.Output()}, []string{g.UniqueName(base + "_rounded")})
			off := g.AddInitializer(g.UniqueName(base+"_offset"), graph.Float32Tensor(nil, []float32{128}))
			sh := g.AddNode("Add", g.UniqueName(base+"_Add"), []*graph.Value{rd.Output(), off}, []string{g.UniqueName(base + "_shifted")})
			q := g.AddNode("Cast", g.UniqueName(base+"_Cast"), []*graph.Value{sh.Output()}, []string{g.UniqueName(base + "_quantized")}, graph.AttrIntOf("to", int64(onnxpb.TensorProto_UINT8)))
			zp, _ := graph.TensorOf(graph.Uint8, nil, []uint8{128}) // a scalar uint8: cannot fail
			r = rowQuant{q: q.Output(), s: s.Output(), zp: g.AddInitializer(g.UniqueName(base+"_zero_point"), zp)}
			if ort {
				r.one = g.AddInitializer(g.UniqueName(base+"_unit_scale"), graph.Float32Tensor(nil, []float32{1}))
			}
			quantized[a] = r
		}
		var y *graph.Value
		if ort {
			ins := []*graph.Value{r.q, l.w, r.one, l.ws, r.zp}
			if l.wzp != nil {
				ins = append(ins, l.wzp)
			}
			mm := g.AddNode("MatMulIntegerToFloat", name, ins, []string{g.UniqueName(name + "_column_scaled")})
			mm.Domain = MatMulNBitsDomain
			y = mm.Output()
		} else {
			ins := []*graph.Value{r.q, l.w, r.zp}
			if l.wzp != nil {
				ins = append(ins, l.wzp)
			}
			mm := g.AddNode("MatMulInteger", g.UniqueName(name+"_MatMulInteger"), ins, []string{g.UniqueName(name + "_int32")})
			f := g.AddNode("Cast", g.UniqueName(name+"_Cast"), []*graph.Value{mm.Output()}, []string{g.UniqueName(name + "_float")}, graph.AttrIntOf("to", int64(onnxpb.TensorProto_FLOAT)))
			y = g.AddNode("Mul", g.UniqueName(name+"_weight_scale_Mul"), []*graph.Value{f.Output(), l.ws}, []string{g.UniqueName(name + "_column_scaled")}).Output()
		}
		var last *graph.Node
		if l.bias != nil {
			yr := g.AddNode("Mul", g.UniqueName(name+"_row_scale_Mul"), []*graph.Value{y, r.s}, []string{name + "_unbiased"})
			last = g.AddNode("Add", g.UniqueName(name+"_bias_Add"), []*graph.Value{yr.Output(), l.bias}, nil)
		} else {
			last = g.AddNode("Mul", g.UniqueName(name+"_row_scale_Mul"), []*graph.Value{y, r.s}, nil)
		}
		last.Outputs = []*graph.Value{out}
		out.Producer = last
	})
	if ch != nil {
		ch.Pass = "dynamic (per token)"
	}
	return ch, err
}
