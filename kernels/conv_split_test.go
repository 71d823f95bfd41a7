package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/kernels/gemm"
)

// TestConvChannelSplitMatchesOneThread: on small maps (7x7, 13x13) two or
// three threads split a convolution's output channels instead of its rows
// (channelParts), pointwise and through im2col, with and without a bias,
// each share's rows whole tiles of the packed weights. Every output element
// is still summed in the same order, so the bits must be those of one
// thread, and the output must match the direct reference.
func TestConvChannelSplitMatchesOneThread(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, tc := range []struct {
		c, m, hw, k, pad int
		bias             bool
	}{
		{320, 1280, 7, 1, 0, true}, // MobileNetV2's last pointwise layer
		{96, 161, 7, 1, 0, false},  // a last row tile that is part empty
		{512, 1000, 13, 1, 0, true},
		{64, 256, 13, 3, 1, true}, // through im2col (13 wide misses the grid path)
		{40, 200, 5, 3, 1, false},
	} {
		g := convGeom{h: tc.hw, w: tc.hw, kh: tc.k, kw: tc.k, sh: 1, sw: 1, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, tc.k, 1, 1, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, 1, 1, tc.pad, tc.pad, "NOTSET")
		x := randFloats(r, tc.c*g.h*g.w)
		w := randFloats(r, tc.m*tc.c*g.kh*g.kw)
		var b []float32
		if tc.bias {
			b = randFloats(r, tc.m)
		}
		xs, ws := []int{1, tc.c, g.h, g.w}, []int{tc.m, tc.c, g.kh, g.kw}
		want := runConv(t, x, w, b, xs, ws, g, 1, true, 1)
		for _, threads := range []int{2, 3} {
			pa := gemm.PackA(tc.m, tc.c*g.kh*g.kw, 1, gemm.Matrix{Data: w, Stride: tc.c * g.kh * g.kw})
			bandRows := (g.oh + threads - 1) / threads
			if channelParts(pa, threads, g.oh, g.ow, bandRows) != threads {
				t.Fatalf("%+v: %d threads do not split the output channels", tc, threads)
			}
			got := runConv(t, x, w, b, xs, ws, g, 1, true, threads)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%+v: out[%d] = %v on %d threads, %v on one", tc, i, got[i], threads, want[i])
				}
			}
		}
		ref, mag := convNaive(x, w, b, 1, tc.c, g.h, g.w, tc.m, 1, g.kh, g.kw, g)
		for i := range want {
			// float32 sums of up to 576 terms: a few ulps of the terms' magnitude.
			if math.Abs(float64(want[i]-ref[i])) > 1e-6*(1+float64(mag[i])) {
				t.Fatalf("%+v: out[%d] = %v, the definition gives %v", tc, i, want[i], ref[i])
			}
		}
	}
}
