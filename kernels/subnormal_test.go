package kernels

import (
	"math"
	"runtime"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/fpenv"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// subnormalModel squares its input and runs a 1x1 convolution without bias
// over it (the GEMM micro-kernels): x*x is subnormal where x is 2^-70, and
// the convolution reads subnormal inputs where x itself is.
func subnormalModel() *graph.Model {
	b := testmodels.NewBuilder(1, 13)
	x := b.Input("x", 1, 16, 64, 64)
	b.Output(b.Binary("Mul", x, x))
	b.Output(b.Conv(x, 16, 1, testmodels.ConvOpts{NoBias: true}))
	return b.Finish()
}

// TestSubnormalsFlushed: by default the kernels compute with subnormals
// flushed to zero (inputs read as zero, results written as zero), on the
// caller's thread and on the worker pool's alike; KeepSubnormals computes
// them as IEEE 754 does; and Run leaves the caller's thread as it found it.
func TestSubnormalsFlushed(t *testing.T) {
	if !fpenv.Supported {
		t.Skip("no flush mode on this architecture")
	}
	// Every channel of pixel p holds the same value, by p mod 3: 2^-70
	// (normal, its square subnormal), 2^-140 (subnormal) or 1.5.
	const plane = 64 * 64
	x := graph.NewTensor(graph.Float, []int{1, 16, 64, 64})
	xd := x.Float32s()
	vals := [3]float32{0x1p-70, 0x1p-140, 1.5}
	for i := range xd {
		xd[i] = vals[i%plane%3]
	}
	m := subnormalModel()
	w := m.Graph.Nodes[1].Inputs[1].Const.Float32s()
	for _, threads := range []int{1, 2} {
		for _, keep := range []bool{false, true} {
			if threads == 2 {
				defer parallel.ForceSplit(parallel.ForcedSplit())
				parallel.ForceSplit(2)
			}
			s, err := NewSession(m, Options{Threads: threads, KeepSubnormals: keep})
			if err != nil {
				t.Fatal(err)
			}
			runtime.LockOSThread()
			before := fpenv.Flushing()
			out, err := s.Run(map[string]*graph.Tensor{"x": x})
			after := fpenv.Flushing()
			runtime.UnlockOSThread()
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("threads %d keep %v: Run left the thread flushing %v, was %v", threads, keep, after, before)
			}
			sq, conv := out[m.Graph.Outputs[0].Name].Float32s(), out[m.Graph.Outputs[1].Name].Float32s()
			var bad int
			for i := range xd {
				o, v := i/plane, xd[i]
				var rowSum float64 // output channel o's weights summed: conv = v * rowSum
				for c := 0; c < 16; c++ {
					rowSum += float64(w[o*16+c])
				}
				wantSq, wantConv := float64(v)*float64(v), float64(v)*rowSum
				if v == 0x1p-70 && !keep {
					wantSq = 0 // the subnormal square is written as zero
				}
				if v == 0x1p-140 {
					wantSq = 0 // 2^-280 is zero either way
					if !keep {
						wantConv = 0 // the subnormal input is read as zero
					}
				}
				okSq := float64(sq[i]) == float64(float32(wantSq))
				okConv := math.Abs(float64(conv[i])-wantConv) <= 1e-5*math.Abs(wantConv)
				if v == 0x1p-140 && keep {
					// Sums of subnormal products round to multiples of 2^-149.
					okConv = math.Abs(float64(conv[i])-wantConv) <= 16*0x1p-149 && conv[i] != 0
				}
				if !okSq || !okConv {
					if bad++; bad <= 3 {
						t.Errorf("threads %d keep %v: element %d (x = %g): x*x = %g (want %g), conv = %g (want %g)",
							threads, keep, i, v, sq[i], wantSq, conv[i], wantConv)
					}
				}
			}
		}
	}
}
