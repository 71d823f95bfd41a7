package converter

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/onnxq/onnxq/overrides"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
)

// Weight formats (Options.WeightFormat).
const (
	// FormatONNX writes quantized weights as DequantizeLinear of an integer
	// initializer (blocked ones with block_size, opset 21): standard ONNX.
	FormatONNX = "onnx"
	// FormatMatMulNBits rewrites each quantized 2-D MatMul weight into ONNX
	// Runtime's com.microsoft::MatMulNBits (packed 4/8-bit weights).
	FormatMatMulNBits = "matmulnbits"
	// FormatORT is ONNX Runtime's contrib format for dynamic quantization
	// (com.microsoft::DynamicQuantizeMatMul).
	FormatORT = "ort"
)

// checkWeightFormat rejects option combinations the weight formats cannot
// write, before any work is done.
func checkWeightFormat(opt Options) error {
	if b := opt.WeightBlockSize; b > 0 && bits.OnesCount(uint(b)) != 1 {
		return fmt.Errorf("weight block size %d is not a power of two", b)
	}
	switch opt.WeightFormat {
	case "", FormatONNX:
	case FormatMatMulNBits:
		if opt.Dynamic {
			return fmt.Errorf("weight format matmulnbits is weight-only; dynamic quantization writes onnx or ort")
		}
		if w := opt.WeightType; w != graph.Undefined && w.BitWidth() != 4 && w.BitWidth() != 8 {
			return fmt.Errorf("weight format matmulnbits packs 4- or 8-bit weights, not %s", w.Short())
		}
		if b := opt.WeightBlockSize; b > 0 && b < 16 {
			return fmt.Errorf("weight block size %d: MatMulNBits needs at least 16", b)
		}
	case FormatORT:
		if !opt.Dynamic {
			return fmt.Errorf("weight format ort is for dynamic quantization (--dynamic); weight-only ORT weights are matmulnbits")
		}
	default:
		return fmt.Errorf("weight format %q: onnx, matmulnbits or ort", opt.WeightFormat)
	}
	if opt.AccuracyLevel < 0 || opt.AccuracyLevel > 4 {
		return fmt.Errorf("accuracy level %d is not in 0..4", opt.AccuracyLevel)
	}
	if opt.AccuracyLevel > 0 && opt.WeightFormat != FormatMatMulNBits {
		return fmt.Errorf("accuracy level is a MatMulNBits attribute: it needs weight format matmulnbits")
	}
	return nil
}

// checkBlockSizes refuses a block size (--weight-block-size, or a rule for
// many weights: defaults, op types, globs) larger than the reduction axis K
// of every weight it applies to: no weight would get a second group, so it
// would do nothing but look like it did. Beside weights it fits, a weight
// with a smaller K is one group per column (per channel), as ONNX's
// block_size gives; the report warns how many.
func checkBlockSizes(g *graph.Graph, pl *plan, st *settings, opt Options, rep *Report) error {
	fits, maxK, block := 0, 0, 0
	var small []string
	for _, name := range sortedKeys(pl.weights) {
		ax, ok := pl.blocked[name]
		c := st.weight[name]
		b := c.BlockSize
		switch {
		case !ok || namedBlock(opt.Overrides, g.Value(name)):
			continue // not blockable, or checked by name in weightEncodingFor
		case b > 0 && (c.Granularity == "" || c.Granularity == overrides.PerBlock):
		case c.Granularity == "" && opt.WeightBlockSize > 0:
			b = opt.WeightBlockSize
		default:
			continue
		}
		k := g.Value(name).Const.Shape[ax]
		maxK = max(maxK, k)
		if k >= b {
			fits++
		} else {
			small, block = append(small, name), b
		}
	}
	switch {
	case fits == 0 && len(small) > 0:
		return fmt.Errorf("weight block size %d is larger than K of every MatMul/Gemm weight (the largest K is %d): use a block of at most %d, or per-channel weights (no block size)", block, maxK, maxK)
	case len(small) > 0:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d weight(s) have K below the block size %d (e.g. %q): each is one group per column, i.e. per channel", len(small), block, small[0]))
	}
	return nil
}

// namedBlock reports whether the overrides give w's block size by name:
// a tensor entry for it or a node entry for the node that reads it.
func namedBlock(f *overrides.File, w *graph.Value) bool {
	if f == nil || w == nil {
		return false
	}
	if t := f.Tensors[w.Name]; t != nil && t.BlockSize > 0 {
		return true
	}
	node, _ := computeConsumer(w)
	r := f.Nodes[node]
	return r != nil && r.WeightBlockSize > 0
}

