package graph

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Model is a loaded ONNX model: its main graph as IR, everything else verbatim.
type Model struct {
	// Proto holds every ModelProto field outside the main graph (versions, opsets,
	// producer, metadata, functions, training info); its Graph field stays nil.
	Proto *onnxpb.ModelProto
	Graph *Graph
	// Dir is the folder external data locations are relative to.
	Dir string
}

// Graph is a computation graph: nodes in order, the values joining them, and the
// graph's inputs, outputs and constants.
type Graph struct {
	Nodes   []*Node
	Inputs  []*Value
	Outputs []*Value
	// Initializers in file order; each has Const set.
	Initializers []*Value
	// ValueInfo lists the values that carry a value_info entry, in file order.
	ValueInfo []*Value
	// Proto holds the GraphProto fields the IR does not model (name, doc string,
	// sparse initializers, quantization annotations, metadata); its node, initializer,
	// input, output and value_info lists stay empty.
	Proto *onnxpb.GraphProto

	model  *Model
	values map[string]*Value
}

// Value is a named tensor flowing through the graph: a graph input, a constant,
// or a node output.
type Value struct {
	Name string
	// Info is the value's ValueInfoProto (type, shape, doc string) when the model
	// declares one; nil otherwise.
	Info *onnxpb.ValueInfoProto
	// Const is the initializer data when the value is an initializer.
	Const *Tensor
	// Producer is the node that outputs the value; nil for inputs and initializers.
	Producer *Node
	// Consumers has one entry per input slot (and per subgraph) that reads the value.
	Consumers []*Node
	// Sparse marks a value defined by a sparse initializer (kept in Graph.Proto).
	Sparse bool
}

// Node is one operator call.
type Node struct {
	Name   string
	OpType string
	Domain string
	// Inputs and Outputs follow the operator's signature; a nil entry is an
	// omitted optional input or output.
	Inputs  []*Value
	Outputs []*Value
	Attrs   []*onnxpb.AttributeProto
	// Proto holds the NodeProto fields the IR does not model (doc string, overload,
	// metadata, device configurations) and whether name and domain were present.
	Proto *onnxpb.NodeProto

	// Implicit lists the outer values that this node's subgraphs read.
	Implicit []*Value
}

// Opset is an operator set import.
type Opset struct {
	Domain  string
	Version int64
}

// NewModel returns an empty model with the given opset imports and the current IR version.
func NewModel(opsets ...Opset) *Model {
	m := &Model{Proto: &onnxpb.ModelProto{IrVersion: proto.Int64(int64(onnxpb.Version_IR_VERSION))}}
	for _, o := range opsets {
		m.SetOpset(o.Domain, o.Version)
	}
	m.Graph = newGraph(m, &onnxpb.GraphProto{})
	return m
}

func newGraph(m *Model, p *onnxpb.GraphProto) *Graph {
	return &Graph{model: m, values: map[string]*Value{}, Proto: p}
}

// Model returns the model the graph belongs to.
func (g *Graph) Model() *Model { return g.model }

// IRVersion of the model file.
func (m *Model) IRVersion() int64 { return m.Proto.GetIrVersion() }

// Opsets returns the operator set imports in file order.
func (m *Model) Opsets() []Opset {
	out := make([]Opset, len(m.Proto.OpsetImport))
	for i, o := range m.Proto.OpsetImport {
		out[i] = Opset{o.GetDomain(), o.GetVersion()}
	}
	return out
}

// OpsetVersion is the imported version of a domain ("" and "ai.onnx" are the same), 0 if absent.
func (m *Model) OpsetVersion(domain string) int64 {
	for _, o := range m.Proto.OpsetImport {
		if sameDomain(o.GetDomain(), domain) {
			return o.GetVersion()
		}
	}
	return 0
}

// SetOpset sets (or adds) the imported version of a domain.
func (m *Model) SetOpset(domain string, version int64) {
	for _, o := range m.Proto.OpsetImport {
		if sameDomain(o.GetDomain(), domain) {
			o.Version = proto.Int64(version)
			return
		}
	}
	m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(domain), Version: proto.Int64(version)})
}

