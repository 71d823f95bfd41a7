package passes

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
)

// Models below opset 7 (Caffe2 and the first PyTorch exports, the ONNX
// model zoo's oldest classics) broadcast binary ops through attributes,
// keep attributes later versions dropped (consumed_inputs, is_test), and
// use experimental ops that opset 10 removed (ImageScaler, Upsample-1,
// Crop, Affine, ...). upgradeLegacy rewrites them into their opset-7 forms
// and standard ops, after which upgradeOpset's other rules apply. Every
// rewrite is planned first: a node that cannot be upgraded leaves the
// model as it was.

// legacyPlan is one node's rewrite, ready to apply.
type legacyPlan func(g *graph.Graph)

// experimentalOps are the experimental ops of opsets 1-9 that upgradeLegacy
// rewrites into standard ops.
var experimentalOps = map[string]bool{"ImageScaler": true, "Affine": true, "Scale": true, "ScaledTanh": true,
	"ParametricSoftplus": true, "Crop": true, "ConstantFill": true}

// legacyShapes finds value shapes for the rewrites that need them: declared
// ones, else those of a run on seeded inputs (run once, when first needed).
type legacyShapes struct {
	m        *graph.Model
	observed map[string][]int
	runErr   error
}

func (s *legacyShapes) of(v *graph.Value) ([]int, error) {
	if shape, ok := v.StaticShape(); ok {
		return shape, nil
	}
	if s.observed == nil && s.runErr == nil {
		s.observed = map[string][]int{}
		s.runErr = s.observe()
	}
	if shape, ok := s.observed[v.Name]; ok {
		return shape, nil
	}
	if s.runErr != nil {
		return nil, fmt.Errorf("the shape of %q is not declared and the model did not run to find it: %v", v.Name, s.runErr)
	}
	return nil, fmt.Errorf("the shape of %q is unknown", v.Name)
}

func (s *legacyShapes) observe() error {
	inputs, err := (&Verifier{Seed: 1}).inputsFor(s.m)
	if err != nil {
		return err
	}
	sess, err := kernels.NewSession(s.m, kernels.Options{Threads: 1, Tap: func(name string, t *graph.Tensor) {
		s.observed[name] = slices.Clone(t.Shape)
	}})
	if err != nil {
		return err
	}
	_, err = sess.Run(inputs)
	return err
}

// upgradeLegacy rewrites a model below opset 7 into opset-7 forms, and the
// experimental ops of a model below opset 10 into standard ops.
func upgradeLegacy(m *graph.Model, from, to int64, c *Change) error {
	g := m.Graph
	shapes := &legacyShapes{m: m}
	var plans []legacyPlan
	for _, n := range g.Nodes {
		if !graph.IsStandardDomain(n.Domain) {
			continue
		}
		p, err := planLegacy(n, from, to, shapes)
		if err != nil {
			return fmt.Errorf("cannot upgrade node %s from opset %d: %v", n, from, err)
		}
		if p != nil {
			plans = append(plans, p)
			c.add(n.String())
		}
	}
	for _, p := range plans {
		p(g)
	}
	return g.TopoSort()
}

