package converter

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/passes"
)

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

// keepFloatActivations drops activations from the plan for reasons found
// after planning (a range the observer could not give).
func (p *plan) keepFloatActivations(reasons map[string]string, rep *Report) {
	if len(reasons) == 0 {
		return
	}
	obs := p.observe[:0]
	for _, n := range p.observe {
		if _, ok := reasons[n]; !ok {
			obs = append(obs, n)
		}
	}
	p.observe = obs
	for _, n := range sortedKeys(reasons) {
		rep.FloatTensors = append(rep.FloatTensors, FloatTensor{Name: n, Reason: reasons[n]})
	}
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

// plan decides which tensors to observe, which share encodings, and which weights
// and biases to quantize.
type plan struct {
	observe  []string          // activation tensors calibrated by observers
	shared   map[string]string // tensor -> the tensor whose encoding it shares
	weights  map[string]int    // weight initializer -> its output-channel axis (-1: it has none)
	blocked  map[string]int    // MatMul/Gemm weight -> its reduction axis, for blocked quantization
	tables   map[string]bool   // Gather tables (embeddings), weights only where a rule types them
	biases   map[string][2]string
	floatOps []FloatNode
	// floatTensors are tensors the plan keeps float by itself (attention masks
	// and the scores they flow into), with the reason.
	floatTensors []FloatTensor
	// ortFloat are the nodes ONNX Runtime will run in float (ort runtimes).
	ortFloat map[*graph.Node]bool
	// note is a warning about the placement for the report.
	note string
}

// quantizable types: float32 and the half types (computed in float32 by the
// executor, Q/DQ scales in the tensor's type).
func quantizable(dt graph.DataType) bool {
	return dt == graph.Float || dt == graph.Float16 || dt == graph.BFloat16
}

func isFloatTensor(v *graph.Value) bool {
	return v != nil && v.Const == nil && (quantizable(v.ElemType()) || v.ElemType() == graph.Undefined)
}

// makePlan places Q/DQ for the runtime. For ONNX Runtime without VNNI it
// also chooses, by its latency model, the nodes to run in float (ortPlace).
func makePlan(m *graph.Model, runtime Runtime) *plan {
	if runtime == RuntimeORT {
		return ortPlace(m)
	}
	return buildPlan(m, runtime, nil)
}

// buildPlan places Q/DQ with the given nodes kept in float (ONNX Runtime
// placements only; nil for none).
func buildPlan(m *graph.Model, runtime Runtime, floatNodes map[*graph.Node]bool) *plan {
	g := m.Graph
	p := &plan{shared: map[string]string{}, weights: map[string]int{}, blocked: map[string]int{}, biases: map[string][2]string{}}
	want := map[string]bool{}
	order, _ := g.TopoOrder()
	masks := findMasks(order)
	floatReason := map[string]string{}
	for name, origin := range masks {
		floatReason[name] = "attention mask path (" + origin + "): kept float up to the Softmax"
	}
	for name, origin := range scoresIntoMasks(g, order, masks) {
		floatReason[name] = "scores that only meet the attention mask (" + origin + "), in float: no Q/DQ"
	}
	keptMask := map[string]bool{}
	keepMask := func(v *graph.Value) {
		if v != nil && floatReason[v.Name] != "" && !keptMask[v.Name] {
			keptMask[v.Name] = true
			p.floatTensors = append(p.floatTensors, FloatTensor{Name: v.Name, Reason: floatReason[v.Name]})
		}
	}
	add := func(v *graph.Value) {
		if v != nil && floatReason[v.Name] != "" {
			keepMask(v)
			return
		}
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
		return (compute || v.Producer.OpType == "Add") && passes.GroupedActivations[v.Consumers[0].OpType]
	}
	// tail: every output of n is a model output. ONNX Runtime returns them
	// in float, so requantizing there only adds error and a DequantizeLinear;
	// only a Conv or a residual Add (and the activation fused into one) need
	// the Q to run as QLinearConv / QLinearAdd.
	tail := func(n *graph.Node) bool {
		if !runtime.ort() || len(n.Outputs) == 0 {
			return false
		}
		for _, o := range n.Outputs {
			if o != nil && !g.IsOutput(o) {
				return false
			}
		}
		if n.OpType == "Conv" || n.OpType == "Add" {
			return false
		}
		return !(passes.GroupedActivations[n.OpType] && grouped(n.Input(0)))
	}
	ortFloat := map[*graph.Node]bool{} // nodes ONNX Runtime will run in float (the ort runtime only)
	p.ortFloat = ortFloat
	for _, n := range order {
		if !graph.IsStandardDomain(n.Domain) {
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, customReason(n)})
			continue
		}
		constOperand := (n.OpType == "Add" || n.OpType == "Mul") && (n.Input(0) == nil || n.Input(0).Const != nil || n.Input(1) == nil || n.Input(1).Const != nil)
		ortReason := ""
		if runtime.ort() {
			// An activation fuses into a quantized Conv or residual Add only,
			// not into one ONNX Runtime computes in float.
			in := n.Input(0)
			fused := grouped(in) && !ortFloat[in.Producer] && !(in.Producer.OpType == "Add" && (in.Producer.Input(0).Const != nil || in.Producer.Input(1).Const != nil))
			floatIn, allFloatIn := false, true
			for _, v := range n.Inputs {
				if v == nil || v.Const != nil {
					continue
				}
				f := v.Producer != nil && ortFloat[v.Producer]
				floatIn = floatIn || f
				allFloatIn = allFloatIn && f
			}
			ortReason = ortFloatReason(n, fused, floatIn, allFloatIn && floatIn, floatNodes[n])
			if ortReason == "" && tail(n) && n.OpType != "MatMul" && n.OpType != "Gemm" && quantizedOps[n.OpType] {
				ortReason = "ONNX Runtime (--runtime ort): returns a model output in float, no requantization before it"
			}
		}
		// What ONNX Runtime computes in float: Sigmoid is the exception,
		// DQ -> Sigmoid -> Q becomes its table-lookup QLinearSigmoid.
		ortFloat[n] = constOperand || ortReason != "" || (floatOps[n.OpType] != "" && n.OpType != "Sigmoid")
		if runtime.ort() && (passes.PassThroughOps[n.OpType] || movesActivation(n)) {
			// Moving a float value keeps it float.
			in := n.Input(0)
			ortFloat[n] = in != nil && in.Producer != nil && ortFloat[in.Producer]
		}
		switch {
		case constOperand:
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, "constant operand: computed in float between DQ and Q"})
		case floatOps[n.OpType] != "":
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, floatOps[n.OpType]})
		case ortReason != "":
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, ortReason})
		case quantizedOps[n.OpType] && n.Output() != nil && masks[n.Output().Name] != "":
			// Scores plus a mask: computed in float, so its inputs need no Q/DQ
			// for it either.
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, "attention mask path (" + masks[n.Output().Name] + ")"})
			for _, v := range append(append([]*graph.Value(nil), n.Inputs...), n.Outputs...) {
				keepMask(v)
			}
		case quantizedOps[n.OpType]:
			for i, in := range n.Inputs {
				if in == nil {
					continue
				}
				if _, isW := weightOps[n.OpType]; isW && i > 0 {
					continue // weights and bias are handled below
				}
				if passes.GroupedActivations[n.OpType] && grouped(in) {
					continue
				}
				if n.OpType == "Resize" || n.OpType == "Clip" {
					if i > 0 {
						continue // roi, scales, bounds
					}
				}
				add(in)
			}
			// MatMul and Gemm that give a model output run with a float
			// result in ONNX Runtime (MatMulIntegerToFloat, QGemm).
			if out := n.Output(); out != nil && !grouped(out) && !tail(n) {
				add(out)
			}
			if axis, isW := weightOps[n.OpType]; isW {
				w := n.Input(1)
				if w == nil || w.Const == nil || !quantizable(w.Const.DType) {
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
				if w.Const.Rank() < 2 {
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
		case passes.PassThroughOps[n.OpType] || movesActivation(n):
			// Output shares the input's encoding, when the input is quantized
			// or itself passed on (a Reshape -> Transpose -> Reshape channel
			// shuffle): every tensor of the chain then carries the same
			// scale, so runtimes run the whole chain in integers (ONNX
			// Runtime drops the Q/DQ pairs around such ops).
			if in := n.Input(0); in != nil && (want[in.Name] || p.shared[in.Name] != "") {
				for _, o := range n.Outputs {
					if isFloatTensor(o) && !(runtime.ort() && g.IsOutput(o)) {
						p.shared[o.Name] = rootOf(p.shared, in.Name)
					}
				}
			}
		case n.OpType == "Constant" || n.OpType == "Shape" || n.OpType == "Cast":
		case planTable(p, n): // an embedding lookup: its table is a weight
		case len(n.Subgraphs()) > 0:
			p.floatOps = append(p.floatOps, FloatNode{n.String(), n.OpType, fmt.Sprintf("control flow: its subgraphs (%d nodes) run in float, not quantized", subgraphNodes(n))})
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
	floatHalfConcats(m, p)
	return p
}

// movesActivation reports a Gather that selects from an activation (a
// channel split, a token pick): its output holds input values only, so it
// shares the input's encoding like the movement ops. A Gather from a
// constant table is an embedding lookup (planTable).
func movesActivation(n *graph.Node) bool {
	return n.OpType == "Gather" && isFloatTensor(n.Input(0))
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

// customReason says why a node of another domain stays float, and for ONNX
// Runtime's fused transformer ops that carry constant weights (which no
// MatMul reads, so no weight rule quantizes them) says so.
func customReason(n *graph.Node) string {
	reason := "custom domain " + n.Domain
	if n.Domain != "com.microsoft" {
		return reason
	}
	constIn := func(i int) bool { in := n.Input(i); return in != nil && in.Const != nil }
	switch {
	case n.OpType == "Attention" && constIn(1):
		return reason + ": its fused QKV projection weight is an input of the op, not of a MatMul, and stays float"
	case n.OpType == "EmbedLayerNormalization" && constIn(2):
		return reason + ": its embedding tables are inputs of the op, not of a Gather, and stay float"
	}
	return reason
}

// subgraphNodes counts the nodes in n's subgraphs, nested ones included.
func subgraphNodes(n *graph.Node) int {
	var count func(gs []*onnxpb.GraphProto) int
	count = func(gs []*onnxpb.GraphProto) int {
		c := 0
		for _, g := range gs {
			c += len(g.Node)
			for _, sn := range g.Node {
				for _, a := range sn.Attribute {
					if a.G != nil {
						c += count([]*onnxpb.GraphProto{a.G})
					}
					c += count(a.Graphs)
				}
			}
		}
		return c
	}
	return count(n.Subgraphs())
}
