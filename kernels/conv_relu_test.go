package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// TestConvReluStoresSameBits: a Conv and its Relu computed with the Relu in
// the GEMM's stores (convKernel.reluStores) give the bits of the Relu run
// as a pass after the product, on every path that stores it: pointwise
// (12-row tiles and the narrow 8-row grid kernel for 16 channels, a k block
// and several), the grid path with padded rows copied out and without, the
// stem, and a batch of 2; on one thread and two. Some inputs are NaN and
// some exactly zero (sums of -0 and NaN pass a Relu as they are). With a
// BatchNormalization and Clip after the Conv (no plain Relu) nothing changes.
func TestConvReluStoresSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	defer func() { noReluStores = false }()
	for _, tc := range []struct{ n, c, m, h, w, k, s, pad int }{
		{1, 16, 64, 55, 55, 1, 1, 0},  // pointwise, SqueezeNet's expand
		{1, 128, 16, 27, 27, 1, 1, 0}, // pointwise to 16 channels
		{1, 300, 40, 14, 14, 1, 1, 0}, // pointwise, k over one block
		{1, 16, 64, 55, 55, 3, 1, 1},  // grid, 55-wide rows computed as 56
		{1, 32, 32, 32, 32, 3, 1, 1},  // grid, rows whole
		{1, 3, 64, 96, 94, 3, 2, 0},   // the stem
		{2, 8, 24, 20, 20, 3, 1, 1},   // a batch of 2
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		for _, epi := range []string{"relu", "bn-relu6"} {
			md := stemModel(r, g, tc.c, tc.m, 1, epi)
			xs := randFloats(r, tc.n*tc.c*g.h*g.w)
			for i := 0; i < len(xs); i += 97 {
				xs[i] = 0
			}
			xs[len(xs)/2] = float32(math.NaN())
			x := graph.Float32Tensor([]int{tc.n, tc.c, g.h, g.w}, xs)
			name := fmt.Sprintf("%+v %s", tc, epi)
			run := func(stores bool, threads int) []float32 {
				noReluStores = !stores
				return runSplit(t, md, x, threads, name)
			}
			want := run(false, 1)
			nans, zeros := 0, 0
			for _, v := range want {
				if v != v {
					nans++
				} else if v == 0 {
					zeros++
				}
			}
			if nans == 0 || (epi == "relu" && zeros == 0) {
				t.Fatalf("%s: %d NaN and %d zero outputs: the case does not test the clamp", name, nans, zeros)
			}
			for _, threads := range []int{1, 2} {
				got := run(true, threads)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s, %d threads: out[%d] = %v with the Relu in the stores, %v after them", name, threads, i, got[i], want[i])
					}
				}
			}
		}
	}
}
