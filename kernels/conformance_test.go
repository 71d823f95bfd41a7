package kernels

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/testdata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// knownFailures are node tests of covered ops that onnxq does not pass, each with
// the reason. The test fails on any other failure, and on a listed test that passes.
var knownFailures = map[string]string{
	"test_training_dropout":                    "Dropout in training mode (random) is outside inference",
	"test_training_dropout_default":            "Dropout in training mode (random) is outside inference",
	"test_training_dropout_default_mask":       "Dropout in training mode (random) is outside inference",
	"test_training_dropout_mask":               "Dropout in training mode (random) is outside inference",
	"test_training_dropout_zero_ratio":         "Dropout in training mode is outside inference",
	"test_training_dropout_zero_ratio_mask":    "Dropout in training mode is outside inference",
	"test_batchnorm_epsilon_training_mode":     "BatchNormalization in training mode is outside inference",
	"test_batchnorm_example_training_mode":     "BatchNormalization in training mode is outside inference",
	"test_bernoulli":                           "random: the data holds one draw of numpy's generator (onnxq draws its own, seeded per node)",
	"test_bernoulli_double":                    "random: the data holds one draw of numpy's generator (onnxq draws its own, seeded per node)",
	"test_bernoulli_double_expanded":           "random: the data holds one draw of numpy's generator (onnxq draws its own, seeded per node)",
	"test_bernoulli_expanded":                  "random: the data holds one draw of numpy's generator (onnxq draws its own, seeded per node)",
	"test_bernoulli_seed":                      "random: the data holds one draw of numpy's generator (onnxq draws its own, seeded per node)",
	"test_bernoulli_seed_expanded":             "random: the data holds one draw of numpy's generator (onnxq draws its own, seeded per node)",
	"test_cast_FLOAT_to_BFLOAT16":              "the ONNX 1.12 data expects truncation; onnxq rounds to nearest even",
	"test_castlike_FLOAT_to_BFLOAT16":          "the data's 'like' input is [1], the model declares [3 4]",
	"test_castlike_FLOAT_to_BFLOAT16_expanded": "the data's 'like' input is [1], the model declares [3 4]",
	"test_castlike_BFLOAT16_to_FLOAT":          "the data's 'like' input is [1], the model declares [3 4]",
	"test_castlike_BFLOAT16_to_FLOAT_expanded": "the data's 'like' input is [1], the model declares [3 4]",
}

// covered reports whether every node of the model has a kernel, and why not.
func covered(m *graph.Model) (bool, string) {
	for _, v := range append(append([]*graph.Value(nil), m.Graph.Inputs...), m.Graph.Outputs...) {
		if v.Info.GetType().GetTensorType() == nil && !isSequenceValue(v) {
			return false, "non-tensor input or output"
		}
	}
	for _, n := range m.Graph.Nodes {
		if !Supported(n.Domain, n.OpType, m.OpsetVersion(n.Domain)) {
			return false, n.OpType
		}
	}
	return len(m.Graph.Nodes) > 0, ""
}

// TestBackendNodeConformance runs every ONNX backend node test whose ops all have
// kernels and compares with the expected outputs at the ONNX runner's tolerances
// (rtol 1e-3, atol 1e-7).
func TestBackendNodeConformance(t *testing.T) {
	ran, passed := backendSuite(t, "node")
	if ran < 900 || passed < 880 {
		t.Errorf("%d node tests ran and %d passed: the suite shrank (906 of 925 passed when this was written)", ran, passed)
	}
}

// TestBackendModelSuites runs the backend's small-model suites the same way:
// PyTorch's exports of its modules and operators (opset 6: the legacy
// broadcast attributes, per-channel PRelu) and the simple graphs.
func TestBackendModelSuites(t *testing.T) {
	for _, suite := range []string{"pytorch-converted", "pytorch-operator", "simple"} {
		t.Run(suite, func(t *testing.T) {
			if ran, _ := backendSuite(t, suite); ran < 15 {
				t.Errorf("only %d %s tests ran", ran, suite)
			}
		})
	}
}

