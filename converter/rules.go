package converter

import (
	"fmt"
	"path"
	"strings"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
)

// settings are the per-tensor choices the overrides' rules resolved; what
// they leave empty comes from the command line (Options).
type settings struct {
	act, weight, bias map[string]overrides.Setting // bias: by bias initializer name
}

func newSettings() *settings {
	return &settings{act: map[string]overrides.Setting{}, weight: map[string]overrides.Setting{}, bias: map[string]overrides.Setting{}}
}

func (s *settings) actType(name string, opt Options) (graph.DataType, bool) {
	st := s.act[name]
	dt, sym := opt.ActType, opt.ActSymmetric
	if st.DType != "" {
		dt, _ = graph.ParseDataType(st.DType) // validated by the loader
	}
	if st.Symmetric != nil {
		sym = *st.Symmetric
	}
	return dt, sym
}

// observer merges the tensor's observer settings over the command line's.
func (s *settings) observer(name string, opt Options) calib.Config {
	c, o := opt.Observer, s.act[name].Observer
	if o.Kind != "" && o.Kind != c.Kind {
		c = calib.Config{Kind: o.Kind, Bins: c.Bins} // the CLI's kind-specific values do not carry over
	}
	if o.Percentile != 0 {
		c.Percentile = o.Percentile
	}
	if o.Bins != 0 {
		c.Bins = o.Bins
	}
	if o.MovingAverage != 0 {
		c.Momentum = o.MovingAverage
	}
	// Entropy and MSE weigh clipping against the step of the tensor's own type:
	// a 16-bit activation has 256 times finer steps than an 8-bit one.
	if dt, _ := s.actType(name, opt); dt != 0 {
		if lo, hi, ok := kernels.QuantRange(dt); ok {
			c.Levels = int(hi-lo) + 1
		}
	}
	return c
}

func (s *settings) weightType(name string, opt Options) (graph.DataType, bool) {
	st := s.weight[name]
	dt, sym := opt.WeightType, true
	if st.DType != "" {
		dt, _ = graph.ParseDataType(st.DType)
	}
	if st.Symmetric != nil {
		sym = *st.Symmetric
	}
	return dt, sym
}

