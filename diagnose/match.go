package diagnose

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// Metadata keys onnxq writes into a converted model so that a later compare
// against the original float model matches tensors the float passes renamed
// (BN folding moves a BatchNormalization's output onto its Conv) and skips
// tensors whose values the passes changed on purpose (cross-layer
// equalization rescales the channels between two layers).
const (
	MetaRenamed = "onnxq.renamed" // JSON object: original name -> name in this model
	MetaChanged = "onnxq.changed" // JSON list: names whose values differ by design
)

// Pair is a reference tensor and its counterpart in the test model.
type Pair struct {
	Ref, Test string
	// Node and OpType produce Ref in the reference model; Index is the
	// producer's position in its topological order (-1 for graph inputs).
	Node, OpType string
	Index        int
	Output       bool // a graph output
	Quant        *QuantInfo
}

// QuantInfo is the quantization the test model applies to the tensor.
type QuantInfo struct {
	DType      graph.DataType
	Scale      float64 // per-tensor scale (the first one for per-channel)
	ZeroPoint  int64
	PerChannel bool
	// Lo and Hi are the representable range (per-tensor only).
	Lo, Hi float64
}

// Bits is the quantized type's width.
func (q *QuantInfo) Bits() int { return q.DType.BitWidth() }

// Match lists the float tensors of ref that have a counterpart in test: the
// graph outputs (by name, or by position when no name matches), and with
// layerwise every other computed tensor found by name, through the onnxq
// rename metadata, and through a QuantizeLinear/DequantizeLinear pair in
// test (the dequantized value is the counterpart: it is what the next layer
// reads). Pairs come in ref's topological order, outputs last.
func Match(ref, test *graph.Model, layerwise bool) ([]Pair, error) {
	if err := sameInputs(ref, test); err != nil {
		return nil, err
	}
	renamed, changed, err := passMetadata(test)
	if err != nil {
		return nil, err
	}
	renameTargets := map[string]bool{}
	for from, to := range renamed {
		if from != to {
			renameTargets[to] = true
		}
	}
	var out []Pair
	nodes, err := ref.Graph.TopoOrder()
	if err != nil {
		return nil, fmt.Errorf("reference model: %v", err)
	}
	isOutput := map[string]bool{}
	for _, v := range ref.Graph.Outputs {
		isOutput[v.Name] = true
	}
	if layerwise {
		for i, n := range nodes {
			for _, v := range n.Outputs {
				if v == nil || isOutput[v.Name] || !mayBeFloat(v) || n.OpType == "Constant" {
					continue
				}
				name := v.Name
				if to, ok := renamed[name]; ok {
					name = to
				} else if renameTargets[name] {
					continue // the same name carries other values in test
				}
				if changed[name] {
					continue // values changed by design (equalized channels)
				}
				tv := test.Graph.Value(name)
				if tv == nil || tv.Const != nil {
					continue
				}
				p := Pair{Ref: v.Name, Test: tv.Name, Node: n.Name, OpType: n.OpType, Index: i}
				if dq, q := dequantized(tv); dq != nil {
					p.Test, p.Quant = dq.Name, q
				}
				out = append(out, p)
			}
		}
	}
	index := map[string]int{}
	for i, n := range nodes {
		for _, v := range n.Outputs {
			if v != nil {
				index[v.Name] = i
			}
		}
	}
	byName := true
	for _, v := range ref.Graph.Outputs {
		if test.Graph.Value(v.Name) == nil || !test.Graph.IsOutput(test.Graph.Value(v.Name)) {
			byName = false
		}
	}
	if !byName && len(ref.Graph.Outputs) != len(test.Graph.Outputs) {
		return nil, fmt.Errorf("the models' outputs differ: %s against %s, neither by name nor by count", valueNames(ref.Graph.Outputs), valueNames(test.Graph.Outputs))
	}
	for i, v := range ref.Graph.Outputs {
		tv := test.Graph.Outputs[min(i, len(test.Graph.Outputs)-1)]
		if byName {
			tv = test.Graph.Value(v.Name)
		}
		p := Pair{Ref: v.Name, Test: tv.Name, Output: true, Index: index[v.Name]}
		if v.Producer != nil {
			p.Node, p.OpType = v.Producer.Name, v.Producer.OpType
		}
		out = append(out, p)
	}
	return out, nil
}

