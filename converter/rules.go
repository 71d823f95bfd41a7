package converter

import (
	"fmt"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
)

// types are the per-tensor settings the overrides' rules resolved.
type types struct {
	act    map[string]graph.DataType
	sym    map[string]bool
	weight map[string]graph.DataType
	source map[string]string // tensor -> the overrides entry that set it
}

func (t *types) actType(name string, opt Options) (graph.DataType, bool) {
	dt, ok := t.act[name]
	if !ok {
		dt = opt.ActType
	}
	sym, ok := t.sym[name]
	if !ok {
		sym = opt.ActSymmetric
	}
	return dt, sym
}

func (t *types) weightType(name string, opt Options) graph.DataType {
	if dt, ok := t.weight[name]; ok {
		return dt
	}
	return opt.WeightType
}

// names are the model's names before the float passes.
type names struct {
	tensors, nodes map[string]bool
	weight         map[string]string // compute node -> its weight's name
}

// weightAliases relate weights the passes renamed to the names the user knows.
type weightAliases struct {
	orig    map[string]string // current -> original
	current map[string]string // original -> current
}

func (p names) aliases(g *graph.Graph) weightAliases {
	a := weightAliases{orig: map[string]string{}, current: map[string]string{}}
	for _, n := range g.Nodes {
		o, ok := p.weight[n.Name]
		if _, compute := weightOps[n.OpType]; !ok || !compute || n.Input(1) == nil {
			continue
		}
		if cur := n.Input(1).Name; cur != o && g.Value(o) == nil {
			a.orig[cur], a.current[o] = o, cur
		}
	}
	return a
}

// checkNames refuses exact names the model lacks (naming the closest ones) and
// reports globs and op types that match nothing.
func checkNames(g *graph.Graph, pre names, f *overrides.File, rep *Report) error {
	if f == nil {
		return nil
	}
	var opTypes []string
	seenOp := map[string]bool{}
	tensorNames, nodeNames := sortedKeys(pre.tensors), sortedKeys(pre.nodes)
	for _, v := range g.Values() {
		if !pre.tensors[v.Name] {
			tensorNames = append(tensorNames, v.Name)
		}
	}
	for _, n := range g.Nodes {
		if !pre.nodes[n.Name] {
			nodeNames = append(nodeNames, n.Name)
		}
		if !seenOp[n.OpType] {
			seenOp[n.OpType] = true
			opTypes = append(opTypes, n.OpType)
		}
	}
	warn, err := f.Unmatched(tensorNames, nodeNames, opTypes)
	if err != nil {
		return fmt.Errorf("overrides: %v", err)
	}
	rep.Warnings = append(rep.Warnings, warn...)
	return nil
}

