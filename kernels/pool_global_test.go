package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// TestGlobalAveragePool runs GlobalAveragePool on 1 and 2 threads (channels
// split between them) over 1-D, 2-D and 3-D planes, batches of 1 and 2, and
// MobileNet's 1280 planes of 7x7: each output is the float64 sum of its
// plane (vec.Sum's order, bit for bit) over the plane's size, and within a
// float32 rounding of the sequential float64 mean.
func TestGlobalAveragePool(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][]int{{1, 1280, 7, 7}, {2, 3, 5, 4}, {2, 5, 9}, {1, 2, 2, 3, 4}, {1, 3, 1, 1}, {2, 700, 8, 8}} {
		m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
		x := m.Graph.AddInput("x", graph.Float, nil)
		m.Graph.AddOutput(m.Graph.AddNode("GlobalAveragePool", "gap", []*graph.Value{x}, []string{"y"}).Output())
		in := graph.Float32Tensor(shape, randFloats(r, graph.Numel(shape)))
		plane := graph.Numel(shape[2:])
		xd := in.Float32s()
		for _, threads := range []int{1, 2} {
			name := fmt.Sprintf("%v threads=%d", shape, threads)
			sess, err := NewSession(m, Options{Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			out, err := sess.Run(map[string]*graph.Tensor{"x": in})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			y := out["y"]
			want := []int{shape[0], shape[1]}
			for range shape[2:] {
				want = append(want, 1)
			}
			if !slices.Equal(y.Shape, want) {
				t.Fatalf("%s: output shape %v, want %v", name, y.Shape, want)
			}
			got := y.Float32s()
			if len(got) != shape[0]*shape[1] {
				t.Fatalf("%s: %d outputs", name, len(got))
			}
			for i, g := range got {
				row := xd[i*plane : (i+1)*plane]
				if want := float32(vec.Sum(row) / float64(plane)); math.Float32bits(g) != math.Float32bits(want) {
					t.Fatalf("%s: out[%d] = %v, want %v", name, i, g, want)
				}
				ref := 0.0
				for _, v := range row {
					ref += float64(v)
				}
				ref /= float64(plane)
				if math.Abs(float64(g)-ref) > 1e-6*(math.Abs(ref)+1) {
					t.Fatalf("%s: out[%d] = %v, float64 mean %v", name, i, g, ref)
				}
			}
		}
	}
}
