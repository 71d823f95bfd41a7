package kernels

import (
	"math"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

func mmitfModel(a, b, as, bs, azp, bzp, bias *graph.Tensor) *graph.Model {
	m := graph.NewModel(graph.Opset{Version: 17}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := m.Graph
	var ins []*graph.Value
	for i, t := range []*graph.Tensor{a, b, as, bs, azp, bzp, bias} {
		if t == nil {
			ins = append(ins, nil)
			continue
		}
		ins = append(ins, g.AddInitializer([]string{"A", "B", "a_scale", "b_scale", "a_zp", "b_zp", "bias"}[i], t))
	}
	nd := g.AddNode("MatMulIntegerToFloat", "mmitf", ins, []string{"Y"})
	nd.Domain = "com.microsoft"
	g.AddOutput(nd.Output())
	return m
}

// TestMatMulIntegerToFloat: uint8 A with a zero point, int8 B with one per
// column, Y = acc x a_scale x b_scale[n] + bias as computed by hand; per-row
// A scales (which ONNX Runtime refuses) and mismatched operands are one-line
// errors.
func TestMatMulIntegerToFloat(t *testing.T) {
	const m, k, n = 2, 3, 2
	aq := []uint8{1, 128, 255, 200, 0, 130}
	bq := []int8{-5, 7, 127, -128, 3, 0}
	a, _ := graph.TensorOf(graph.Uint8, []int{m, k}, aq)
	b, _ := graph.TensorOf(graph.Int8, []int{k, n}, bq)
	azp, _ := graph.TensorOf(graph.Uint8, nil, []uint8{128})
	bzp, _ := graph.TensorOf(graph.Int8, []int{n}, []int8{1, -2})
	as := graph.Float32Tensor(nil, []float32{0.5})
	bs := graph.Float32Tensor([]int{n}, []float32{0.01, 0.03})
	bias := graph.Float32Tensor([]int{n}, []float32{1, -1})
	s, err := NewSession(mmitfModel(a, b, as, bs, azp, bzp, bias), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(nil)
	if err != nil {
		t.Fatal(err)
	}
	y := out["Y"].Float32s()
	zb := []int{1, -2}
	for r := 0; r < m; r++ {
		for c := 0; c < n; c++ {
			acc := 0
			for i := 0; i < k; i++ {
				acc += (int(aq[r*k+i]) - 128) * (int(bq[i*n+c]) - zb[c])
			}
			want := float32(acc)*(0.5*bs.Float32s()[c]) + bias.Float32s()[c]
			if math.Abs(float64(y[r*n+c]-want)) > 1e-6*(1+math.Abs(float64(want))) {
				t.Errorf("Y[%d,%d] = %v, want %v", r, c, y[r*n+c], want)
			}
		}
	}
	rows := graph.Float32Tensor([]int{m, 1}, []float32{0.5, 0.25})
	for _, c := range []struct {
		m    *graph.Model
		want string
	}{
		{mmitfModel(a, b, rows, bs, azp, bzp, nil), "a_scale has 2 values"},
		{mmitfModel(a, b, as, graph.Float32Tensor([]int{3}, []float32{1, 2, 3}), nil, nil, nil), "3 b_scale values for 2 columns"},
		{mmitfModel(a, b, as, bs, nil, nil, graph.Float32Tensor([]int{1}, []float32{1})), "bias of 1 values"},
		{mmitfModel(a, b, nil, bs, nil, nil, nil), "are required"},
	} {
		s, err := NewSession(c.m, Options{Threads: 1})
		if err == nil {
			_, err = s.Run(nil)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v, want one line with %q", err, c.want)
		}
	}
}
