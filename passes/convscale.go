package passes

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

// MigrateConvInputScale is MigrateInputScaleWith for Conv readers (group 1)
// of an NCHW tensor: input channel c (axis 1) of every reader's weight is
// multiplied by s_c and channel c of input divided by it. The division
// folds upstream, when the readers are all of input's readers, through
// nodes that commute with a positive per-channel scale (Relu, LeakyRelu,
// MaxPool, AveragePool and their global forms; each intermediate read by
// nothing else) into a producing Conv's output channels (its weight's rows
// and its bias, in place); else a Mul by 1/s (shape [C, 1, ...]) is
// inserted before the readers. canFold may refuse the producing Conv, as
// for MigrateInputScaleWith.
func MigrateConvInputScale(g *graph.Graph, input *graph.Value, readers []*graph.Node, s []float32, canFold func(*graph.Node) bool) (Migration, error) {
	var mig Migration
	if len(readers) == 0 {
		return mig, fmt.Errorf("tensor %q has no Conv reader", input.Name)
	}
	if err := checkScale(input, s); err != nil {
		return mig, err
	}
	rank := 0
	for _, n := range readers {
		w := n.Input(1)
		grp, _ := n.AttrInt("group", 1)
		switch {
		case !isStd(n, "Conv") || n.Input(0) != input:
			return mig, fmt.Errorf("%s does not read %q as a Conv's data", n, input.Name)
		case w == nil || w.Const == nil || w.Const.DType != graph.Float || w.Const.Rank() < 3 || g.IsInput(w) || w == input:
			return mig, fmt.Errorf("%s has no constant float weight", n)
		case grp != 1:
			return mig, fmt.Errorf("%s is a grouped convolution (group %d)", n, grp)
		case w.Const.Shape[1] != len(s):
			return mig, fmt.Errorf("%s has %d input channels, the scale %d", n, w.Const.Shape[1], len(s))
		}
		rank = w.Const.Rank()
	}
	var f *fold
	if readersAlone(g, input, readers) {
		f = planConvFold(g, input, len(s), canFold)
	}
	shape := []int{len(s)} // [C, 1, ...]: broadcast over the spatial axes
	for range rank - 2 {
		shape = append(shape, 1)
	}
	divideUpstream(g, input, readers, s, f, shape, &mig)
	for _, n := range readers {
		wv := privateConst(g, n, 1)
		scaleChannels(wv.Const, 1, s, false)
	}
	return mig, g.TopoSort()
}

// privateConst gives n its own copy of constant input i when others read it.
func privateConst(g *graph.Graph, n *graph.Node, i int) *graph.Value {
	v := n.Input(i)
	if len(v.Consumers) > 1 {
		v = g.AddInitializer(g.UniqueName(v.Name+"_own"), v.Const.Clone())
		replaceInput(g, n, i, v)
	}
	return v
}

// scaleChannels multiplies (or divides) slice c of axis (0 or 1) of t by s_c.
func scaleChannels(t *graph.Tensor, axis int, s []float32, divide bool) {
	vals := t.Float32s()
	inner := graph.Numel(t.Shape[axis+1:])
	dim := t.Shape[axis]
	for i := range vals {
		c := (i / inner) % dim
		if divide {
			vals[i] /= s[c]
		} else {
			vals[i] *= s[c]
		}
	}
}

// planConvFold plans dividing channel c (axis 1) of v by s_c upstream, or
// returns nil.
func planConvFold(g *graph.Graph, v *graph.Value, c int, canFold func(*graph.Node) bool) *fold {
	p := v.Producer
	if p == nil || len(p.Outputs) != 1 || !graph.IsStandardDomain(p.Domain) {
		return nil
	}
	switch p.OpType {
	case "Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool":
		u := p.Input(0)
		if u == nil || u.Const != nil || len(u.Consumers) != 1 || g.IsOutput(u) || len(p.Outputs) != 1 {
			return nil
		}
		f := planConvFold(g, u, c, canFold)
		if f == nil {
			return nil
		}
		f.into = append(f.into, fmt.Sprintf("through %s", p))
		f.changed = append(f.changed, v.Name)
		return f
	case "Conv":
		w, b := p.Input(1), p.Input(2)
		if w == nil || w.Const == nil || w.Const.DType != graph.Float || w.Const.Rank() < 3 || w.Const.Shape[0] != c || g.IsInput(w) {
			return nil
		}
		if b != nil && (b.Const == nil || b.Const.DType != graph.Float || b.Const.Len() != c || g.IsInput(b)) {
			return nil
		}
		if canFold != nil && !canFold(p) {
			return nil
		}
		return &fold{layers: []*graph.Node{p}, into: []string{fmt.Sprintf("the output channels of %s", p)}, changed: []string{v.Name},
			apply: []func(s []float32){func(s []float32) {
				scaleChannels(privateConst(g, p, 1).Const, 0, s, true)
				if b != nil {
					scaleChannels(privateConst(g, p, 2).Const, 0, s, true)
				}
			}}}
	}
	return nil
}
