// Package converter is onnxq's pipeline: float passes, calibration on user data,
// encodings, QDQ insertion and the report.
package converter

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/rss"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
)

// Options configure a conversion.
type Options struct {
	Model, Output string
	// Calib is the calibration data (folder, list file, or one file).
	Calib   string
	Dataset dataset.Options
	// Observer computes activation ranges.
	Observer calib.Config
	// Passes run before calibration (default "default"); CLE adds cross-layer
	// equalization after them.
	Passes string
	CLE    bool
	// Activation and weight types. Defaults: uint8 asymmetric activations, int8
	// symmetric per-channel weights.
	ActType         graph.DataType
	ActSymmetric    bool
	WeightType      graph.DataType
	WeightPerTensor bool
	// WeightBlockSize > 0 quantizes MatMul and Gemm weights in blocks of this
	// many values along the reduction axis (opset 21); their biases stay float.
	WeightBlockSize int
	Threads         int
	// BiasCorrection corrects each quantized Conv/Gemm bias for its weight
	// quantization error, -(Q(W)-W)·E[x], with E[x] measured on the calibration
	// data (per-channel weights only).
	BiasCorrection bool
	// Overrides carry explicit encodings: those tensors are not calibrated.
	Overrides *overrides.File
	// EncodingsOut, when set, receives the final encodings in the overrides
	// format; fed back as Overrides without calibration data, it reproduces the
	// same model byte for byte.
	EncodingsOut string
	// Progress, when set, is called after each calibration sample.
	Progress func(pass, done, total int)
}

// TensorReport is one quantized tensor in the report.
type TensorReport struct {
	Name     string            `json:"name"`
	Kind     string            `json:"kind"` // activation, weight, bias
	Encoding *passes.Encoding  `json:"encoding"`
	Observer string            `json:"observer,omitempty"`
	Range    *[2]float32       `json:"range,omitempty"`
	SharedOf string            `json:"shares_encoding_of,omitempty"`
	Override string            `json:"override,omitempty"` // the overrides entry that set its type
	Extra    map[string]string `json:"-"`
}

// FloatTensor is a tensor the plan would quantize that stays float, with the reason.
type FloatTensor struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// keepFloat drops the named tensors from the plan; encodings that share theirs
// and biases that need them drop out when the QDQ plan is built.
func (p *plan) keepFloat(names map[string]string, rep *Report) {
	if len(names) == 0 {
		return
	}
	obs := p.observe[:0]
	for _, n := range p.observe {
		if _, ok := names[n]; !ok {
			obs = append(obs, n)
		}
	}
	p.observe = obs
	for _, n := range sortedKeys(names) {
		delete(p.weights, n)
		delete(p.blocked, n)
		rep.FloatTensors = append(rep.FloatTensors, FloatTensor{Name: n, Reason: "overrides: " + names[n]})
	}
}

// FloatNode is a node left in float, with the reason.
type FloatNode struct {
	Node   string `json:"node"`
	OpType string `json:"op_type"`
	Reason string `json:"reason"`
}

// Report is what a conversion did.
type Report struct {
	Model        string             `json:"model"`
	Output       string             `json:"output"`
	Samples      int                `json:"calibration_samples"`
	Passes       []*passes.Change   `json:"passes"`
	Tensors      []*TensorReport    `json:"tensors"`
	FloatNodes   []FloatNode        `json:"float_nodes"`
	FloatTensors []FloatTensor      `json:"float_tensors,omitempty"`
	Warnings     []string           `json:"warnings,omitempty"`
	PhaseSeconds map[string]float64 `json:"phase_seconds"`
	PeakRSSBytes int64              `json:"peak_rss_bytes"`
}

// compute ops have weights; their activation inputs and outputs are quantized.
var weightOps = map[string]int{"Conv": 0, "ConvTranspose": 1, "Gemm": -1, "MatMul": -1}

// quantizedOps run in integer arithmetic in QDQ runtimes: their float inputs and
// outputs get Q/DQ. Add and Mul count only with two activation inputs (residual
// sums, gates); with a constant operand (a per-channel affine, the pieces of an
// exported HardSwish) they run in float between DQ and Q, which costs runtimes
// little and saves a requantization each.
var quantizedOps = map[string]bool{
	"Conv": true, "ConvTranspose": true, "Gemm": true, "MatMul": true, "Add": true, "Mul": true,
	"Concat": true, "AveragePool": true, "GlobalAveragePool": true, "Resize": true,
	"LeakyRelu": true, "Relu": true, "Clip": true, "Softmax": true,
}