// backendSuite runs the backend tests of one suite (a folder of the test
// data), failing on any failure not listed in knownFailures and on a listed
// test that passes; it returns how many ran and passed.
func backendSuite(t *testing.T, suite string) (ran, passed int) {
	models := testdata.BackendModels(t)
	// Every pool buffer starts as NaN / -1: an Empty output a kernel does
	// not fully write fails its case instead of passing as zeros.
	poisonBuffers = true
	defer func() { poisonBuffers = false }()
	var failures []string
	uncovered := map[string]int{}
	for _, path := range models {
		if !strings.Contains(path, "/"+suite+"/") {
			continue
		}
		dir := filepath.Dir(path)
		name := filepath.Base(dir)
		m, err := graph.Load(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ok, op := covered(m); !ok {
			uncovered[op]++
			continue
		}
		ran++
		err = runBackendCase(m, dir)
		reason, known := knownFailures[name]
		switch {
		case err == nil && known:
			t.Errorf("%s passes but is listed as a known failure (%s)", name, reason)
		case err == nil:
			passed++
		case known:
			failures = append(failures, fmt.Sprintf("%s (known: %s)", name, reason))
		default:
			t.Errorf("%s: %v", name, err)
			failures = append(failures, name)
		}
	}
	var ops []string
	for op, n := range uncovered {
		ops = append(ops, fmt.Sprintf("%s:%d", op, n))
	}
	sort.Strings(ops)
	t.Logf("%s tests with every op covered: %d, passed: %d, failed: %d", suite, ran, passed, ran-passed)
	t.Logf("failures: %v", failures)
	t.Logf("not covered (first unsupported op: tests): %s", strings.Join(ops, " "))
	return ran, passed
}

func runBackendCase(m *graph.Model, dir string) error {
	s, err := NewSession(m, Options{Threads: 2})
	if err != nil {
		return fmt.Errorf("compile: %v", err)
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return fmt.Errorf("no data sets")
	}
	for _, set := range sets {
		inputs := map[string]*graph.Tensor{}
		var feed []string
		for _, in := range s.Inputs() {
			if !in.Optional {
				feed = append(feed, in.Name)
			}
		}
		for i, name := range feed {
			p := filepath.Join(set, fmt.Sprintf("input_%d.pb", i))
			if _, err := os.Stat(p); err != nil {
				continue // an omitted optional input
			}
			if isSequenceValue(m.Graph.Value(name)) {
				if inputs[name], err = loadSequencePB(p, m.Graph.Value(name)); err != nil {
					return fmt.Errorf("%s: %v", p, err)
				}
				continue
			}
			x, err := graph.ReadTensorFile(p)
			if err != nil {
				return fmt.Errorf("%s: %v", p, err)
			}
			inputs[name] = relabelBF16(x, m.Graph.Value(name).ElemType())
		}
		outs, err := s.Run(inputs)
		if err != nil {
			return err
		}
		for i, name := range s.OutputNames() {
			if isSequenceValue(m.Graph.Value(name)) {
				want, err := loadSequencePB(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)), m.Graph.Value(name))
				if err != nil {
					return err
				}
				if err := compareSequences(outs[name], want); err != nil {
					return fmt.Errorf("output %q: %v", name, err)
				}
				continue
			}
			want, err := graph.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
			if err != nil {
				return err
			}
			want = relabelBF16(want, m.Graph.Value(name).ElemType())
			if err := compareTensors(outs[name], want, 1e-3, 1e-7); err != nil {
				return fmt.Errorf("output %q: %v", name, err)
			}
		}
	}
	return nil
}

// isSequenceValue reports whether the model declares v a sequence of
// tensors or an optional (of a tensor or a sequence): values the runner
// reads from onnx-data.proto files.
func isSequenceValue(v *graph.Value) bool {
	t := v.Info.GetType()
	if o := t.GetOptionalType(); o != nil {
		t = o.GetElemType()
		if t.GetTensorType() != nil {
			return true
		}
	}
	return v != nil && t.GetSequenceType().GetElemType().GetTensorType() != nil
}

// loadSequencePB reads the value v declares from a SequenceProto or
// OptionalProto file (the schema in graph/onnxpb leaves onnx-data.proto out).
func loadSequencePB(path string, v *graph.Value) (*graph.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeDataPB(b, v.Info.GetType().GetOptionalType() != nil, filepath.Dir(path))
}

