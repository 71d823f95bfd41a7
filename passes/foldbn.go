package passes

import (
	"fmt"
	"math"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

func init() {
	register("fold-bn", "fold inference BatchNormalization into the Conv, ConvTranspose, Gemm or MatMul(+Add) before it; a BN with no such producer becomes Mul+Add",
		func(o Options, arg string) (Pass, error) {
			mode := o.StandaloneBN
			if mode == "" {
				mode = "muladd"
			}
			if mode != "muladd" && mode != "keep" {
				return nil, fmt.Errorf("standalone BatchNormalization handling %q is not muladd or keep", mode)
			}
			return &simple{name: "fold-bn", desc: Describe("fold-bn"), tol: exact, apply: func(m *graph.Model, st *State, c *Change) error {
				return foldBN(m, st, c, o.FoldBNSkip, mode)
			}}, nil
		})
}

// bnParams reads an inference BatchNormalization's constant parameters as
// y = x * mul + add per channel (computed in float64), with its gamma and beta.
func bnParams(n *graph.Node) (mul, add, gamma, beta []float32, ok bool) {
	if len(n.Inputs) < 5 {
		return nil, nil, nil, nil, false
	}
	if t, _ := n.AttrInt("training_mode", 0); t != 0 {
		return nil, nil, nil, nil, false
	}
	for _, o := range n.Outputs[1:] {
		if o != nil && len(o.Consumers) > 0 {
			return nil, nil, nil, nil, false // running statistics are used
		}
	}
	var p [4][]float32
	for i := range p {
		v := n.Inputs[i+1]
		if v == nil || v.Const == nil || v.Const.DType != graph.Float {
			return nil, nil, nil, nil, false
		}
		p[i] = v.Const.Float32s()
		if len(p[i]) != len(p[0]) {
			return nil, nil, nil, nil, false
		}
	}
	eps, err := n.AttrFloat("epsilon", 1e-5)
	if err != nil {
		return nil, nil, nil, nil, false
	}
	c := len(p[0])
	mul, add = make([]float32, c), make([]float32, c)
	for i := 0; i < c; i++ {
		k := float64(p[0][i]) / math.Sqrt(float64(p[3][i])+float64(eps))
		mul[i] = float32(k)
		add[i] = float32(float64(p[1][i]) - float64(p[2][i])*k)
	}
	return mul, add, p[0], p[1], true
}

// newConst adds a float32 initializer named after base.
func newConst(g *graph.Graph, base string, shape []int, data []float32) *graph.Value {
	return g.AddInitializer(g.UniqueName(base), graph.Float32Tensor(shape, data))
}

// replaceInput points input i of n (appending if needed) at v and forgets the old
// constant when nothing else reads it.
func replaceInput(g *graph.Graph, n *graph.Node, i int, v *graph.Value) {
	for len(n.Inputs) < i {
		g.AppendInput(n, nil)
	}
	if i == len(n.Inputs) {
		g.AppendInput(n, v)
		return
	}
	old := n.Inputs[i]
	g.SetInput(n, i, v)
	if old != nil && old.Const != nil && len(old.Consumers) == 0 && !g.IsOutput(old) && !g.IsInput(old) {
		g.RemoveInitializer(old)
	}
}

func foldBN(m *graph.Model, st *State, c *Change, skip []string, standalone string) error {
	g := m.Graph
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if !isStd(n, "BatchNormalization") || slices.Contains(skip, n.Name) {
			continue
		}
		mul, add, gamma, beta, ok := bnParams(n)
		if !ok {
			continue
		}
		x := n.Input(0)
		p := x.Producer
		folded := false
		if p != nil && len(x.Consumers) == 1 && !g.IsOutput(x) && graph.IsStandardDomain(p.Domain) {
			switch p.OpType {
			case "Conv":
				folded = foldIntoConv(g, p, mul, add, false)
			case "ConvTranspose":
				folded = foldIntoConv(g, p, mul, add, true)
			case "Gemm":
				folded = foldIntoGemm(g, p, mul, add)
			case "MatMul", "Add":
				folded = foldIntoMatMul(g, p, x, mul, add)
			}
		}
		name := n.String()
		if folded {
			bnOut := n.Output().Name
			if !bypass(g, n) {
				return fmt.Errorf("node %s: could not remove the folded BatchNormalization", name)
			}
			st.BNStats[p.Output().Name] = &ChannelStats{Mean: beta, Std: absAll(gamma)}
			st.rename(bnOut, p.Output().Name)
			c.add(name)
			continue
		}
		if standalone == "muladd" && bnToMulAdd(g, n, mul, add) {
			c.add(name)
			c.Notes = append(c.Notes, fmt.Sprintf("%s has no foldable producer: now Mul+Add", name))
		}
	}
	return nil
}