// sameInputs checks the models take the same inputs (names and types).
func sameInputs(ref, test *graph.Model) error {
	need := func(m *graph.Model) map[string]graph.DataType {
		out := map[string]graph.DataType{}
		for _, v := range m.Graph.Inputs {
			if v.Const == nil {
				out[v.Name] = v.ElemType()
			}
		}
		return out
	}
	a, b := need(ref), need(test)
	for name, dt := range a {
		got, ok := b[name]
		if !ok {
			return fmt.Errorf("the models have different inputs: %q is an input of the first model only (first: %s; second: %s)", name, keys(a), keys(b))
		}
		if dt != got && dt != graph.Undefined && got != graph.Undefined {
			return fmt.Errorf("the models' input %q differs in type: %s against %s", name, dt.Short(), got.Short())
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			return fmt.Errorf("the models have different inputs: %q is an input of the second model only (first: %s; second: %s)", name, keys(a), keys(b))
		}
	}
	return nil
}

// mayBeFloat is false for values declared with a non-float type (shapes,
// indices, masks); undeclared ones are checked when they arrive.
func mayBeFloat(v *graph.Value) bool {
	dt := v.ElemType()
	return dt == graph.Undefined || dt == graph.Float || dt == graph.Float16 || dt == graph.BFloat16
}

// dequantized follows v through QuantizeLinear then DequantizeLinear.
func dequantized(v *graph.Value) (*graph.Value, *QuantInfo) {
	for _, q := range v.Consumers {
		if q.OpType != "QuantizeLinear" || !graph.IsStandardDomain(q.Domain) || q.Input(0) != v || q.Output() == nil {
			continue
		}
		for _, dq := range q.Output().Consumers {
			if dq.OpType == "DequantizeLinear" && graph.IsStandardDomain(dq.Domain) && dq.Input(0) == q.Output() && dq.Output() != nil {
				return dq.Output(), quantInfo(q)
			}
		}
	}
	return nil, nil
}

// quantInfo reads a QuantizeLinear's scale and zero point when they are constants.
func quantInfo(q *graph.Node) *QuantInfo {
	s := q.Input(1)
	if s == nil || s.Const == nil {
		return nil
	}
	scales, err := s.Const.AsFloat32()
	if err != nil || len(scales) == 0 {
		return nil
	}
	info := &QuantInfo{DType: graph.Uint8, Scale: float64(scales[0]), PerChannel: len(scales) > 1}
	if z := q.Input(2); z != nil && z.Const != nil {
		info.DType = z.Const.DType
		if zs := kernels.LoadInt64s(z.Const); len(zs) > 0 {
			info.ZeroPoint = zs[0]
		}
	}
	if lo, hi, ok := kernels.QuantRange(info.DType); ok && !info.PerChannel {
		info.Lo = (lo - float64(info.ZeroPoint)) * info.Scale
		info.Hi = (hi - float64(info.ZeroPoint)) * info.Scale
	}
	return info
}

// passMetadata reads the rename and changed-tensor records onnxq writes.
func passMetadata(m *graph.Model) (map[string]string, map[string]bool, error) {
	renamed, changed := map[string]string{}, map[string]bool{}
	for _, p := range m.Proto.GetMetadataProps() {
		switch p.GetKey() {
		case MetaRenamed:
			if err := json.Unmarshal([]byte(p.GetValue()), &renamed); err != nil {
				return nil, nil, fmt.Errorf("metadata %s: %v", MetaRenamed, err)
			}
		case MetaChanged:
			var list []string
			if err := json.Unmarshal([]byte(p.GetValue()), &list); err != nil {
				return nil, nil, fmt.Errorf("metadata %s: %v", MetaChanged, err)
			}
			for _, n := range list {
				changed[n] = true
			}
		}
	}
	return renamed, changed, nil
}

func valueNames(vs []*graph.Value) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += ", "
		}
		s += v.Name
	}
	return s
}

func keys(m map[string]graph.DataType) string {
	names := slices.Sorted(maps.Keys(m))
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}