func sameDomain(a, b string) bool {
	if a == "ai.onnx" {
		a = ""
	}
	if b == "ai.onnx" {
		b = ""
	}
	return a == b
}

// IsStandardDomain reports whether a node domain is the default ONNX operator set.
func IsStandardDomain(d string) bool { return d == "" || d == "ai.onnx" }

// ---- values ----

// Value returns the value of that name, or nil.
func (g *Graph) Value(name string) *Value { return g.values[name] }

// Values returns every value of the graph, sorted by name.
func (g *Graph) Values() []*Value {
	out := make([]*Value, 0, len(g.values))
	for _, v := range g.values {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// value returns the named value, creating it if needed.
func (g *Graph) value(name string) *Value {
	if v, ok := g.values[name]; ok {
		return v
	}
	v := &Value{Name: name}
	g.values[name] = v
	return v
}

// UniqueName returns base if no value of the graph has that name, else base_1, base_2, ...
// (Value and node names are separate namespaces in ONNX.)
func (g *Graph) UniqueName(base string) string {
	if base == "" {
		base = "v"
	}
	if _, taken := g.values[base]; !taken {
		return base
	}
	for i := 1; ; i++ {
		n := base + "_" + strconv.Itoa(i)
		if _, taken := g.values[n]; !taken {
			return n
		}
	}
}

// NewValue adds a value with a fresh name derived from base.
func (g *Graph) NewValue(base string) *Value {
	return g.value(g.UniqueName(base))
}

// AddInput appends a graph input with a tensor type; dims < 0 are left unknown.
func (g *Graph) AddInput(name string, dt DataType, dims []int64) *Value {
	v := g.value(name)
	v.SetTensorType(dt, dims)
	g.Inputs = append(g.Inputs, v)
	return v
}

// AddOutput marks v as a graph output.
func (g *Graph) AddOutput(v *Value) { g.Outputs = append(g.Outputs, v) }

// AddInitializer adds a constant; the tensor takes the value's name.
func (g *Graph) AddInitializer(name string, t *Tensor) *Value {
	v := g.value(name)
	if t.Name != name { // no write to a tensor that models share (CloneShared)
		t.Name = name
	}
	if v.Const == nil {
		g.Initializers = append(g.Initializers, v)
	}
	v.Const = t
	return v
}

// RemoveInitializer drops the constant of v (the value itself stays while used).
func (g *Graph) RemoveInitializer(v *Value) {
	v.Const = nil
	g.Initializers = removeValue(g.Initializers, v)
	g.dropIfUnused(v)
}

// IsInput reports whether v is a graph input.
func (g *Graph) IsInput(v *Value) bool { return containsValue(g.Inputs, v) }

// IsOutput reports whether v is a graph output.
func (g *Graph) IsOutput(v *Value) bool { return containsValue(g.Outputs, v) }

// dropIfUnused forgets a value that nothing defines, reads or lists anymore.
func (g *Graph) dropIfUnused(v *Value) {
	if v.Producer != nil || v.Const != nil || v.Sparse || len(v.Consumers) > 0 || g.IsInput(v) || g.IsOutput(v) {
		return
	}
	if g.values[v.Name] == v {
		delete(g.values, v.Name)
	}
	g.ValueInfo = removeValue(g.ValueInfo, v)
}

// ElemType is the declared element type of a tensor value (Undefined when unknown).
func (v *Value) ElemType() DataType {
	if v.Const != nil {
		return v.Const.DType
	}
	if tt := v.Info.GetType().GetTensorType(); tt != nil {
		return DataType(tt.GetElemType())
	}
	return Undefined
}

// Dim is one dimension of a declared shape: a number, a symbol, or unknown.
type Dim struct {
	Value int64  // valid when Param == "" and Known
	Param string // symbolic name, e.g. "batch"
	Known bool   // false when neither a number nor a symbol is given
}

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Known:
		return strconv.FormatInt(d.Value, 10)
	}
	return "?"
}

