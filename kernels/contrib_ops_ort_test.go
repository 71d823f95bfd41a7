//go:build ort

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
)

// opInput is one input of a single-op test graph: fed at run time, or an
// initializer when konst is set (scalars and bool tensors, which the ORT
// bridge does not feed). A nil tensor is an omitted optional input.
type opInput struct {
	t     *graph.Tensor
	konst bool
}

type opCase struct {
	name    string
	domain  string
	op      string
	opset   int64 // of the ONNX domain
	attrs   []*onnxpb.AttributeProto
	inputs  []opInput
	outputs []string         // "" for an output left out; the float32 ones are compared
	compare []bool           // which outputs to compare (nil: all named)
	types   []graph.DataType // output types where not float32
}

func fin(t *graph.Tensor) opInput                   { return opInput{t: t} }
func kin(t *graph.Tensor) opInput                   { return opInput{t: t, konst: true} }
func none() opInput                                 { return opInput{} }
func ai(n string, v int64) *onnxpb.AttributeProto   { return graph.AttrIntOf(n, v) }
func af(n string, v float32) *onnxpb.AttributeProto { return graph.AttrFloatOf(n, v) }

func rnd(seed uint64, shape ...int) *graph.Tensor {
	r := rand.New(rand.NewPCG(seed, 3))
	d := make([]float32, graph.Numel(shape))
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return graph.Float32Tensor(shape, d)
}

func i32(shape []int, v ...int32) *graph.Tensor { return int32Tensor(shape, v) }

func i64(shape []int, v ...int64) *graph.Tensor {
	t := graph.NewTensor(graph.Int64, shape)
	copy(t.Int64s(), v)
	return t
}

// ropeCache is a (rows, half) cos and sin cache for theta 10000.
func ropeCache(rows, half int) (*graph.Tensor, *graph.Tensor) {
	c, s := make([]float32, rows*half), make([]float32, rows*half)
	for p := 0; p < rows; p++ {
		for i := 0; i < half; i++ {
			ang := float64(p) / math.Pow(10000, float64(i)/float64(half))
			c[p*half+i], s[p*half+i] = float32(math.Cos(ang)), float32(math.Sin(ang))
		}
	}
	return graph.Float32Tensor([]int{rows, half}, c), graph.Float32Tensor([]int{rows, half}, s)
}

