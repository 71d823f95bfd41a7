package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

func halfModel(t *testing.T, build func(uint64) *graph.Model, dt graph.DataType, keepIO bool) *graph.Model {
	t.Helper()
	m := build(1)
	if err := testmodels.ToHalf(m, dt, keepIO); err != nil {
		t.Fatal(err)
	}
	return m
}

func runOne(t *testing.T, m *graph.Model, in *graph.Tensor) *graph.Tensor {
	t.Helper()
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{"input": in})
	if err != nil {
		t.Fatal(err)
	}
	return out["logits"]
}

func uniformTensor(shape []int, seed uint64) *graph.Tensor {
	r := rand.New(rand.NewPCG(seed, 3))
	d := make([]float32, graph.Numel(shape))
	for i := range d {
		d[i] = float32(r.Float64()*2 - 1)
	}
	return graph.Float32Tensor(shape, d)
}

func toHalfTensor(x *graph.Tensor, dt graph.DataType) *graph.Tensor {
	return graph.NarrowFloat32(x, dt)
}

// A half model computes exactly what the float32 model with the same rounded
// weights computes on the same rounded input, up to the rounding of the output.
func TestHalfModelMatchesRoundedFloat(t *testing.T) {
	for _, dt := range []graph.DataType{graph.Float16, graph.BFloat16} {
		for name, build := range map[string]func(uint64) *graph.Model{"convbnrelu": testmodels.ConvBNReLU, "firenet": testmodels.FireNet, "resnetlite": testmodels.ResNetLite} {
			t.Run(dt.Short()+"/"+name, func(t *testing.T) {
				hm := halfModel(t, build, dt, false)
				ref := build(1)
				if err := testmodels.RoundWeights(ref, dt); err != nil {
					t.Fatal(err)
				}
				dims, _ := ref.Graph.Inputs[0].StaticShape()
				x := uniformTensor(dims, 5)
				xh := toHalfTensor(x, dt)
				xr, _ := xh.AsFloat32()
				got := runOne(t, hm, xh)
				if got.DType != dt {
					t.Fatalf("output is %s, the model declares %s", got.DType.Short(), dt.Short())
				}
				want := runOne(t, ref, graph.Float32Tensor(dims, xr))
				g, _ := got.AsFloat32()
				w := want.Float32s()
				ulp := map[graph.DataType]float64{graph.Float16: 1.0 / 2048, graph.BFloat16: 1.0 / 256}[dt]
				var maxRel float64
				for i := range w {
					d := math.Abs(float64(g[i]) - float64(w[i]))
					if d > ulp*math.Abs(float64(w[i]))+1e-7 {
						t.Fatalf("logit %d: %v, rounded float32 model %v", i, g[i], w[i])
					}
					maxRel = math.Max(maxRel, d/math.Max(math.Abs(float64(w[i])), 1e-6))
				}
				t.Logf("max relative difference %.2e (output rounding %.2e)", maxRel, ulp)
			})
		}
	}
}

// Half inputs and outputs convert exactly as the Casts of a keep-IO model do.
func TestHalfIOMatchesCasts(t *testing.T) {
	io := halfModel(t, testmodels.ResNetLite, graph.Float16, false)
	keep := halfModel(t, testmodels.ResNetLite, graph.Float16, true)
	x := uniformTensor([]int{1, 3, 32, 32}, 9)
	a := runOne(t, io, toHalfTensor(x, graph.Float16))
	b := runOne(t, keep, x)
	if b.DType != graph.Float {
		t.Fatalf("keep-IO output is %s", b.DType.Short())
	}
	ad := a.Data().([]graph.Float16Bits)
	for i, v := range b.Float32s() {
		if graph.ToFloat16(v) != ad[i] {
			t.Fatalf("logit %d: float16 I/O %v, keep-IO %v rounded %v", i, ad[i].Float32(), v, graph.ToFloat16(v).Float32())
		}
	}
	// A float32 tensor for a float16 input is rounded to float16 first.
	c := runOne(t, io, x)
	for i, v := range c.Data().([]graph.Float16Bits) {
		if v != ad[i] {
			t.Fatalf("logit %d: float32 input gave %v, float16 input %v", i, v.Float32(), ad[i].Float32())
		}
	}
}

