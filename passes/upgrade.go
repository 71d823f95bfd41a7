package passes

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

func init() {
	register("upgrade-opset", "raise the default-domain opset (upgrade-opset:N, default 21), rewriting ops whose signature changed so outputs stay the same",
		func(o Options, arg string) (Pass, error) {
			def := o.Opset
			if def == 0 {
				def = 21
			}
			to, err := intArg(arg, def)
			if err != nil {
				return nil, err
			}
			if to < 7 || to > 21 {
				return nil, fmt.Errorf("opset %d cannot be reached (7 to 21)", to)
			}
			return &simple{name: "upgrade-opset", desc: Describe("upgrade-opset"), tol: exact, apply: func(m *graph.Model, _ *State, c *Change) error {
				return upgradeOpset(m, to, c)
			}}, nil
		})
}

// unchanged lists ops whose inputs and attributes need no rewrite between opsets
// 7 and 21 (later versions only add types or optional attributes with defaults
// that keep the old behaviour).
var unchanged = map[string]bool{
	"Conv": true, "ConvTranspose": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true,
	"Sqrt": true, "Exp": true, "Log": true, "Neg": true, "Abs": true, "Reciprocal": true, "Erf": true,
	"Relu": true, "LeakyRelu": true, "PRelu": true, "Sigmoid": true, "HardSigmoid": true, "HardSwish": true,
	"Tanh": true, "Gelu": true, "Floor": true, "Ceil": true, "Round": true, "Sin": true, "Cos": true,
	"Elu": true, "Selu": true, "Softplus": true, "Softsign": true, "Sign": true, "IsNaN": true, "IsInf": true,
	"MatMul": true, "Gemm": true, "Concat": true, "Reshape": true, "Transpose": true, "Flatten": true,
	"Shape": true, "Size": true, "Gather": true, "GatherElements": true, "Cast": true, "CastLike": true,
	"Constant": true, "ConstantOfShape": true, "Identity": true, "Expand": true, "Tile": true, "Range": true,
	"Where": true, "Equal": true, "Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true,
	"Not": true, "And": true, "Or": true, "Xor": true, "Max": true, "Min": true, "Sum": true, "Mean": true,
	"MaxPool": true, "AveragePool": true, "GlobalAveragePool": true, "GlobalMaxPool": true,
	"InstanceNormalization": true, "LayerNormalization": true, "ArgMax": true, "ArgMin": true,
	"QuantizeLinear": true, "DequantizeLinear": true, "DynamicQuantizeLinear": true, "MatMulInteger": true,
	"ConvInteger": true, "QLinearConv": true, "QLinearMatMul": true, "Einsum": true, "Mish": true,
	"ThresholdedRelu": true, "Celu": true,
	// Changed before opset 7 only (upgrade_legacy.go), or since then only in types
	// or by an attribute whose default is the old behaviour (DepthToSpace's
	// mode, the recurrent ops' layout).
	"LRN": true, "DepthToSpace": true, "SpaceToDepth": true, "GRU": true, "LSTM": true, "RNN": true,
	"LpNormalization": true, "LpPool": true, "GlobalLpPool": true, "MaxRoiPool": true,
}

// irFor is the IR version an opset needs.
func irFor(opset int64) int64 {
	switch {
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	case opset >= 15:
		return 8
	case opset >= 13:
		return 7
	}
	return 3
}

func upgradeOpset(m *graph.Model, to int64, c *Change) error {
	from := m.OpsetVersion("")
	if from == 0 {
		return fmt.Errorf("the model imports no default-domain opset")
	}
	if to < from {
		return fmt.Errorf("the model is at opset %d; downgrading to %d is not supported", from, to)
	}
	if to == from {
		return nil
	}
	g := m.Graph
	// Check everything first, so a refusal leaves the model as it was.
	for _, n := range g.Nodes {
		if !graph.IsStandardDomain(n.Domain) || unchanged[n.OpType] || upgraders[n.OpType] != nil || from < 10 && experimentalOps[n.OpType] {
			continue
		}
		return fmt.Errorf("cannot upgrade node %s from opset %d to %d: no rule for %s", n, from, to, n.OpType)
	}
	if from < 10 {
		// Opset-7 forms of older ops, standard ops for experimental ones
		// (upgrade_legacy.go); planned whole before anything changes.
		if err := upgradeLegacy(m, from, to, c); err != nil {
			return err
		}
	}
	half := kernels.HalfTypes(m) // bounds moved into inputs take the data's type
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if !graph.IsStandardDomain(n.Domain) {
			continue
		}
		if up := upgraders[n.OpType]; up != nil {
			changed, err := up(g, n, from, to)
			if err != nil {
				return fmt.Errorf("cannot upgrade node %s from opset %d to %d: %v", n, from, to, err)
			}
			if changed {
				c.add(n.String())
			}
		}
	}
	fitOperandTypes(g, half)
	m.SetOpset("", to)
	if ir := irFor(to); m.IRVersion() < ir {
		m.Proto.IrVersion = &ir
	}
	// The version change itself counts, so verification runs even when no node
	// needed rewriting.
	c.Count++
	c.Notes = append(c.Notes, fmt.Sprintf("opset %d -> %d", from, to))
	return nil
}