// applyRules resolves the overrides' defaults, op type, node and tensor rules,
// skips and thresholds for every tensor the plan quantizes. Tensors to keep in
// float go into float with the entry that asked for it.
func applyRules(g *graph.Graph, pl *plan, opt Options, explicit map[string]*passes.Encoding, float map[string]string, alias weightAliases, rep *Report) (*types, error) {
	t := &types{act: map[string]graph.DataType{}, sym: map[string]bool{}, weight: map[string]graph.DataType{}, source: map[string]string{}}
	f := opt.Overrides
	if f == nil {
		return t, nil
	}
	listed := map[string]bool{} // nodes the plan already keeps float, with their reason
	for _, fn := range rep.FloatNodes {
		listed[fn.Node] = true
	}
	for _, n := range g.Nodes {
		if src, ok := f.Skipped(n.Name, n.OpType); ok && !listed[n.String()] {
			rep.FloatNodes = append(rep.FloatNodes, FloatNode{n.String(), n.OpType, "overrides: " + src})
		}
	}
	// take records a resolved choice; false when it keeps the tensor float.
	take := func(name string, c overrides.Choice, types map[string]graph.DataType) bool {
		switch c.DType {
		case "float":
			float[name] = c.Source
			return false
		case "":
		default:
			types[name], _ = graph.ParseDataType(c.DType) // validated by the loader
		}
		if c.Source != "" {
			t.source[name] = c.Source
		}
		return true
	}
	for _, name := range pl.observe {
		if _, ok := explicit[name]; ok {
			continue
		}
		if _, ok := float[name]; ok {
			continue
		}
		// The producer, and for a grouped Conv+Relu output the Conv too.
		var nodes, ops []string
		if p := g.Value(name).Producer; p != nil {
			nodes, ops = append(nodes, p.Name), append(ops, p.OpType)
			if in := p.Input(0); activationsAfter[p.OpType] && in != nil && in.Producer != nil && len(in.Consumers) == 1 {
				if _, compute := weightOps[in.Producer.OpType]; compute || in.Producer.OpType == "Add" {
					nodes, ops = append(nodes, in.Producer.Name), append(ops, in.Producer.OpType)
				}
			}
		}
		skipped := false
		for i := range nodes {
			if src, ok := f.Skipped(nodes[i], ops[i]); ok {
				float[name], skipped = src, true
				break
			}
		}
		if skipped {
			continue
		}
		c, err := f.Activation(name, nodes, ops)
		if err != nil {
			return nil, fmt.Errorf("overrides: %v", err)
		}
		if !take(name, c, t.act) {
			continue
		}
		if c.Symmetric != nil {
			t.sym[name] = *c.Symmetric
		}
	}
	for _, name := range sortedKeys(pl.weights) {
		if _, ok := explicit[name]; ok {
			continue
		}
		if _, ok := float[name]; ok {
			continue
		}
		w := g.Value(name)
		var node, op string
		for _, c := range w.Consumers {
			if _, compute := weightOps[c.OpType]; compute {
				node, op = c.Name, c.OpType
				break
			}
		}
		if src, ok := f.Skipped(node, op); ok {
			float[name] = src
			continue
		}
		if s := f.Skip; s != nil {
			ch := graph.Numel(w.Const.Shape[:min(1, w.Const.Rank())]) // a scalar has one channel
			if ax := pl.weights[name]; ax >= 0 {
				ch = w.Const.Shape[ax]
			}
			if n := graph.Numel(w.Const.Shape); n < s.WeightsSmallerThan {
				float[name] = fmt.Sprintf("skip.weights_smaller_than (%d elements < %d)", n, s.WeightsSmallerThan)
				continue
			}
			if ch < s.WeightsFewerChannelsThan {
				float[name] = fmt.Sprintf("skip.weights_fewer_channels_than (%d channels < %d)", ch, s.WeightsFewerChannelsThan)
				continue
			}
		}
		c, err := f.Weight(name, node, op)
		if o, ok := alias.orig[name]; ok && err == nil && !strings.HasPrefix(c.Source, "tensors[") {
			c, err = f.Weight(o, node, op) // the name the user knows
		}
		if err != nil {
			return nil, fmt.Errorf("overrides: %v", err)
		}
		take(name, c, t.weight)
	}
	return t, nil
}

