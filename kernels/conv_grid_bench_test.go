package kernels

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"

	"golang.org/x/sys/unix"
)

// threadCPU is the calling thread's CPU time in ms: on a loaded machine it
// counts what a run costs, not the time spent waiting for a core.
func threadCPU() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return float64(ts.Nano()) / 1e6
}

// BenchmarkConvGridVsIm2col times the zoo's convolution models at one thread
// on the grid path and on im2col, alternating run by run so that a change in
// the machine's load hits both alike; it reports each path's median ms and
// their ratio. Times are the thread's CPU time (the runs stay on one
// locked thread), which the machine's load affects far less than wall time.
func BenchmarkConvGridVsIm2col(b *testing.B) {
	for _, name := range []string{"yolo-silu", "squeezenet", "resnet-cifar", "resnet20", "mobilenetv2"} {
		b.Run(name, func(b *testing.B) {
			s, in := zooSession(b, name)
			compareIm2col(b, s, in)
		})
	}
}

// BenchmarkConvLayerGridVsIm2col compares the two paths on single layers of
// the zoo's shapes (c -> m channels on an hw x hw map, k x k, stride s).
func BenchmarkConvLayerGridVsIm2col(b *testing.B) {
	for _, tc := range []struct {
		name           string
		c, m, hw, k, s int
	}{
		{"cifar-16x32", 16, 16, 32, 3, 1}, {"cifar-1x1s2-32", 16, 32, 32, 1, 2}, {"cifar-1x1s2-16", 32, 64, 16, 1, 2}, {"cifar-32x16", 32, 32, 16, 3, 1}, {"cifar-64x8", 64, 64, 8, 3, 1},
		{"squeeze-exp3-55", 16, 64, 55, 3, 1}, {"squeeze-exp1-55", 16, 64, 55, 1, 1}, {"squeeze-sq-55", 128, 16, 55, 1, 1},
		{"squeeze-exp3-13", 64, 256, 13, 3, 1}, {"stem-224s2", 3, 64, 224, 3, 2}, {"yolo-stem-416s2", 3, 16, 416, 3, 2}, {"squeeze-stem-224s2-valid", 3, 64, 224, 3, 2},
		{"mbv2-expand-56", 24, 144, 56, 1, 1}, {"mbv2-project-56", 144, 24, 56, 1, 1}, {"mbv2-expand-14", 64, 384, 14, 1, 1},
		{"yolo-pw-104", 32, 32, 104, 1, 1}, {"yolo-pw-52", 64, 64, 52, 1, 1},
		{"mbv2-project-112", 32, 16, 112, 1, 1}, {"mbv2-project-28", 192, 32, 28, 1, 1}, {"yolo-pw-208-16", 16, 16, 208, 1, 1}, {"squeeze-sq-27", 256, 32, 27, 1, 1},
		{"r50-3x3-28", 128, 128, 28, 3, 1}, {"r50-3x3-56", 64, 64, 56, 3, 1}, {"r50-3x3-7", 512, 512, 7, 3, 1}, {"r50-pw-56", 256, 64, 56, 1, 1}, {"r50-pw-28", 128, 512, 28, 1, 1}, {"r50-pw-exp-56", 64, 256, 56, 1, 1}, {"mbv2-last-7", 320, 1280, 7, 1, 1}, {"mbv2-expand-7", 160, 960, 7, 1, 1}, {"mbv2-project-7", 960, 160, 7, 1, 1}, {"squeeze-final-13", 512, 1000, 13, 1, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := convGeom{h: tc.hw, w: tc.hw, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
			pad := tc.k / 2
			if strings.HasSuffix(tc.name, "-valid") { // no padding
				pad = 0
			}
			g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, pad, pad, "NOTSET")
			g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, pad, pad, "NOTSET")
			x := graph.Float32Tensor([]int{1, tc.c, tc.hw, tc.hw}, randFloats(r, tc.c*tc.hw*tc.hw))
			s := convSession(b, randFloats(r, tc.m*tc.c*tc.k*tc.k), randFloats(r, tc.m), []int{tc.m, tc.c, tc.k, tc.k}, g, 1)
			b.ReportMetric(float64(2*tc.m*tc.c*tc.k*tc.k*g.oh*g.ow)/1e9, "GFLOP")
			compareIm2col(b, s, map[string]*graph.Tensor{"x": x})
		})
	}
}

