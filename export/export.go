// Package export writes the quantized weights of a model onnxq converted in
// the per-layer layout NPU toolchains load (msModelSlim's quantized weights:
// <layer>.weight, .weight_scale, .weight_offset, .quant_bias, .deq_scale,
// .input_scale, .input_offset), as safetensors or .npy files, with a JSON
// description mapping every tensor to its quantization type.
package export

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Type is a tensor's quantization type in the description, in msModelSlim's
// words: W<weight bits>A<activation bits>, A16 meaning float activations.
type Type string

const (
	// W8A8 is int8 weights with activations quantized to 8 bits by a
	// calibrated (static) encoding.
	W8A8 Type = "W8A8"
	// W4A8 is the same with 4-bit weights.
	W4A8 Type = "W4A8"
	// W8A8Dynamic is int8 weights with activations quantized at run time.
	W8A8Dynamic Type = "W8A8_DYNAMIC"
	// W8A16 and W4A16 are weight-only: activations stay float.
	W8A16 Type = "W8A16"
	W4A16 Type = "W4A16"
	// Float is a tensor kept as the model has it.
	Float Type = "FLOAT"
)

// Tensor suffixes after the layer name, as msModelSlim names them.
const (
	SuffixWeight       = ".weight"
	SuffixWeightScale  = ".weight_scale"
	SuffixWeightOffset = ".weight_offset"
	SuffixInputScale   = ".input_scale"
	SuffixInputOffset  = ".input_offset"
	SuffixDeqScale     = ".deq_scale"
	SuffixQuantBias    = ".quant_bias"
	SuffixBias         = ".bias"
)

// Tensor is one exported tensor.
type Tensor struct {
	Name string
	Type Type
	Data *graph.Tensor
}

// Layer is one quantized MatMul, Gemm or Conv (or another quantized constant).
type Layer struct {
	// Name prefixes the layer's tensors (see layerName).
	Name string
	// Node is the ONNX node it was read from, Op that node's op type.
	Node, Op string
	Type     Type
	// GroupSize is the block size along K of per-group weights (0: per
	// channel); blocks that do not divide K leave a shorter last group.
	GroupSize int
}

// Export is everything one model exports.
type Export struct {
	Layers  []Layer
	Tensors []Tensor // sorted by name
	// QuantType is the type most layers have (msModelSlim's model_quant_type).
	QuantType Type
}

// Description is the JSON description: every tensor name to its type, plus
// model_quant_type and the group size of per-group weights (group_size when
// every such layer shares one, else <layer>.group_size).
func (e *Export) Description() map[string]any {
	d := map[string]any{"model_quant_type": string(e.QuantType)}
	for _, t := range e.Tensors {
		d[t.Name] = string(t.Type)
	}
	sizes := map[int]bool{}
	for _, l := range e.Layers {
		if l.GroupSize > 0 {
			sizes[l.GroupSize] = true
		}
	}
	for _, l := range e.Layers {
		switch {
		case l.GroupSize == 0:
		case len(sizes) == 1:
			d["group_size"] = l.GroupSize
		default:
			d[l.Name+".group_size"] = l.GroupSize
		}
	}
	return d
}

// Collect reads the quantized layers and float tensors of a model onnxq
// wrote. It fails on a model without quantized weights and on quantized
// layers the layout cannot express, naming the layer.
func Collect(m *graph.Model) (*Export, error) {
	c := &collector{g: m.Graph, used: map[*graph.Value]bool{}, names: map[string]string{}}
	if err := c.layers(); err != nil {
		return nil, err
	}
	if len(c.out.Layers) == 0 {
		return nil, fmt.Errorf("no quantized weights (no DequantizeLinear of an integer constant, MatMulNBits, MatMulInteger, MatMulIntegerToFloat or DynamicQuantizeMatMul): export reads models written by onnxq convert")
	}
	if err := c.floats(); err != nil {
		return nil, err
	}
	sort.Slice(c.out.Tensors, func(i, j int) bool { return c.out.Tensors[i].Name < c.out.Tensors[j].Name })
	count := map[Type]int{}
	for _, l := range c.out.Layers {
		count[l.Type]++
	}
	for t, n := range count {
		best := count[c.out.QuantType]
		if n > best || (n == best && t < c.out.QuantType) {
			c.out.QuantType = t
		}
	}
	return &c.out, nil
}

// collector walks the graph once per form of quantized layer.
type collector struct {
	g   *graph.Graph
	out Export
	// used marks initializers a layer exported (or that are encodings), so
	// they are not listed again as float tensors.
	used map[*graph.Value]bool
	// names maps each exported name to what it came from, to refuse clashes.
	names map[string]string
}

// add records a tensor under a unique name.
func (c *collector) add(name string, typ Type, t *graph.Tensor, from string) error {
	if prev, ok := c.names[name]; ok {
		return fmt.Errorf("tensor name %q is used twice (by %s and %s)", name, prev, from)
	}
	c.names[name] = from
	c.out.Tensors = append(c.out.Tensors, Tensor{Name: name, Type: typ, Data: t})
	return nil
}

// floats lists every float initializer no layer exported, as FLOAT under its
// own name (norm weights, embeddings left float, biases of float layers).
// Integer constants left over are graph plumbing (shapes, axes, indices),
// not weights; the scales and zero points of activation encodings are
// encodings, not weights.
func (c *collector) floats() error {
	for _, v := range c.g.Initializers {
		// Unread ones are dead: the float originals --keep-initializer-inputs
		// leaves beside the quantized copies the layers read.
		if c.used[v] || isEncodingParam(v) || len(v.Consumers) == 0 {
			continue
		}
		switch v.Const.DType {
		case graph.Float, graph.Float16, graph.BFloat16, graph.Double:
		default:
			continue
		}
		if err := c.add(v.Name, Float, v.Const, "float initializer "+v.Name); err != nil {
			return err
		}
	}
	return nil
}

// isEncodingParam reports whether v is read only as the scale or zero point
// of Q/DQ nodes.
func isEncodingParam(v *graph.Value) bool {
	if len(v.Consumers) == 0 {
		return false
	}
	for _, n := range v.Consumers {
		if n.OpType != "QuantizeLinear" && n.OpType != "DequantizeLinear" {
			return false
		}
		if n.Input(0) == v {
			return false
		}
	}
	return true
}

// layerName is the prefix of a layer's tensors: the weight's original name
// without ".weight" when it has that PyTorch-style suffix (so a model
// exported from PyTorch gets msModelSlim's own keys, e.g.
// model.layers.0.self_attn.q_proj), else the ONNX node's name, else the
// weight's name.
func layerName(weight string, n *graph.Node) string {
	if s, ok := strings.CutSuffix(weight, SuffixWeight); ok && s != "" {
		return s
	}
	if n != nil && n.Name != "" {
		return n.Name
	}
	return weight
}