// floatOps are computed in float between DQ and Q by design.
var floatOps = map[string]string{
	"Sub": "elementwise op computed in float", "Div": "elementwise op computed in float",
	"Sigmoid": "activation computed in float", "HardSigmoid": "activation computed in float",
	"HardSwish": "activation computed in float", "Tanh": "activation computed in float",
	"Pow": "elementwise op computed in float", "Sqrt": "elementwise op computed in float",
	"ReduceMean": "reduction computed in float",
}

// movementOps pass values through unchanged: their outputs share their input's encoding.
var movementOps = map[string]bool{
	"Reshape": true, "Transpose": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true,
	"MaxPool": true, "Slice": true, "Split": true, "Identity": true, "GlobalMaxPool": true,
}

// activationsAfter are grouped with the compute op before them: Q/DQ after the activation.
var activationsAfter = map[string]bool{"Relu": true, "Clip": true, "LeakyRelu": true}

// plan decides which tensors to observe, which share encodings, and which weights
// and biases to quantize.
type plan struct {
	observe  []string          // activation tensors calibrated by observers
	shared   map[string]string // tensor -> the tensor whose encoding it shares
	weights  map[string]int    // weight initializer -> channel axis (-1: per tensor)
	blocked  map[string]int    // MatMul/Gemm weight -> its reduction axis, for blocked quantization
	biases   map[string][2]string
	floatOps []FloatNode
}

func isFloatTensor(v *graph.Value) bool {
	return v != nil && v.Const == nil && (v.ElemType() == graph.Float || v.ElemType() == graph.Undefined)
}

func makePlan(m *graph.Model, perTensorWeights bool) *plan {
	g := m.Graph
	p := &plan{shared: map[string]string{}, weights: map[string]int{}, blocked: map[string]int{}, biases: map[string][2]string{}}
	want := map[string]bool{}
	add := func(v *graph.Value) {
		if isFloatTensor(v) && !want[v.Name] {
			want[v.Name] = true
			p.observe = append(p.observe, v.Name)
		}
	}
	grouped := func(v *graph.Value) bool { // v is a compute output that only feeds an activation
		if v == nil || v.Producer == nil || g.IsOutput(v) || len(v.Consumers) != 1 {
			return false
		}
		_, compute := weightOps[v.Producer.OpType]
		return (compute || v.Producer.OpType == "Add") && activationsAfter[v.Consumers[0].OpType]
	}
	order, _ := g.TopoOrder()
	for _, n := range order {
		if !graph.IsStandardDomain(n.Domain) {
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, "custom domain " + n.Domain})
			continue
		}
		constOperand := (n.OpType == "Add" || n.OpType == "Mul") && (n.Input(0) == nil || n.Input(0).Const != nil || n.Input(1) == nil || n.Input(1).Const != nil)
		switch {
		case constOperand:
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, "constant operand: computed in float between DQ and Q"})
		case floatOps[n.OpType] != "":
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, floatOps[n.OpType]})
		case quantizedOps[n.OpType]:
			for i, in := range n.Inputs {
				if in == nil {
					continue
				}
				if _, isW := weightOps[n.OpType]; isW && i > 0 {
					continue // weights and bias are handled below
				}
				if activationsAfter[n.OpType] && grouped(in) {
					continue
				}
				if n.OpType == "Resize" || n.OpType == "Clip" {
					if i > 0 {
						continue // roi, scales, bounds
					}
				}
				add(in)
			}
			if out := n.Output(); out != nil && !grouped(out) {
				add(out)
			}
			if axis, isW := weightOps[n.OpType]; isW {
				w := n.Input(1)
				if w == nil || w.Const == nil || w.Const.DType != graph.Float {
					continue // a computed weight is quantized as an activation
				}
				ax := axis
				if n.OpType == "Gemm" {
					if tb, _ := n.AttrInt("transB", 0); tb != 0 {
						ax = 0
					} else {
						ax = 1
					}
				}
				if n.OpType == "MatMul" {
					ax = w.Const.Rank() - 1
				}
				if n.OpType == "ConvTranspose" {
					if grp, _ := n.AttrInt("group", 1); grp != 1 {
						ax = -1 // axis 1 holds M/group channels: per-tensor
					}
				}
				if perTensorWeights || w.Const.Rank() < 2 {
					ax = -1
				}
				p.weights[w.Name] = ax
				if (n.OpType == "MatMul" || n.OpType == "Gemm") && w.Const.Rank() == 2 {
					p.blocked[w.Name] = 1 - ax // the axis that is not the output channels: K
				}
				if b := n.Input(2); b != nil && b.Const != nil && b.Const.Rank() == 1 && n.OpType != "MatMul" && isFloatTensor(n.Input(0)) {
					p.biases[b.Name] = [2]string{n.Input(0).Name, w.Name}
				}
			}
		case movementOps[n.OpType]:
			// Output shares the input's encoding, when the input is quantized.
			if in := n.Input(0); in != nil && want[in.Name] {
				for _, o := range n.Outputs {
					if isFloatTensor(o) {
						p.shared[o.Name] = rootOf(p.shared, in.Name)
					}
				}
			}
		case n.OpType == "Constant" || n.OpType == "Shape" || n.OpType == "Cast":
		default:
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, "no quantized form in the placement table"})
		}
	}
	// A shared tensor that is also observed (an input of a quantized op) keeps the
	// shared encoding: passing values through must not requantize them.
	kept := p.observe[:0]
	for _, name := range p.observe {
		if _, ok := p.shared[name]; !ok {
			kept = append(kept, name)
		}
	}
	p.observe = kept
	return p
}

