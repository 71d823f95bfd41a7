package passes

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
)

// ToDynamic rewrites each MatMul, and each Gemm without transA, whose weight
// is a 2-D 8-bit constant read through a per-tensor or per-column
// DequantizeLinear into dynamic quantization: the float input is quantized
// at run time. Standard ONNX (ort false) writes
//
//	DynamicQuantizeLinear(A) -> MatMulInteger(Aq, Wq, a_zp[, w_zp]) -> Cast
//	-> Mul(a_scale x w_scale) [-> Add(bias)]
//
// and ort true writes ONNX Runtime's com.microsoft::DynamicQuantizeMatMul,
// the same arithmetic in one node. Gemm's alpha folds into the weight scale
// and beta into its constant bias. One DynamicQuantizeLinear serves every
// MatMul reading the same input. Weights of any other form stay as they are;
// their layers are named in the change's notes.
func ToDynamic(m *graph.Model, ort bool) (*Change, error) {
	type dql struct{ q, s, zp *graph.Value }
	quantized := map[*graph.Value]dql{}
	return rewriteDynamic(m, ort, func(g *graph.Graph, name string, a, out *graph.Value, l dynLayer) {
		if ort {
			ins := []*graph.Value{a, l.w, l.ws, l.wzp, l.bias}
			for len(ins) > 3 && ins[len(ins)-1] == nil {
				ins = ins[:len(ins)-1]
			}
			nd := g.AddNode("DynamicQuantizeMatMul", name, ins, nil)
			nd.Domain = MatMulNBitsDomain
			nd.Outputs = []*graph.Value{out}
			out.Producer = nd
			return
		}
		d, ok := quantized[a]
		if !ok {
			q := g.AddNode("DynamicQuantizeLinear", g.UniqueName(a.Name+"_DynamicQuantizeLinear"), []*graph.Value{a}, []string{g.UniqueName(a.Name + "_quantized"), g.UniqueName(a.Name + "_scale"), g.UniqueName(a.Name + "_zero_point")})
			d = dql{q.Outputs[0], q.Outputs[1], q.Outputs[2]}
			quantized[a] = d
		}
		ins := []*graph.Value{d.q, l.w, d.zp}
		if l.wzp != nil {
			ins = append(ins, l.wzp)
		}
		mm := g.AddNode("MatMulInteger", g.UniqueName(name+"_MatMulInteger"), ins, []string{g.UniqueName(name + "_int32")})
		f := g.AddNode("Cast", g.UniqueName(name+"_Cast"), []*graph.Value{mm.Output()}, []string{g.UniqueName(name + "_float")}, graph.AttrIntOf("to", int64(onnxpb.TensorProto_FLOAT)))
		s := g.AddNode("Mul", g.UniqueName(name+"_scale_Mul"), []*graph.Value{d.s, l.ws}, []string{g.UniqueName(name + "_scale")})
		var last *graph.Node
		if l.bias != nil {
			y := g.AddNode("Mul", g.UniqueName(name+"_Mul"), []*graph.Value{f.Output(), s.Output()}, []string{name + "_unbiased"})
			last = g.AddNode("Add", g.UniqueName(name+"_bias_Add"), []*graph.Value{y.Output(), l.bias}, nil)
		} else {
			last = g.AddNode("Mul", g.UniqueName(name+"_Mul"), []*graph.Value{f.Output(), s.Output()}, nil)
		}
		last.Outputs = []*graph.Value{out}
		out.Producer = last
	})
}

// dynLayer is a layer's quantized weight, its scale, zero point (nil when
// 0) and float bias (nil when none) as initializers.
type dynLayer struct{ w, ws, wzp, bias *graph.Value }