// compareIm2col runs s alternately on the grid path and on im2col and
// reports their median thread CPU ms and the ratio.
func compareIm2col(b *testing.B, s *Session, in map[string]*graph.Tensor) {
	defer func() { forceIm2col = false }()
	g, c := cpuPerPath(b, s, in, 2, func(path int) { forceIm2col = path == 1 })
	b.ReportMetric(g, "grid-ms")
	b.ReportMetric(c, "im2col-ms")
	b.ReportMetric(g/c, "grid/im2col")
}

// BenchmarkPointwiseNarrow compares pointwise convolutions with 16 output
// channels on the narrow grid kernel and on the 12-row tiles (where the
// machine has a narrow kernel): median thread CPU ms of each, alternating.
func BenchmarkPointwiseNarrow(b *testing.B) {
	comparePointwise(b, []pointwiseLayer{
		{"squeeze-sq-55", 128, 16, 55}, {"squeeze-sq-55-64", 64, 16, 55}, {"yolo-208-16", 16, 16, 208}, {"mbv2-project-112", 32, 16, 112}, {"mbv2-project-56", 144, 24, 56}, {"yolo-52-64", 64, 64, 52},
	}, &pointwiseTiles, "narrow", "tiles")
}

// BenchmarkPointwiseKBlocks compares pointwise convolutions reading their
// input in k blocks of 32 (gemm.PackAStreamed, on maps of at least
// streamedPlane pixels) and in whole k blocks: median thread CPU ms of each,
// alternating run by run.
func BenchmarkPointwiseKBlocks(b *testing.B) {
	comparePointwise(b, []pointwiseLayer{
		{"squeeze-sq-55", 128, 16, 55}, {"mbv2-project-56", 144, 24, 56}, {"mbv2-project-28", 192, 32, 28}, {"yolo-52-64", 64, 64, 52},
		{"yolo-104-32", 32, 32, 104}, {"r50-56-256-64", 256, 64, 56}, {"mbv2-project-112", 96, 24, 112}, {"k96-56", 96, 24, 56}, {"k128-56", 128, 32, 56}, {"k96-52-64", 96, 64, 52},
	}, &pointwiseWholeK, "streamed", "whole")
}

// pointwiseLayer is a 1x1 convolution of c -> m channels on an hw x hw map.
type pointwiseLayer struct {
	name     string
	c, m, hw int
}

// comparePointwise runs each layer alternately with *flag false (first)
// and true (second) and reports each one's median thread CPU ms and their
// ratio.
func comparePointwise(b *testing.B, layers []pointwiseLayer, flag *bool, first, second string) {
	for _, l := range layers {
		b.Run(l.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := convGeom{h: l.hw, w: l.hw, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, oh: l.hw, ow: l.hw}
			x := graph.Float32Tensor([]int{1, l.c, l.hw, l.hw}, randFloats(r, l.c*l.hw*l.hw))
			s := convSession(b, randFloats(r, l.m*l.c), randFloats(r, l.m), []int{l.m, l.c, 1, 1}, g, 1)
			defer func() { *flag = false }()
			a, c := cpuPerPath(b, s, map[string]*graph.Tensor{"x": x}, 2, func(path int) { *flag = path == 1 })
			b.ReportMetric(a, first+"-ms")
			b.ReportMetric(c, second+"-ms")
			b.ReportMetric(a/c, first+"/"+second)
		})
	}
}

