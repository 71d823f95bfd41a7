package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestPadConstantMatchesDefinition: constant Pad, copied row by row, against
// the definition element by element, on 300 random shapes of rank 1-4 with
// pads from -2 (cropping) to 3 on each side and a non-zero value.
func TestPadConstantMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for trial := 0; trial < 300; trial++ {
		rank := 1 + r.IntN(4)
		in, pads, out := make([]int, rank), make([]int64, 2*rank), make([]int, rank)
		for i := range in {
			in[i] = 1 + r.IntN(5)
			pads[i], pads[i+rank] = int64(r.IntN(6)-2), int64(r.IntN(6)-2)
			out[i] = in[i] + int(pads[i]+pads[i+rank])
			if out[i] < 0 {
				pads[i], out[i] = 0, in[i]+int(pads[i+rank])
			}
			if out[i] < 0 {
				pads[i+rank], out[i] = 0, in[i]
			}
		}
		x := graph.Float32Tensor(in, randFloats(r, graph.Numel(in)))
		got, err := runNode(t, "", "Pad", 18, nil, []string{"y"}, x, graph.Int64Tensor([]int{2 * rank}, pads), graph.Float32Tensor(nil, []float32{1.5}))
		if err != nil {
			t.Fatalf("in %v pads %v: %v", in, pads, err)
		}
		y := got["y"]
		if !slices.Equal(y.Shape, out) {
			t.Fatalf("in %v pads %v: shape %v, want %v", in, pads, y.Shape, out)
		}
		os, xs := stridesOf(out), stridesOf(in)
		yd, xd := y.Float32s(), x.Float32s()
		for o := range yd {
			want, src := float32(1.5), 0
			for d := 0; d < rank; d++ {
				s := o/os[d]%out[d] - int(pads[d])
				if s < 0 || s >= in[d] {
					src = -1
					break
				}
				src += s * xs[d]
			}
			if src >= 0 {
				want = xd[src]
			}
			if yd[o] != want {
				t.Fatalf("in %v pads %v: y[%d] = %v, want %v", in, pads, o, yd[o], want)
			}
		}
	}
}