func absAll(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(math.Abs(float64(x)))
	}
	return out
}

// foldIntoConv scales each output channel's weights by mul and rewrites the bias.
func foldIntoConv(g *graph.Graph, p *graph.Node, mul, add []float32, transpose bool) bool {
	wv := p.Input(1)
	if wv == nil || wv.Const == nil || wv.Const.DType != graph.Float || wv.Const.Rank() < 3 {
		return false
	}
	w := wv.Const
	group, err := p.AttrInt("group", 1)
	if err != nil || group < 1 {
		return false
	}
	m := w.Shape[0]
	per := graph.Numel(w.Shape[1:]) // elements per row of axis 0
	if transpose {
		m = w.Shape[1] * int(group)
	}
	if m != len(mul) {
		return false
	}
	var bias []float32
	if b := p.Input(2); b != nil {
		if b.Const == nil || b.Const.Len() != m || b.Const.DType != graph.Float {
			return false
		}
		bias = b.Const.Float32s()
	}
	nw := slices.Clone(w.Float32s())
	if !transpose {
		for oc := 0; oc < m; oc++ {
			row := nw[oc*per : (oc+1)*per]
			for i := range row {
				row[i] *= mul[oc]
			}
		}
	} else {
		// ConvTranspose weights are [C_in, M/group, k...]: output channel
		// group(c) * M/group + j sits on axis 1.
		cin, mg := w.Shape[0], w.Shape[1]
		kk := graph.Numel(w.Shape[2:])
		cg := cin / int(group)
		for ci := 0; ci < cin; ci++ {
			for j := 0; j < mg; j++ {
				s := mul[(ci/cg)*mg+j]
				blk := nw[(ci*mg+j)*kk : (ci*mg+j+1)*kk]
				for i := range blk {
					blk[i] *= s
				}
			}
		}
	}
	nb := make([]float32, m)
	for oc := range nb {
		b := float32(0)
		if bias != nil {
			b = bias[oc]
		}
		nb[oc] = b*mul[oc] + add[oc]
	}
	replaceInput(g, p, 1, newConst(g, wv.Name+"_bnfold", w.Shape, nw))
	bname := wv.Name + "_bias_bnfold"
	if b := p.Input(2); b != nil {
		bname = b.Name + "_bnfold"
	}
	replaceInput(g, p, 2, newConst(g, bname, []int{m}, nb))
	return true
}

// foldIntoGemm scales B's output columns and rewrites C as one bias with beta 1.
func foldIntoGemm(g *graph.Graph, p *graph.Node, mul, add []float32) bool {
	bv := p.Input(1)
	if bv == nil || bv.Const == nil || bv.Const.DType != graph.Float || bv.Const.Rank() != 2 {
		return false
	}
	transB, err1 := p.AttrInt("transB", 0)
	beta, err2 := p.AttrFloat("beta", 1)
	if err1 != nil || err2 != nil {
		return false
	}
	b := bv.Const
	n := b.Shape[1]
	if transB != 0 {
		n = b.Shape[0]
	}
	if n != len(mul) {
		return false
	}
	nb := slices.Clone(b.Float32s())
	for i := range nb {
		col := i % b.Shape[1] // [K, N]: column index
		if transB != 0 {
			col = i / b.Shape[1] // [N, K]: row index
		}
		nb[i] *= mul[col]
	}
	// C' = beta * C * mul + add, as [N] or [M, N].
	var cshape []int
	var cdata []float32
	if cv := p.Input(2); cv != nil {
		if cv.Const == nil || cv.Const.DType != graph.Float {
			return false
		}
		cd := cv.Const.Float32s()
		switch {
		case cv.Const.Len() == 1:
			cshape, cdata = []int{n}, make([]float32, n)
			for j := range cdata {
				cdata[j] = beta*cd[0]*mul[j] + add[j]
			}
		case cv.Const.Len() == n && (cv.Const.Rank() == 1 || cv.Const.Shape[0] == 1):
			cshape, cdata = []int{n}, make([]float32, n)
			for j := range cdata {
				cdata[j] = beta*cd[j]*mul[j] + add[j]
			}
		case cv.Const.Rank() == 2 && cv.Const.Shape[1] == n:
			cshape, cdata = cv.Const.Shape, make([]float32, len(cd))
			for i := range cdata {
				cdata[i] = beta*cd[i]*mul[i%n] + add[i%n]
			}
		default:
			return false
		}
	} else {
		cshape, cdata = []int{n}, slices.Clone(add)
	}
	replaceInput(g, p, 1, newConst(g, bv.Name+"_bnfold", b.Shape, nb))
	replaceInput(g, p, 2, newConst(g, bv.Name+"_bias_bnfold", cshape, cdata))
	p.SetAttr(graph.AttrFloatOf("beta", 1))
	return true
}