// crosses reports whether an upgrade from..to passes version v.
func crosses(from, to, v int64) bool { return from < v && to >= v }

// attrToInput moves an attribute into a new constant input at position idx.
func attrToInput(g *graph.Graph, n *graph.Node, attr string, idx int, t *graph.Tensor) {
	n.DelAttr(attr)
	for len(n.Inputs) < idx {
		g.AppendInput(n, nil)
	}
	v := g.AddInitializer(g.UniqueName(nodeBase(n)+"_"+attr), t)
	if idx < len(n.Inputs) {
		g.SetInput(n, idx, v)
	} else {
		g.AppendInput(n, v)
	}
}

func nodeBase(n *graph.Node) string {
	if n.Name != "" {
		return n.Name
	}
	return n.Output().Name
}

type upgrader func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error)

var upgraders = map[string]upgrader{
	"Clip": func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		if !crosses(from, to, 11) {
			return false, nil
		}
		lo, err1 := n.AttrFloat("min", float32(-3.4028234663852886e38))
		hi, err2 := n.AttrFloat("max", float32(3.4028234663852886e38))
		if err := firstErr(err1, err2); err != nil {
			return false, err
		}
		hasLo, hasHi := n.HasAttr("min"), n.HasAttr("max")
		n.DelAttr("min")
		n.DelAttr("max")
		// An absent bound stays an omitted input: a -FLT_MAX stand-in would clip -inf.
		if hasLo {
			attrToInput(g, n, "min", 1, graph.Float32Tensor(nil, []float32{lo}))
		}
		if hasHi {
			attrToInput(g, n, "max", 2, graph.Float32Tensor(nil, []float32{hi}))
		}
		return true, nil
	},
	"Pad": func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		if !crosses(from, to, 11) {
			return false, nil
		}
		pads, err1 := n.AttrInts("pads", nil)
		value, err2 := n.AttrFloat("value", 0)
		if err := firstErr(err1, err2); err != nil {
			return false, err
		}
		if pads == nil {
			return false, fmt.Errorf("Pad has no pads attribute")
		}
		n.DelAttr("value")
		attrToInput(g, n, "pads", 1, graph.Int64Tensor([]int{len(pads)}, append([]int64(nil), pads...)))
		if value != 0 {
			attrToInput(g, n, "value", 2, graph.Float32Tensor(nil, []float32{value}))
		}
		return true, nil
	},
	"Slice": func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		if !crosses(from, to, 10) {
			return false, nil
		}
		starts, e1 := n.AttrInts("starts", nil)
		ends, e2 := n.AttrInts("ends", nil)
		axes, e3 := n.AttrInts("axes", nil)
		if err := firstErr(e1, e2, e3); err != nil {
			return false, err
		}
		attrToInput(g, n, "starts", 1, graph.Int64Tensor([]int{len(starts)}, append([]int64(nil), starts...)))
		attrToInput(g, n, "ends", 2, graph.Int64Tensor([]int{len(ends)}, append([]int64(nil), ends...)))
		if axes != nil {
			attrToInput(g, n, "axes", 3, graph.Int64Tensor([]int{len(axes)}, append([]int64(nil), axes...)))
		}
		return true, nil
	},
	"Squeeze":    axesUpgrader(13),
	"Unsqueeze":  axesUpgrader(13),
	"ReduceSum":  axesUpgrader(13),
	"ReduceMean": axesUpgrader(18), "ReduceMax": axesUpgrader(18), "ReduceMin": axesUpgrader(18),
	"ReduceProd": axesUpgrader(18), "ReduceL1": axesUpgrader(18), "ReduceL2": axesUpgrader(18),
	"ReduceSumSquare": axesUpgrader(18), "ReduceLogSum": axesUpgrader(18), "ReduceLogSumExp": axesUpgrader(18),
	"Split": func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		changed := false
		if crosses(from, to, 13) && n.HasAttr("split") {
			split, err := n.AttrInts("split", nil)
			if err != nil {
				return false, err
			}
			attrToInput(g, n, "split", 1, graph.Int64Tensor([]int{len(split)}, append([]int64(nil), split...)))
			changed = true
		}
		// From 18 on, equal splits say how many outputs they make.
		if crosses(from, to, 18) && n.Input(1) == nil && !n.HasAttr("num_outputs") {
			n.SetAttr(graph.AttrIntOf("num_outputs", int64(len(n.Outputs))))
			changed = true
		}
		return changed, nil
	},
	"Softmax":    softmaxUpgrader,
	"LogSoftmax": softmaxUpgrader,
	"Hardmax":    softmaxUpgrader,
	"BatchNormalization": func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		if sp, err := n.AttrInt("spatial", 1); err != nil || sp != 1 {
			return false, fmt.Errorf("spatial=0 BatchNormalization has no equivalent from opset 9")
		}
		if !n.HasAttr("spatial") {
			return false, nil
		}
		n.DelAttr("spatial")
		return true, nil
	},
	"Dropout": func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		if !crosses(from, to, 12) || !n.HasAttr("ratio") {
			return false, nil
		}
		r, err := n.AttrFloat("ratio", 0.5)
		if err != nil {
			return false, err
		}
		attrToInput(g, n, "ratio", 1, graph.Float32Tensor(nil, []float32{r}))
		return true, nil
	},
	"Upsample": func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		if !crosses(from, to, 10) {
			return false, nil
		}
		// Upsample is Resize with asymmetric coordinates and floor rounding.
		mode, err := n.AttrString("mode", "nearest")
		if err != nil {
			return false, err
		}
		if mode == "bilinear" {
			mode = "linear"
		}
		if from < 9 {
			scales, err := n.AttrFloats("scales", nil)
			if err != nil || scales == nil {
				return false, fmt.Errorf("Upsample has no scales")
			}
			attrToInput(g, n, "scales", 1, graph.Float32Tensor([]int{len(scales)}, append([]float32(nil), scales...)))
		}
		n.OpType = "Resize"
		n.SetAttr(graph.AttrStringOf("mode", mode))
		_, err = resizeTo11(g, n, 10, to)
		return true, err
	},
	"Resize": resizeTo11,
}

