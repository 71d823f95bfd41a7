package graph

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// smallModel is x[1,4] -> MatMul(W[4,3]) -> Add(b) -> Relu -> y, with b from a Constant node.
func smallModel() *Model {
	m := NewModel(Opset{"", 17})
	g := m.Graph
	x := g.AddInput("x", Float, []int64{1, 4})
	w := g.AddInitializer("W", Float32Tensor([]int{4, 3}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))
	c := g.AddNode("Constant", "bias_const", nil, []string{"b"}, AttrTensorOf("value", Float32Tensor([]int{3}, []float32{-1, 0, 1})))
	mm := g.AddNode("MatMul", "mm", []*Value{x, w}, []string{"mm_out"})
	add := g.AddNode("Add", "add", []*Value{mm.Output(), c.Output()}, []string{"add_out"})
	relu := g.AddNode("Relu", "relu", []*Value{add.Output()}, []string{"y"})
	relu.Output().SetTensorType(Float, []int64{1, 3})
	g.AddOutput(relu.Output())
	return m
}

func TestBuildSaveLoad(t *testing.T) {
	m := smallModel()
	if err := m.Graph.Validate(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "small.onnx")
	if err := Save(m, path); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := m2.Graph
	if len(g.Nodes) != 4 || g.Nodes[1].OpType != "MatMul" || g.Nodes[1].Name != "mm" {
		t.Fatalf("nodes = %v", g.Nodes)
	}
	if got := g.Value("W").Const.Float32s(); got[11] != 12 {
		t.Errorf("W = %v", got)
	}
	x := g.Value("x")
	if len(x.Consumers) != 1 || x.Consumers[0].OpType != "MatMul" {
		t.Errorf("x consumers = %v", x.Consumers)
	}
	if g.Value("add_out").Producer.Name != "add" {
		t.Error("producer link lost")
	}
	dims, ok := g.Value("y").Shape()
	if !ok || len(dims) != 2 || dims[1].Value != 3 {
		t.Errorf("y shape = %v", dims)
	}
	ct, err := g.Nodes[0].AttrTensor("value", m2.Dir)
	if err != nil || !reflect.DeepEqual(ct.Float32s(), []float32{-1, 0, 1}) {
		t.Errorf("Constant value = %v, %v", ct, err)
	}
	if m2.OpsetVersion("ai.onnx") != 17 || m2.IRVersion() != int64(onnxpb.Version_IR_VERSION) {
		t.Errorf("opset %d ir %d", m2.OpsetVersion(""), m2.IRVersion())
	}
	// Saving is deterministic.
	b1, _ := Marshal(m2)
	b2, _ := Marshal(m2)
	if string(b1) != string(b2) {
		t.Error("two saves differ")
	}
}