// foldIntoMatMul handles MatMul(x, W) [+ Add(bias)] followed by BN, when the
// product is 2-D so BN's channel axis is W's output axis.
func foldIntoMatMul(g *graph.Graph, p *graph.Node, x *graph.Value, mul, add []float32) bool {
	mm, addNode := p, (*graph.Node)(nil)
	var biasIdx int
	if p.OpType == "Add" {
		addNode = p
		for i, in := range p.Inputs {
			if in != nil && in.Producer != nil && isStd(in.Producer, "MatMul") && len(in.Consumers) == 1 && !g.IsOutput(in) {
				mm, biasIdx = in.Producer, 1-i
			}
		}
		if mm == p {
			return false
		}
		if bv := p.Input(biasIdx); bv == nil || bv.Const == nil || bv.Const.Len() != len(mul) || bv.Const.DType != graph.Float {
			return false
		}
	}
	a, wv := mm.Input(0), mm.Input(1)
	if wv == nil || wv.Const == nil || wv.Const.Rank() != 2 || wv.Const.Shape[1] != len(mul) || wv.Const.DType != graph.Float {
		return false
	}
	if dims, ok := a.Shape(); !ok || len(dims) != 2 {
		return false // BN's channel axis is W's output axis only for 2-D products
	}
	w := wv.Const
	n := w.Shape[1]
	nw := slices.Clone(w.Float32s())
	for i := range nw {
		nw[i] *= mul[i%n]
	}
	replaceInput(g, mm, 1, newConst(g, wv.Name+"_bnfold", w.Shape, nw))
	if addNode != nil {
		bv := addNode.Input(biasIdx)
		nb := make([]float32, n)
		for j, b := range bv.Const.Float32s() {
			nb[j] = b*mul[j] + add[j]
		}
		replaceInput(g, addNode, biasIdx, newConst(g, bv.Name+"_bnfold", bv.Const.Shape, nb))
		return true
	}
	// No bias yet: add one after the MatMul.
	out := x
	tmp := g.NewValue(out.Name + "_mm")
	for i, o := range mm.Outputs {
		if o == out {
			mm.Outputs[i] = tmp
		}
	}
	tmp.Producer = mm
	out.Producer = nil
	biasV := newConst(g, wv.Name+"_bias_bnfold", []int{n}, slices.Clone(add))
	an := g.AddNode("Add", mm.Name+"_bnfold_add", []*graph.Value{tmp, biasV}, nil)
	an.Outputs = []*graph.Value{out}
	out.Producer = an
	return true
}

// bnToMulAdd replaces a BN with x * mul + add when x's rank is known (the
// constants must broadcast along axis 1).
func bnToMulAdd(g *graph.Graph, n *graph.Node, mul, add []float32) bool {
	dims, ok := n.Input(0).Shape()
	if !ok || len(dims) < 2 {
		return false
	}
	shape := []int{len(mul)}
	for range dims[2:] {
		shape = append(shape, 1)
	}
	x, y := n.Input(0), n.Output()
	mv := newConst(g, n.Name+"_scale", shape, mul)
	av := newConst(g, n.Name+"_shift", shape, add)
	g.RemoveNode(n)
	mn := g.AddNode("Mul", n.Name+"_mul", []*graph.Value{x, mv}, []string{y.Name + "_scaled"})
	an := g.AddNode("Add", n.Name+"_add", []*graph.Value{mn.Output(), av}, nil)
	an.Outputs = []*graph.Value{y}
	y.Producer = an
	return true
}
