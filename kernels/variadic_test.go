package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestVariadicVectorPath: Max, Min, Sum and Mean of two to four float32
// inputs of one shape (the vector path) give the bits of folding the inputs
// in order element by element, NaN propagated by Max and Min, on one and
// two threads and on lengths that end inside a chunk and a SIMD vector.
func TestVariadicVectorPath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 2048, 5000, 70001} {
		for k := 2; k <= 4; k++ {
			in := make([]*graph.Tensor, k)
			for i := range in {
				in[i] = graph.NewTensor(graph.Float, []int{1, n})
				d := in[i].Float32s()
				for j := range d {
					d[j] = float32(r.NormFloat64())
					switch r.IntN(50) {
					case 0:
						d[j] = float32(math.NaN())
					case 1:
						d[j] = float32(math.Copysign(0, -1))
					}
				}
			}
			for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
				want := make([]float32, n)
				for j := range want {
					acc := in[0].Float32s()[j]
					for _, x := range in[1:] {
						v := x.Float32s()[j]
						switch {
						case op == "Max" && (v != v || v > acc), op == "Min" && (v != v || v < acc):
							acc = v
						case op == "Sum" || op == "Mean":
							acc += v
						}
					}
					if op == "Mean" {
						acc /= float32(k)
					}
					want[j] = acc
				}
				for _, threads := range []int{1, 2} {
					out, err := runOpThreads(threads, op, nil, in...)
					if err != nil {
						t.Fatal(err)
					}
					for j, v := range out[0].Float32s() {
						if w := want[j]; math.Float32bits(v) != math.Float32bits(w) && !(v != v && w != w) {
							t.Fatalf("%s of %d inputs of %d, %d threads: [%d] = %v, want %v", op, k, n, threads, j, v, w)
						}
					}
				}
			}
		}
	}
}