func (c opCase) model() (*graph.Model, map[string]*graph.Tensor) {
	opset := c.opset
	if opset == 0 {
		opset = 17
	}
	m := graph.NewModel(graph.Opset{Version: opset}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := m.Graph
	ins, feeds := addOpInputs(g, c.inputs)
	outs := make([]string, len(c.outputs))
	for i, o := range c.outputs {
		if o != "" {
			outs[i] = o
		}
	}
	nd := g.AddNode(c.op, "node", ins, outs, c.attrs...)
	nd.Domain = c.domain
	for i, v := range nd.Outputs {
		if v != nil && (c.compare == nil || c.compare[i]) {
			dt := graph.Float
			if i < len(c.types) && c.types[i] != graph.Undefined {
				dt = c.types[i]
			}
			v.SetTensorType(dt, nil)
			g.AddOutput(v)
		}
	}
	return m, feeds
}

// addOpInputs adds a single-op graph's inputs: initializers for the konst
// ones, graph inputs (named in0, in1, ...) fed from feeds for the others.
func addOpInputs(g *graph.Graph, inputs []opInput) (ins []*graph.Value, feeds map[string]*graph.Tensor) {
	feeds = map[string]*graph.Tensor{}
	for i, in := range inputs {
		name := fmt.Sprintf("in%d", i)
		switch {
		case in.t == nil:
			ins = append(ins, nil)
		case in.konst:
			ins = append(ins, g.AddInitializer(name, in.t))
		default:
			dims := make([]int64, len(in.t.Shape))
			for j, d := range in.t.Shape {
				dims[j] = int64(d)
			}
			ins = append(ins, g.AddInput(name, in.t.DType, dims))
			feeds[name] = in.t
		}
	}
	return ins, feeds
}

// runBoth saves m to path and runs it in ONNX Runtime (one thread, no graph
// optimizations) and in onnxq, returning both outputs by name.
func runBoth(t *testing.T, path string, m *graph.Model, feeds map[string]*graph.Tensor) (got, want map[string]*graph.Tensor) {
	t.Helper()
	if err := graph.Save(m, path); err != nil {
		t.Fatal(err)
	}
	want, err := ortref.RunFileWith(path, 1, ortref.OptNone, feeds)
	if err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	s, err := NewSession(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err = s.Run(feeds); err != nil {
		t.Fatal(err)
	}
	return got, want
}

// checkOps runs each case in onnxq and ONNX Runtime (no graph optimizations)
// and requires every compared output to agree to tol, absolute, or relative to
// the output's largest magnitude where that is above 1.
func checkOps(t *testing.T, cases []opCase, tol float64) {
	t.Helper()
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, feeds := c.model()
			got, want := runBoth(t, filepath.Join(dir, fmt.Sprintf("op%d.onnx", i)), m, feeds)
			for name, w := range want {
				if w.DType == graph.Int32 || w.DType == graph.Int64 {
					g, wd := got[name].Data(), w.Data()
					t.Logf("%s %s: onnxq %v, ONNX Runtime %v", c.op, name, g, wd)
					if fmt.Sprint(g) != fmt.Sprint(wd) || !sameDims(got[name].Shape, w.Shape...) {
						t.Errorf("%s: %s is %v %v, ONNX Runtime %v %v", c.name, name, got[name].Shape, g, w.Shape, wd)
					}
					continue
				}
				d := maxAbsDiff(t, got[name], w)
				scale := 1.0
				for _, v := range w.Float32s() {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				t.Logf("%s %s %v: max abs diff %.2e (max abs value %.3g)", c.op, name, w.Shape, d, scale)
				if d > tol*scale {
					t.Errorf("%s: %s differs from ONNX Runtime by %.3e > %g", c.name, name, d, tol)
				}
			}
		})
	}
}

func TestContribActivationsMatchORT(t *testing.T) {
	ms := "com.microsoft"
	checkOps(t, []opCase{
		{name: "Gelu", domain: ms, op: "Gelu", inputs: []opInput{fin(rnd(1, 2, 3, 16))}, outputs: []string{"Y"}},
		{name: "BiasGelu", domain: ms, op: "BiasGelu", inputs: []opInput{fin(rnd(2, 2, 3, 16)), fin(rnd(3, 16))}, outputs: []string{"Y"}},
		{name: "FastGelu", domain: ms, op: "FastGelu", inputs: []opInput{fin(rnd(4, 2, 3, 16))}, outputs: []string{"Y"}},
		{name: "FastGeluBias", domain: ms, op: "FastGelu", inputs: []opInput{fin(rnd(5, 2, 3, 16)), fin(rnd(6, 16))}, outputs: []string{"Y"}},
		{name: "QuickGelu", domain: ms, op: "QuickGelu", inputs: []opInput{fin(rnd(7, 2, 3, 16))}, outputs: []string{"Y"}},
		{name: "QuickGeluAlpha", domain: ms, op: "QuickGelu", attrs: []*onnxpb.AttributeProto{af("alpha", 1)}, inputs: []opInput{fin(rnd(8, 5, 16))}, outputs: []string{"Y"}},
	}, 1e-5)
}

