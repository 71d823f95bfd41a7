package graph

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// LazyExternal leaves external data on disk until a tensor's Materialize is
	// called (or the model is saved); the files are still checked at load.
	LazyExternal bool
}

// Load reads an ONNX model file, reading its external data eagerly.
func Load(path string) (*Model, error) { return LoadWith(path, LoadOptions{}) }

// LoadWith reads an ONNX model file.
func LoadWith(path string, opt LoadOptions) (*Model, error) {
	if path == "" {
		return nil, errors.New("no model path given")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPathErr(err))
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a folder, not an ONNX model file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPathErr(err))
	}
	m, err := Decode(b, filepath.Dir(path), opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Decode parses a serialized ModelProto; dir is the folder external data is relative to.
func Decode(b []byte, dir string, opt LoadOptions) (*Model, error) {
	if len(b) == 0 {
		return nil, errors.New("the file is empty, not an ONNX model")
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		return nil, fmt.Errorf("not a valid ONNX model (truncated or not protobuf): %v", err)
	}
	if mp.IrVersion == nil || mp.Graph == nil {
		return nil, errors.New("not an ONNX model: no ir_version or no graph")
	}
	if mp.GetIrVersion() < 1 || mp.GetIrVersion() > 64 {
		return nil, fmt.Errorf("not an ONNX model: ir_version %d is out of range", mp.GetIrVersion())
	}
	if err := checkAllTensors(mp, dir); err != nil {
		return nil, err
	}
	m := &Model{Proto: mp, Dir: dir}
	gp := mp.Graph
	mp.Graph = nil
	g, err := buildGraph(m, gp, dir, opt)
	if err != nil {
		return nil, err
	}
	m.Graph = g
	return m, nil
}

// buildGraph turns a GraphProto into IR; gp keeps only what the IR does not model.
func buildGraph(m *Model, gp *onnxpb.GraphProto, dir string, opt LoadOptions) (*Graph, error) {
	g := newGraph(m, gp)
	for _, tp := range gp.Initializer {
		name := tp.GetName()
		if name == "" {
			return nil, errors.New("graph has an initializer without a name")
		}
		t, err := TensorFromProto(tp, dir, opt.LazyExternal)
		if err != nil {
			return nil, fmt.Errorf("initializer: %w", err)
		}
		v := g.value(name)
		if v.Const != nil {
			return nil, fmt.Errorf("initializer %q is defined twice", name)
		}
		v.Const = t
		g.Initializers = append(g.Initializers, v)
	}
	for _, sp := range gp.SparseInitializer {
		g.value(sp.GetValues().GetName()).Sparse = true
	}
	for _, vi := range gp.Input {
		v := g.value(vi.GetName())
		if v.Info == nil {
			v.Info = vi
		}
		g.Inputs = append(g.Inputs, v)
	}
	for _, np := range gp.Node {
		n := &Node{Name: np.GetName(), OpType: np.GetOpType(), Domain: np.GetDomain(), Attrs: np.Attribute, Proto: np}
		for _, in := range np.Input {
			if in == "" {
				n.Inputs = append(n.Inputs, nil)
				continue
			}
			v := g.value(in)
			v.Consumers = append(v.Consumers, n)
			n.Inputs = append(n.Inputs, v)
		}
		for _, out := range np.Output {
			if out == "" {
				n.Outputs = append(n.Outputs, nil)
				continue
			}
			v := g.value(out)
			if v.Producer == nil {
				v.Producer = n
			}
			n.Outputs = append(n.Outputs, v)
		}
		for _, name := range outerNames(n.Subgraphs()) {
			v := g.value(name)
			v.Consumers = append(v.Consumers, n)
			n.Implicit = append(n.Implicit, v)
		}
		np.Input, np.Output, np.Attribute = nil, nil, nil
		g.Nodes = append(g.Nodes, n)
	}
	for _, vi := range gp.Output {
		v := g.value(vi.GetName())
		if v.Info == nil {
			v.Info = vi
		}
		g.Outputs = append(g.Outputs, v)
	}
	for _, vi := range gp.ValueInfo {
		v := g.value(vi.GetName())
		if v.Info == nil {
			v.Info = vi
		}
		g.ValueInfo = append(g.ValueInfo, v)
	}
	gp.Node, gp.Initializer, gp.Input, gp.Output, gp.ValueInfo = nil, nil, nil, nil, nil
	return g, nil
}

// outerNames lists, in first-use order, the names that subgraphs read without
// defining them: values of the enclosing graph.
func outerNames(subs []*onnxpb.GraphProto) []string {
	seen := map[string]bool{}
	var out []string
	for _, sg := range subs {
		for _, name := range graphOuterNames(sg) {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

func graphOuterNames(gp *onnxpb.GraphProto) []string {
	defined := map[string]bool{"": true}
	for _, vi := range gp.Input {
		defined[vi.GetName()] = true
	}
	for _, t := range gp.Initializer {
		defined[t.GetName()] = true
	}
	for _, s := range gp.SparseInitializer {
		defined[s.GetValues().GetName()] = true
	}
	for _, n := range gp.Node {
		for _, o := range n.Output {
			defined[o] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	use := func(name string) {
		if !defined[name] && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, n := range gp.Node {
		for _, in := range n.Input {
			use(in)
		}
		var subs []*onnxpb.GraphProto
		for _, a := range n.Attribute {
			if a.G != nil {
				subs = append(subs, a.G)
			}
			subs = append(subs, a.Graphs...)
		}
		for _, name := range outerNames(subs) {
			use(name)
		}
	}
	for _, o := range gp.Output {
		use(o.GetName())
	}
	return out
}

// checkAllTensors validates every tensor stored anywhere in the model except the
// main graph's initializers (buildGraph decodes those): Constant attributes,
// subgraphs, sparse tensors, functions and training graphs.
func checkAllTensors(mp *onnxpb.ModelProto, dir string) error {
	check := func(where string, p *onnxpb.TensorProto) error {
		if p == nil {
			return nil
		}
		if _, err := TensorFromProto(p, dir, true); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		return nil
	}
	var walkGraph func(g *onnxpb.GraphProto, main bool) error
	var walkAttrs func(where string, attrs []*onnxpb.AttributeProto) error
	checkSparse := func(where string, s *onnxpb.SparseTensorProto) error {
		if err := check(where+" values", s.GetValues()); err != nil {
			return err
		}
		return check(where+" indices", s.GetIndices())
	}
	walkAttrs = func(where string, attrs []*onnxpb.AttributeProto) error {
		for _, a := range attrs {
			at := where + " attribute " + fmt.Sprintf("%q", a.GetName())
			if err := check(at, a.T); err != nil {
				return err
			}
			for _, t := range a.Tensors {
				if err := check(at, t); err != nil {
					return err
				}
			}
			if a.SparseTensor != nil {
				if err := checkSparse(at, a.SparseTensor); err != nil {
					return err
				}
			}
			for _, s := range a.SparseTensors {
				if err := checkSparse(at, s); err != nil {
					return err
				}
			}
			if a.G != nil {
				if err := walkGraph(a.G, false); err != nil {
					return err
				}
			}
			for _, sg := range a.Graphs {
				if err := walkGraph(sg, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	walkGraph = func(g *onnxpb.GraphProto, main bool) error {
		if !main {
			for _, t := range g.Initializer {
				if err := check("subgraph "+fmt.Sprintf("%q", g.GetName())+" initializer", t); err != nil {
					return err
				}
			}
		}
		for _, s := range g.SparseInitializer {
			if err := checkSparse("sparse initializer", s); err != nil {
				return err
			}
		}
		for _, n := range g.Node {
			where := "node " + fmt.Sprintf("%q (%s)", n.GetName(), n.GetOpType())
			if err := walkAttrs(where, n.Attribute); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walkGraph(mp.Graph, true); err != nil {
		return err
	}
	for _, f := range mp.Functions {
		for _, n := range f.Node {
			if err := walkAttrs(fmt.Sprintf("function %q node %q", f.GetName(), n.GetName()), n.Attribute); err != nil {
				return err
			}
		}
	}
	for _, ti := range mp.TrainingInfo {
		for _, g := range []*onnxpb.GraphProto{ti.Initialization, ti.Algorithm} {
			if g != nil {
				if err := walkGraph(g, false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// walkTensors calls f on every initializer and every Constant-node value tensor
// of the main graph.
func (m *Model) walkTensors(f func(*Tensor)) {
	for _, v := range m.Graph.Initializers {
		f(v.Const)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Constant" && IsStandardDomain(n.Domain) {
			if a := n.Attr("value"); a != nil && a.T != nil {
				if t, err := TensorFromProto(a.T, m.Dir, true); err == nil {
					f(t)
				}
			}
		}
	}
}

// SubgraphModel returns a subgraph of m (an If branch, a Loop or Scan body)
// as a model of its own, for an executor to compile: same opset imports and
// folder, the subgraph's inputs first, then one input per value of the
// enclosing scopes it reads (outer, in first-use order, without type
// information). gp is not modified.
func (m *Model) SubgraphModel(gp *onnxpb.GraphProto) (sub *Model, outer []string, err error) {
	gp = proto.Clone(gp).(*onnxpb.GraphProto)
	outer = graphOuterNames(gp)
	mp := &onnxpb.ModelProto{IrVersion: m.Proto.IrVersion, OpsetImport: m.Proto.OpsetImport}
	sub = &Model{Proto: mp, Dir: m.Dir}
	g, err := buildGraph(sub, gp, m.Dir, LoadOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("subgraph %q: %w", gp.GetName(), err)
	}
	for _, name := range outer {
		g.Inputs = append(g.Inputs, g.value(name))
	}
	sub.Graph = g
	return sub, outer, nil
}