// Shape is the declared shape of a tensor value; ok is false when the rank is unknown.
func (v *Value) Shape() (dims []Dim, ok bool) {
	if v.Const != nil {
		for _, d := range v.Const.Shape {
			dims = append(dims, Dim{Value: int64(d), Known: true})
		}
		return dims, true
	}
	tt := v.Info.GetType().GetTensorType()
	if tt == nil || tt.Shape == nil {
		return nil, false
	}
	for _, d := range tt.Shape.Dim {
		switch {
		case d.GetDimParam() != "":
			dims = append(dims, Dim{Param: d.GetDimParam()})
		case d.Value != nil:
			dims = append(dims, Dim{Value: d.GetDimValue(), Known: true})
		default:
			dims = append(dims, Dim{})
		}
	}
	return dims, true
}

// StaticShape returns the shape when every dimension is a known number.
func (v *Value) StaticShape() ([]int, bool) {
	dims, ok := v.Shape()
	if !ok {
		return nil, false
	}
	out := make([]int, len(dims))
	for i, d := range dims {
		if !d.Known || d.Param != "" {
			return nil, false
		}
		out[i] = int(d.Value)
	}
	return out, true
}

// SetTensorType declares v a tensor of dt with the given dims (a negative dim is unknown;
// nil dims leave the rank unknown).
func (v *Value) SetTensorType(dt DataType, dims []int64) {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt))}
	if dims != nil {
		tt.Shape = &onnxpb.TensorShapeProto{Dim: make([]*onnxpb.TensorShapeProto_Dimension, len(dims))}
		for i, d := range dims {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			if d >= 0 {
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
			}
			tt.Shape.Dim[i] = dim
		}
	}
	if v.Info == nil {
		v.Info = &onnxpb.ValueInfoProto{Name: proto.String(v.Name)}
	}
	v.Info.Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
}

// TypeString renders a value's type for people: float32[1,3,?,batch], seq(...), ...
func TypeString(t *onnxpb.TypeProto) string {
	switch {
	case t == nil:
		return "?"
	case t.GetTensorType() != nil:
		tt := t.GetTensorType()
		return DataType(tt.GetElemType()).Short() + shapeString(tt.Shape)
	case t.GetSparseTensorType() != nil:
		tt := t.GetSparseTensorType()
		return "sparse " + DataType(tt.GetElemType()).Short() + shapeString(tt.Shape)
	case t.GetSequenceType() != nil:
		return "seq(" + TypeString(t.GetSequenceType().GetElemType()) + ")"
	case t.GetMapType() != nil:
		mt := t.GetMapType()
		return "map(" + DataType(mt.GetKeyType()).Short() + "," + TypeString(mt.GetValueType()) + ")"
	case t.GetOptionalType() != nil:
		return "optional(" + TypeString(t.GetOptionalType().GetElemType()) + ")"
	}
	return "?"
}

func shapeString(s *onnxpb.TensorShapeProto) string {
	if s == nil {
		return "[?rank]"
	}
	out := "["
	for i, d := range s.Dim {
		if i > 0 {
			out += ","
		}
		switch {
		case d.GetDimParam() != "":
			out += d.GetDimParam()
		case d.Value != nil:
			out += strconv.FormatInt(d.GetDimValue(), 10)
		default:
			out += "?"
		}
	}
	return out + "]"
}