func TestContribNormsMatchORT(t *testing.T) {
	ms := "com.microsoft"
	eps := af("epsilon", 1e-5)
	word, pos, seg := rnd(30, 50, 16), rnd(31, 20, 16), rnd(32, 2, 16)
	ids := i32([]int{2, 5}, 3, 49, 7, 0, 11, 8, 8, 1, 20, 33)
	segIDs := i32([]int{2, 5}, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0)
	mask := i32([]int{2, 5}, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0)
	checkOps(t, []opCase{
		{name: "SkipLayerNorm", domain: ms, op: "SkipLayerNormalization", attrs: []*onnxpb.AttributeProto{eps},
			inputs:  []opInput{fin(rnd(10, 2, 4, 16)), fin(rnd(11, 2, 4, 16)), fin(rnd(12, 16)), fin(rnd(13, 16)), fin(rnd(14, 16))},
			outputs: []string{"Y", "mean", "inv_std", "sum"}},
		{name: "SkipLayerNormBroadcastSkip", domain: ms, op: "SkipLayerNormalization",
			inputs:  []opInput{fin(rnd(15, 2, 4, 16)), fin(rnd(16, 4, 16)), fin(rnd(17, 16))},
			outputs: []string{"Y", "", "", "sum"}},
		{name: "SkipSimplifiedLayerNorm", domain: ms, op: "SkipSimplifiedLayerNormalization", attrs: []*onnxpb.AttributeProto{eps},
			inputs:  []opInput{fin(rnd(18, 2, 4, 16)), fin(rnd(19, 2, 4, 16)), fin(rnd(20, 16)), fin(rnd(21, 16))},
			outputs: []string{"Y", "mean", "inv_std", "sum"}},
		{name: "SkipSimplifiedLayerNorm2D", domain: ms, op: "SkipSimplifiedLayerNormalization",
			inputs:  []opInput{fin(rnd(22, 6, 16)), fin(rnd(23, 6, 16)), fin(rnd(24, 16))},
			outputs: []string{"Y"}},
		{name: "SimplifiedLayerNorm", op: "SimplifiedLayerNormalization", attrs: []*onnxpb.AttributeProto{eps},
			inputs: []opInput{fin(rnd(25, 2, 4, 16)), fin(rnd(26, 16))}, outputs: []string{"Y", "inv_std"}},
		{name: "SimplifiedLayerNormAxis1", op: "SimplifiedLayerNormalization", attrs: []*onnxpb.AttributeProto{ai("axis", 1)},
			inputs: []opInput{fin(rnd(27, 2, 4, 16)), fin(rnd(28, 4, 16))}, outputs: []string{"Y"}},
		{name: "RMSNormalization", op: "RMSNormalization", opset: 23, attrs: []*onnxpb.AttributeProto{eps},
			inputs: []opInput{fin(rnd(29, 2, 4, 16)), fin(rnd(33, 16))}, outputs: []string{"Y"}},
		{name: "RMSNormalizationAxis1", op: "RMSNormalization", opset: 23, attrs: []*onnxpb.AttributeProto{ai("axis", 1)},
			inputs: []opInput{fin(rnd(34, 2, 4, 16)), fin(rnd(35, 4, 16))}, outputs: []string{"Y"}},
		{name: "EmbedLayerNormSegmentsMask", domain: ms, op: "EmbedLayerNormalization", attrs: []*onnxpb.AttributeProto{eps},
			inputs:  []opInput{fin(ids), fin(segIDs), fin(word), fin(pos), fin(seg), fin(rnd(36, 16)), fin(rnd(37, 16)), fin(mask)},
			outputs: []string{"Y", "mask_index", "sum"}, types: []graph.DataType{graph.Float, graph.Int32}},
		{name: "EmbedLayerNormPositionIDs", domain: ms, op: "EmbedLayerNormalization",
			inputs:  []opInput{fin(ids), none(), fin(word), fin(pos), none(), fin(rnd(38, 16)), fin(rnd(39, 16)), none(), fin(i32([]int{1, 5}, 4, 3, 9, 0, 19))},
			outputs: []string{"Y", "mask_index", "sum"}, types: []graph.DataType{graph.Float, graph.Int32}},
	}, 1e-5)
}