// planLegacy returns the rewrite of one node (nil when it needs none).
func planLegacy(n *graph.Node, from, to int64, shapes *legacyShapes) (legacyPlan, error) {
	var steps []legacyPlan
	drop := func(attrs ...string) {
		for _, a := range attrs {
			if n.HasAttr(a) {
				steps = append(steps, func(*graph.Graph) { n.DelAttr(a) })
			}
		}
	}
	// Opsets 7-9 keep only the experimental ops to rewrite.
	legacy := from < 7
	if legacy {
		drop("consumed_inputs")
	}
	var err error
	switch op := n.OpType; {
	case legacy && slices.Contains(kernels.LegacyBroadcastOps, op):
		var p legacyPlan
		p, err = planBroadcast(n, shapes)
		steps = append(steps, p)
		drop("broadcast", "axis")
	case legacy && op == "PRelu":
		steps = append(steps, planPReluSlope(n, shapes))
	case legacy && op == "Gemm":
		drop("broadcast")
	case legacy && (op == "BatchNormalization" || op == "Dropout"):
		// is_test=0 asked for training behaviour, which inference does not
		// have: ONNX's version converter drops it too.
		drop("is_test")
	case legacy && (op == "GRU" || op == "LSTM" || op == "RNN"):
		drop("output_sequence")
	case legacy && op == "Cast":
		if a := n.Attr("to"); a != nil && a.GetType() == onnxpb.AttributeProto_STRING {
			code, ok := onnxpb.TensorProto_DataType_value[strings.ToUpper(string(a.GetS()))]
			if !ok {
				return nil, fmt.Errorf("Cast to %q: not an element type", a.GetS())
			}
			steps = append(steps, func(*graph.Graph) { n.SetAttr(graph.AttrIntOf("to", int64(code))) })
		}
	case (op == "LpPool" || op == "GlobalLpPool") && from < 2:
		// p was a float before opset 2, an integer since.
		if a := n.Attr("p"); a != nil && a.GetType() == onnxpb.AttributeProto_FLOAT {
			p := a.GetF()
			if p != float32(int64(p)) {
				return nil, fmt.Errorf("%s p = %g: from opset 2 p is an integer", op, p)
			}
			steps = append(steps, func(*graph.Graph) { n.SetAttr(graph.AttrIntOf("p", int64(p))) })
		}
	case op == "Reshape" && from < 5:
		shape, e := n.AttrInts("shape", nil)
		if e != nil || shape == nil {
			return nil, fmt.Errorf("Reshape-1 has no shape attribute")
		}
		steps = append(steps, func(g *graph.Graph) {
			attrToInput(g, n, "shape", 1, graph.Int64Tensor([]int{len(shape)}, slices.Clone(shape)))
		})
	case op == "Pad" && from < 2:
		if p, e := n.AttrInts("paddings", nil); e == nil && p != nil {
			steps = append(steps, func(*graph.Graph) { n.DelAttr("paddings"); n.SetAttr(graph.AttrIntsOf("pads", p...)) })
		}
	case op == "Concat" && from < 4:
		if !n.HasAttr("axis") {
			steps = append(steps, func(*graph.Graph) { n.SetAttr(graph.AttrIntOf("axis", 1)) })
		}
	case op == "Split" && from < 2 && n.Input(1) != nil:
		t := n.Input(1).Const
		if t == nil {
			return nil, fmt.Errorf("Split-1's split input is not a constant")
		}
		split, e := kernels.WholeValues(t)
		if e != nil {
			return nil, e
		}
		steps = append(steps, func(g *graph.Graph) {
			g.SetInput(n, 1, nil)
			n.Inputs = n.Inputs[:1]
			n.SetAttr(graph.AttrIntsOf("split", split...))
		})
	case op == "Tile" && from < 6:
		var p legacyPlan
		p, err = planTile1(n, shapes)
		steps = append(steps, p)
	case legacy && op == "Upsample" && !n.HasAttr("scales") && n.Input(1) == nil:
		hs, e1 := n.AttrFloat("height_scale", 0)
		ws, e2 := n.AttrFloat("width_scale", 0)
		if e := firstErr(e1, e2); e != nil || !n.HasAttr("height_scale") || !n.HasAttr("width_scale") {
			return nil, fmt.Errorf("Upsample-1 needs height_scale and width_scale")
		}
		steps = append(steps, func(*graph.Graph) {
			n.DelAttr("height_scale")
			n.DelAttr("width_scale")
			n.SetAttr(graph.AttrFloatsOf("scales", 1, 1, hs, ws))
		})
	case op == "ConstantFill" && to >= 9:
		var p legacyPlan
		p, err = planConstantFill(n)
		steps = append(steps, p)
	case experimentalOps[op]:
		var p legacyPlan
		p, err = planExperimental(n)
		steps = append(steps, p)
	}
	if err != nil {
		return nil, err
	}
	steps = slices.DeleteFunc(steps, func(p legacyPlan) bool { return p == nil })
	if len(steps) == 0 {
		return nil, nil
	}
	return func(g *graph.Graph) {
		for _, s := range steps {
			s(g)
		}
	}, nil
}

