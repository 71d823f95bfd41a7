package overrides

import (
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"
)

// Setting is what the rules resolve for one tensor. Empty fields keep the
// command line's value; Sources lists the entries that set something, nearest
// first, for the report.
type Setting struct {
	DType       string // "float" keeps the tensor float
	Symmetric   *bool
	Observer    Observer
	Granularity string
	BlockSize   int
	Min, Max    []float64
	Axis        *int // from a tensor entry: the channel axis it expects
	// WeightRounding and WeightRange: how a weight's codes are chosen.
	WeightRounding, WeightRange string
	Sources                     []string
}

// Source joins the entries that gave the setting.
func (s Setting) Source() string { return strings.Join(s.Sources, ", ") }

// merge fills what s lacks from o, recording src when o contributed.
func (s *Setting) merge(o Setting, src string) {
	used := false
	str := func(dst *string, v string) {
		if *dst == "" && v != "" {
			*dst, used = v, true
		}
	}
	str(&s.DType, o.DType)
	str(&s.Granularity, o.Granularity)
	str(&s.Observer.Kind, o.Observer.Kind)
	str(&s.WeightRounding, o.WeightRounding)
	str(&s.WeightRange, o.WeightRange)
	if s.Symmetric == nil && o.Symmetric != nil {
		s.Symmetric, used = o.Symmetric, true
	}
	if s.BlockSize == 0 && o.BlockSize != 0 {
		s.BlockSize, used = o.BlockSize, true
	}
	if s.Observer.Percentile == 0 && o.Observer.Percentile != 0 {
		s.Observer.Percentile, used = o.Observer.Percentile, true
	}
	if s.Observer.Bins == 0 && o.Observer.Bins != 0 {
		s.Observer.Bins, used = o.Observer.Bins, true
	}
	if s.Observer.MovingAverage == 0 && o.Observer.MovingAverage != 0 {
		s.Observer.MovingAverage, used = o.Observer.MovingAverage, true
	}
	if s.Min == nil && s.Max == nil && (o.Min != nil || o.Max != nil) {
		s.Min, s.Max, used = o.Min, o.Max, true
	}
	if s.Axis == nil && o.Axis != nil {
		s.Axis, used = o.Axis, true
	}
	if used {
		s.Sources = append(s.Sources, src)
	}
}

// What a rule says about each kind of tensor.
func (r *Rule) activation() Setting {
	s := Setting{DType: r.ActivationDType, Symmetric: r.ActivationSymmetric}
	if r.Observer != nil {
		s.Observer = *r.Observer
	}
	return s
}

func (r *Rule) weight() Setting {
	return Setting{DType: r.WeightDType, Symmetric: r.WeightSymmetric, Granularity: r.WeightGranularity, BlockSize: r.WeightBlockSize, WeightRounding: r.WeightRounding, WeightRange: r.WeightRange}
}

func (r *Rule) bias() Setting { return Setting{DType: r.BiasDType} }

func (t *Tensor) setting() Setting {
	s := Setting{DType: t.DType, Symmetric: t.Symmetric, Granularity: t.Granularity, BlockSize: t.BlockSize, Min: t.Min, Max: t.Max, Axis: t.Axis}
	if t.Float {
		s.DType = "float"
	}
	if t.Observer != nil {
		s.Observer = *t.Observer
	}
	return s
}

func isGlob(k string) bool { return strings.ContainsAny(k, "*?[") }

// lookup finds the key for name among the entries that apply: an exact key
// always wins; otherwise the matching globs must agree (same would-be value), since JSON keys have no
// order to break ties with.
func lookup[T any](m map[string]T, name string, same func(a, b T) bool, applies func(T) bool) (string, bool, error) {
	if v, ok := m[name]; ok && applies(v) {
		return name, true, nil
	}
	var hits []string
	for k, v := range m {
		if isGlob(k) && applies(v) {
			if ok, _ := path.Match(k, name); ok {
				hits = append(hits, k)
			}
		}
	}
	if len(hits) == 0 {
		return "", false, nil
	}
	sort.Strings(hits)
	for _, h := range hits[1:] {
		if !same(m[hits[0]], m[h]) {
			return "", false, fmt.Errorf("%q matches both globs %q and %q, which set different things; add an exact entry", name, hits[0], h)
		}
	}
	return hits[0], true, nil
}