// decodeDataPB decodes a SequenceProto of tensors (each tensor in field 3)
// or, with optional, an OptionalProto (a tensor in field 3, a sequence in
// field 5, none when neither is there).
func decodeDataPB(b []byte, optional bool, dir string) (*graph.Tensor, error) {
	var items []*graph.Tensor
	var seq *graph.Tensor
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType || num != 3 && num != 5 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 5 {
			var err error
			if seq, err = decodeDataPB(v, false, dir); err != nil {
				return nil, err
			}
			continue
		}
		p := &onnxpb.TensorProto{}
		if err := proto.Unmarshal(v, p); err != nil {
			return nil, err
		}
		t, err := graph.TensorFromProto(p, dir, false)
		if err != nil {
			return nil, err
		}
		items = append(items, t)
	}
	if optional {
		switch {
		case seq != nil:
			return graph.OptionalTensor(seq), nil
		case len(items) > 0:
			return graph.OptionalTensor(items[0]), nil
		}
		return graph.OptionalTensor(nil), nil
	}
	elem := graph.Undefined
	if len(items) > 0 {
		elem = items[0].DType
	}
	return graph.SequenceTensor(elem, items), nil
}

// compareSequences compares sequences item by item and optionals by their
// value (as compareTensors).
func compareSequences(got, want *graph.Tensor) error {
	if w, ok := want.Optional(); ok {
		g, ok := got.Optional()
		switch {
		case !ok:
			return fmt.Errorf("a %s value, want an optional", got.DType.Short())
		case (g.Value == nil) != (w.Value == nil):
			return fmt.Errorf("has element %v, want %v", g.Value != nil, w.Value != nil)
		case w.Value == nil:
			return nil
		}
		got, want = g.Value, w.Value
		if _, ok := want.Sequence(); !ok {
			return compareTensors(got, want, 1e-3, 1e-7)
		}
	}
	g, ok := got.Sequence()
	if !ok {
		return fmt.Errorf("a %s tensor, want a sequence", got.DType.Short())
	}
	w, _ := want.Sequence()
	if len(g.Items) != len(w.Items) {
		return fmt.Errorf("%d items, want %d", len(g.Items), len(w.Items))
	}
	for i := range w.Items {
		if err := compareTensors(g.Items[i], w.Items[i], 1e-3, 1e-7); err != nil {
			return fmt.Errorf("item %d: %v", i, err)
		}
	}
	return nil
}

// compareTensors checks type and shape exactly and values within
// |got - want| <= atol + rtol * |want| (NaN matches NaN).
func compareTensors(got, want *graph.Tensor, rtol, atol float64) error {
	if got == nil {
		return fmt.Errorf("missing")
	}
	if got.DType != want.DType {
		return fmt.Errorf("type %s, want %s", got.DType.Short(), want.DType.Short())
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	switch g := got.Data().(type) {
	case [][]byte:
		w := want.Data().([][]byte)
		for i := range g {
			if string(g[i]) != string(w[i]) {
				return fmt.Errorf("[%d] = %q, want %q", i, g[i], w[i])
			}
		}
		return nil
	case []bool:
		w := want.Data().([]bool)
		for i := range g {
			if g[i] != w[i] {
				return fmt.Errorf("[%d] = %v, want %v", i, g[i], w[i])
			}
		}
		return nil
	}
	gf, err := asFloat64(got)
	if err != nil {
		return err
	}
	wf, _ := asFloat64(want)
	for i := range gf {
		a, b := gf[i], wf[i]
		if math.IsNaN(a) && math.IsNaN(b) || a == b {
			continue
		}
		if math.IsNaN(a) || math.IsNaN(b) || math.Abs(a-b) > atol+rtol*math.Abs(b) {
			return fmt.Errorf("[%d] = %v, want %v", i, a, b)
		}
	}
	return nil
}

func asFloat64(t *graph.Tensor) ([]float64, error) {
	switch d := t.Data().(type) {
	case []float64:
		return d, nil
	case []int64:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out, nil
	case []uint64:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out, nil
	}
	f, err := t.AsFloat32()
	if err != nil {
		if t.DType.BitWidth() == 8 {
			// float8 bit patterns: compare the bits
			d := t.Data().([]uint8)
			out := make([]float64, len(d))
			for i, v := range d {
				out[i] = float64(v)
			}
			return out, nil
		}
		return nil, err
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out, nil
}

// relabelBF16 fixes a quirk of the ONNX 1.12 test data: bfloat16 tensors are
// stored as UINT16 tensors holding the bit patterns.
func relabelBF16(t *graph.Tensor, want graph.DataType) *graph.Tensor {
	if want != graph.BFloat16 || t.DType != graph.Uint16 {
		return t
	}
	bits := graph.Elems[uint16](t)
	out := graph.NewTensor(graph.BFloat16, t.Shape)
	d := graph.Elems[graph.BFloat16Bits](out)
	for i, b := range bits {
		d[i] = graph.BFloat16Bits(b)
	}
	return out
}
