package kernels

import (
	"math"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

func dqmmModel(b *graph.Tensor, scale, zp, bias *graph.Tensor, k int) *graph.Model {
	m := graph.NewModel(graph.Opset{Version: 17}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := m.Graph
	a := g.AddInput("A", graph.Float, []int64{3, int64(k)})
	ins := []*graph.Value{a, g.AddInitializer("B", b), g.AddInitializer("b_scale", scale), nil, nil}
	if zp != nil {
		ins[3] = g.AddInitializer("b_zero_point", zp)
	}
	if bias != nil {
		ins[4] = g.AddInitializer("bias", bias)
	}
	nd := g.AddNode("DynamicQuantizeMatMul", "dqmm", ins, []string{"Y"})
	nd.Domain = "com.microsoft"
	g.AddOutput(nd.Output())
	return m
}

// TestDynamicQuantizeMatMul: A quantized per tensor to uint8, times B with a
// zero point per column, rescaled by a_scale x b_scale[n] plus bias, as
// computed by hand; malformed operands are one-line errors.
func TestDynamicQuantizeMatMul(t *testing.T) {
	const k, n = 5, 3
	a := seededFloats(3*k, 4)
	bq := []uint8{10, 200, 128, 0, 255, 7, 90, 91, 92, 30, 140, 250, 128, 129, 127}
	bt, _ := graph.TensorOf(graph.Uint8, []int{k, n}, bq)
	zpt, _ := graph.TensorOf(graph.Uint8, []int{n}, []uint8{128, 100, 3})
	scales := []float32{0.01, 0.02, 0.005}
	bias := []float32{0.5, -1, 2}
	m := dqmmModel(bt, graph.Float32Tensor([]int{n}, scales), zpt, graph.Float32Tensor([]int{n}, bias), k)
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{"A": graph.Float32Tensor([]int{3, k}, a)})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := float32(0), float32(0)
	for _, v := range a {
		lo, hi = min(lo, v), max(hi, v)
	}
	as := (hi - lo) / 255
	azp := math.RoundToEven(float64(-lo / as))
	zps := []float64{128, 100, 3}
	y := out["Y"].Float32s()
	for r := 0; r < 3; r++ {
		for c := 0; c < n; c++ {
			var acc float64
			for i := 0; i < k; i++ {
				aq := math.Max(0, math.Min(255, math.RoundToEven(float64(a[r*k+i]/as))+azp))
				acc += (aq - azp) * (float64(bq[i*n+c]) - zps[c])
			}
			want := float32(acc)*(as*scales[c]) + bias[c]
			if d := math.Abs(float64(y[r*n+c] - want)); d > 1e-5*(1+math.Abs(float64(want))) {
				t.Errorf("Y[%d,%d] = %v, want %v", r, c, y[r*n+c], want)
			}
		}
	}
	b3, _ := graph.TensorOf(graph.Uint8, []int{1, k, n}, bq)
	for _, c := range []struct {
		m    *graph.Model
		want string
	}{
		{dqmmModel(bt, graph.Float32Tensor([]int{2}, scales[:2]), nil, nil, k), "2 scales for 3 columns"},
		{dqmmModel(bt, graph.Float32Tensor([]int{n}, scales), nil, graph.Float32Tensor([]int{2}, bias[:2]), k), "bias of 2 values"},
		{dqmmModel(b3, graph.Float32Tensor([]int{n}, scales), nil, nil, k), "want 2-D"},
	} {
		s, err := NewSession(c.m, Options{Threads: 1})
		if err == nil {
			_, err = s.Run(map[string]*graph.Tensor{"A": graph.Float32Tensor([]int{3, k}, a)})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v, want one line with %q", err, c.want)
		}
	}
}