func sameRule(a, b *Rule) bool { return reflect.DeepEqual(a, b) }
func sameTensor(a, b *Tensor) bool {
	return a.Encoding == nil && b.Encoding == nil && reflect.DeepEqual(a, b)
}

// Activation resolves an activation's setting: tensor > node (its producer) >
// op type > defaults, field by field. A grouped Conv+Relu output belongs to
// both nodes: nodes lists them, nearest first. Tensor entries of kind weight
// (an AIMET param_encodings glob) do not apply.
func (f *File) Activation(name string, nodes, opTypes []string) (Setting, error) {
	return f.resolve(name, func(t *Tensor) bool { return t.Kind != KindWeight }, nodes, opTypes, (*Rule).activation)
}

// Weight resolves a weight's setting: tensor > node (its consumer) > op type >
// defaults. Tensor entries of kind activation do not apply.
func (f *File) Weight(name, node, opType string) (Setting, error) {
	return f.resolve(name, func(t *Tensor) bool { return t.Kind != KindActivation }, []string{node}, []string{opType}, (*Rule).weight)
}

// Bias resolves the type of a compute node's bias: tensor > node > op type >
// defaults. Only tensor entries that give a bias type (int32 or float, not of
// kind activation) apply.
func (f *File) Bias(name, node, opType string) (Setting, error) {
	return f.resolve(name, func(t *Tensor) bool {
		return t.Kind != KindActivation && (t.DType == "int32" || t.DType == "float" || t.Float)
	}, []string{node}, []string{opType}, (*Rule).bias)
}

func (f *File) resolve(name string, applies func(*Tensor) bool, nodes, opTypes []string, pick func(*Rule) Setting) (Setting, error) {
	var s Setting
	if f == nil {
		return s, nil
	}
	if name != "" {
		k, ok, err := lookup(f.Tensors, name, sameTensor, applies)
		if err != nil {
			return s, err
		}
		if ok {
			s.merge(f.Tensors[k].setting(), fmt.Sprintf("tensors[%q]", k))
		}
	}
	for _, node := range nodes {
		if node == "" {
			continue
		}
		k, ok, err := lookup(f.Nodes, node, sameRule, func(*Rule) bool { return true })
		if err != nil {
			return s, err
		}
		if ok {
			s.merge(pick(f.Nodes[k]), fmt.Sprintf("nodes[%q]", k))
		}
	}
	for _, op := range opTypes {
		if r, ok := f.OpTypes[op]; ok && op != "" {
			s.merge(pick(r), fmt.Sprintf("op_types[%q]", op))
		}
	}
	if f.Defaults != nil {
		s.merge(pick(f.Defaults), "defaults")
	}
	return s, nil
}

// Skipped says whether a node is left entirely in float, and by which entry.
func (f *File) Skipped(node, opType string) (string, bool) {
	if f == nil || f.Skip == nil {
		return "", false
	}
	for i, p := range f.Skip.Nodes {
		if ok, _ := path.Match(p, node); ok || p == node {
			return fmt.Sprintf("skip.nodes[%d]", i), true
		}
	}
	for i, t := range f.Skip.OpTypes {
		if t == opType {
			return fmt.Sprintf("skip.op_types[%d]", i), true
		}
	}
	return "", false
}