func TestEditing(t *testing.T) {
	m := smallModel()
	g := m.Graph
	relu := g.Nodes[3]
	add := g.Nodes[2]
	// Bypass Relu: the graph output becomes add_out.
	if err := g.ReplaceUses(relu.Output(), add.Output()); err != nil {
		t.Fatal(err)
	}
	g.RemoveNode(relu)
	if g.Outputs[0].Name != "add_out" || len(g.Nodes) != 3 {
		t.Fatalf("outputs %v nodes %d", g.Outputs[0].Name, len(g.Nodes))
	}
	if g.Value("y") != nil {
		t.Error("orphan value y kept")
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	// A node appended out of order is moved just far enough by TopoSort.
	n := g.AddNode("Neg", "neg", []*Value{g.Value("x")}, []string{"negx"})
	g.SetInput(g.Nodes[1], 0, n.Output()) // MatMul now reads negx
	if err := g.TopoSort(); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, n := range g.Nodes {
		order = append(order, n.Name)
	}
	if want := []string{"bias_const", "neg", "mm", "add"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if len(g.Value("x").Consumers) != 1 {
		t.Errorf("x consumers %v", g.Value("x").Consumers)
	}
	if got := g.UniqueName("W"); got != "W_1" {
		t.Errorf("UniqueName = %q", got)
	}
}

func TestValidateFindsProblems(t *testing.T) {
	m := smallModel()
	g := m.Graph
	// dangling input
	ghost := g.value("ghost")
	g.SetInput(g.Nodes[1], 0, ghost)
	// duplicate output: a second node claims add_out
	dup := g.AddNode("Neg", "dup", []*Value{g.Value("W")}, nil)
	dup.Outputs = append(dup.Outputs, g.Value("add_out"))
	// cycle: relu feeds mm
	g.SetInput(g.Nodes[1], 1, g.Value("y"))
	err := g.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`node "mm" (MatMul) reads "ghost", which no node`,
		`value "add_out" is produced by both node "add" (Add) and node "dup" (Neg)`,
		`graph has a cycle: "mm" (MatMul) -> "add" (Add) -> "relu" (Relu) -> "mm" (MatMul)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := Save(m, filepath.Join(t.TempDir(), "x.onnx")); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("saving a cyclic graph: %v", err)
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	m := smallModel()
	big := make([]float32, 3000)
	for i := range big {
		big[i] = float32(i) * 0.5
	}
	m.Graph.AddInitializer("big", Float32Tensor([]int{1000, 3}, big))
	path := filepath.Join(dir, "m.onnx")
	if err := SaveWith(m, path, SaveOptions{ExternalThreshold: 1024}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".data"); err != nil {
		t.Fatal("no data file:", err)
	}
	for _, lazy := range []bool{false, true} {
		m2, err := LoadWith(path, LoadOptions{LazyExternal: lazy})
		if err != nil {
			t.Fatal(err)
		}
		bt := m2.Graph.Value("big").Const
		if bt.Loaded() == lazy {
			t.Errorf("lazy=%v: Loaded()=%v", lazy, bt.Loaded())
		}
		if !reflect.DeepEqual(m2.ExternalFiles(), []string{"m.onnx.data"}) {
			t.Errorf("external files %v", m2.ExternalFiles())
		}
		if err := bt.Materialize(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(bt.Float32s(), big) {
			t.Error("external data differs")
		}
		if m2.Graph.Value("W").Const.src.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			t.Error("small tensor went external")
		}
	}
	// Saving a lazily loaded model over its own data file keeps the data right.
	m3, _ := LoadWith(path, LoadOptions{LazyExternal: true})
	m3.Graph.AddInitializer("pad", Float32Tensor([]int{2000}, make([]float32, 2000))) // shifts offsets
	m3.Graph.Initializers = append([]*Value{m3.Graph.Value("pad")}, m3.Graph.Initializers[:len(m3.Graph.Initializers)-1]...)
	if err := SaveWith(m3, path, SaveOptions{ExternalThreshold: 1024}); err != nil {
		t.Fatal(err)
	}
	if err := m3.Graph.Value("big").Const.Materialize(); err != nil || !reflect.DeepEqual(m3.Graph.Value("big").Const.Float32s(), big) {
		t.Error("lazy tensor read stale data after saving over its file")
	}
	m4, err := Load(path)
	if err != nil || !reflect.DeepEqual(m4.Graph.Value("big").Const.Float32s(), big) {
		t.Errorf("reload after overwrite: %v", err)
	}
	// Everything inline when asked.
	inline := filepath.Join(dir, "inline.onnx")
	if err := SaveWith(m4, inline, SaveOptions{ExternalThreshold: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inline + ".data"); !os.IsNotExist(err) {
		t.Error("inline save wrote a data file")
	}
	// By default a model loaded with external data keeps it external.
	keep := filepath.Join(dir, "keep.onnx")
	if err := Save(m4, keep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keep + ".data"); err != nil {
		t.Error("default save inlined external data")
	}
}

// externalModel writes a model whose tensor "w" (4 floats) points at the given
// external_data entries, and returns its path.
func externalModel(t *testing.T, kv map[string]string, dataBytes int) string {
	dir := t.TempDir()
	if dataBytes >= 0 {
		os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, dataBytes), 0o644)
	}
	m := smallModel()
	tp := &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{4}, DataType: proto.Int32(1), DataLocation: onnxpb.TensorProto_EXTERNAL.Enum()}
	for _, k := range []string{"location", "offset", "length"} {
		if v, ok := kv[k]; ok {
			tp.ExternalData = append(tp.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(v)})
		}
	}
	b, _ := Marshal(m)
	mp := &onnxpb.ModelProto{}
	proto.Unmarshal(b, mp)
	mp.Graph.Initializer = append(mp.Graph.Initializer, tp)
	b, _ = proto.Marshal(mp)
	path := filepath.Join(dir, "m.onnx")
	os.WriteFile(path, b, 0o644)
	return path
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.onnx")
	if err := Save(smallModel(), good); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(good)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	cases := []struct {
		path, want string
	}{
		{"", "no model path given"},
		{filepath.Join(dir, "missing.onnx"), "no such file or directory"},
		{dir, "is a folder"},
		{write("empty.onnx", nil), "the file is empty"},
		{write("trunc.onnx", b[:len(b)-7]), "not a valid ONNX model"},
		{write("text.onnx", []byte("hello, this is not a model\n")), "not"},
		{write("json.onnx", []byte(`{"ir_version": 8}`)), "not"},
		{externalModel(t, map[string]string{"location": "w.bin"}, 8), "need 16 bytes, external data length is 8"},
		{externalModel(t, map[string]string{"location": "w.bin", "offset": "8", "length": "16"}, 16), "runs past the end"},
		{externalModel(t, map[string]string{"location": "w.bin", "offset": "x"}, 16), `offset "x" is not an integer`},
		{externalModel(t, map[string]string{"location": "nothere.bin"}, -1), `external data file "nothere.bin": no such file`},
		{externalModel(t, map[string]string{"location": "/etc/passwd"}, 16), "is absolute"},
		{externalModel(t, map[string]string{"location": "../w.bin"}, 16), "leaves the model's folder"},
		{externalModel(t, map[string]string{"location": "a/../../w.bin"}, 16), "leaves the model's folder"},
		{externalModel(t, map[string]string{}, 16), "has no location"},
		{symlinkModel(t), "is a link that leaves the model's folder"},
	}
	for _, c := range cases {
		_, err := Load(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%s): %v, want %q", filepath.Base(c.path), err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Load(%s): error is not one line: %q", filepath.Base(c.path), err)
		}
	}
	// A tensor whose dims do not match its data, in an initializer and in a Constant.
	mp := &onnxpb.ModelProto{}
	proto.Unmarshal(b, mp)
	mp.Graph.Initializer[0].Dims = []int64{4, 4}
	bad, _ := proto.Marshal(mp)
	if _, err := Load(write("dims.onnx", bad)); err == nil || !strings.Contains(err.Error(), `initializer: tensor "W": dims [4 4] of FLOAT need 64 bytes of raw_data, found 48`) {
		t.Errorf("dims mismatch: %v", err)
	}
	proto.Unmarshal(b, mp)
	mp.Graph.Node[0].Attribute[0].T.Dims = []int64{2}
	bad, _ = proto.Marshal(mp)
	if _, err := Load(write("cdims.onnx", bad)); err == nil || !strings.Contains(err.Error(), `node "bias_const" (Constant) attribute "value": tensor "": dims [2] of FLOAT need 8 bytes`) {
		t.Errorf("Constant dims mismatch: %v", err)
	}
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := Save(smallModel(), path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	// A model that cannot be written (a cycle) leaves the old file and no temp files.
	m := smallModel()
	m.Graph.SetInput(m.Graph.Nodes[1], 1, m.Graph.Value("y"))
	if err := Save(m, path); err == nil {
		t.Fatal("saved a cyclic model")
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("failed save changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left files behind: %v", entries)
	}
	if err := Save(smallModel(), filepath.Join(dir, "no", "such", "dir.onnx")); err == nil {
		t.Error("save into a missing folder succeeded")
	}
}

// symlinkModel is an external-data model whose location is a link to a file
// outside its folder.
func symlinkModel(t *testing.T) string {
	p := externalModel(t, map[string]string{"location": "link.bin"}, -1)
	outside := filepath.Join(t.TempDir(), "secret.bin")
	os.WriteFile(outside, make([]byte, 16), 0o644)
	if err := os.Symlink(outside, filepath.Join(filepath.Dir(p), "link.bin")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	return p
}