// resizeTo11 rewrites Resize-10 (X, scales) as Resize-11 (X, roi, scales) with the
// coordinate mode and rounding Resize-10 used.
func resizeTo11(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
	if !crosses(from, to, 11) {
		return false, nil
	}
	scales := n.Input(1)
	if len(n.Inputs) > 1 {
		g.SetInput(n, 1, nil)
	}
	for len(n.Inputs) < 3 {
		g.AppendInput(n, nil)
	}
	g.SetInput(n, 2, scales)
	if to < 13 {
		// roi is required before opset 13: an empty tensor means none.
		g.SetInput(n, 1, g.AddInitializer(g.UniqueName(nodeBase(n)+"_roi"), graph.Float32Tensor([]int{0}, []float32{})))
	}
	n.SetAttr(graph.AttrStringOf("coordinate_transformation_mode", "asymmetric"))
	if mode, _ := n.AttrString("mode", "nearest"); mode == "nearest" {
		n.SetAttr(graph.AttrStringOf("nearest_mode", "floor"))
	}
	return true, nil
}

func axesUpgrader(at int64) upgrader {
	return func(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
		if !crosses(from, to, at) || !n.HasAttr("axes") {
			return false, nil
		}
		axes, err := n.AttrInts("axes", nil)
		if err != nil {
			return false, err
		}
		attrToInput(g, n, "axes", 1, graph.Int64Tensor([]int{len(axes)}, append([]int64(nil), axes...)))
		return true, nil
	}
}

// softmaxUpgrader makes the pre-13 semantics (flatten to 2-D at axis, normalize
// the second dimension) explicit when they differ from the 13+ per-axis form.
func softmaxUpgrader(g *graph.Graph, n *graph.Node, from, to int64) (bool, error) {
	if !crosses(from, to, 13) {
		return false, nil
	}
	axis, err := n.AttrInt("axis", 1)
	if err != nil {
		return false, err
	}
	x := n.Input(0)
	if dims, ok := x.Shape(); ok {
		r := int64(len(dims))
		a := axis
		if a < 0 {
			a += r
		}
		trailingOnes := true
		for _, d := range dims[min(int(a)+1, len(dims)):] {
			if !(d.Known && d.Param == "" && d.Value == 1) {
				trailingOnes = false
			}
		}
		if a == r-1 || trailingOnes {
			n.SetAttr(graph.AttrIntOf("axis", a))
			return true, nil
		}
	}
	// Shape(x) -> s; Flatten(x, axis) -> f; op(f, axis=1); Reshape(., s).
	y := n.Output()
	base := nodeBase(n)
	shape := g.AddNode("Shape", base+"_shape", []*graph.Value{x}, []string{base + "_shape"})
	flat := g.AddNode("Flatten", base+"_flatten", []*graph.Value{x}, []string{base + "_flat"}, graph.AttrIntOf("axis", axis))
	g.SetInput(n, 0, flat.Output())
	n.SetAttr(graph.AttrIntOf("axis", 1))
	tmp := g.NewValue(y.Name + "_2d")
	n.Outputs[0] = tmp
	tmp.Producer = n
	y.Producer = nil
	re := g.AddNode("Reshape", base+"_reshape", []*graph.Value{tmp, shape.Output()}, nil)
	re.Outputs = []*graph.Value{y}
	y.Producer = re
	return true, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
