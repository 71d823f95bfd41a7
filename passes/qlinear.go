package passes

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// Integer runtimes do not run a QDQ model as written (dequantize, compute in
// float, quantize): they fuse each DequantizeLinear -> op -> QuantizeLinear
// group into an integer kernel that accumulates in int32 and requantizes once.
// Near a rounding boundary the two disagree by a step, and over many layers
// the steps add up. qlinear rewrites the groups into their integer ops so
// onnxq's executor can show what such a runtime computes.

func init() {
	registerSimple("qlinear", "opt-in: rewrite DequantizeLinear -> Conv [-> Relu/Clip] -> QuantizeLinear groups (8-bit) into QLinearConv, the integer form runtimes execute; changes outputs by rounding (reported)", -1, qlinear)
}

// dqOf is the DequantizeLinear producing v, if any.
func dqOf(v *graph.Value) *graph.Node {
	if v == nil || v.Producer == nil || !isStd(v.Producer, "DequantizeLinear") {
		return nil
	}
	return v.Producer
}

func is8bit(dt graph.DataType) bool { return dt == graph.Uint8 || dt == graph.Int8 }

// zeroPoint returns a node's zero-point input, or a new zero of the type its
// quantized tensor has (QLinearConv needs all of them).
func zeroPoint(g *graph.Graph, v *graph.Value, dt graph.DataType, base string) *graph.Value {
	if v != nil {
		return v
	}
	return g.AddInitializer(g.UniqueName(base+"_zero_point"), graph.NewTensor(dt, nil))
}

func qlinear(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if !isStd(n, "Conv") {
			continue
		}
		xdq, wdq := dqOf(n.Input(0)), dqOf(n.Input(1))
		if xdq == nil || wdq == nil || wdq.Input(0).Const == nil || xdq.Input(1).Const == nil || xdq.Input(1).Const.Len() != 1 {
			continue
		}
		xt, wt := xdq.Input(0).ElemType(), wdq.Input(0).Const.DType
		if xdq.Input(2) != nil {
			xt = xdq.Input(2).ElemType()
		}
		if !is8bit(xt) || !is8bit(wt) {
			continue
		}
		if ax, _ := wdq.AttrInt("axis", 1); wdq.Input(1).Const == nil || (wdq.Input(1).Const.Len() > 1 && ax != 0) {
			continue // QLinearConv's weight scales run along the output channels
		}
		var bias *graph.Value
		if b := n.Input(2); b != nil {
			bdq := dqOf(b)
			if bdq == nil || bdq.Input(0).Const == nil || bdq.Input(0).Const.DType != graph.Int32 || !biasScaleFits(bdq, xdq, wdq) {
				continue
			}
			bias = bdq.Input(0)
		}
		y := n.Output()
		if len(y.Consumers) != 1 || g.IsOutput(y) {
			continue
		}
		next := y.Consumers[0]
		var relu *graph.Node
		if isStd(next, "Relu") || isStd(next, "Clip") {
			relu, y = next, next.Output()
			if len(y.Consumers) != 1 || g.IsOutput(y) {
				continue
			}
			next = y.Consumers[0]
		}
		if !isStd(next, "QuantizeLinear") || next.Input(1).Const == nil || next.Input(1).Const.Len() != 1 {
			continue
		}
		q := next
		yt := graph.Uint8
		if q.Input(2) != nil {
			yt = q.Input(2).ElemType()
		}
		if !is8bit(yt) {
			continue
		}
		if relu != nil && !impliedByOutput(relu, q, yt) {
			continue // the output grid reaches beyond the activation's bounds
		}
		ins := []*graph.Value{
			xdq.Input(0), xdq.Input(1), zeroPoint(g, xdq.Input(2), xt, xdq.Input(0).Name),
			wdq.Input(0), wdq.Input(1), zeroPoint(g, wdq.Input(2), wt, wdq.Input(0).Name),
			q.Input(1), zeroPoint(g, q.Input(2), yt, q.Output().Name),
		}
		if bias != nil {
			ins = append(ins, bias)
		}
		out := q.Output()
		name := n.Name
		qc := g.AddNode("QLinearConv", name, ins, []string{g.UniqueName(out.Name + "_qlinear")}, n.Attrs...)
		qc.Domain = n.Domain
		if err := g.ReplaceUses(out, qc.Output()); err != nil {
			return err
		}
		g.RemoveNode(q)
		if relu != nil {
			g.RemoveNode(relu)
		}
		g.RemoveNode(n)
		c.add(qc.String())
	}
	return nil
}

// biasScaleFits: QLinearConv reads its int32 bias at scale x_scale * w_scale.
func biasScaleFits(bdq, xdq, wdq *graph.Node) bool {
	bs, err1 := bdq.Input(1).Const.AsFloat32()
	ws, err2 := wdq.Input(1).Const.AsFloat32()
	xs, err3 := xdq.Input(1).Const.AsFloat32()
	if err1 != nil || err2 != nil || err3 != nil || (len(bs) != len(ws) && len(ws) != 1) {
		return false
	}
	if z := bdq.Input(2); z != nil && (z.Const == nil || anyNonZero(z.Const)) {
		return false
	}
	for i, b := range bs {
		w := ws[0]
		if len(ws) > 1 {
			w = ws[i]
		}
		if want := xs[0] * w; math.Abs(float64(b-want)) > 1e-6*math.Abs(float64(want)) && !(want == 0 && b == 1) {
			return false
		}
	}
	return true
}

func anyNonZero(t *graph.Tensor) bool {
	v, err := t.AsFloat32()
	if err != nil {
		return true
	}
	for _, x := range v {
		if x != 0 {
			return true
		}
	}
	return false
}

// impliedByOutput: saturating to the output grid does what the activation
// does. Relu: the lowest code dequantizes to 0. Clip(lo, hi): also, with
// lo = 0, and the highest code dequantizes to at most hi.
func impliedByOutput(act, q *graph.Node, dt graph.DataType) bool {
	if !clampsAtZero(q, dt) {
		return false
	}
	if act.OpType == "Relu" {
		return true
	}
	lo, hi, ok := ClipBounds(act)
	s, err := q.Input(1).Const.AsFloat32()
	if !ok || lo != 0 || err != nil {
		return false
	}
	return s[0]*255 <= hi*(1+1e-6) // 255 codes above the zero point (uint8 0, int8 -128)
}

// clampsAtZero: the output's lowest code dequantizes to 0, so saturating at it
// is a Relu.
func clampsAtZero(q *graph.Node, dt graph.DataType) bool {
	zp := int64(0)
	if z := q.Input(2); z != nil {
		if z.Const == nil {
			return false
		}
		v, err := z.Const.AsFloat32()
		if err != nil || len(v) != 1 {
			return false
		}
		zp = int64(v[0])
	}
	if dt == graph.Uint8 {
		return zp == 0
	}
	return zp == -128
}