// planBroadcast makes a legacy broadcast explicit where numpy's rules would
// read it differently: a second input aligned at an axis before the
// trailing ones gets the trailing ones as unit dimensions.
func planBroadcast(n *graph.Node, shapes *legacyShapes) (legacyPlan, error) {
	bc, e1 := n.AttrInt("broadcast", 0)
	axis, e2 := n.AttrInt("axis", 0)
	if err := firstErr(e1, e2); err != nil {
		return nil, err
	}
	if bc == 0 || !n.HasAttr("axis") || len(n.Inputs) < 2 {
		return nil, nil // equal shapes, or trailing alignment: numpy's too
	}
	a, err := shapes.of(n.Input(0))
	if err != nil {
		return nil, err
	}
	b, err := shapes.of(n.Input(1))
	if err != nil {
		return nil, err
	}
	if graph.Numel(b) == 1 {
		return nil, nil
	}
	if axis < 0 {
		axis += int64(len(a))
	}
	trail := len(a) - int(axis) - len(b)
	if axis < 0 || trail < 0 {
		return nil, fmt.Errorf("shape %v does not broadcast to %v at axis %d", b, a, axis)
	}
	return withUnitDims(n, 1, b, trail), nil
}

// planPReluSlope makes a PRelu-1/6 slope that is per channel (1-D, as long
// as axis 1 of an input of rank 3 or more) broadcast by numpy's rules, as
// the kernels read it.
func planPReluSlope(n *graph.Node, shapes *legacyShapes) legacyPlan {
	if len(n.Inputs) < 2 || n.Input(1) == nil {
		return nil
	}
	s, err1 := shapes.of(n.Input(1))
	x, err2 := shapes.of(n.Input(0))
	if err1 != nil || err2 != nil || len(s) != 1 || len(x) < 3 || s[0] != x[1] || s[0] == 1 {
		return nil
	}
	return withUnitDims(n, 1, s, len(x)-2)
}

// withUnitDims gives input i of n (of shape shape) trail trailing unit
// dimensions: a reshaped copy of a constant, or an Unsqueeze.
func withUnitDims(n *graph.Node, i int, shape []int, trail int) legacyPlan {
	if trail == 0 {
		return nil
	}
	newShape := slices.Clone(shape)
	axes := make([]int64, trail)
	for k := range axes {
		axes[k] = int64(len(shape) + k)
		newShape = append(newShape, 1)
	}
	return func(g *graph.Graph) {
		v := n.Input(i)
		if v.Const != nil && !slices.Contains(g.Inputs, v) {
			t := v.Const.Clone()
			t.Shape = newShape
			g.SetInput(n, i, g.AddInitializer(g.UniqueName(v.Name+"_bcast"), t))
			return
		}
		u := g.AddNode("Unsqueeze", nodeBase(n)+"_bcast", []*graph.Value{v}, []string{v.Name + "_bcast"}, graph.AttrIntsOf("axes", axes...))
		g.SetInput(n, i, u.Output())
	}
}