func rootOf(shared map[string]string, name string) string {
	for {
		next, ok := shared[name]
		if !ok {
			return name
		}
		name = next
	}
}

// Convert runs the whole pipeline and writes opt.Output.
func Convert(ctx context.Context, opt Options) (*Report, error) {
	if opt.Output == "" {
		return nil, fmt.Errorf("no output path given")
	}
	if opt.ActType == graph.Undefined {
		opt.ActType = graph.Uint8
	}
	if opt.WeightType == graph.Undefined {
		opt.WeightType = graph.Int8
	}
	if opt.Passes == "" {
		opt.Passes = "default"
	}
	rep := &Report{Model: opt.Model, Output: opt.Output, PhaseSeconds: map[string]float64{}}
	phase := func(name string, start time.Time) { rep.PhaseSeconds[name] = time.Since(start).Seconds() }

	start := time.Now()
	m, err := graph.Load(opt.Model)
	if err != nil {
		return nil, err
	}
	phase("load", start)

	// Users name tensors of the model they have; passes rename folded weights
	// (conv_w -> conv_w_bnfold). Keep the names and each compute node's weight.
	pre := names{tensors: map[string]bool{}, nodes: map[string]bool{}, weight: map[string]string{}}
	for _, v := range m.Graph.Values() {
		pre.tensors[v.Name] = true
	}
	for _, n := range m.Graph.Nodes {
		pre.nodes[n.Name] = true
		if _, ok := weightOps[n.OpType]; ok && n.Input(1) != nil {
			pre.weight[n.Name] = n.Input(1).Name
		}
	}

	// Float passes; per-channel Q/DQ needs opset 13.
	start = time.Now()
	list := opt.Passes
	if opt.CLE {
		list += ",cle"
	}
	// Per-channel Q/DQ needs opset 13; 16-bit and 4-bit types need 21.
	need := int64(13)
	for _, dt := range []graph.DataType{opt.ActType, opt.WeightType} {
		if dt.BitWidth() == 16 || dt.BitWidth() == 4 {
			need = 21
		}
	}
	for _, s := range opt.Overrides.DTypes() {
		if dt, err := graph.ParseDataType(s); err == nil && (dt.BitWidth() == 16 || dt.BitWidth() == 4) {
			need = 21
		}
	}
	if opt.WeightBlockSize > 0 {
		need = 21
	}
	if m.OpsetVersion("") < need {
		list += fmt.Sprintf(",upgrade-opset:%d", need)
	}
	ps, err := passes.Parse(list, passes.Options{})
	if err != nil {
		return nil, err
	}
	prep, err := (&passes.Pipeline{Passes: ps}).Run(m)
	if err != nil {
		return nil, err
	}
	rep.Passes = prep.Changes
	phase("passes", start)

	pl := makePlan(m, opt.WeightPerTensor)
	rep.FloatNodes = pl.floatOps

	// Explicit encodings first: those tensors need no calibration.
	alias := pre.aliases(m.Graph)
	if err := checkNames(m.Graph, pre, opt.Overrides, rep); err != nil {
		return nil, err
	}
	explicit, keepFloat, err := explicitEncodings(m.Graph, pl, opt.Overrides, alias)
	if err != nil {
		return nil, err
	}
	typ, err := applyRules(m.Graph, pl, opt, explicit, keepFloat, alias, rep)
	if err != nil {
		return nil, err
	}
	pl.keepFloat(keepFloat, rep)
	var toObserve []string
	for _, name := range pl.observe {
		if _, ok := explicit[name]; !ok {
			toObserve = append(toObserve, name)
		}
	}

	// Calibration.
	start = time.Now()
	ranges := map[string][2]float32{}
	if opt.Calib == "" {
		if len(toObserve) > 0 {
			shown := strings.Join(toObserve[:min(3, len(toObserve))], ", ")
			if len(toObserve) > 3 {
				shown += ", ..."
			}
			return nil, fmt.Errorf("no calibration data given (--calib), and %d tensors have no explicit encoding (%s): onnxq does not invent data; give samples, or encodings through --overrides", len(toObserve), shown)
		}
		if opt.BiasCorrection {
			return nil, fmt.Errorf("bias correction needs calibration data (--calib)")
		}
	} else if err := runCalibration(ctx, m, opt, pl, toObserve, rep, ranges); err != nil {
		return nil, err
	}
	phase("calibration", start)
	// Encodings and QDQ insertion.
	start = time.Now()
	qp := &passes.QDQPlan{Activations: map[string]*passes.Encoding{}, Weights: map[string]*passes.Encoding{}, Biases: map[string]passes.BiasPlan{}}
	for _, name := range pl.observe {
		if enc, ok := explicit[name]; ok {
			qp.Activations[name] = enc
			rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "activation", Encoding: enc, Observer: "overrides"})
			continue
		}
		r := ranges[name]
		dt, sym := typ.actType(name, opt)
		enc, err := passes.ComputeEncoding(r[0], r[1], dt, sym)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		qp.Activations[name] = enc
		rr := r
		rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "activation", Encoding: enc, Observer: observerName(opt.Observer), Range: &rr, Override: typ.source[name]})
	}
	for _, name := range sortedKeys(pl.shared) {
		root := rootOf(pl.shared, name)
		enc, ok := qp.Activations[root]
		if !ok {
			continue
		}
		qp.Activations[name] = enc
		rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "activation", Encoding: enc, SharedOf: root})
	}
	for _, name := range sortedKeys(pl.weights) {
		if enc, ok := explicit[name]; ok {
			qp.Weights[name] = enc
			rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "weight", Encoding: enc, Observer: "overrides"})
			continue
		}
		if bl, ok := pl.blocked[name]; ok && opt.WeightBlockSize > 0 {
			enc, err := blockedEncoding(m.Graph.Value(name).Const, bl, opt.WeightBlockSize, typ.weightType(name, opt))
			if err != nil {
				return nil, fmt.Errorf("weight %q: %v", name, err)
			}
			qp.Weights[name] = enc
			rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "weight", Encoding: enc, Override: typ.source[name]})
			continue
		}
		enc, err := weightEncoding(m.Graph.Value(name).Const, pl.weights[name], typ.weightType(name, opt))
		if err != nil {
			return nil, fmt.Errorf("weight %q: %v", name, err)
		}
		qp.Weights[name] = enc
		rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "weight", Encoding: enc, Override: typ.source[name]})
	}
	for _, name := range sortedKeys(pl.biases) {
		ref := pl.biases[name]
		in, w := qp.Activations[ref[0]], qp.Weights[ref[1]]
		if in == nil || w == nil || w.BlockSize > 0 {
			continue // blocked weights have no per-channel scale for an int32 bias
		}
		qp.Biases[name] = passes.BiasPlan{Input: in, Weight: w}
		rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "bias"})
	}
	insertHook(qp)
	if err := passes.InsertQDQ(m, qp); err != nil {
		return nil, err
	}
	phase("quantize", start)

	start = time.Now()
	if err := graph.Save(m, opt.Output); err != nil {
		return nil, err
	}
	phase("save", start)
	if opt.EncodingsOut != "" {
		if err := encodingsFile(pl, qp).Write(opt.EncodingsOut); err != nil {
			return nil, fmt.Errorf("writing encodings: %w", err)
		}
	}
	rep.PeakRSSBytes = rss.Peak()
	return rep, nil
}

