package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ONNX Runtime's fused forms, which models saved after its graph
// optimizations carry (com.microsoft domain): FusedConv and FusedGemm (the op
// then an activation named by the "activation" attribute, FusedConv adding
// an optional Z before it), and FusedMatMul (MatMul with transposes and a
// scale). Each runs the standard kernel and then its extra steps.

func init() {
	Register("com.microsoft", "FusedConv", 1, newFusedConv)
	Register("com.microsoft", "FusedGemm", 1, newFusedGemm)
	Register("com.microsoft", "FusedMatMul", 1, newFusedMatMul)
}

// fusedActivation builds the activation a fused node names, with its
// parameters (LeakyRelu: alpha; HardSigmoid: alpha, beta; Clip: min, max)
// from activation_params (FusedConv) or activation_alpha and
// activation_beta (FusedGemm, with the ONNX defaults), or nil when it
// names none.
func fusedActivation(ni *NodeInfo) (sliceFn, error) {
	a := attrsOf(ni.Node)
	name := a.String("activation", "")
	params := a.Floats("activation_params", nil)
	if params == nil && (name == "LeakyRelu" || name == "HardSigmoid") {
		da, db := float32(0.01), float32(0)
		if name == "HardSigmoid" {
			da, db = 0.2, 0.5
		}
		params = []float32{a.Float("activation_alpha", da), a.Float("activation_beta", db)}
	}
	if a.err != nil || name == "" {
		return nil, a.err
	}
	want := map[string]int{"Relu": 0, "Tanh": 0, "Sigmoid": 0, "LeakyRelu": 1, "HardSigmoid": 2, "Clip": 2}
	n, ok := want[name]
	if !ok {
		return nil, fmt.Errorf("activation %q is not one ONNX Runtime fuses (Relu, Tanh, Sigmoid, LeakyRelu, HardSigmoid, Clip)", name)
	}
	if len(params) < n {
		return nil, fmt.Errorf("activation %s needs %d activation_params, got %d", name, n, len(params))
	}
	if name == "Clip" {
		lo, hi := params[0], params[1]
		return func(dst, src []float32) { vec.Clip(dst, src, lo, hi) }, nil
	}
	var attrs []*onnxpb.AttributeProto
	switch name {
	case "LeakyRelu":
		attrs = append(attrs, graph.AttrFloatOf("alpha", params[0]))
	case "HardSigmoid":
		attrs = append(attrs, graph.AttrFloatOf("alpha", params[0]), graph.AttrFloatOf("beta", params[1]))
	}
	node := &graph.Node{Name: ni.Node.Name, OpType: name, Attrs: attrs}
	return activations[name](&NodeInfo{Node: node, Opset: 13})
}

// withInputs is ni for the standard op: the same node with its constants
// cut to the first n inputs (a fused node's extra inputs come after them).
func withInputs(ni *NodeInfo, n int) *NodeInfo {
	c := *ni
	if len(c.Consts) > n {
		c.Consts = c.Consts[:n]
	}
	// The standard op's version is the model's ai.onnx one (the fused op's
	// is its com.microsoft version).
	c.Opset = 13
	if c.model != nil && c.model.OpsetVersion("") > 0 {
		c.Opset = c.model.OpsetVersion("")
	}
	return &c
}

// activated runs k on in and then act (and, with z, adds z first) in place
// on its one float32 output.
type activated struct {
	k   Kernel
	act sliceFn
	n   int // the standard op's inputs; a fused Z is input n
}

func (f *activated) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	outs, err := f.k.Run(ctx, in[:min(len(in), f.n)])
	if err != nil {
		return nil, err
	}
	y := outs[0].Float32s()
	if len(in) > f.n && in[f.n] != nil {
		z := in[f.n]
		if z.DType != graph.Float || !slices.Equal(z.Shape, outs[0].Shape) {
			return nil, fmt.Errorf("Z is %s %v; it must be float32 of the output's shape %v", z.DType.Short(), z.Shape, outs[0].Shape)
		}
		vec.Add(y, y, z.Float32s())
	}
	if f.act != nil {
		applySlice(ctx, f.act, y, y)
	}
	return outs, nil
}

func newFusedConv(ni *NodeInfo) (Kernel, error) {
	act, err := fusedActivation(ni)
	if err != nil {
		return nil, err
	}
	k, err := newConv(withInputs(ni, 3))
	if err != nil {
		return nil, err
	}
	return &activated{k: k, act: act, n: 3}, nil
}

func newFusedGemm(ni *NodeInfo) (Kernel, error) {
	act, err := fusedActivation(ni)
	if err != nil {
		return nil, err
	}
	k, err := newGemm(withInputs(ni, 3))
	if err != nil {
		return nil, err
	}
	return &activated{k: k, act: act, n: 3}, nil
}

// fusedMatMul is alpha * op(A) @ op(B), op a transpose of the last two axes
// where transA / transB say so. transBatchA / transBatchB (moving the batch
// axes behind the matrix ones) are refused: ONNX Runtime fuses them only
// from particular Transpose patterns.
type fusedMatMul struct {
	mm             Kernel
	transA, transB bool
	alpha          float32
}

func newFusedMatMul(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	k := &fusedMatMul{transA: a.Int("transA", 0) != 0, transB: a.Int("transB", 0) != 0, alpha: a.Float("alpha", 1)}
	if a.Int("transBatchA", 0) != 0 || a.Int("transBatchB", 0) != 0 {
		return nil, fmt.Errorf("FusedMatMul with transBatchA or transBatchB is not supported")
	}
	if a.err != nil {
		return nil, a.err
	}
	mi := withInputs(ni, 2)
	if b := mi.Const(1); b != nil && k.transB {
		// Transpose a constant B once, so MatMul packs it at compile time.
		t, err := swapLastTwo(nil, b)
		if err != nil {
			return nil, err
		}
		mi.Consts = []*graph.Tensor{mi.Const(0), t}
	}
	mm, err := newMatMul(mi)
	if err != nil {
		return nil, err
	}
	k.mm = mm
	return k, nil
}

func (k *fusedMatMul) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	var err error
	if k.transA {
		if a, err = swapLastTwo(ctx, a); err != nil {
			return nil, err
		}
		defer recycleTemp(ctx, a)
	}
	if k.transB {
		if b, err = swapLastTwo(ctx, b); err != nil {
			return nil, err
		}
		defer recycleTemp(ctx, b)
	}
	outs, err := k.mm.Run(ctx, []*graph.Tensor{a, b})
	if err != nil {
		return nil, err
	}
	if k.alpha != 1 {
		y := outs[0].Float32s()
		vec.MulScalar(y, y, k.alpha)
	}
	return outs, nil
}

// swapLastTwo transposes the last two axes of a float32 tensor of rank 2 or
// more (from the pool when ctx is not nil).
func swapLastTwo(ctx *Context, t *graph.Tensor) (*graph.Tensor, error) {
	if t.DType != graph.Float || t.Rank() < 2 {
		return nil, fmt.Errorf("a transposed FusedMatMul operand must be float32 of rank 2 or more, got %s %v", t.DType.Short(), t.Shape)
	}
	r := t.Rank()
	rows, cols := t.Shape[r-2], t.Shape[r-1]
	shape := append(append([]int(nil), t.Shape[:r-2]...), cols, rows)
	out := ctx.Float32(shape)
	src, dst := t.Float32s(), out.Float32s()
	for b := 0; b < graph.Numel(t.Shape[:r-2]); b++ {
		transposeBlocked(dst[b*rows*cols:], src[b*rows*cols:], rows, cols, 0, cols)
	}
	return out, nil
}