// planTile1 turns Tile-1 (input, tiles, axis) into Tile-6 (input, repeats).
func planTile1(n *graph.Node, shapes *legacyShapes) (legacyPlan, error) {
	if len(n.Inputs) != 3 || n.Input(1) == nil || n.Input(2) == nil || n.Input(1).Const == nil || n.Input(2).Const == nil {
		return nil, fmt.Errorf("Tile-1 needs constant tiles and axis inputs")
	}
	tiles, e1 := kernels.WholeValues(n.Input(1).Const)
	axis, e2 := kernels.WholeValues(n.Input(2).Const)
	if err := firstErr(e1, e2); err != nil {
		return nil, err
	}
	x, err := shapes.of(n.Input(0))
	if err != nil {
		return nil, err
	}
	if len(tiles) != 1 || len(axis) != 1 || axis[0] < -int64(len(x)) || axis[0] >= int64(len(x)) {
		return nil, fmt.Errorf("Tile-1 tiles %v and axis %v do not fit rank %d", tiles, axis, len(x))
	}
	reps := make([]int64, len(x))
	for i := range reps {
		reps[i] = 1
	}
	reps[(axis[0]+int64(len(x)))%int64(len(x))] = tiles[0]
	return func(g *graph.Graph) {
		g.SetInput(n, 2, nil)
		n.Inputs = n.Inputs[:2]
		g.SetInput(n, 1, g.AddInitializer(g.UniqueName(nodeBase(n)+"_repeats"), graph.Int64Tensor([]int{len(reps)}, reps)))
	}, nil
}

// planExperimental rewrites an experimental op of opsets 1-9 as standard ops.
func planExperimental(n *graph.Node) (legacyPlan, error) {
	f := func(name string, def float32) float32 {
		v, err := n.AttrFloat(name, def)
		if err != nil {
			return float32(math.NaN())
		}
		return v
	}
	scalar := func(g *graph.Graph, what string, v float32) *graph.Value {
		return g.AddInitializer(g.UniqueName(nodeBase(n)+"_"+what), graph.Float32Tensor(nil, []float32{v}))
	}
	switch n.OpType {
	case "ImageScaler":
		scale := f("scale", 1)
		bias, err := n.AttrFloats("bias", nil)
		if err != nil || math.IsNaN(float64(scale)) {
			return nil, fmt.Errorf("ImageScaler has a malformed scale or bias")
		}
		return func(g *graph.Graph) {
			// y = x * scale + bias[c], each rounded as ImageScaler rounds it.
			mulInto(g, n, "Mul", scalar(g, "scale", scale))
			if bias != nil {
				b := g.AddInitializer(g.UniqueName(nodeBase(n)+"_bias"), graph.Float32Tensor([]int{1, len(bias), 1, 1}, slices.Clone(bias)))
				chainAfter(g, n, "Add", b)
			}
		}, nil
	case "Affine", "Scale":
		alpha, beta := f("alpha", 1), f("beta", 0)
		if n.OpType == "Scale" {
			alpha = f("scale", 1)
		}
		if math.IsNaN(float64(alpha)) || math.IsNaN(float64(beta)) {
			return nil, fmt.Errorf("%s has malformed attributes", n.OpType)
		}
		return func(g *graph.Graph) {
			mulInto(g, n, "Mul", scalar(g, "alpha", alpha))
			if beta != 0 {
				chainAfter(g, n, "Add", scalar(g, "beta", beta))
			}
		}, nil
	case "ScaledTanh", "ParametricSoftplus":
		alpha, beta := f("alpha", 1), f("beta", 1)
		if math.IsNaN(float64(alpha)) || math.IsNaN(float64(beta)) {
			return nil, fmt.Errorf("%s has malformed attributes", n.OpType)
		}
		act := map[string]string{"ScaledTanh": "Tanh", "ParametricSoftplus": "Softplus"}[n.OpType]
		return func(g *graph.Graph) {
			// alpha * act(beta * x): n becomes the first Mul, the rest follow.
			mulInto(g, n, "Mul", scalar(g, "beta", beta))
			a := chainAfter(g, n, act)
			chainAfter(g, a, "Mul", scalar(g, "alpha", alpha))
		}, nil
	case "Crop":
		border, err1 := n.AttrInts("border", nil)
		scale, err2 := n.AttrInts("scale", nil)
		if err := firstErr(err1, err2); err != nil || len(border) != 4 || (scale != nil && len(scale) != 2) {
			return nil, fmt.Errorf("Crop needs border (4 values) and an optional scale (2)")
		}
		left, top, right, bottom := border[0], border[1], border[2], border[3]
		ends := []int64{math.MaxInt64, math.MaxInt64}
		if bottom > 0 {
			ends[0] = -bottom
		}
		if right > 0 {
			ends[1] = -right
		}
		if scale != nil {
			ends = []int64{top + scale[0], left + scale[1]}
		}
		return func(*graph.Graph) {
			n.OpType = "Slice" // Slice-1's attributes; the Slice rule moves them into inputs from opset 10
			n.Attrs = nil
			n.SetAttr(graph.AttrIntsOf("starts", top, left))
			n.SetAttr(graph.AttrIntsOf("ends", ends...))
			n.SetAttr(graph.AttrIntsOf("axes", 2, 3))
		}, nil
	}
	return nil, nil
}

