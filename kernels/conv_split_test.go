package kernels

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
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
		{64, 400, 13, 3, 1, true}, // through im2col (13 wide misses the grid path)
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
			if channelParts(pa, threads, g.oh*g.ow, bandRows*g.ow, tc.k == 1) != threads {
				t.Fatalf("%+v: %d threads do not split the output channels", tc, threads)
			}
			got := runConv(t, x, w, b, xs, ws, g, 1, true, threads)
			sameConvBits(t, tc, threads, got, want)
		}
		ref, mag := convNaive(x, w, b, 1, tc.c, g.h, g.w, tc.m, 1, g.kh, g.kw, g)
		nearConvDefinition(t, tc, want, ref, mag)
	}
}

// BenchmarkConvChannelSplit estimates, with the pool's accounting mode (the
// time on two cores of their own, see parallel.Account), the 2-thread time
// of small-map layers split by output channels and by bands of rows,
// alternating run by run, and reports both medians (ms) and their ratio.
func BenchmarkConvChannelSplit(b *testing.B) {
	for _, tc := range []struct {
		name        string
		c, m, hw, k int
	}{
		{"mbv2-last-7", 320, 1280, 7, 1}, {"mbv2-project-7", 960, 160, 7, 1}, {"mbv2-expand-14", 96, 576, 14, 1},
		{"squeeze-last-13", 512, 1000, 13, 1}, {"3x3-64-400-13", 64, 400, 13, 3}, {"resnet50-3x3-7", 512, 512, 7, 3},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			g := convGeom{h: tc.hw, w: tc.hw, kh: tc.k, kw: tc.k, sh: 1, sw: 1, dh: 1, dw: 1}
			g.oh, g.pt, _ = convOut(g.h, tc.k, 1, 1, tc.k/2, tc.k/2, "NOTSET")
			g.ow, g.pl, _ = convOut(g.w, tc.k, 1, 1, tc.k/2, tc.k/2, "NOTSET")
			x := graph.Float32Tensor([]int{1, tc.c, tc.hw, tc.hw}, randFloats(r, tc.c*tc.hw*tc.hw))
			s := convSessionOf(b, randFloats(r, tc.m*tc.c*tc.k*tc.k), randFloats(r, tc.m), []int{tc.m, tc.c, tc.k, tc.k}, g, 1, 2)
			in := map[string]*graph.Tensor{"x": x}
			if err := parallel.Account(true); err != nil {
				b.Skip(err)
			}
			defer parallel.Account(false)
			defer func() { noChannelSplit = false }()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var times [2][]float64
			for i := 0; i < b.N+2; i++ {
				for path := 0; path < 2; path++ {
					noChannelSplit = path == 1
					t0, a0 := threadCPU(), parallel.Adjustment()
					out, err := s.Run(in)
					if err != nil {
						b.Fatal(err)
					}
					if i >= 2 {
						times[path] = append(times[path], threadCPU()-t0+float64(parallel.Adjustment()-a0)/1e6)
					}
					s.Recycle(out)
				}
			}
			split, bands := medianOf(times[0]), medianOf(times[1])
			b.ReportMetric(split, "channels-ms")
			b.ReportMetric(bands, "bands-ms")
			b.ReportMetric(split/bands, "channels/bands")
		})
	}
}

// medianOf sorts v and returns its middle value.
func medianOf[T cmp.Ordered](v []T) T {
	slices.Sort(v)
	return v[len(v)/2]
}

// TestConvGridChannelsMatchesOneThread: on the grid path, small maps split
// their output channels over threads (runGridChannels): each thread lays
// out the whole input and computes whole row tiles of the weights over
// every pixel. The bits must be those of one thread and match the direct
// reference; with the limit raised, wider maps cover the scratch rows of
// widths that are not a multiple of 8 (31 computed as 32).
func TestConvGridChannelsMatchesOneThread(t *testing.T) {
	defer func(v int) { gridChannelPixels = v }(gridChannelPixels)
	r := rand.New(rand.NewPCG(41, 42))
	for _, tc := range []struct {
		c, m, hw, s int
		bias        bool
	}{
		{64, 64, 8, 1, true},  // ResNet-20's last stage
		{32, 64, 16, 2, true}, // its downsampling 3x3
		{48, 40, 8, 1, false}, // row tiles that do not split evenly
		{16, 30, 31, 1, true}, // 31 wide: computed 32 wide, copied out
		{8, 20, 24, 1, false},
	} {
		g := convGeom{h: tc.hw, w: tc.hw, kh: 3, kw: 3, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, 3, tc.s, 1, 1, 1, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, 3, tc.s, 1, 1, 1, "NOTSET")
		if !gridFits(g) {
			t.Fatalf("%+v: not on the grid path", tc)
		}
		gridChannelPixels = g.oh * g.ow
		for _, threads := range []int{2, 3} {
			if !gridChannelsFit(newGridLayout(g, tc.c), tc.m, threads) {
				t.Fatalf("%+v: %d threads would not split the output channels", tc, threads)
			}
		}
		x := randFloats(r, tc.c*g.h*g.w)
		w := randFloats(r, tc.m*tc.c*9)
		var b []float32
		if tc.bias {
			b = randFloats(r, tc.m)
		}
		xs, ws := []int{1, tc.c, g.h, g.w}, []int{tc.m, tc.c, 3, 3}
		want := runConv(t, x, w, b, xs, ws, g, 1, true, 1)
		for _, threads := range []int{2, 3} {
			parallel.ForceSplit(threads)
			got := runConv(t, x, w, b, xs, ws, g, 1, true, threads)
			parallel.ForceSplit(0)
			sameConvBits(t, tc, threads, got, want)
		}
		ref, mag := convNaive(x, w, b, 1, tc.c, g.h, g.w, tc.m, 1, 3, 3, g)
		nearConvDefinition(t, tc, want, ref, mag)
	}
}