func observerName(c calib.Config) string {
	if c.Kind == "" {
		return "minmax"
	}
	return c.Kind
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// weightEncoding is symmetric quantization, per channel along axis (or per tensor).
func weightEncoding(t *graph.Tensor, axis int, dt graph.DataType) (*passes.Encoding, error) {
	w, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	if axis < 0 {
		lo, hi := minMax(w)
		return passes.ComputeEncoding(lo, hi, dt, true)
	}
	inner, dim := graph.Numel(t.Shape[axis+1:]), t.Shape[axis]
	amax := make([]float64, dim)
	for i, v := range w {
		c := (i / inner) % dim
		amax[c] = math.Max(amax[c], math.Abs(float64(v)))
	}
	enc := &passes.Encoding{DType: dt, Axis: axis}
	for _, a := range amax {
		e, err := passes.ComputeEncoding(float32(-a), float32(a), dt, true)
		if err != nil {
			return nil, err
		}
		enc.Scale = append(enc.Scale, e.Scale[0])
		enc.ZeroPoint = append(enc.ZeroPoint, e.ZeroPoint[0])
	}
	return enc, nil
}

func minMax(v []float32) (float32, float32) {
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// calibrate runs every sample through the float model, feeding the observed
// tensors to their observers, once per observer pass.
func calibrate(ctx context.Context, m *graph.Model, src dataset.Source, names []string, opt Options, means *channelMeans) (map[string][2]float32, error) {
	obs := map[string]calib.Observer{}
	passesNeeded := 1
	for _, n := range names {
		o, err := calib.New(opt.Observer)
		if err != nil {
			return nil, err
		}
		obs[n] = o
		passesNeeded = max(passesNeeded, o.Passes())
	}
	pass := 0
	last := passesNeeded - 1
	s, err := kernels.NewSession(m, kernels.Options{Threads: opt.Threads, Tap: func(name string, t *graph.Tensor) {
		if o, ok := obs[name]; ok && t.DType == graph.Float {
			o.Observe(pass, t.Float32s())
		}
		if means != nil && pass == last {
			means.observe(name, t)
		}
	}})
	if err != nil {
		return nil, err
	}
	for pass = 0; pass < passesNeeded; pass++ {
		n := src.Len()
		if pass == 0 && passesNeeded > 1 {
			// Histogram observers only need a range to fix their bins: the first
			// tenth of the samples (at least 8) sets it; the full pass counts all.
			n = min(src.Len(), max(8, (src.Len()+9)/10))
		}
		for i := 0; i < n; i++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			smp, err := src.Sample(i)
			if err != nil {
				return nil, err
			}
			if _, err := s.Run(smp); err != nil {
				return nil, fmt.Errorf("calibration sample %d: %w", i, err)
			}
			if opt.Progress != nil {
				opt.Progress(pass, i+1, n)
			}
		}
	}
	out := map[string][2]float32{}
	for n, o := range obs {
		lo, hi, err := o.Range()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v (is it computed for these inputs?)", n, err)
		}
		out[n] = [2]float32{lo, hi}
	}
	return out, nil
}