// Unmatched checks every name, glob and op type against the model: an exact
// name the model lacks is an error naming the three closest names (a warning
// with allowMissing); a glob or op type that matches nothing is a warning.
func (f *File) Unmatched(tensors, nodes, opTypes []string, allowMissing bool) (warnings []string, err error) {
	if f == nil {
		return nil, nil
	}
	check := func(key, where string, names []string) error {
		if isGlob(key) {
			for _, n := range names {
				if ok, _ := path.Match(key, n); ok {
					return nil
				}
			}
			warnings = append(warnings, fmt.Sprintf("%s: the glob %q matches nothing in the model", where, key))
			return nil
		}
		for _, n := range names {
			if n == key {
				return nil
			}
		}
		msg := fmt.Sprintf("%s: the model has no %q (closest: %s)", where, key, strings.Join(Closest(key, names, 3), ", "))
		if allowMissing {
			warnings = append(warnings, msg)
			return nil
		}
		return fmt.Errorf("%s", msg)
	}
	for _, k := range sortedNames(f.Tensors) {
		if err := check(k, fmt.Sprintf("tensors[%q]", k), tensors); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedNames(f.Nodes) {
		if err := check(k, fmt.Sprintf("nodes[%q]", k), nodes); err != nil {
			return nil, err
		}
	}
	if f.Skip != nil {
		for i, k := range f.Skip.Nodes {
			if err := check(k, fmt.Sprintf("skip.nodes[%d]", i), nodes); err != nil {
				return nil, err
			}
		}
	}
	has := map[string]bool{}
	for _, t := range opTypes {
		has[t] = true
	}
	for _, k := range sortedNames(f.OpTypes) {
		if !has[k] {
			warnings = append(warnings, fmt.Sprintf("op_types[%q]: the model has no %s node", k, k))
		}
	}
	if f.Skip != nil {
		for i, k := range f.Skip.OpTypes {
			if !has[k] {
				warnings = append(warnings, fmt.Sprintf("skip.op_types[%d]: the model has no %s node", i, k))
			}
		}
	}
	return warnings, nil
}

// Closest returns up to n names nearest to s by edit distance, then name.
func Closest(s string, names []string, n int) []string {
	type cand struct {
		name string
		d    int
	}
	cs := make([]cand, 0, len(names))
	for _, name := range names {
		cs = append(cs, cand{name, editDistance(s, name)})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, fmt.Sprintf("%q", cs[i].name))
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// editDistance is the Levenshtein distance over bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// DTypes lists every quantized type the file can ask for (the converter picks
// the opset from them: 4- and 16-bit types need opset 21).
func (f *File) DTypes() []string {
	if f == nil {
		return nil
	}
	var out []string
	add := func(r *Rule) {
		if r != nil {
			out = append(out, r.ActivationDType, r.WeightDType)
		}
	}
	add(f.Defaults)
	for _, k := range sortedNames(f.OpTypes) {
		add(f.OpTypes[k])
	}
	for _, k := range sortedNames(f.Nodes) {
		add(f.Nodes[k])
	}
	for _, k := range f.Names() {
		t := f.Tensors[k]
		out = append(out, t.DType)
		if t.Encoding != nil {
			out = append(out, t.Encoding.DType)
		}
	}
	return out
}

// WeightKeys lists the keys a rule sets that only a node with weights (Conv,
// ConvTranspose, Gemm, MatMul) can use.
func (r *Rule) WeightKeys() []string {
	var out []string
	if r.WeightDType != "" {
		out = append(out, "weight_dtype")
	}
	if r.WeightSymmetric != nil {
		out = append(out, "weight_symmetric")
	}
	if r.WeightGranularity != "" {
		out = append(out, "weight_granularity")
	}
	if r.WeightBlockSize != 0 {
		out = append(out, "weight_block_size")
	}
	if r.BiasDType != "" {
		out = append(out, "bias_dtype")
	}
	if r.WeightRounding != "" {
		out = append(out, "weight_rounding")
	}
	if r.WeightRange != "" {
		out = append(out, "weight_range")
	}
	if r.SmoothQuant != nil {
		out = append(out, "smooth_quant")
	}
	return out
}