// explicitEncodings turns the overrides' encodings into QDQ encodings and
// collects the tensors to keep in float. It refuses names the model does not
// have or the plan does not quantize, a kind that contradicts the model, and
// per-channel or blocked scales that do not fit the weight.
func explicitEncodings(g *graph.Graph, pl *plan, f *overrides.File, alias weightAliases) (map[string]*passes.Encoding, map[string]string, error) {
	out, float := map[string]*passes.Encoding{}, map[string]string{}
	if f == nil {
		return out, float, nil
	}
	observed := map[string]bool{}
	for _, n := range pl.observe {
		observed[n] = true
	}
	for _, key := range f.Names() {
		t := f.Tensors[key]
		if strings.ContainsAny(key, "*?[") {
			continue // globs set types, resolved per tensor
		}
		path := fmt.Sprintf("overrides: tensors[%q]", key)
		name := key
		if cur, ok := alias.current[key]; ok {
			name = cur // a weight the float passes renamed
		}
		if g.Value(name) == nil {
			return nil, nil, fmt.Errorf("%s: the model has no tensor of that name", path)
		}
		axis, isWeight := pl.weights[name]
		switch {
		case !isWeight && !observed[name]:
			return nil, nil, fmt.Errorf("%s: onnxq does not quantize this tensor (a bias, a shared encoding or a tensor of a float-only op), so the setting would have no effect", path)
		case t.Kind == overrides.KindWeight && !isWeight:
			return nil, nil, fmt.Errorf("%s: listed as a weight, but it is an activation", path)
		case t.Kind == overrides.KindActivation && isWeight:
			return nil, nil, fmt.Errorf("%s: listed as an activation, but it is a weight", path)
		}
		if t.Float {
			float[name] = fmt.Sprintf("tensors[%q]", key)
			continue
		}
		e := t.Encoding
		if e == nil {
			continue
		}
		enc := &passes.Encoding{DType: e.Type(), Scale: e.Scale, ZeroPoint: e.ZeroPoint, BlockSize: e.BlockSize, ScaleShape: e.Shape}
		if e.Axis != nil {
			enc.Axis = *e.Axis
		}
		if len(e.Scale) > 1 || e.BlockSize > 0 {
			if !isWeight {
				return nil, nil, fmt.Errorf("%s: %d scales on an activation (activations are per tensor)", path, len(e.Scale))
			}
			w := g.Value(name).Const
			if e.AxisFromModel {
				enc.Axis = axis
				if e.BlockSize > 0 {
					bax, ok := pl.blocked[name]
					if !ok {
						return nil, nil, fmt.Errorf("%s: blocked encodings are for MatMul and Gemm weights", path)
					}
					enc.Axis = bax
					enc.ScaleShape = append([]int(nil), w.Shape...)
					enc.ScaleShape[bax] = (w.Shape[bax] + e.BlockSize - 1) / e.BlockSize
				}
			}
			if enc.Axis < 0 || enc.Axis >= w.Rank() {
				return nil, nil, fmt.Errorf("%s: axis %d is outside the weight's rank %d", path, enc.Axis, w.Rank())
			}
			want := w.Shape[enc.Axis]
			if e.BlockSize > 0 {
				want = graph.Numel(enc.ScaleShape)
			}
			if len(e.Scale) != want {
				return nil, nil, fmt.Errorf("%s: %d scales, the weight %v needs %d along axis %d", path, len(e.Scale), w.Shape, want, enc.Axis)
			}
		}
		out[name] = enc
	}
	return out, float, nil
}

// encodingsFile writes the activation and weight encodings a conversion used
// (biases and shared encodings follow from them).
func encodingsFile(pl *plan, qp *passes.QDQPlan) *overrides.File {
	f := &overrides.File{Version: overrides.Version, Tensors: map[string]*overrides.Tensor{}}
	add := func(name string, enc *passes.Encoding) {
		e := &overrides.Encoding{DType: enc.DType.Short(), Scale: enc.Scale, ZeroPoint: enc.ZeroPoint, BlockSize: enc.BlockSize, Shape: enc.ScaleShape}
		if len(enc.Scale) > 1 {
			ax := enc.Axis
			e.Axis = &ax
		}
		kind := overrides.KindActivation
		if _, ok := qp.Weights[name]; ok {
			kind = overrides.KindWeight
		}
		f.Tensors[name] = &overrides.Tensor{Encoding: e, Kind: kind}
	}
	for _, name := range pl.observe {
		if enc := qp.Activations[name]; enc != nil {
			add(name, enc)
		}
	}
	for name, enc := range qp.Weights {
		add(name, enc)
	}
	return f
}