// mulInto turns n into op(x, v) on its first input.
func mulInto(g *graph.Graph, n *graph.Node, op string, v *graph.Value) {
	n.OpType = op
	n.Attrs = nil
	n.Inputs = n.Inputs[:1]
	g.AppendInput(n, v)
}

// chainAfter moves n's output to a new node op(n's result, extra...) that
// follows n, and returns it.
func chainAfter(g *graph.Graph, n *graph.Node, op string, extra ...*graph.Value) *graph.Node {
	y := n.Output()
	tmp := g.NewValue(y.Name + "_" + strings.ToLower(n.OpType))
	n.Outputs[0] = tmp
	tmp.Producer = n
	next := g.AddNode(op, nodeBase(n)+"_"+strings.ToLower(op), append([]*graph.Value{tmp}, extra...), nil)
	next.Outputs = []*graph.Value{y}
	y.Producer = next
	return next
}

// planConstantFill rewrites ConstantFill as ConstantOfShape (opset 9) of the
// shape it fills: the input's values (cast to int64) with input_as_shape,
// else the input's Shape, else the shape attribute as a constant; extra_shape
// appended by a Concat.
func planConstantFill(n *graph.Node) (legacyPlan, error) {
	dt, e1 := n.AttrInt("dtype", int64(graph.Float))
	extra, e2 := n.AttrInts("extra_shape", nil)
	asShape, e3 := n.AttrInt("input_as_shape", 0)
	shape, e4 := n.AttrInts("shape", nil)
	value, e5 := n.AttrFloat("value", 0)
	if err := firstErr(e1, e2, e3, e4, e5); err != nil {
		return nil, err
	}
	fill := graph.NewTensor(graph.DataType(dt), []int{1})
	if err := kernels.FillConst(fill, float64(value)); err != nil {
		return nil, fmt.Errorf("ConstantFill dtype %d: %v", dt, err)
	}
	in := n.Input(0)
	if in == nil && (extra != nil || asShape != 0) || in != nil && shape != nil {
		return nil, fmt.Errorf("ConstantFill's shape attributes contradict its input")
	}
	return func(g *graph.Graph) {
		base := nodeBase(n)
		var s *graph.Value
		switch {
		case in == nil:
			s = g.AddInitializer(g.UniqueName(base+"_shape"), graph.Int64Tensor([]int{len(shape)}, append([]int64{}, shape...)))
		case asShape != 0:
			s = g.AddNode("Cast", base+"_shape", []*graph.Value{in}, []string{base + "_shape"}, graph.AttrIntOf("to", int64(graph.Int64))).Output()
		default:
			s = g.AddNode("Shape", base+"_shape", []*graph.Value{in}, []string{base + "_shape"}).Output()
		}
		if extra != nil {
			e := g.AddInitializer(g.UniqueName(base+"_extra_shape"), graph.Int64Tensor([]int{len(extra)}, slices.Clone(extra)))
			s = g.AddNode("Concat", base+"_full_shape", []*graph.Value{s, e}, []string{base + "_full_shape"}, graph.AttrIntOf("axis", 0)).Output()
		}
		if in != nil {
			g.SetInput(n, 0, nil)
		}
		n.Inputs = n.Inputs[:0]
		g.AppendInput(n, s)
		n.OpType = "ConstantOfShape"
		n.Attrs = nil
		n.SetAttr(graph.AttrTensorOf("value", fill))
	}, nil
}