// FormatDims writes a shape with unknown (negative) dimensions as "?":
// [1 3 ? ?].
func FormatDims(d []int64) string {
	parts := make([]string, len(d))
	for i, v := range d {
		if v < 0 {
			parts[i] = "?"
		} else {
			parts[i] = strconv.FormatInt(v, 10)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// ---- nodes ----

// AddNode appends a node reading inputs (nil for an omitted one) and producing
// outputs named after outNames (made unique; "" for an omitted output).
func (g *Graph) AddNode(opType, name string, inputs []*Value, outNames []string, attrs ...*onnxpb.AttributeProto) *Node {
	n := &Node{OpType: opType, Attrs: attrs, Proto: &onnxpb.NodeProto{}}
	if name != "" {
		n.Name = g.uniqueNodeName(name)
	}
	for _, v := range inputs {
		n.Inputs = append(n.Inputs, v)
		if v != nil {
			v.Consumers = append(v.Consumers, n)
		}
	}
	for _, on := range outNames {
		if on == "" {
			n.Outputs = append(n.Outputs, nil)
			continue
		}
		v := g.NewValue(on)
		v.Producer = n
		n.Outputs = append(n.Outputs, v)
	}
	g.Nodes = append(g.Nodes, n)
	return n
}

func (g *Graph) uniqueNodeName(base string) string {
	taken := func(s string) bool {
		for _, n := range g.Nodes {
			if n.Name == s {
				return true
			}
		}
		return false
	}
	if !taken(base) {
		return base
	}
	for i := 1; ; i++ {
		s := base + "_" + strconv.Itoa(i)
		if !taken(s) {
			return s
		}
	}
}

// Output returns the node's first output.
func (n *Node) Output() *Value {
	if len(n.Outputs) == 0 {
		return nil
	}
	return n.Outputs[0]
}

// Input returns input i, or nil when it is omitted or absent.
func (n *Node) Input(i int) *Value {
	if i < 0 || i >= len(n.Inputs) {
		return nil
	}
	return n.Inputs[i]
}

// String names a node for messages: its name, or its op type and first output.
func (n *Node) String() string {
	if n.Name != "" {
		return fmt.Sprintf("%q (%s)", n.Name, n.OpType)
	}
	if o := n.Output(); o != nil {
		return fmt.Sprintf("%s -> %q", n.OpType, o.Name)
	}
	return n.OpType
}

// SetInput replaces input i of n, keeping consumer links right.
func (g *Graph) SetInput(n *Node, i int, v *Value) {
	old := n.Inputs[i]
	n.Inputs[i] = v
	if v != nil {
		v.Consumers = append(v.Consumers, n)
	}
	if old != nil {
		old.Consumers = removeNode(old.Consumers, n)
		g.dropIfUnused(old)
	}
}

// ReplaceUses makes every reader of old (nodes and graph outputs) read new instead.
// Subgraphs that read old by name are not rewritten; it fails when there are any.
func (g *Graph) ReplaceUses(old, new *Value) error {
	for _, c := range old.Consumers {
		if containsValue(c.Implicit, old) {
			return fmt.Errorf("graph: %s reads %q inside a subgraph; cannot rename", c, old.Name)
		}
	}
	for _, c := range append([]*Node(nil), old.Consumers...) {
		for i, in := range c.Inputs {
			if in == old {
				c.Inputs[i] = new
				new.Consumers = append(new.Consumers, c)
			}
		}
	}
	old.Consumers = nil
	for i, o := range g.Outputs {
		if o == old {
			g.Outputs[i] = new
		}
	}
	g.dropIfUnused(old)
	return nil
}

// RemoveNode deletes n and unlinks its inputs; its outputs lose their producer.
func (g *Graph) RemoveNode(n *Node) {
	for i, node := range g.Nodes {
		if node == n {
			g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
			break
		}
	}
	for _, v := range append(append([]*Value(nil), n.Inputs...), n.Implicit...) {
		if v != nil {
			v.Consumers = removeNode(v.Consumers, n)
			g.dropIfUnused(v)
		}
	}
	for _, v := range n.Outputs {
		if v != nil && v.Producer == n {
			v.Producer = nil
			g.dropIfUnused(v)
		}
	}
}

// Subgraphs returns the graph-valued attributes of n (If/Loop/Scan bodies).
func (n *Node) Subgraphs() []*onnxpb.GraphProto {
	var out []*onnxpb.GraphProto
	for _, a := range n.Attrs {
		if a.G != nil {
			out = append(out, a.G)
		}
		out = append(out, a.Graphs...)
	}
	return out
}

func removeNode(list []*Node, n *Node) []*Node {
	for i, x := range list {
		if x == n {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

func removeValue(list []*Value, v *Value) []*Value {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func containsValue(list []*Value, v *Value) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Forget removes v from the graph when nothing defines, reads or lists it any more
// (after a pass rerouted its last reader).
func (g *Graph) Forget(v *Value) { g.dropIfUnused(v) }

// AppendInput adds v as n's next input (filling an optional input slot).
func (g *Graph) AppendInput(n *Node, v *Value) {
	n.Inputs = append(n.Inputs, v)
	if v != nil {
		v.Consumers = append(v.Consumers, n)
	}
}