func (s *settings) source(name string) string {
	if st, ok := s.act[name]; ok {
		return st.Source()
	}
	return s.weight[name].Source()
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
func checkNames(g *graph.Graph, pre names, f *overrides.File, allowMissing bool, rep *Report) error {
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
	warn, err := f.Unmatched(tensorNames, nodeNames, opTypes, allowMissing)
	if err != nil {
		return fmt.Errorf("overrides: %v", err)
	}
	// Weight and bias settings on nodes without weights would do nothing.
	for _, op := range sortedKeys(f.OpTypes) {
		if _, ok := weightOps[op]; !ok && op != "Gather" && len(f.OpTypes[op].WeightKeys()) > 0 {
			return fmt.Errorf("overrides: op_types[%q].%s: %s nodes have no weights (weight settings are for Conv, ConvTranspose, Gemm, MatMul)", op, f.OpTypes[op].WeightKeys()[0], op)
		}
	}
	for _, key := range sortedKeys(f.Nodes) {
		r := f.Nodes[key]
		if len(r.WeightKeys()) == 0 {
			continue
		}
		matched, withWeights := 0, false
		for _, n := range g.Nodes {
			if ok, _ := path.Match(key, n.Name); ok || n.Name == key {
				matched++
				_, w := weightOps[n.OpType]
				w = w || n.OpType == "Gather"
				withWeights = withWeights || w
			}
		}
		if matched > 0 && !withWeights {
			return fmt.Errorf("overrides: nodes[%q].%s: no node it names has weights (weight settings are for Conv, ConvTranspose, Gemm, MatMul)", key, r.WeightKeys()[0])
		}
	}
	rep.Warnings = append(rep.Warnings, warn...)
	return nil
}

// applyRules resolves the overrides' defaults, op type, node and tensor rules,
// skips and thresholds for every tensor the plan quantizes. Tensors to keep in
// float go into float with the entry that asked for it.
func applyRules(g *graph.Graph, pl *plan, opt Options, explicit map[string]*passes.Encoding, float map[string]string, alias weightAliases, rep *Report) (*settings, error) {
	st := newSettings()
	f := opt.Overrides
	if f == nil {
		return st, nil
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
			if in := p.Input(0); passes.GroupedActivations[p.OpType] && in != nil && in.Producer != nil && len(in.Consumers) == 1 {
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
		if c.DType == "float" {
			float[name] = c.Source()
			continue
		}
		if c.DType == "int32" {
			return nil, fmt.Errorf("overrides: %s: %q is an activation; int32 is for biases", c.Source(), name)
		}
		if c.Granularity != "" || c.BlockSize != 0 || c.Axis != nil {
			return nil, fmt.Errorf("overrides: %s: %q is an activation; granularity and block size are for weights", c.Source(), name)
		}
		if len(c.Min) > 1 {
			return nil, fmt.Errorf("overrides: %s: %d ranges for the activation %q (activations are per tensor)", c.Source(), len(c.Min), name)
		}
		if dt, _ := graph.ParseDataType(c.DType); dt.BitWidth() == 4 && observerKind(c, opt) == "entropy" {
			return nil, fmt.Errorf("overrides: %s: %q is 4-bit; the entropy observer needs at least 8 bits", c.Source(), name)
		}
		st.act[name] = c
	}
	for _, name := range sortedKeys(pl.weights) {
		if _, ok := explicit[name]; ok {
			continue
		}
		if _, ok := float[name]; ok {
			continue
		}
		w := g.Value(name)
		node, op := computeConsumer(w)
		if src, ok := f.Skipped(node, op); ok {
			float[name] = src
			continue
		}
		if s := f.Skip; s != nil {
			ch := 1 // a weight without a channel axis has one channel
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
		if o, ok := alias.orig[name]; ok && err == nil && !strings.HasPrefix(c.Source(), "tensors[") {
			c, err = f.Weight(o, node, op) // the name the user knows
		}
		if err != nil {
			return nil, fmt.Errorf("overrides: %v", err)
		}
		if c.DType == "float" {
			float[name] = c.Source()
			continue
		}
		if c.DType == "int32" {
			return nil, fmt.Errorf("overrides: %s: %q is a weight; int32 is for biases", c.Source(), name)
		}
		if c.Observer != (overrides.Observer{}) {
			return nil, fmt.Errorf("overrides: %s: %q is a weight; weights are not calibrated, an observer has no effect", c.Source(), name)
		}
		st.weight[name] = c
	}
	for _, b := range sortedKeys(pl.biases) {
		node, op := computeConsumer(g.Value(pl.biases[b][1]))
		c, err := f.Bias(b, node, op)
		if err != nil {
			return nil, fmt.Errorf("overrides: %v", err)
		}
		st.bias[b] = c
	}
	return st, nil
}

func observerKind(c overrides.Setting, opt Options) string {
	if c.Observer.Kind != "" {
		return c.Observer.Kind
	}
	return opt.Observer.Kind
}

// computeConsumer is the Conv/Gemm/MatMul reading a weight.
func computeConsumer(w *graph.Value) (node, op string) {
	for _, c := range w.Consumers {
		if _, compute := weightOps[c.OpType]; compute {
			return c.Name, c.OpType
		}
	}
	if t := tableLookup(w); t != nil {
		return t.Name, t.OpType
	}
	return "", ""
}

// explicitEncodings turns the overrides' encodings into QDQ encodings and
// collects the tensors to keep in float. It refuses names the model does not
// have or the plan does not quantize, a kind that contradicts the model, and
// per-channel or blocked scales that do not fit the weight.
func explicitEncodings(g *graph.Graph, pl *plan, opt Options, alias weightAliases) (map[string]*passes.Encoding, map[string]string, error) {
	out, float := map[string]*passes.Encoding{}, map[string]string{}
	f := opt.Overrides
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
			if opt.AllowMissing {
				continue // reported by checkNames
			}
			return nil, nil, fmt.Errorf("%s: the model has no tensor of that name", path)
		}
		axis, isWeight := pl.weights[name]
		if _, bias := pl.biases[name]; bias && (t.DType == "int32" || t.DType == "float" || t.Float) {
			continue // a bias type, resolved with the bias rules
		}
		if t.DType == "int32" {
			return nil, nil, fmt.Errorf("%s: int32 is the type of biases, and %q is not a bias onnxq quantizes (one of a Conv, ConvTranspose or Gemm with a quantized input and weight)", path, key)
		}
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
		if e.DType == "" { // ORT files may leave the type to the quantizer's settings
			enc.DType = opt.ActType
			if isWeight {
				enc.DType = opt.WeightType
			}
			if t.DType != "" {
				enc.DType, _ = graph.ParseDataType(t.DType)
			}
			lo, hi, _ := kernels.QuantRange(enc.DType)
			for i, z := range enc.ZeroPoint {
				if float64(z) < lo || float64(z) > hi {
					return nil, nil, fmt.Errorf("%s.zero_point[%d]: %d is outside %s's range [%v, %v]", path, i, z, enc.DType.Short(), lo, hi)
				}
			}
		}
		if e.Axis != nil {
			enc.Axis = *e.Axis
		}
		if len(e.Scale) > 1 || e.BlockSize > 0 {
			if !isWeight {
				return nil, nil, fmt.Errorf("%s: %d scales on an activation (activations are per tensor)", path, len(e.Scale))
			}
			w := g.Value(name).Const
			if e.AxisFromModel || e.Axis == nil || (e.BlockSize > 0 && e.Shape == nil) {
				enc.Axis = axis
				if e.BlockSize > 0 {
					bax, ok := pl.blocked[name]
					if !ok {
						return nil, nil, fmt.Errorf("%s: blocked encodings are for MatMul and Gemm weights", path)
					}
					if e.Axis != nil && *e.Axis != bax {
						return nil, nil, fmt.Errorf("%s: blocks along axis %d, but the weight's reduction axis is %d", path, *e.Axis, bax)
					}
					enc.Axis = bax
					enc.ScaleShape = append([]int(nil), w.Shape...)
					enc.ScaleShape[bax] = (w.Shape[bax] + e.BlockSize - 1) / e.BlockSize
				}
			}
			if enc.Axis < 0 || enc.Axis >= w.Rank() {
				return nil, nil, fmt.Errorf("%s: axis %d is outside the weight's rank %d", path, enc.Axis, w.Rank())
			}
			if e.BlockSize == 0 && enc.Axis != axis {
				return nil, nil, fmt.Errorf("%s: per-channel scales along axis %d, but the op's output channels are along axis %d (the int32 bias needs one scale per output channel)", path, enc.Axis, axis)
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
