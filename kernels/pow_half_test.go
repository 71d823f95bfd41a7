package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestPowHalfIsPow: Pow(x, 0.5) through the square root gives math.Pow's
// float32 results, -0, -Inf, negatives and NaN included (subnormals are
// flushed in a session by default, so none here).
func TestPowHalfIsPow(t *testing.T) {
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, 2, 0.25, 1e-30, 3e38, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for range 40 {
		xs = append(xs, float32(len(xs))*0.37)
	}
	got := runOp(t, "Pow", nil, graph.Float32Tensor([]int{len(xs)}, xs), graph.Float32Tensor([]int{}, []float32{0.5}))[0].Float32s()
	for i, v := range xs {
		want := float32(math.Pow(float64(v), 0.5))
		if math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
			t.Fatalf("Pow(%v, 0.5) = %v, want %v", v, got[i], want)
		}
	}
}

// TestPowGeneralIsMathPow: Pow with other exponents (vec.Pow and
// vec.PowScalar, in the kernel and in a fused elementwise chain) gives
// float32(math.Pow) for a scalar exponent, an exponent tensor of x's shape
// and a broadcast row, negatives with integer and fractional exponents,
// zeros, Inf and NaN included.
func TestPowGeneralIsMathPow(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, -2.5, 3e38, 1e-30, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	xs := append([]float32(nil), special...)
	for i := range 300 {
		xs = append(xs, float32(math.Sin(float64(i)))*float32(i%17+1)*0.7)
	}
	n := len(xs)
	exps := make([]float32, n)
	for i := range exps {
		exps[i] = []float32{1.7, -0.3, 3, -2, 0, 0.5, 2.25, -7.5, float32(math.NaN()), 31}[i%10]
	}
	same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b }
	check := func(what string, got []float32, y func(i int) float32) {
		t.Helper()
		for i, v := range xs {
			if want := float32(math.Pow(float64(v), float64(y(i)))); !same(got[i], want) {
				t.Fatalf("%s: Pow(%v, %v) = %v, want %v", what, v, y(i), got[i], want)
			}
		}
	}
	x := graph.Float32Tensor([]int{n}, xs)
	for _, e := range []float32{1.7, -0.3, 3, -2, 2.5} {
		got := runOp(t, "Pow", nil, x, graph.Float32Tensor([]int{}, []float32{e}))[0].Float32s()
		check(fmt.Sprintf("scalar %v", e), got, func(int) float32 { return e })
	}
	got := runOp(t, "Pow", nil, x, graph.Float32Tensor([]int{n}, exps))[0].Float32s()
	check("same shape", got, func(i int) float32 { return exps[i] })
	// A [n/10, 10] x against a row of 10 exponents: the broadcast loop.
	got = runOp(t, "Pow", nil, graph.Float32Tensor([]int{n / 10, 10}, xs), graph.Float32Tensor([]int{10}, exps[:10]))[0].Float32s()
	check("row", got, func(i int) float32 { return exps[i%10] })

	// Fused: (x + 0) ^ y * 1 through the elementwise program, scalar and
	// tensor exponents.
	for _, y := range []*graph.Tensor{graph.Float32Tensor([]int{}, []float32{1.7}), graph.Float32Tensor([]int{n}, exps)} {
		m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
		gr := m.Graph
		in := gr.AddInput("x", graph.Float, []int64{int64(n)})
		a := gr.AddNode("Add", "a", []*graph.Value{in, gr.AddInitializer("zero", graph.Float32Tensor([]int{}, []float32{0}))}, []string{"a"}).Output()
		p := gr.AddNode("Pow", "p", []*graph.Value{a, gr.AddInitializer("y", y)}, []string{"p"}).Output()
		gr.AddOutput(gr.AddNode("Mul", "m", []*graph.Value{p, gr.AddInitializer("one", graph.Float32Tensor([]int{}, []float32{1}))}, []string{"out"}).Output())
		ye := y.Float32s()
		check(fmt.Sprintf("fused %v", y.Shape), runOneStep(t, m, x), func(i int) float32 { return ye[i%len(ye)] })
	}
	// Fused with both operands computed from x: (x * 1) ^ (x * 0.25 + 1),
	// the program's binary op.
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	gr := m.Graph
	c := func(name string, v float32) *graph.Value {
		return gr.AddInitializer(name, graph.Float32Tensor([]int{}, []float32{v}))
	}
	in := gr.AddInput("x", graph.Float, []int64{int64(n)})
	a := gr.AddNode("Mul", "a", []*graph.Value{in, c("one", 1)}, []string{"a"}).Output()
	q := gr.AddNode("Mul", "q", []*graph.Value{in, c("quarter", 0.25)}, []string{"q"}).Output()
	b := gr.AddNode("Add", "b", []*graph.Value{q, c("one2", 1)}, []string{"b"}).Output()
	gr.AddOutput(gr.AddNode("Pow", "p", []*graph.Value{a, b}, []string{"out"}).Output())
	check("fused binary", runOneStep(t, m, x), func(i int) float32 { return xs[i]*0.25 + 1 })
}

// runOneStep runs m on x at one thread, fails unless the whole graph ran as
// one (fused) step, and returns its output "out".
func runOneStep(t *testing.T, m *graph.Model, x *graph.Tensor) []float32 {
	t.Helper()
	s, err := NewSession(m, Options{Threads: 1, Profile: true})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := s.Run(map[string]*graph.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	if steps := s.Profile().Steps; len(steps) != 1 {
		t.Fatalf("%d steps, want the one fused step", len(steps))
	}
	return outs["out"].Float32s()
}