func TestRotaryEmbeddingMatchesORT(t *testing.T) {
	ms := "com.microsoft"
	cos, sin := ropeCache(16, 4)
	cosP, sinP := ropeCache(16, 2)
	pos := i64([]int{2, 5}, 0, 1, 2, 3, 4, 7, 8, 9, 10, 11)
	// Per-token caches for ONNX RotaryEmbedding without position ids.
	tokCos, tokSin := graph.NewTensor(graph.Float, []int{2, 5, 4}), graph.NewTensor(graph.Float, []int{2, 5, 4})
	for i, p := range pos.Int64s() {
		copy(tokCos.Float32s()[i*4:(i+1)*4], cos.Float32s()[p*4:(p+1)*4])
		copy(tokSin.Float32s()[i*4:(i+1)*4], sin.Float32s()[p*4:(p+1)*4])
	}
	checkOps(t, []opCase{
		{name: "MS3D", domain: ms, op: "RotaryEmbedding", inputs: []opInput{fin(rnd(40, 2, 5, 32)), fin(pos), fin(cos), fin(sin)}, outputs: []string{"Y"}},
		{name: "MS3DInterleaved", domain: ms, op: "RotaryEmbedding", attrs: []*onnxpb.AttributeProto{ai("interleaved", 1)},
			inputs: []opInput{fin(rnd(41, 2, 5, 32)), fin(pos), fin(cos), fin(sin)}, outputs: []string{"Y"}},
		{name: "MSScaleAttribute", domain: ms, op: "RotaryEmbedding", attrs: []*onnxpb.AttributeProto{af("scale", 2)},
			inputs: []opInput{fin(rnd(49, 2, 5, 32)), fin(pos), fin(cos), fin(sin)}, outputs: []string{"Y"}},
		{name: "MS4D", domain: ms, op: "RotaryEmbedding", inputs: []opInput{fin(rnd(42, 2, 4, 5, 8)), fin(pos), fin(cos), fin(sin)}, outputs: []string{"Y"}},
		{name: "MSStartPosition", domain: ms, op: "RotaryEmbedding", inputs: []opInput{fin(rnd(43, 2, 5, 32)), fin(i64([]int{1}, 6)), fin(cos), fin(sin)}, outputs: []string{"Y"}},
		{name: "MSPartial", domain: ms, op: "RotaryEmbedding", attrs: []*onnxpb.AttributeProto{ai("num_heads", 4), ai("rotary_embedding_dim", 4)},
			inputs: []opInput{fin(rnd(44, 2, 5, 32)), fin(pos), fin(cosP), fin(sinP)}, outputs: []string{"Y"}},
		{name: "ONNX4D", op: "RotaryEmbedding", opset: 23, inputs: []opInput{fin(rnd(45, 2, 4, 5, 8)), fin(cos), fin(sin), fin(pos)}, outputs: []string{"Y"}},
		{name: "ONNX3DInterleaved", op: "RotaryEmbedding", opset: 23, attrs: []*onnxpb.AttributeProto{ai("num_heads", 4), ai("interleaved", 1)},
			inputs: []opInput{fin(rnd(46, 2, 5, 32)), fin(cos), fin(sin), fin(pos)}, outputs: []string{"Y"}},
		{name: "ONNXTokenCaches", op: "RotaryEmbedding", opset: 23, attrs: []*onnxpb.AttributeProto{ai("num_heads", 4)},
			inputs: []opInput{fin(rnd(47, 2, 5, 32)), fin(tokCos), fin(tokSin)}, outputs: []string{"Y"}},
		{name: "ONNXPartial", op: "RotaryEmbedding", opset: 23, attrs: []*onnxpb.AttributeProto{ai("num_heads", 4), ai("rotary_embedding_dim", 4)},
			inputs: []opInput{fin(rnd(48, 2, 5, 32)), fin(cosP), fin(sinP), fin(pos)}, outputs: []string{"Y"}},
	}, 1e-5)
}