// Cast to a half type rounds to nearest even at that point; Cast back widens.
func TestHalfCastRounds(t *testing.T) {
	for _, dt := range []graph.DataType{graph.Float16, graph.BFloat16} {
		m := graph.NewModel(graph.Opset{Domain: "", Version: 13})
		g := m.Graph
		x := g.AddInput("x", graph.Float, []int64{6})
		h := g.AddNode("Cast", "to_half", []*graph.Value{x}, []string{"h"}, graph.AttrIntOf("to", int64(dt)))
		// Add a float32 constant after widening: the sum is float32, not rounded.
		f := g.AddNode("Cast", "to_float", []*graph.Value{h.Output()}, []string{"f"}, graph.AttrIntOf("to", int64(graph.Float)))
		eps := g.AddInitializer("eps", graph.Float32Tensor(nil, []float32{1e-6}))
		y := g.AddNode("Add", "add", []*graph.Value{f.Output(), eps}, []string{"y"})
		y.Output().SetTensorType(graph.Float, []int64{6})
		g.AddOutput(y.Output())
		s, err := NewSession(m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		// 1 + 2^-11 is a float16 tie (rounds to 1), 1 + 3*2^-11 rounds up to
		// 1 + 2^-9 (even); 1 + 2^-8 is a bfloat16 tie.
		in := []float32{1 + 1.0/2048, 1 + 3.0/2048, 1 + 1.0/256, 1 + 3.0/256, 70000, -0.1}
		out, err := s.Run(map[string]*graph.Tensor{"x": graph.Float32Tensor([]int{6}, in)})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out["y"].Float32s() {
			var r float32
			if dt == graph.Float16 {
				r = graph.ToFloat16(in[i]).Float32()
			} else {
				r = graph.ToBFloat16(in[i]).Float32()
			}
			if want := r + 1e-6; v != want {
				t.Errorf("%s: Cast(%v) + 1e-6 = %v, want %v", dt.Short(), in[i], v, want)
			}
		}
	}
}

func TestHalfInputErrors(t *testing.T) {
	m := halfModel(t, testmodels.ConvBNReLU, graph.Float16, false)
	s, err := NewSession(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Inputs()[0].DType; got != graph.Float16 {
		t.Fatalf("input spec says %s, the model declares float16", got.Short())
	}
	_, err = s.Run(map[string]*graph.Tensor{"input": graph.NewTensor(graph.Int64, []int{1, 3, 32, 32})})
	if err == nil || !strings.Contains(err.Error(), "expected float16") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("int64 for a float16 input: %v", err)
	}
	_, err = s.Run(map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float16, []int{1, 3, 16, 16})})
	if err == nil || !strings.Contains(err.Error(), "expected shape") {
		t.Fatalf("wrong shape: %v", err)
	}
	_, err = s.Run(map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float, []int{1, 3, 16, 16})})
	if err == nil || !strings.Contains(err.Error(), "expected shape") {
		t.Fatalf("wrong float32 shape: %v", err)
	}
}

// The tap sees float32 tensors of a half model, named as in the model; the
// model given to NewSession is not modified.
func TestHalfTapAndModelUntouched(t *testing.T) {
	m := halfModel(t, testmodels.ConvBNReLU, graph.Float16, false)
	before, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]graph.DataType{}
	s, err := NewSession(m, Options{Tap: func(name string, x *graph.Tensor) { seen[name] = x.DType }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float16, []int{1, 3, 32, 32})}); err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		dt, ok := seen[n.Output().Name]
		if !ok {
			t.Errorf("the tap did not see %q", n.Output().Name)
		} else if dt != graph.Float {
			t.Errorf("the tap saw %q as %s", n.Output().Name, dt.Short())
		}
	}
	after, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("NewSession modified the model")
	}
}

