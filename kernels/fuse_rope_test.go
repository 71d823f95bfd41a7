package kernels

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// ropeModel spells out rotate-half RoPE on x [2, 6, 3, d] with cos and sin
// inputs of the given shape; lo and hi are the Slices' [start, end).
func ropeModel(d int, cosShape []int, lo, hi [2]int64, concatAxis int64) *graph.Model {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	dims := func(s []int) []int64 {
		out := make([]int64, len(s))
		for i, v := range s {
			out[i] = int64(v)
		}
		return out
	}
	x := g.AddInput("x", graph.Float, dims([]int{2, 6, 3, d}))
	cos := g.AddInput("cos", graph.Float, dims(cosShape))
	sin := g.AddInput("sin", graph.Float, dims(cosShape))
	c := func(name string, v int64) *graph.Value {
		return g.AddInitializer(name, graph.Int64Tensor([]int{1}, []int64{v}))
	}
	axis := c("axis", -1)
	x1 := g.AddNode("Slice", "s1", []*graph.Value{x, c("lo0", lo[0]), c("lo1", lo[1]), axis}, []string{"x1"}).Output()
	x2 := g.AddNode("Slice", "s2", []*graph.Value{x, c("hi0", hi[0]), c("hi1", hi[1]), axis}, []string{"x2"}).Output()
	n := g.AddNode("Neg", "neg", []*graph.Value{x2}, []string{"n"}).Output()
	rot := g.AddNode("Concat", "cat", []*graph.Value{n, x1}, []string{"rot"}, graph.AttrIntOf("axis", concatAxis)).Output()
	a := g.AddNode("Mul", "mc", []*graph.Value{x, cos}, []string{"a"}).Output()
	b := g.AddNode("Mul", "ms", []*graph.Value{sin, rot}, []string{"b"}).Output()
	y := g.AddNode("Add", "add", []*graph.Value{b, a}, []string{"y"}).Output()
	g.AddOutput(y)
	return m
}

// TestFusedRopeIsExact: the fused step gives the unfused ops' bits, with
// cos and sin broadcast in different ways; Slices that are not the two
// halves, or a Concat on another axis, run the unfused ops.
func TestFusedRopeIsExact(t *testing.T) {
	half := func(d int) ([2]int64, [2]int64) {
		return [2]int64{0, int64(d / 2)}, [2]int64{int64(d / 2), math.MaxInt64}
	}
	type tc struct {
		name   string
		d      int
		cos    []int
		lo, hi [2]int64
		axis   int64
	}
	lo8, hi8 := half(8)
	lo16, hi16 := half(16)
	cases := []tc{
		{"per-position", 8, []int{6, 1, 8}, lo8, hi8, 3},
		{"full-shape", 16, []int{2, 6, 3, 16}, lo16, hi16, -1},
		{"one-row", 8, []int{8}, lo8, hi8, -1},
		{"negative-starts", 8, []int{6, 1, 8}, [2]int64{-8, -4}, [2]int64{-4, 8}, -1},
		{"not-halves", 8, []int{6, 1, 8}, [2]int64{0, 3}, [2]int64{3, 8}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ropeModel(c.d, c.cos, c.lo, c.hi, c.axis)
			r := rand.New(rand.NewPCG(3, 4))
			mk := func(shape []int) *graph.Tensor {
				x := graph.NewTensor(graph.Float, shape)
				for i, d := 0, x.Float32s(); i < len(d); i++ {
					d[i] = float32(r.NormFloat64() * 10)
				}
				return x
			}
			in := map[string]*graph.Tensor{"x": mk([]int{2, 6, 3, c.d}), "cos": mk(c.cos), "sin": mk(c.cos)}
			for _, split := range []int{0, 3} {
				parallel.ForceSplit(split)
				fused, err := NewSession(m, Options{Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				plain, err := NewSession(m, Options{Threads: 2, NoFusion: true})
				if err != nil {
					t.Fatal(err)
				}
				if len(fused.steps) != 1 {
					t.Fatalf("%d steps after fusion, want 1", len(fused.steps))
				}
				_, isRope := fused.steps[0].k.(*ropeKernel)
				a, err := fused.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				b, err := plain.Run(in)
				parallel.ForceSplit(0)
				if err != nil {
					t.Fatal(err)
				}
				if !isRope {
					t.Fatal("not fused as RoPE")
				}
				got, want := a["y"].Float32s(), b["y"].Float32s()
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("split %d: y[%d] = %v fused, %v unfused", split, i, got[i], want[i])
					}
				}
			}
		})
	}
}

// withFusions compiles m without fusion, then applies only the given ones.
func withFusions(t *testing.T, m *graph.Model, fuse ...func(s *Session, escapes map[int]bool)) *Session {
	t.Helper()
	s, err := NewSession(m, Options{Threads: 2, NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	escapes := map[int]bool{}
	for _, o := range s.outputs {
		escapes[o.slot] = true
	}
	for _, f := range fuse {
		f(s, escapes)
	}
	for i := range s.steps {
		s.steps[i].free = nil
	}
	s.planFrees()
	return s
}

// TestFusedStoriesIsExact: on stories260K, RoPE (two per layer) and
// attention (one per layer) are fused, and the logits are the bits of the
// ops they replace. (The norm and SiLU fusions are exact only to 1e-6.)
func TestFusedStoriesIsExact(t *testing.T) {
	dir := storiesDir(t)
	m, err := graph.Load(filepath.Join(dir, "stories260K.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*graph.Tensor{"input_ids": storiesWindow(t, dir, 3)}
	fused := withFusions(t, m, (*Session).fuseRope, (*Session).fuseAttention)
	plain := withFusions(t, m)
	ropes, attns := 0, 0
	for _, st := range fused.steps {
		switch st.k.(type) {
		case *ropeKernel:
			ropes++
		case *attentionKernel:
			attns++
		}
	}
	if ropes != 10 || attns != 5 {
		t.Errorf("fused %d RoPE and %d attention steps, want 10 and 5", ropes, attns)
	}
	a, err := fused.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	got, want := a["logits"].Float32s(), b["logits"].Float32s()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("logits[%d] = %v fused, %v unfused", i, got[i], want[i])
		}
	}
}
