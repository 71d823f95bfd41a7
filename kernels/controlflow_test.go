package kernels

import (
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Builders for models with subgraphs, written as protobuf: the IR keeps
// subgraphs as GraphProto attributes.

func cfNode(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(op + "_" + strings.Join(outs, "_")), Input: ins, Output: outs, Attribute: attrs}
}

// cfInfo declares a tensor value of an element type, with a shape when dims is not nil.
func cfInfo(name string, dt graph.DataType, dims ...int64) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt))}
	if dims != nil {
		tt.Shape = &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			tt.Shape.Dim = append(tt.Shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
}

func cfGraph(name string, nodes []*onnxpb.NodeProto, in, out []*onnxpb.ValueInfoProto, inits ...*graph.Tensor) *onnxpb.GraphProto {
	g := &onnxpb.GraphProto{Name: proto.String(name), Node: nodes, Input: in, Output: out}
	for _, t := range inits {
		g.Initializer = append(g.Initializer, t.ToProto())
	}
	return g
}

func cfAttrGraph(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

func cfModel(t *testing.T, opset int64, g *onnxpb.GraphProto) *graph.Model {
	t.Helper()
	mp := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}}}
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.Decode(b, "", graph.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func named(t *graph.Tensor, name string) *graph.Tensor { t.Name = name; return t }

func boolScalar(v bool) *graph.Tensor {
	t, _ := graph.TensorOf(graph.Bool, []int{}, []bool{v})
	return t
}

func wantFloats(t *testing.T, what string, got *graph.Tensor, shape []int, want []float32) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no tensor", what)
	}
	if !slices.Equal(got.Shape, shape) || !slices.Equal(got.Float32s(), want) {
		t.Fatalf("%s: got %v %v, want %v %v", what, got.Shape, got.Float32s(), shape, want)
	}
}

// ifModel: y = If(c) then x + x (an inner If on the same condition, reading
// x two scopes up, adds w) else x * k (k the branch's own initializer) + w.
func ifModel(t *testing.T) *graph.Model {
	f := graph.Float
	inner := cfGraph("inner", []*onnxpb.NodeProto{cfNode("Add", []string{"x", "w"}, []string{"xi"})}, nil, []*onnxpb.ValueInfoProto{cfInfo("xi", f)})
	innerElse := cfGraph("inner_else", []*onnxpb.NodeProto{cfNode("Identity", []string{"x"}, []string{"xe"})}, nil, []*onnxpb.ValueInfoProto{cfInfo("xe", f)})
	then := cfGraph("then", []*onnxpb.NodeProto{
		cfNode("If", []string{"c"}, []string{"t1"}, cfAttrGraph("then_branch", inner), cfAttrGraph("else_branch", innerElse)),
		cfNode("Add", []string{"t1", "x"}, []string{"ty"}),
	}, nil, []*onnxpb.ValueInfoProto{cfInfo("ty", f)})
	els := cfGraph("else", []*onnxpb.NodeProto{
		cfNode("Mul", []string{"x", "k"}, []string{"e1"}),
		cfNode("Add", []string{"e1", "w"}, []string{"ey"}),
	}, nil, []*onnxpb.ValueInfoProto{cfInfo("ey", f)}, named(graph.Float32Tensor([]int{1}, []float32{3}), "k"))
	g := cfGraph("main", []*onnxpb.NodeProto{
		cfNode("Relu", []string{"xin"}, []string{"x"}),
		cfNode("If", []string{"c"}, []string{"y"}, cfAttrGraph("then_branch", then), cfAttrGraph("else_branch", els)),
	}, []*onnxpb.ValueInfoProto{cfInfo("xin", f, 3), cfInfo("c", graph.Bool)}, []*onnxpb.ValueInfoProto{cfInfo("y", f)},
		named(graph.Float32Tensor([]int{3}, []float32{10, 20, 30}), "w"))
	return cfModel(t, 13, g)
}