// insertHook lets tests change the plan just before insertion.
var insertHook = func(*passes.QDQPlan) {}

// channelMeans accumulates, for the input of every Conv/Gemm with a quantized
// weight and a bias, the mean of each channel (axis 1) over the calibration data.
type channelMeans struct {
	byInput map[string]*meanAcc // input value name
	byNode  map[*graph.Node]string
}

type meanAcc struct {
	sum   []float64
	count float64
}

func newChannelMeans(g *graph.Graph, pl *plan) *channelMeans {
	cm := &channelMeans{byInput: map[string]*meanAcc{}, byNode: map[*graph.Node]string{}}
	for _, n := range g.Nodes {
		if n.OpType != "Conv" && n.OpType != "Gemm" {
			continue
		}
		w, b := n.Input(1), n.Input(2)
		if w == nil || b == nil {
			continue
		}
		if _, ok := pl.weights[w.Name]; !ok {
			continue
		}
		if in := n.Input(0); in != nil {
			cm.byNode[n] = in.Name
			cm.byInput[in.Name] = &meanAcc{}
		}
	}
	return cm
}

func (cm *channelMeans) observe(name string, t *graph.Tensor) {
	acc, ok := cm.byInput[name]
	if !ok || t.DType != graph.Float || t.Rank() < 2 {
		return
	}
	c := t.Shape[1]
	if acc.sum == nil {
		acc.sum = make([]float64, c)
	}
	if len(acc.sum) != c {
		return
	}
	outer, inner := t.Shape[0], graph.Numel(t.Shape[2:])
	d := t.Float32s()
	for o := 0; o < outer; o++ {
		for ch := 0; ch < c; ch++ {
			var s float64
			for _, v := range d[(o*c+ch)*inner : (o*c+ch+1)*inner] {
				s += float64(v)
			}
			acc.sum[ch] += s
		}
	}
	acc.count += float64(outer * inner)
}

