package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// padSource is where output position o of an axis of n input elements with
// pad before reads from in each mode, or -1 for the constant.
func padSource(mode string, o, before, n int) int {
	s := o - before
	if s >= 0 && s < n {
		return s
	}
	switch mode {
	case "edge":
		if s < 0 {
			return 0
		}
		return n - 1
	case "wrap":
		for s < 0 {
			s += n
		}
		return s % n
	case "reflect":
		// Mirror at both ends without repeating the end element.
		for s < 0 || s >= n {
			if s < 0 {
				s = -s
			}
			if s >= n {
				s = 2*(n-1) - s
			}
		}
		return s
	}
	return -1
}

// Pad, copying rows and split over threads, gives what the element-wise
// definition gives on random shapes, pads (negative ones crop) and modes.
func TestPadMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, forced := range []int{0, 3} {
		parallel.ForceSplit(forced)
		for c := 0; c < 300; c++ {
			mode := []string{"constant", "edge", "reflect", "wrap"}[c%4]
			r := 1 + rng.IntN(4)
			shape := make([]int, r)
			for i := range shape {
				shape[i] = 2 + rng.IntN(5)
			}
			pads := make([]int64, 2*r)
			out := make([]int, r)
			for i := range shape {
				for k := 0; k < 2; k++ {
					p := rng.IntN(shape[i]) // reflect needs pads below the axis length
					if mode == "constant" { // crop up to half the axis each side
						crop := (shape[i] - 1) / 2
						p = rng.IntN(crop+3) - crop
					}
					pads[i+k*r] = int64(p)
				}
				out[i] = shape[i] + int(pads[i]) + int(pads[i+r])
			}
			x := make([]float32, graph.Numel(shape))
			for i := range x {
				x[i] = float32(i + 1)
			}
			got := runOp(t, "Pad", []*onnxpb.AttributeProto{graph.AttrStringOf("mode", mode)},
				graph.Float32Tensor(shape, x), graph.Int64Tensor([]int{2 * r}, pads), graph.Float32Tensor(nil, []float32{-0.5}))[0]
			name := fmt.Sprintf("forced %d, %s %v pads %v", forced, mode, shape, pads)
			if fmt.Sprint(got.Shape) != fmt.Sprint(out) {
				t.Fatalf("%s: shape %v, want %v", name, got.Shape, out)
			}
			gv := got.Float32s()
			idx := make([]int, r)
			for o := range gv {
				rem, src := o, 0
				for d := r - 1; d >= 0; d-- {
					idx[d] = rem % out[d]
					rem /= out[d]
				}
				stride := 1
				for d := r - 1; d >= 0 && src >= 0; d-- {
					s := padSource(mode, idx[d], int(pads[d]), shape[d])
					if s < 0 {
						src = -1
						break
					}
					src += s * stride
					stride *= shape[d]
				}
				want := float32(-0.5)
				if src >= 0 {
					want = x[src]
				}
				if gv[o] != want {
					t.Fatalf("%s: out[%v] = %g, want %g", name, idx, gv[o], want)
				}
			}
		}
	}
	parallel.ForceSplit(0)
}