// checkWeightRules refuses an overrides rule that names a node (not a glob)
// to set its weight when that node's weight is not a constant: a weight that
// is a graph input or computed is an activation, which no weight type,
// block size or MatMulNBits packing can reach, so the rule would be ignored.
func checkWeightRules(g *graph.Graph, f *overrides.File, format string) error {
	if f == nil {
		return nil
	}
	for _, key := range sortedKeys(f.Nodes) {
		r := f.Nodes[key]
		if strings.ContainsAny(key, "*?[") || r == nil || (r.WeightDType == "" || r.WeightDType == "float") && r.WeightGranularity == "" && r.WeightBlockSize == 0 {
			continue
		}
		for _, n := range g.Nodes {
			if n.Name != key {
				continue
			}
			if _, ok := weightOps[n.OpType]; !ok {
				continue
			}
			if w := n.Input(1); w != nil && w.Const == nil {
				what := "a computed tensor"
				if g.IsInput(w) {
					what = "a graph input"
				}
				also := ""
				if format == FormatMatMulNBits && n.OpType == "MatMul" {
					also = " or packed into MatMulNBits"
				}
				return fmt.Errorf("overrides: nodes[%q] sets a weight type, but %s %q reads %q, %s, not a constant weight: it cannot be quantized as a weight%s", key, n.OpType, n.Name, w.Name, what, also)
			}
		}
	}
	return nil
}

// rewriteWeightFormat turns the QDQ model into the asked weight format.
func rewriteWeightFormat(m *graph.Model, opt Options, rep *Report) error {
	var ch *passes.Change
	var err error
	switch {
	case opt.Dynamic:
		if opt.DynamicPerToken {
			ch, err = passes.ToDynamicPerToken(m, opt.WeightFormat == FormatORT)
		} else {
			ch, err = passes.ToDynamic(m, opt.WeightFormat == FormatORT)
		}
		rep.Dynamic = true
		// Run-time uint8 inputs meet these weights: ORT's u8s8 caveat.
		rep.U8S8 = rep.U8S8 || (err == nil && ch.Count > 0 && opt.WeightType == graph.Int8 && !opt.ReduceRange)
	case opt.WeightFormat == FormatMatMulNBits:
		ch, err = passes.ToMatMulNBits(m, opt.AccuracyLevel, true)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	rep.Passes = append(rep.Passes, ch)
	return nil
}

// tableLookup is the Gather that reads w as its table (an embedding), or nil.
func tableLookup(w *graph.Value) *graph.Node {
	for _, c := range w.Consumers {
		if c.OpType == "Gather" && graph.IsStandardDomain(c.Domain) && c.Input(0) == w {
			return c
		}
	}
	return nil
}

// planTable makes the constant float table of a Gather on axis 0 (an
// embedding [vocab, dim]) a weight like a MatMul's when a rule types it (see
// untypedTables): one scale per row (per token), blocks along the row for
// per_block. Rules reach it by
// the Gather's node name, the op type Gather or the table's name; a table a
// compute op also reads (a tied lm_head) keeps that op's axes.
func planTable(p *plan, n *graph.Node) bool {
	if n.OpType != "Gather" {
		return false
	}
	t := n.Input(0)
	if t == nil || t.Const == nil || t.Const.DType != graph.Float || t.Const.Rank() != 2 {
		return false
	}
	if ax, _ := n.AttrInt("axis", 0); ax != 0 {
		return false
	}
	if _, ok := p.weights[t.Name]; !ok {
		p.weights[t.Name] = 0
		p.blocked[t.Name] = 1
		if p.tables == nil {
			p.tables = map[string]bool{}
		}
		p.tables[t.Name] = true
	}
	return true
}

// untypedTables keeps float the Gather tables no rule gave a type: lookup
// tables hold embeddings but also RoPE's cos/sin caches, and the global
// weight type (int4 for W4A16) suits neither by default. The report says so.
func untypedTables(pl *plan, st *settings, rep *Report) {
	for _, name := range sortedKeys(pl.tables) {
		if _, ok := pl.weights[name]; !ok || typesTable(st.weight[name]) {
			continue
		}
		delete(pl.weights, name)
		delete(pl.blocked, name)
		rep.FloatTensors = append(rep.FloatTensors, FloatTensor{Name: name, Reason: "Gather table (embedding or lookup cache): float unless an overrides rule sets its type"})
	}
}

// typesTable reports whether a rule that names the table (a tensor, node or
// op-type entry, not the defaults) gives it a type: defaults that set only a
// symmetry, or types for every weight, must not quantize embeddings and RoPE
// caches by accident (uint4 asymmetric defaults did: stories260K 4.42 -> 7.42).
func typesTable(s overrides.Setting) bool {
	if s.DType == "" {
		return false
	}
	for _, src := range s.Sources {
		if src != "defaults" {
			return true
		}
	}
	return false
}