func TestIfBranchesReadOuterValues(t *testing.T) {
	s, err := NewSession(ifModel(t), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := graph.Float32Tensor([]int{3}, []float32{1, -2, 3})
	for run := 0; run < 3; run++ {
		out, err := s.Run(map[string]*graph.Tensor{"xin": x, "c": boolScalar(true)})
		if err != nil {
			t.Fatal(err)
		}
		wantFloats(t, "then", out["y"], []int{3}, []float32{12, 20, 36}) // (relu(x) + w) + relu(x)
		s.Recycle(out)
		out, err = s.Run(map[string]*graph.Tensor{"xin": x, "c": boolScalar(false)})
		if err != nil {
			t.Fatal(err)
		}
		wantFloats(t, "else", out["y"], []int{3}, []float32{13, 20, 39}) // relu(x)*3 + w
		s.Recycle(out)
	}
	i, _ := graph.TensorOf(graph.Int64, []int{}, []int64{1})
	if _, err := s.Run(map[string]*graph.Tensor{"xin": x, "c": i}); err == nil || !strings.Contains(err.Error(), "bool") {
		t.Fatalf("an int64 condition: got %v, want an error about bool", err)
	}
}

// loopModel: Loop(M, cond, acc0) with body acc' = acc + x (x outer), a scan
// output of acc' * i, and cond' = i < stop (stop outer).
func loopModel(t *testing.T, withM, withCond bool) *graph.Model {
	f := graph.Float
	body := cfGraph("body", []*onnxpb.NodeProto{
		cfNode("Add", []string{"acc", "x"}, []string{"acc2"}),
		cfNode("Cast", []string{"i"}, []string{"fi"}, graph.AttrIntOf("to", int64(f))),
		cfNode("Mul", []string{"acc2", "fi"}, []string{"scan"}),
		cfNode("Less", []string{"i", "stop"}, []string{"cond2"}),
	}, []*onnxpb.ValueInfoProto{cfInfo("i", graph.Int64), cfInfo("cond", graph.Bool), cfInfo("acc", f, 99)},
		[]*onnxpb.ValueInfoProto{cfInfo("cond2", graph.Bool), cfInfo("acc2", f), cfInfo("scan", f)})
	m, c := "", ""
	var ins []*onnxpb.ValueInfoProto
	if withM {
		m = "M"
		ins = append(ins, cfInfo("M", graph.Int64))
	}
	if withCond {
		c = "c"
		ins = append(ins, cfInfo("c", graph.Bool))
	}
	ins = append(ins, cfInfo("acc0", f, 2), cfInfo("x", f), cfInfo("stop", graph.Int64))
	g := cfGraph("main", []*onnxpb.NodeProto{
		cfNode("Loop", []string{m, c, "acc0"}, []string{"acc", "scans"}, cfAttrGraph("body", body)),
	}, ins, []*onnxpb.ValueInfoProto{cfInfo("acc", f), cfInfo("scans", f)})
	return cfModel(t, 16, g)
}

func TestLoopTripCountConditionAndScanOutputs(t *testing.T) {
	i64 := func(v int64) *graph.Tensor { return graph.Int64Tensor([]int{}, []int64{v}) }
	acc0 := graph.Float32Tensor([]int{2}, []float32{1, 2})
	x := graph.Float32Tensor([]int{2}, []float32{10, 100})
	for _, tc := range []struct {
		name              string
		withM, withCond   bool
		m                 int64
		cond              bool
		iters             int
		wantAcc, wantScan []float32
	}{
		// the body's condition i < 2 stops it after iterations 0, 1, 2
		{"while", false, true, 0, true, 3, []float32{31, 302}, []float32{0, 0, 21, 202, 62, 604}},
		{"for and while", true, true, 2, true, 2, []float32{21, 202}, []float32{0, 0, 21, 202}},
		// without a condition input the body's is ignored: M iterations
		{"for", true, false, 4, true, 4, []float32{41, 402}, []float32{0, 0, 21, 202, 62, 604, 123, 1206}},
		{"false condition", true, true, 4, false, 0, []float32{1, 2}, nil},
		{"no trips", true, true, 0, true, 0, []float32{1, 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(loopModel(t, tc.withM, tc.withCond), Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			in := map[string]*graph.Tensor{"acc0": acc0, "x": x, "stop": i64(2)}
			if tc.withM {
				in["M"] = i64(tc.m)
			}
			if tc.withCond {
				in["c"] = boolScalar(tc.cond)
			}
			for run := 0; run < 2; run++ {
				out, err := s.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				wantFloats(t, "acc", out["acc"], []int{2}, tc.wantAcc)
				shape := []int{tc.iters, 2}
				if tc.iters == 0 {
					shape = []int{0}
				}
				if !slices.Equal(out["scans"].Shape, shape) || !slices.Equal(out["scans"].Float32s(), tc.wantScan) && tc.iters > 0 {
					t.Fatalf("scans: got %v %v, want %v %v", out["scans"].Shape, out["scans"].Float32s(), shape, tc.wantScan)
				}
				s.Recycle(out)
			}
			if !slices.Equal(acc0.Float32s(), []float32{1, 2}) {
				t.Fatalf("the Loop wrote to its initial value: %v", acc0.Float32s())
			}
		})
	}
}

func TestLoopRejectsBadInputs(t *testing.T) {
	s, err := NewSession(loopModel(t, true, true), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*graph.Tensor{"M": graph.Float32Tensor([]int{}, []float32{3}), "c": boolScalar(true),
		"acc0": graph.Float32Tensor([]int{2}, []float32{1, 2}), "x": graph.Float32Tensor([]int{2}, []float32{1, 2}), "stop": graph.Int64Tensor([]int{}, []int64{1})}
	if _, err := s.Run(in); err == nil {
		t.Fatal("a float trip count ran")
	}
	in["M"] = graph.Int64Tensor([]int{}, []int64{3})
	in["x"] = graph.Float32Tensor([]int{3}, []float32{1, 2, 3}) // acc + x cannot broadcast
	if _, err := s.Run(in); err == nil || !strings.Contains(err.Error(), "iteration 0") {
		t.Fatalf("a failing body: got %v, want an error naming the iteration", err)
	}
	// A body that takes the wrong number of inputs fails at compile time.
	body := cfGraph("body", []*onnxpb.NodeProto{cfNode("Identity", []string{"cond"}, []string{"c2"})},
		[]*onnxpb.ValueInfoProto{cfInfo("i", graph.Int64), cfInfo("cond", graph.Bool)}, []*onnxpb.ValueInfoProto{cfInfo("c2", graph.Bool)})
	g := cfGraph("main", []*onnxpb.NodeProto{cfNode("Loop", []string{"M", "", "v"}, []string{"vo"}, cfAttrGraph("body", body))},
		[]*onnxpb.ValueInfoProto{cfInfo("M", graph.Int64), cfInfo("v", graph.Float)}, []*onnxpb.ValueInfoProto{cfInfo("vo", graph.Float)})
	if _, err := NewSession(cfModel(t, 16, g), Options{}); err == nil || !strings.Contains(err.Error(), "loop-carried") {
		t.Fatalf("a body without the loop state: got %v", err)
	}
}

// scanModel: running sums over a scan input (opset 9+: axes and directions
// as given; opset 8: a batch axis first).
func scanModel(t *testing.T, opset int64, attrs ...*onnxpb.AttributeProto) *graph.Model {
	f := graph.Float
	body := cfGraph("body", []*onnxpb.NodeProto{
		cfNode("Add", []string{"s", "xs"}, []string{"s2"}),
		cfNode("Identity", []string{"s2"}, []string{"out"}),
	}, []*onnxpb.ValueInfoProto{cfInfo("s", f), cfInfo("xs", f)}, []*onnxpb.ValueInfoProto{cfInfo("s2", f), cfInfo("out", f)})
	ins := []string{"s0", "x"}
	if opset < 9 {
		ins = append([]string{""}, ins...)
	}
	attrs = append(attrs, cfAttrGraph("body", body), graph.AttrIntOf("num_scan_inputs", 1))
	g := cfGraph("main", []*onnxpb.NodeProto{cfNode("Scan", ins, []string{"sN", "ys"}, attrs...)},
		[]*onnxpb.ValueInfoProto{cfInfo("s0", f), cfInfo("x", f)}, []*onnxpb.ValueInfoProto{cfInfo("sN", f), cfInfo("ys", f)})
	return cfModel(t, opset, g)
}

func TestScanAxesAndDirections(t *testing.T) {
	// x is [2, 3]: scanning axis 1 gives slices [x[0][j], x[1][j]].
	x := graph.Float32Tensor([]int{2, 3}, []float32{1, 2, 3, 10, 20, 30})
	s0 := graph.Float32Tensor([]int{2}, []float32{0, 0})
	for _, tc := range []struct {
		name      string
		attrs     []*onnxpb.AttributeProto
		wantShape []int
		want      []float32
	}{
		// forward along axis 1, stacked on axis 0: [[1,10],[3,30],[6,60]]
		{"axis 1", []*onnxpb.AttributeProto{graph.AttrIntsOf("scan_input_axes", 1)}, []int{3, 2}, []float32{1, 10, 3, 30, 6, 60}},
		// reverse input: sums 3, 5, 6 (and 30, 50, 60), stacked on axis -1
		{"reverse in, axis -1 out", []*onnxpb.AttributeProto{graph.AttrIntsOf("scan_input_axes", -1), graph.AttrIntsOf("scan_input_directions", 1), graph.AttrIntsOf("scan_output_axes", -1)},
			[]int{2, 3}, []float32{3, 5, 6, 30, 50, 60}},
		// reverse output: the last step's value first
		{"reverse out", []*onnxpb.AttributeProto{graph.AttrIntsOf("scan_input_axes", 1), graph.AttrIntsOf("scan_output_directions", 1)}, []int{3, 2}, []float32{6, 60, 3, 30, 1, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(scanModel(t, 16, tc.attrs...), Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			for run := 0; run < 2; run++ {
				out, err := s.Run(map[string]*graph.Tensor{"s0": s0, "x": x})
				if err != nil {
					t.Fatal(err)
				}
				wantFloats(t, "final state", out["sN"], []int{2}, []float32{6, 60})
				wantFloats(t, "scan output", out["ys"], tc.wantShape, tc.want)
				s.Recycle(out)
			}
		})
	}
	// Opset 8: batch 2, sequence 3, the sums per batch entry.
	s, err := NewSession(scanModel(t, 8), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	xb := graph.Float32Tensor([]int{2, 3, 1}, []float32{1, 2, 3, 10, 20, 30})
	sb := graph.Float32Tensor([]int{2, 1}, []float32{0, 100})
	out, err := s.Run(map[string]*graph.Tensor{"s0": sb, "x": xb})
	if err != nil {
		t.Fatal(err)
	}
	wantFloats(t, "opset 8 state", out["sN"], []int{2, 1}, []float32{6, 160})
	wantFloats(t, "opset 8 scan", out["ys"], []int{2, 3, 1}, []float32{1, 3, 6, 110, 130, 160})
	// Scan inputs of different lengths are an error.
	s, err = NewSession(scanModel(t, 16, graph.AttrIntsOf("scan_input_axes", 5)), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(map[string]*graph.Tensor{"s0": s0, "x": x}); err == nil || !strings.Contains(err.Error(), "scan_input_axes") {
		t.Fatalf("an axis out of range: got %v", err)
	}
}

// TestControlFlowAllocatesNothingPerRun: after warm-up, runs of the If,
// Loop and Scan models take every buffer from the pools (the node's and its
// subgraphs').
func TestControlFlowAllocatesNothingPerRun(t *testing.T) {
	loopIn := map[string]*graph.Tensor{"M": graph.Int64Tensor([]int{}, []int64{6}), "c": boolScalar(true),
		"acc0": graph.Float32Tensor([]int{2}, []float32{1, 2}), "x": graph.Float32Tensor([]int{2}, []float32{1, 2}), "stop": graph.Int64Tensor([]int{}, []int64{9})}
	for _, tc := range []struct {
		name string
		m    *graph.Model
		in   map[string]*graph.Tensor
	}{
		{"If", ifModel(t), map[string]*graph.Tensor{"xin": graph.Float32Tensor([]int{3}, []float32{1, 2, 3}), "c": boolScalar(true)}},
		{"Loop", loopModel(t, true, true), loopIn},
		{"Scan", scanModel(t, 16, graph.AttrIntsOf("scan_input_axes", 1)), map[string]*graph.Tensor{"s0": graph.Float32Tensor([]int{2}, []float32{0, 0}), "x": graph.Float32Tensor([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(tc.m, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			made := func() int {
				n := s.ctx.pool.made
				for _, st := range s.steps {
					for _, sg := range subgraphsOf(st.k) {
						n += sg.s.ctx.pool.made
					}
				}
				return n
			}
			var after []int
			for run := 0; run < 12; run++ {
				out, err := s.Run(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				s.Recycle(out)
				after = append(after, made())
			}
			if after[3] != after[11] && !splitForced() {
				t.Fatalf("pool allocations per run keep growing: %v", after)
			}
		})
	}
}

// subgraphsOf lists a control-flow kernel's compiled subgraphs.
func subgraphsOf(k Kernel) []*subgraph {
	switch k := k.(type) {
	case *ifKernel:
		return []*subgraph{k.then, k.els}
	case *loopKernel:
		return []*subgraph{k.body}
	case *scanKernel:
		return []*subgraph{k.body}
	}
	return nil
}