// BenchmarkConvCoTiles compares the co-tile path with the one each layer
// takes without it (grid, stem or im2col), alternating run by run: median
// thread CPU ms of each and the ratio. ResNet-50's 3x3 layers, SqueezeNet's
// and the CIFAR ResNets', stems and strided 1x1 shortcuts.
func BenchmarkConvCoTiles(b *testing.B) {
	for _, tc := range []struct {
		name              string
		c, m, hw, k, s, p int
	}{
		{"r50-3x3-56", 64, 64, 56, 3, 1, 1}, {"r50-3x3-28", 128, 128, 28, 3, 1, 1}, {"r50-3x3-14", 256, 256, 14, 3, 1, 1}, {"r50-3x3-7", 512, 512, 7, 3, 1, 1},
		{"r50-3x3s2-28", 128, 128, 56, 3, 2, 1}, {"r50-1x1s2-28", 256, 512, 56, 1, 2, 0}, {"r50-1x1s2-7", 1024, 2048, 14, 1, 2, 0}, {"r50-1x1s2-14", 512, 1024, 28, 1, 2, 0}, {"mbv3-1x1s2-7", 96, 576, 14, 1, 2, 0},
		{"squeeze-exp3-55", 16, 64, 55, 3, 1, 1}, {"squeeze-exp3-27", 32, 128, 27, 3, 1, 1}, {"squeeze-exp3-13", 48, 192, 13, 3, 1, 1}, {"squeeze-exp3-13b", 64, 256, 13, 3, 1, 1},
		{"cifar-32x16", 32, 32, 16, 3, 1, 1}, {"cifar-64x8", 64, 64, 8, 3, 1, 1}, {"stem-224s2", 3, 64, 224, 3, 2, 1}, {"rec-3x3-64", 64, 64, 24, 3, 1, 1},
		{"r50-pw-7-2048-512", 2048, 512, 7, 1, 1, 0}, {"r50-pw-7-512-2048", 512, 2048, 7, 1, 1, 0}, {"r50-pw-14-1024-256", 1024, 256, 14, 1, 1, 0}, {"r50-pw-14-256-1024", 256, 1024, 14, 1, 1, 0},
		{"r50-pw-28-512-128", 512, 128, 28, 1, 1, 0}, {"r50-pw-28-128-512", 128, 512, 28, 1, 1, 0}, {"r50-pw-56-256-64", 256, 64, 56, 1, 1, 0}, {"r50-pw-56-64-256", 64, 256, 56, 1, 1, 0},
		{"mbv2-pw-7-960-160", 960, 160, 7, 1, 1, 0}, {"mbv2-pw-7-160-960", 160, 960, 7, 1, 1, 0}, {"mbv2-pw-14-64-384", 64, 384, 14, 1, 1, 0}, {"mbv2-pw-14-96-576", 96, 576, 14, 1, 1, 0}, {"mbv2-pw-7-320-1280", 320, 1280, 7, 1, 1, 0}, {"mbv2-pw-14-384-64", 384, 64, 14, 1, 1, 0}, {"mbv2-pw-28-192-32", 192, 32, 28, 1, 1, 0},
		{"yolo-pw-52-64", 64, 64, 52, 1, 1, 0}, {"yolo-pw-13-256", 256, 256, 13, 1, 1, 0}, {"yolo-pw-13-256-64", 256, 64, 13, 1, 1, 0}, {"yolo-pw-13-128-64", 128, 64, 13, 1, 1, 0}, {"yolo-pw-13-64-64", 64, 64, 13, 1, 1, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := convGeom{h: tc.hw, w: tc.hw, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
			g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, tc.p, tc.p, "NOTSET")
			g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.p, tc.p, "NOTSET")
			if !coFits(g, tc.c, tc.m) && !(stridedPointwise(g) && coFits(gatheredGeom(g), tc.c, tc.m)) {
				b.Skip("not on the co-tile path")
			}
			x := graph.Float32Tensor([]int{1, tc.c, tc.hw, tc.hw}, randFloats(r, tc.c*tc.hw*tc.hw))
			s := convSession(b, randFloats(r, tc.m*tc.c*tc.k*tc.k), randFloats(r, tc.m), []int{tc.m, tc.c, tc.k, tc.k}, g, 1)
			defer func() { noCoTiles = false }()
			co, other := cpuPerPath(b, s, map[string]*graph.Tensor{"x": x}, 2, func(path int) { noCoTiles = path == 1 })
			gf := float64(2*tc.m*tc.c*tc.k*tc.k*g.oh*g.ow) / 1e6
			b.ReportMetric(co, "co-ms")
			b.ReportMetric(other, "other-ms")
			b.ReportMetric(co/other, "co/other")
			b.ReportMetric(gf/co, "co-GFLOP/s")
		})
	}
}