func TestHalfTypes(t *testing.T) {
	m := halfModel(t, testmodels.ConvBNReLU, graph.Float16, true)
	ht := HalfTypes(m)
	for _, n := range m.Graph.Nodes {
		o := n.Output()
		want := graph.Float16
		if o.Name == "logits" { // the Cast back to float32
			want = graph.Undefined
		}
		if ht[o.Name] != want {
			t.Errorf("%s output %q: %s, want %s", n.OpType, o.Name, ht[o.Name].Short(), want.Short())
		}
	}
	if _, ok := ht["input"]; ok {
		t.Error("the float32 input is listed as half")
	}
	if len(HalfTypes(testmodels.ConvBNReLU(1))) != 0 {
		t.Error("a float32 model has half values")
	}
}

// TestHalfWindowOutputType: a float16 model that asks a window op for a
// float16 window (output_datatype) and multiplies a float16 signal by it runs
// in float32 inside and returns float16 (the lowering maps output_datatype).
func TestHalfWindowOutputType(t *testing.T) {
	m := graph.NewModel(graph.Opset{Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float16, []int64{8})
	size := g.AddInitializer("size", graph.Int64Tensor([]int{}, []int64{8}))
	w := g.AddNode("HannWindow", "w", []*graph.Value{size}, []string{"win"}, graph.AttrIntOf("output_datatype", int64(graph.Float16)))
	y := g.AddNode("Mul", "mul", []*graph.Value{x, w.Outputs[0]}, []string{"y"})
	y.Outputs[0].SetTensorType(graph.Float16, []int64{8})
	g.AddOutput(y.Outputs[0])
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ones := graph.NarrowFloat32(graph.Float32Tensor([]int{8}, []float32{1, 1, 1, 1, 1, 1, 1, 1}), graph.Float16)
	out, err := s.Run(map[string]*graph.Tensor{"x": ones})
	if err != nil {
		t.Fatal(err)
	}
	got, err := out["y"].AsFloat32()
	if err != nil || out["y"].DType != graph.Float16 {
		t.Fatalf("output %s, %v", out["y"].DType.Short(), err)
	}
	// periodic Hann of 8: 0.5 - 0.5 cos(2 pi n / 8)
	want := []float32{0, 0.1464, 0.5, 0.8535, 1, 0.8535, 0.5, 0.1464}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-3 {
			t.Fatalf("y = %v, want %v", got, want)
		}
	}
}

// TestHalfRunsReuseBuffers: a float16 or bfloat16 model's outputs are
// converted copies, and the float32 buffers they were computed in go back to
// the pool: from the third run on, runs allocate nothing (they took a fresh
// buffer per output every run), and the outputs stay the same.
func TestHalfRunsReuseBuffers(t *testing.T) {
	for _, name := range []string{"squeezenet", "lstm", "transformer"} {
		for _, dt := range []graph.DataType{graph.Float16, graph.BFloat16} {
			m, in := zooModel(t, name)
			if err := testmodels.ToHalf(m, dt, false); err != nil {
				t.Fatal(err)
			}
			x := map[string]*graph.Tensor{}
			for k, v := range in {
				x[k] = toHalfTensor(v, dt)
			}
			s, err := NewSession(m, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			var first []byte
			made3 := 0
			for run := 1; run <= 12; run++ {
				o, err := s.Run(x)
				if err != nil {
					t.Fatal(err)
				}
				out := o[s.OutputNames()[0]]
				if out.DType != dt {
					t.Fatalf("%s %v: output of type %v", name, dt, out.DType)
				}
				b := []byte(fmt.Sprint(out.Data()))
				if first == nil {
					first = b
				} else if string(b) != string(first) {
					t.Fatalf("%s %v: run %d computed other outputs", name, dt, run)
				}
				s.Recycle(o)
				if run == 3 {
					made3 = s.ctx.pool.made
				}
			}
			if made := s.ctx.pool.made; made != made3 && !splitForced() {
				t.Errorf("%s %v: the pool allocated %d buffers by run 3, %d by run 12", name, dt, made3, made)
			}
		}
	}
}