// InputMean implements passes.InputMeans with the measured means.
func (cm *channelMeans) InputMean(n *graph.Node) ([]float32, bool) {
	acc, ok := cm.byInput[cm.byNode[n]]
	if !ok || acc.count == 0 {
		return nil, false
	}
	out := make([]float32, len(acc.sum))
	for i, s := range acc.sum {
		out[i] = float32(s / acc.count)
	}
	return out, true
}

// blockedEncoding is symmetric quantization with one scale per block of size
// values along axis.
func blockedEncoding(t *graph.Tensor, axis, size int, dt graph.DataType) (*passes.Encoding, error) {
	w, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	dim := t.Shape[axis]
	blocks := (dim + size - 1) / size
	shape := append([]int(nil), t.Shape...)
	shape[axis] = blocks
	enc := &passes.Encoding{DType: dt, Axis: axis, BlockSize: size, ScaleShape: shape,
		Scale: make([]float32, graph.Numel(shape)), ZeroPoint: make([]int64, graph.Numel(shape))}
	inner := graph.Numel(t.Shape[axis+1:])
	amax := make([]float64, len(enc.Scale))
	for i, v := range w {
		outer, a, in := i/(inner*dim), (i/inner)%dim, i%inner
		k := (outer*blocks+a/size)*inner + in
		amax[k] = math.Max(amax[k], math.Abs(float64(v)))
	}
	for k, a := range amax {
		e, err := passes.ComputeEncoding(float32(-a), float32(a), dt, true)
		if err != nil {
			return nil, err
		}
		enc.Scale[k], enc.ZeroPoint[k] = e.Scale[0], e.ZeroPoint[0]
	}
	return enc, nil
}

// runCalibration opens the dataset for the model's inputs and fills ranges for
// the tensors to observe (and the input means for bias correction).
func runCalibration(ctx context.Context, m *graph.Model, opt Options, pl *plan, toObserve []string, rep *Report, ranges map[string][2]float32) error {
	var inputs []dataset.Input
	for _, in := range m.Graph.Inputs {
		if in.Const != nil {
			continue
		}
		di := dataset.Input{Name: in.Name, DType: in.ElemType()}
		if dims, ok := in.Shape(); ok {
			for _, d := range dims {
				if d.Known && d.Param == "" {
					di.Dims = append(di.Dims, d.Value)
				} else {
					di.Dims = append(di.Dims, -1)
				}
			}
		}
		inputs = append(inputs, di)
	}
	src, err := dataset.Open(opt.Calib, inputs, opt.Dataset)
	if err != nil {
		return err
	}
	rep.Samples = src.Len()
	var means *channelMeans
	if opt.BiasCorrection {
		if opt.WeightPerTensor {
			return fmt.Errorf("bias correction needs per-channel weights (drop --per-tensor-weights)")
		}
		means = newChannelMeans(m.Graph, pl)
	}
	got, err := calibrate(ctx, m, src, toObserve, opt, means)
	if err != nil {
		return err
	}
	for k, v := range got {
		ranges[k] = v
	}
	if means != nil {
		c := &passes.Change{Pass: "bias-correction (empirical)"}
		if err := passes.CorrectBias(m, means, opt.WeightType.BitWidth(), c); err != nil {
			return err
		}
		rep.Passes = append(rep.Passes, c)
	}
	return nil
}

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