// TestPixelBandsCoverThePlane: pointwise bands of pixels start at whole
// panels of B, cover [0, n) without a gap or an overlap, and differ by at
// most one panel.
func TestPixelBandsCoverThePlane(t *testing.T) {
	nr := gemm.PanelCols()
	for _, n := range []int{49, 64, 169, 196, 784, 3136, 12544} {
		for bands := 2; bands <= 4 && 2*bands <= panelsOf(n); bands++ {
			at, most, least := 0, 0, n
			for b := 0; b < bands; b++ {
				j0, j1 := pixelBand(b, bands, n)
				if j0 != at || j0%nr != 0 || j1 <= j0 {
					t.Fatalf("n %d, band %d of %d: [%d, %d) after %d (panels of %d)", n, b, bands, j0, j1, at, nr)
				}
				p := (j1 - j0 + nr - 1) / nr
				most, least = max(most, p), min(least, p)
				at = j1
			}
			if at != n || most-least > 1 {
				t.Fatalf("n %d in %d bands: cover [0, %d), %d to %d panels a band", n, bands, at, least, most)
			}
		}
	}
}

// TestPointwisePixelBandsMatchOneThread: pointwise convolutions large
// enough to split (14x14, 28x28, 13x13) run on 2 and 3 threads in bands of
// pixels; each pixel's sums are those of one thread, so the bits must be
// too, and the output must match the definition.
func TestPointwisePixelBandsMatchOneThread(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, tc := range []struct {
		c, m, hw int
		bias     bool
	}{
		{48, 48, 14, true}, {24, 24, 28, false}, {40, 24, 13, true}, {16, 64, 56, true},
	} {
		g := convGeom{h: tc.hw, w: tc.hw, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, oh: tc.hw, ow: tc.hw}
		x := randFloats(r, tc.c*g.h*g.w)
		w := randFloats(r, tc.m*tc.c)
		var b []float32
		if tc.bias {
			b = randFloats(r, tc.m)
		}
		xs, ws := []int{1, tc.c, g.h, g.w}, []int{tc.m, tc.c, 1, 1}
		want := runConv(t, x, w, b, xs, ws, g, 1, true, 1)
		for _, threads := range []int{2, 3} {
			if th := parallel.Split(threads, tc.m*tc.c*g.oh*g.ow, minBandMACs); th < 2 || panelsOf(g.oh*g.ow) < 2*th {
				t.Fatalf("%+v: %d threads would not take pixel bands", tc, threads)
			}
			got := runConv(t, x, w, b, xs, ws, g, 1, true, threads)
			sameConvBits(t, tc, threads, got, want)
		}
		ref, mag := convNaive(x, w, b, 1, tc.c, g.h, g.w, tc.m, 1, 1, 1, g)
		nearConvDefinition(t, tc, want, ref, mag)
	}
}

// BenchmarkPointwiseBands times pointwise Conv+BatchNormalization+Relu
// layers on 2 threads split into bands of pixels (pixelBand) and of rows,
// alternating run by run, and prints both medians (us) and their ratio.
func BenchmarkPointwiseBands(b *testing.B) {
	for _, tc := range []struct{ c, m, hw int }{{24, 24, 28}, {48, 48, 14}, {96, 96, 7}, {24, 144, 56}, {32, 16, 112}} {
		b.Run(fmt.Sprintf("%d-%d-%dx%d", tc.c, tc.m, tc.hw, tc.hw), func(b *testing.B) {
			tb := testmodels.NewBuilder(1, 17)
			x := tb.Input("input", 1, tc.c, tc.hw, tc.hw)
			tb.Output(tb.Relu(tb.BatchNorm(tb.Conv(x, tc.m, 1, testmodels.ConvOpts{NoBias: true}))))
			s, err := NewSession(tb.Finish(), Options{Threads: 2})
			if err != nil {
				b.Fatal(err)
			}
			in := map[string]*graph.Tensor{"input": graph.Float32Tensor([]int{1, tc.c, tc.hw, tc.hw}, tb.Normal(tc.c*tc.hw*tc.hw, 0, 1))}
			defer func() { rowBands = false }()
			var times [2][]time.Duration // pixels, rows
			for i := -20; i < 200*b.N; i++ {
				for v := range times {
					rowBands = v == 1
					t0 := time.Now()
					out, err := s.Run(in)
					if err != nil {
						b.Fatal(err)
					}
					if i >= 0 {
						times[v] = append(times[v], time.Since(t0))
					}
					s.Recycle(out)
				}
			}
			pix, rows := medianOf(times[0]), medianOf(times[1])
			fmt.Printf("%s: pixels %.2f us, rows %.2f us, pixels/rows %.3f\n", b.Name(), us(pix), us(rows), pix.Seconds()/rows.Seconds())
		})
	}
}

// sameConvBits fails test case tc when got, computed on threads threads,
// differs in any bit from want, computed on one.
func sameConvBits(t *testing.T, tc any, threads int, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%+v: out[%d] = %v on %d threads, %v on one", tc, i, got[i], threads, want[i])
		}
	}
}

// nearConvDefinition fails test case tc when got is further from the
// direct reference ref than float32 sums of up to 576 terms go: a few ulps
// of the terms' magnitude mag.
func nearConvDefinition(t *testing.T, tc any, got, ref, mag []float32) {
	t.Helper()
	for i := range got {
		if math.Abs(float64(got[i]-ref[i])) > 1e-6*(1+float64(mag[i])) {
			t.Fatalf("%+v: out[%d] = %v, the definition gives %v", tc, i, got[i], ref[i])
		}
	}
}