// conv1dThreads is BenchmarkConv1dPaths' thread count (CONV1D_THREADS).
var conv1dThreads = 1

// BenchmarkConv1dPaths times 1-D convolutions (one row of w frames, c -> m
// channels, kernel k, stride s) on the path they take and on the one they
// took before longRows (co-tiles or grid), alternating run by run: median
// thread CPU ms of each and the ratio.
func BenchmarkConv1dPaths(b *testing.B) {
	if v := os.Getenv("CONV1D_THREADS"); v != "" {
		conv1dThreads, _ = strconv.Atoi(v)
	}
	for _, tc := range []struct {
		name          string
		c, m, w, k, s int
	}{
		{"whisper-384-s2", 384, 384, 3000, 3, 2}, {"whisper-80", 80, 384, 3000, 3, 1}, {"c256-w1000", 256, 256, 1000, 3, 1}, {"c512-s2-w800", 512, 512, 800, 3, 2},
		{"c64-w2000", 64, 64, 2000, 3, 1}, {"c32-k7s2-w8000", 32, 64, 8000, 7, 2}, {"c128-w500", 128, 128, 500, 3, 1}, {"c16-k5-w4000", 16, 32, 4000, 5, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := convGeom{h: 1, w: tc.w, kh: 1, kw: tc.k, sh: 1, sw: tc.s, dh: 1, dw: 1}
			g.oh, g.pt, _ = convOut(1, 1, 1, 1, 0, 0, "NOTSET")
			g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.k/2, tc.k/2, "NOTSET")
			x := graph.Float32Tensor([]int{1, tc.c, 1, tc.w}, randFloats(r, tc.c*tc.w))
			s := convSessionOf(b, randFloats(r, tc.m*tc.c*tc.k), randFloats(r, tc.m), []int{tc.m, tc.c, 1, tc.k}, g, 1, conv1dThreads)
			defer func() { noLongRows = false }()
			now, before := cpuPerPath(b, s, map[string]*graph.Tensor{"x": x}, 2, func(path int) { noLongRows = path == 1 })
			b.ReportMetric(now, "ms")
			b.ReportMetric(before, "before-ms")
			b.ReportMetric(now/before, "now/before")
			if longRows(g, tc.c) {
				b.ReportMetric(1, "im2col")
			}
		})
	}
}

// BenchmarkGridLayoutBands times the phase layout of a 16 x 32 x 32 input
// (ResNet-20's first stage, 3x3, pad 1) as runGrid's two bands lay it out,
// each its rows and halo into its own buffer: on one thread, the whole
// input ("t1"), and on two threads a band each in one parallel loop ("t2":
// ns/op is the loop's, band-ns a band's own time). Both bands look their
// plans up in the layout's phasePlans at once.
func BenchmarkGridLayoutBands(b *testing.B) {
	g := convGeom{c: 16, h: 32, w: 32, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, oh: 32, ow: 32}
	l := newGridLayout(g, 16)
	src := make([]float32, 16*32*32)
	dst := (*Context)(nil).seatScratch(2, 16*l.cs)
	band := func(t int) {
		i1 := min(l.hq, (t+1)*16+2)
		l.fillRows(g, src, dst.at(t), t*16, i1, i1 == l.hq)
	}
	b.Run("t1", func(b *testing.B) {
		for b.Loop() {
			band(0)
			band(1)
		}
	})
	b.Run("t2", func(b *testing.B) {
		var took [2]time.Duration
		for b.Loop() {
			parallel.ForSeat(2, 2, func(_, t int) {
				t0 := time.Now()
				band(t)
				took[t] += time.Since(t0)
			})
		}
		b.ReportMetric(float64(took[0]+took[1])/float64(2*b.N), "band-ns")
	})
}
