package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// BenchmarkDepthwiseLayers times MobileNetV2's depthwise layers (3x3, BN and
// Relu6 fused; c channels on an hw x hw map, stride s) at one thread on
// padded rows and 8 channels at a time (depthwiseC8), alternating run by
// run: median thread CPU us of each, and the blocked path's multiply-adds
// per ns and ns per channel.
func BenchmarkDepthwiseLayers(b *testing.B) {
	for _, tc := range []struct{ c, hw, s int }{{32, 112, 1}, {96, 112, 2}, {144, 56, 1}, {144, 56, 2}, {192, 28, 1}, {192, 28, 2}, {384, 14, 1}, {576, 14, 1}, {576, 14, 2}, {960, 7, 1}} {
		b.Run(fmt.Sprintf("c%d-%d-s%d", tc.c, tc.hw, tc.s), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := convGeom{h: tc.hw, w: tc.hw, kh: 3, kw: 3, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
			g.oh, g.pt, _ = convOut(g.h, 3, tc.s, 1, 1, 1, "NOTSET")
			g.ow, g.pl, _ = convOut(g.w, 3, tc.s, 1, 1, 1, "NOTSET")
			m := depthwiseEpilogueModel(r, g, tc.c, false, "bn-relu6")
			s, err := NewSession(m, Options{Threads: 1})
			if err != nil {
				b.Fatal(err)
			}
			x := graph.Float32Tensor([]int{1, tc.c, tc.hw, tc.hw}, randFloats(r, tc.c*tc.hw*tc.hw))
			in := map[string]*graph.Tensor{"x": x}
			defer func() { depthwisePath = dwAuto }()
			rr, c8 := cpuPerPath(b, s, in, 1, func(path int) { depthwisePath = []int{dwRows, dwBlocked}[path] })
			b.ReportMetric(rr*1000, "rows-us")
			b.ReportMetric(c8*1000, "c8-us")
			b.ReportMetric(float64(tc.c*g.oh*g.ow*9)/(c8*1e6), "MAC/ns")
			b.ReportMetric(c8*1e6/float64(tc.c), "ns/ch")
		})
	}
}