// rewriteDynamic removes each MatMul/Gemm that can run dynamically (see
// ToDynamic) and lets emit write the nodes that compute its output out from
// its float input a.
func rewriteDynamic(m *graph.Model, ort bool, emit func(g *graph.Graph, name string, a, out *graph.Value, l dynLayer)) (*Change, error) {
	g := m.Graph
	ch := &Change{Pass: "dynamic", MaxRelDiff: -1}
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if (n.OpType != "MatMul" && n.OpType != "Gemm") || !graph.IsStandardDomain(n.Domain) {
			continue
		}
		dq := n.Input(1)
		if dq == nil || dq.Producer == nil || dq.Producer.OpType != "DequantizeLinear" {
			continue
		}
		dw, why := dynamicWeight(n, dq.Producer)
		if why != "" {
			ch.Notes = append(ch.Notes, fmt.Sprintf("%s stays weight-only: %s", n.Name, why))
			continue
		}
		a, out, name := n.Input(0), n.Output(), n.Name
		g.RemoveNode(n)
		if len(dq.Consumers) == 0 && !g.IsOutput(dq) {
			g.RemoveNode(dq.Producer)
		}
		l := dynLayer{
			w:  g.AddInitializer(g.UniqueName(name+"_weight_quantized"), dw.q),
			ws: g.AddInitializer(g.UniqueName(name+"_weight_scale"), dw.scale),
		}
		if dw.zp != nil {
			l.wzp = g.AddInitializer(g.UniqueName(name+"_weight_zero_point"), dw.zp)
		}
		if dw.bias != nil {
			l.bias = g.AddInitializer(g.UniqueName(name+"_bias"), dw.bias)
		}
		ch.Count++
		ch.Nodes = append(ch.Nodes, name)
		emit(g, name, a, out, l)
	}
	if ort && ch.Count > 0 && m.OpsetVersion(MatMulNBitsDomain) < 1 {
		m.SetOpset(MatMulNBitsDomain, 1)
	}
	return ch, g.TopoSort()
}

// dynWeight is a MatMul/Gemm weight as [K, N] integers with its scale, zero
// point (nil when all are 0) and the float bias (Gemm's beta x C).
type dynWeight struct {
	q, scale, zp, bias *graph.Tensor
}

func dynamicWeight(n, dq *graph.Node) (*dynWeight, string) {
	x, s := dq.Input(0), dq.Input(1)
	if x == nil || x.Const == nil || s == nil || s.Const == nil || (dq.Input(2) != nil && dq.Input(2).Const == nil) {
		return nil, "its weight is not a constant"
	}
	q := x.Const
	if q.DType != graph.Int8 && q.DType != graph.Uint8 {
		return nil, fmt.Sprintf("its weight is %s; MatMulInteger takes 8 bits", q.DType.Short())
	}
	if q.Rank() != 2 {
		return nil, fmt.Sprintf("its weight is %v, not 2-D", q.Shape)
	}
	if b, _ := dq.AttrInt("block_size", 0); b > 0 {
		return nil, "its weight is quantized in blocks"
	}
	if s.Const.DType != graph.Float {
		return nil, fmt.Sprintf("its scale is %s, not float32", s.Const.DType.Short())
	}
	scale := append([]float32(nil), s.Const.Float32s()...)
	zps := make([]int64, len(scale))
	if z := dq.Input(2); z != nil {
		zps = kernels.LoadInt64s(z.Const)
	}
	axis, _ := dq.AttrInt("axis", 1)
	if axis < 0 {
		axis += 2
	}
	vals := kernels.LoadInt64s(q)
	k, nn := q.Shape[0], q.Shape[1]
	dw := &dynWeight{}
	if n.OpType == "Gemm" {
		if ta, _ := n.AttrInt("transA", 0); ta != 0 {
			return nil, "Gemm with transA"
		}
		alpha, _ := n.AttrFloat("alpha", 1)
		beta, _ := n.AttrFloat("beta", 1)
		for i := range scale {
			scale[i] *= alpha
		}
		if c := n.Input(2); c != nil {
			if c.Const == nil || c.Const.DType != graph.Float {
				return nil, "its bias is not a float constant"
			}
			b := append([]float32(nil), c.Const.Float32s()...)
			for i := range b {
				b[i] *= beta
			}
			dw.bias = graph.Float32Tensor(append([]int(nil), c.Const.Shape...), b)
		}
		if tb, _ := n.AttrInt("transB", 0); tb != 0 { // [N, K] -> [K, N]
			t := make([]int64, len(vals))
			for i := 0; i < k; i++ {
				for j := 0; j < nn; j++ {
					t[j*k+i] = vals[i*nn+j]
				}
			}
			vals, k, nn = t, nn, k
			axis = 1 - axis
		}
	}
	if len(scale) > 1 && (axis != 1 || len(scale) != nn) {
		return nil, fmt.Sprintf("%d scales along axis %d are not per output column", len(scale), axis)
	}
	dw.q = graph.NewTensor(q.DType, []int{k, nn})
	kernels.StoreInt64s(dw.q, vals)
	shape := []int{len(scale)}
	if len(scale) == 1 {
		shape = nil
	}
	dw.scale = graph.Float32Tensor(shape, scale)
	for _, z := range zps {
		if z != 0 {
			dw.zp = graph.NewTensor(q.DType, shape)
			kernels.StoreInt64s(dw.zp, zps)
			break
		}
	}
	return dw, ""
}
