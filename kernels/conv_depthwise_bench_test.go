package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// BenchmarkDepthwiseLayers times depthwise layers (BN and Relu6 fused; c
// channels on an h x w map, a k x k kernel at strides sh, sw, "same" pads) at
// one thread on padded rows and 8 channels at a time (depthwiseC8),
// alternating run by run: median thread CPU us of each, and the blocked
// path's multiply-adds per ns and ns per channel. MobileNetV2's 3x3 layers
// first, then PaddleOCR's (det at 640x640, rec at 48x320, cls at 48x192).
func BenchmarkDepthwiseLayers(b *testing.B) {
	type layer struct{ c, h, w, k, sh, sw int }
	var layers []layer
	for _, l := range [][3]int{{32, 112, 1}, {96, 112, 2}, {144, 56, 1}, {144, 56, 2}, {192, 28, 1}, {192, 28, 2}, {384, 14, 1}, {576, 14, 1}, {576, 14, 2}, {960, 7, 1}} {
		layers = append(layers, layer{l[0], l[1], l[1], 3, l[2], l[2]})
	}
	layers = append(layers,
		layer{96, 80, 80, 3, 2, 2}, layer{192, 40, 40, 5, 1, 1}, layer{192, 40, 40, 5, 2, 2}, layer{384, 20, 20, 5, 1, 1}, // det
		layer{128, 12, 160, 3, 1, 2}, layer{240, 12, 80, 5, 1, 1}, layer{240, 12, 80, 5, 2, 1}, layer{480, 6, 80, 5, 1, 1}, layer{480, 3, 80, 5, 1, 1}, // rec
		layer{24, 12, 96, 3, 2, 1}, layer{32, 6, 96, 3, 1, 1}, layer{88, 3, 96, 5, 1, 1}, layer{200, 2, 96, 5, 1, 1}) // cls
	for _, tc := range layers {
		b.Run(fmt.Sprintf("c%d-%dx%d-k%d-s%d,%d", tc.c, tc.h, tc.w, tc.k, tc.sh, tc.sw), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.sh, sw: tc.sw, dh: 1, dw: 1}
			g.oh, g.pt, _ = convOut(g.h, tc.k, tc.sh, 1, tc.k/2, tc.k/2, "NOTSET")
			g.ow, g.pl, _ = convOut(g.w, tc.k, tc.sw, 1, tc.k/2, tc.k/2, "NOTSET")
			m := depthwiseEpilogueModel(r, g, tc.c, false, "bn-relu6")
			s, err := NewSession(m, Options{Threads: 1})
			if err != nil {
				b.Fatal(err)
			}
			x := graph.Float32Tensor([]int{1, tc.c, tc.h, tc.w}, randFloats(r, tc.c*tc.h*tc.w))
			in := map[string]*graph.Tensor{"x": x}
			defer func() { depthwisePath = dwAuto }()
			rr, c8 := cpuPerPath(b, s, in, 1, func(path int) { depthwisePath = []int{dwRows, dwBlocked}[path] })
			b.ReportMetric(rr*1000, "rows-us")
			b.ReportMetric(c8*1000, "c8-us")
			b.ReportMetric(c8/rr, "c8/rows")
			b.ReportMetric(float64(tc.c*g.oh*g.ow*tc.k*tc.k)/(c8*1e6), "MAC/ns")
		})
	}
}
