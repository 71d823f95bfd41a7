package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestWhereSelectsBits: float32 Where with random conditions, a full and a
// scalar branch either way round or two full ones, a condition broadcast
// over heads,
// picks each element's bits (NaN payloads and -0 included) as the
// definition does.
func TestWhereSelectsBits(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	cs, xs := []int{1, 1, 9, 10}, []int{1, 3, 9, 10}
	cond := make([]bool, graph.Numel(cs))
	for i := range cond {
		cond[i] = r.IntN(2) == 0
	}
	xv := randFloats(r, graph.Numel(xs))
	xv[0], xv[1] = float32(math.Copysign(0, -1)), math.Float32frombits(0x7fc01234)
	c := tensorOf(t, graph.Bool, cs, cond)
	x := graph.Float32Tensor(xs, xv)
	s := graph.Float32Tensor([]int{}, []float32{-1e4})
	neg := graph.Float32Tensor(xs, make([]float32, len(xv)))
	for i, v := range xv {
		neg.Float32s()[i] = -v
	}
	for _, swap := range []bool{false, true} {
		a, b := x, s
		if swap {
			a, b = s, x
		}
		got := runOp(t, "Where", nil, c, a, b)[0].Float32s()
		both := runOp(t, "Where", nil, c, x, neg)[0].Float32s() // two full branches
		for i := range got {
			ci := i % len(cond)
			if want := map[bool]float32{true: xv[i], false: -xv[i]}[cond[ci]]; math.Float32bits(both[i]) != math.Float32bits(want) {
				t.Fatalf("two tensors: out[%d] = %v, want %v", i, both[i], want)
			}
			want := float32(-1e4)
			if cond[ci] != swap {
				want = xv[i]
			}
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("swap %v: out[%d] = %v, want %v", swap, i, got[i], want)
			}
		}
	}
}
