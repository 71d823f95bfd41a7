package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// im2colNaive is the definition of the column matrix, one element at a time.
func im2colNaive(g convGeom, cg int, x, col []float32, y0, y1 int) {
	n := (y1 - y0) * g.ow
	for ci := 0; ci < cg; ci++ {
		for ki := 0; ki < g.kh; ki++ {
			for kj := 0; kj < g.kw; kj++ {
				r := (ci*g.kh+ki)*g.kw + kj
				for oy := y0; oy < y1; oy++ {
					for ox := 0; ox < g.ow; ox++ {
						iy := oy*g.sh + ki*g.dh - g.pt
						ix := ox*g.sw + kj*g.dw - g.pl
						v := float32(0)
						if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
							v = x[(ci*g.h+iy)*g.w+ix]
						}
						col[r*n+(oy-y0)*g.ow+ox] = v
					}
				}
			}
		}
	}
}

// randomGeom draws a convolution geometry with small maps, strides 1-3,
// dilations 1-2 and paddings up to the kernel size, biased towards "same"
// stride-1 shapes where the shifted-plane copy applies.
func randomGeom(r *rand.Rand) (convGeom, bool) {
	g := convGeom{c: 1 + r.IntN(4), h: 1 + r.IntN(12), w: 1 + r.IntN(12), kh: 1 + r.IntN(4), kw: 1 + r.IntN(4),
		sh: 1 + r.IntN(3), sw: 1 + r.IntN(3), dh: 1 + r.IntN(2), dw: 1 + r.IntN(2)}
	if r.IntN(2) == 0 {
		g.sh, g.sw, g.dh, g.dw = 1, 1, 1, 1
		g.kh, g.kw = 1+2*r.IntN(2), 1+2*r.IntN(2)
	}
	pt, pl := r.IntN(g.kh+1), r.IntN(g.kw+1)
	pb, pr := pt, pl
	if r.IntN(3) == 0 {
		pb, pr = r.IntN(g.kh+1), r.IntN(g.kw+1)
	}
	g.oh, g.pt, _ = convOut(g.h, g.kh, g.sh, g.dh, pt, pb, "NOTSET")
	g.ow, g.pl, _ = convOut(g.w, g.kw, g.sw, g.dw, pl, pr, "NOTSET")
	return g, g.oh > 0 && g.ow > 0
}

// TestIm2colMatchesDefinition checks every column-matrix path, including the
// shifted-plane copy, element for element against the definition, on whole
// images and on strips of output rows.
func TestIm2colMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ctx := &Context{Threads: 2}
	shifted := 0
	for it := 0; it < 3000; it++ {
		g, ok := randomGeom(r)
		if !ok {
			continue
		}
		if g.sw == 1 && g.sh == 1 && g.ow == g.w {
			shifted++
		}
		x := make([]float32, g.c*g.h*g.w)
		for i := range x {
			x[i] = float32(i + 1)
		}
		y0 := r.IntN(g.oh)
		y1 := y0 + 1 + r.IntN(g.oh-y0)
		if r.IntN(2) == 0 {
			y0, y1 = 0, g.oh
		}
		n := g.c * g.kh * g.kw * (y1 - y0) * g.ow
		got, want := make([]float32, n), make([]float32, n)
		for i := range got {
			got[i] = -1 // stale values must be overwritten
		}
		im2col(ctx, g, g.c, x, got, y0, y1)
		im2colNaive(g, g.c, x, want, y0, y1)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%+v rows [%d,%d): col[%d] = %v, want %v", g, y0, y1, i, got[i], want[i])
			}
		}
	}
	if shifted < 500 {
		t.Fatalf("only %d cases took the shifted-plane path", shifted)
	}
}

// convNaive is a direct convolution in float64, the reference for every path;
// it also returns each output's sum of |x*w|, which bounds float32 rounding.
func convNaive(x, w, b []float32, n, c, h, wd, m, group, kh, kw int, g convGeom) (out, mag []float32) {
	cg, mg := c/group, m/group
	out = make([]float32, n*m*g.oh*g.ow)
	mag = make([]float32, len(out))
	for bi := 0; bi < n; bi++ {
		for oc := 0; oc < m; oc++ {
			gi := oc / mg
			for oy := 0; oy < g.oh; oy++ {
				for ox := 0; ox < g.ow; ox++ {
					s, a := 0.0, 0.0
					if b != nil {
						s, a = float64(b[oc]), math.Abs(float64(b[oc]))
					}
					for ci := 0; ci < cg; ci++ {
						for ki := 0; ki < kh; ki++ {
							iy := oy*g.sh + ki*g.dh - g.pt
							if iy < 0 || iy >= h {
								continue
							}
							for kj := 0; kj < kw; kj++ {
								ix := ox*g.sw + kj*g.dw - g.pl
								if ix < 0 || ix >= wd {
									continue
								}
								p := float64(x[((bi*c+gi*cg+ci)*h+iy)*wd+ix]) * float64(w[((oc*cg+ci)*kh+ki)*kw+kj])
								s += p
								a += math.Abs(p)
							}
						}
					}
					out[((bi*m+oc)*g.oh+oy)*g.ow+ox] = float32(s)
					mag[((bi*m+oc)*g.oh+oy)*g.ow+ox] = float32(a)
				}
			}
		}
	}
	return out, mag
}

// TestConvPathsMatchDirect runs Conv nodes of random shapes, strides, pads,
// groups (incl. depthwise) and dilations, with constant (packed) and runtime
// weights, on 1 and 2 threads, against a float64 direct convolution.
func TestConvPathsMatchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for it := 0; it < 120; it++ {
		g, ok := randomGeom(r)
		if !ok {
			continue
		}
		group := 1
		switch r.IntN(4) {
		case 0:
			group = 2
		case 1:
			group = 1 + r.IntN(6) // depthwise when m == c == group
		}
		n := 1 + r.IntN(2)
		c := group * (1 + r.IntN(8))
		m := group * (1 + r.IntN(24))
		if r.IntN(4) == 1 {
			c, m = group, group
		}
		// Larger maps now and then, so strips and thread splits happen.
		if r.IntN(6) == 0 {
			g.h, g.w = 20+r.IntN(30), 20+r.IntN(30)
			g.oh, _, _ = convOut(g.h, g.kh, g.sh, g.dh, g.pt, g.pt, "NOTSET")
			g.ow, _, _ = convOut(g.w, g.kw, g.sw, g.dw, g.pl, g.pl, "NOTSET")
		}
		checkConv(t, r, g, n, c, m, group)
	}
}

// TestDepthwiseMatchesDirect covers the phase planes of stride-1 and strided
// depthwise convolutions (MobileNet's blocks) on odd and even widths, with
// pads below, at and above "same", and maps so small that whole kernel rows
// and columns meet only padding.
func TestDepthwiseMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range []int{1, 2, 3} {
		for _, k := range []int{3, 5} {
			for _, d := range []int{1, 2} {
				for _, hw := range []int{2, 3, 7, 8, 15, 16, 140} { // 2, 3: kernel rows that meet only padding are skipped
					for _, pad := range []int{0, 1, k / 2 * d} {
						g := convGeom{h: hw, w: hw + 1, kh: k, kw: k, sh: s, sw: s, dh: d, dw: d}
						g.oh, g.pt, _ = convOut(g.h, k, s, d, pad, pad, "NOTSET")
						g.ow, g.pl, _ = convOut(g.w, k, s, d, pad, pad, "NOTSET")
						if g.oh <= 0 || g.ow <= 0 {
							continue
						}
						checkConv(t, r, g, 1, 3, 3, 3)
					}
				}
			}
		}
	}
}

// checkConv runs one Conv with random data every way and compares with convNaive.
func checkConv(t *testing.T, r *rand.Rand, g convGeom, n, c, m, group int) {
	t.Helper()
	checkConvBias(t, r, g, n, c, m, group, -1)
}

// checkConvBias is checkConv with a bias (bias 1), without (0) or either (-1).
func checkConvBias(t *testing.T, r *rand.Rand, g convGeom, n, c, m, group, bias int) {
	t.Helper()
	{
		x := randFloats(r, n*c*g.h*g.w)
		w := randFloats(r, m*(c/group)*g.kh*g.kw)
		var b []float32
		if bias == 1 || bias == -1 && r.IntN(2) == 0 {
			b = randFloats(r, m)
		}
		want, mag := convNaive(x, w, b, n, c, g.h, g.w, m, group, g.kh, g.kw, g)
		name := fmt.Sprintf("n%d c%d m%d g%d %dx%d k%dx%d s%dx%d d%dx%d p%d,%d", n, c, m, group, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
		for _, constW := range []bool{true, false} {
			for _, threads := range []int{1, 2} {
				got := runConv(t, x, w, b, []int{n, c, g.h, g.w}, []int{m, c / group, g.kh, g.kw}, g, group, constW, threads)
				if len(got) != len(want) {
					t.Fatalf("%s: %d outputs, want %d", name, len(got), len(want))
				}
				for i := range want {
					// float32 sums of a few hundred terms: a few ulps of the terms' magnitude.
					tol := 1e-6 * (1 + float64(mag[i]))
					if math.Abs(float64(got[i]-want[i])) > tol {
						t.Fatalf("%s const=%v threads=%d: out[%d] = %v, want %v", name, constW, threads, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func runConv(t *testing.T, x, w, b []float32, xs, ws []int, g convGeom, group int, constW bool, threads int) []float32 {
	t.Helper()
	feed := map[string]*graph.Tensor{"x": graph.Float32Tensor(xs, x)}
	wc := w
	if !constW {
		feed["w"] = graph.Float32Tensor(ws, w)
		wc = nil
	}
	out, err := convSessionOf(t, wc, b, ws, g, group, threads).Run(feed)
	if err != nil {
		t.Fatal(err)
	}
	return out["y"].Float32s()
}

// convSession is a one-thread session of one Conv node with constant weights w
// (shape ws) and bias b (nil for none).
func convSession(t testing.TB, w, b []float32, ws []int, g convGeom, group int) *Session {
	t.Helper()
	return convSessionOf(t, w, b, ws, g, group, 1)
}

// convSessionOf is convSession on threads threads; with w nil the weights are
// the graph input "w".
func convSessionOf(t testing.TB, w, b []float32, ws []int, g convGeom, group int, threads int) *Session {
	t.Helper()
	m := graph.NewModel(graph.Opset{Domain: "", Version: 21})
	gr := m.Graph
	ins := []*graph.Value{gr.AddInput("x", graph.Float, nil)}
	if w != nil {
		ins = append(ins, gr.AddInitializer("w", graph.Float32Tensor(ws, w)))
	} else {
		ins = append(ins, gr.AddInput("w", graph.Float, nil))
	}
	if b != nil {
		ins = append(ins, gr.AddInitializer("b", graph.Float32Tensor([]int{len(b)}, b)))
	}
	gr.AddOutput(addConv(gr, ins, "y", g, group))
	s, err := NewSession(m, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConvBandsMatchDirect runs CIFAR-sized convolutions, large enough that
// two threads split the output rows into bands, against the direct reference.
func TestConvBandsMatchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ n, c, m, group, hw, k, s, pad int }{
		{1, 16, 32, 1, 32, 3, 1, 1}, {2, 16, 32, 2, 32, 3, 2, 1}, {1, 32, 64, 1, 17, 3, 1, 1}, {1, 24, 40, 1, 33, 5, 2, 2},
	} {
		g := convGeom{h: tc.hw, w: tc.hw, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		checkConv(t, r, g, tc.n, tc.c, tc.m, tc.group)
	}
}

// TestConvLongRowsMatchDirect runs 1-D convolutions over long rows of many
// channels (longRows: im2col instead of the grid or co-tile path), strides
// 1 and 2, padding, groups, batches, 1 and 2 threads (checkConv), against
// the direct reference; the shapes must be ones longRows takes, and a
// smaller one that it leaves.
func TestConvLongRowsMatchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, tc := range []struct {
		n, c, m, group, w, k, s, pad int
		long                         bool
	}{
		{1, 128, 40, 1, 1100, 3, 1, 1, true}, {1, 96, 32, 1, 1500, 3, 2, 1, true}, {2, 256, 16, 2, 1031, 5, 2, 2, true},
		{1, 32, 16, 1, 700, 3, 1, 1, false},
	} {
		g := convGeom{h: 1, w: tc.w, kh: 1, kw: tc.k, sh: 1, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(1, 1, 1, 1, 0, 0, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		if got := longRows(g, tc.c/tc.group); got != tc.long {
			t.Fatalf("%+v: longRows = %v", tc, got)
		}
		checkConv(t, r, g, tc.n, tc.c, tc.m, tc.group)
	}
}

// TestConvStridedPointwiseMatchesDirect runs 1x1 convolutions with strides
// (ResNet's downsampling shortcuts), which are gathered into a pointwise
// convolution, against the direct reference: strides along one or both axes,
// odd sizes, batches, groups, maps large enough for two threads to split,
// and end padding that gives a last output reading only padding (which
// keeps them off the gathered path).
func TestConvStridedPointwiseMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, tc := range []struct{ n, c, m, group, h, w, sh, sw, padEnd int }{
		{1, 16, 32, 1, 32, 32, 2, 2, 0}, {1, 64, 128, 1, 56, 56, 2, 2, 0}, {2, 6, 10, 2, 9, 13, 2, 2, 0},
		{1, 5, 7, 1, 11, 10, 2, 1, 0}, {1, 8, 12, 1, 10, 17, 1, 3, 0}, {1, 9, 4, 1, 7, 7, 3, 3, 0},
		{1, 4, 6, 1, 6, 6, 2, 2, 1}, {2, 3, 5, 1, 8, 9, 2, 2, 1},
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: 1, kw: 1, sh: tc.sh, sw: tc.sw, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, 1, tc.sh, 1, 0, tc.padEnd, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, 1, tc.sw, 1, 0, tc.padEnd, "NOTSET")
		if want := tc.padEnd == 0 || (g.oh-1)*g.sh < g.h && (g.ow-1)*g.sw < g.w; stridedPointwise(g) != want {
			t.Fatalf("%+v: stridedPointwise = %v, want %v", tc, !want, want)
		}
		checkConv(t, r, g, tc.n, tc.c, tc.m, tc.group)
	}
}

// TestConvPointwiseLargeMapsMatchDirect runs pointwise convolutions on
// large maps: 16 output channels (the narrow grid kernel on the input planes
// where the machine has one), 24 to 72, input channels in k blocks of 32
// (gemm.PackAStreamed, 128-256 of them) and not, batches, two groups, 1 and
// 2 threads (checkConv), against the direct reference.
func TestConvPointwiseLargeMapsMatchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, tc := range []struct{ n, c, m, group, h, w int }{
		{1, 128, 16, 1, 55, 55}, {1, 100, 24, 1, 48, 48}, {2, 40, 16, 2, 64, 33}, {1, 70, 64, 1, 47, 45}, {1, 20, 16, 1, 60, 60},
		{1, 144, 24, 1, 56, 56}, {1, 200, 37, 1, 50, 47}, {2, 512, 72, 2, 46, 45},
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, oh: tc.h, ow: tc.w}
		checkConv(t, r, g, tc.n, tc.c, tc.m, tc.group)
	}
}

// TestConvPointwiseKBlocksSameBits: pointwise convolutions that read their
// input in k blocks of 32 (gemm.PackAStreamed) give the bits of whole k
// blocks, with and without a bias, on 1 and 2 threads, and at least one
// case takes the blocks where the machine's kernel has them.
func TestConvPointwiseKBlocksSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	defer func() { pointwiseWholeK = false }()
	streamed := 0
	for _, tc := range []struct{ c, m, h, w int }{{144, 24, 56, 56}, {256, 64, 46, 45}, {129, 50, 64, 40}} {
		g := convGeom{h: tc.h, w: tc.w, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, oh: tc.h, ow: tc.w}
		x, w := randFloats(r, tc.c*tc.h*tc.w), randFloats(r, tc.m*tc.c)
		if gemm.PackAStreamed(tc.m, tc.c, 1, gemm.Matrix{Data: w, Stride: tc.c}) != nil {
			streamed++
		}
		for _, b := range [][]float32{nil, randFloats(r, tc.m)} {
			for _, threads := range []int{1, 2} {
				pointwiseWholeK = true
				want := runConv(t, x, w, b, []int{1, tc.c, tc.h, tc.w}, []int{tc.m, tc.c, 1, 1}, g, 1, true, threads)
				pointwiseWholeK = false
				got := runConv(t, x, w, b, []int{1, tc.c, tc.h, tc.w}, []int{tc.m, tc.c, 1, 1}, g, 1, true, threads)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%+v bias=%v threads=%d: out[%d] = %v in k blocks, %v whole", tc, b != nil, threads, i, got[i], want[i])
					}
				}
			}
		}
	}
	if streamed == 0 && gemm.KernelName() != "go-4x8" { // the SIMD kernels have the k blocks
		t.Fatal("no case took the k blocks")
	}
}

// TestConvStripsMatchDirect runs convolutions whose im2col path computes
// several strips of output rows (about 256 KiB of output each), the last one
// short, with a bias, odd widths, padding, stride 2, channel counts that are
// not a multiple of 8 and two groups, against the direct reference.
func TestConvStripsMatchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct{ n, c, m, group, hw, k, s, pad int }{
		{1, 3, 64, 1, 111, 3, 2, 0}, // SqueezeNet-like stem: 55 wide, 4 strips of 18 rows
		{1, 5, 70, 1, 45, 3, 1, 1},  // 3 strips of 20 rows
		{2, 6, 78, 2, 41, 3, 1, 1},  // groups of 39 outputs: 2 strips per group and image
		{1, 4, 96, 1, 57, 3, 2, 1},  // 29 wide, 2 strips
	} {
		g := convGeom{h: tc.hw, w: tc.hw, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		if rows := convStripFloats / (tc.m / tc.group * g.ow); rows >= g.oh {
			t.Fatalf("%+v: one strip of %d rows covers all %d", tc, rows, g.oh)
		}
		checkConvBias(t, r, g, tc.n, tc.c, tc.m, tc.group, 1)
	}
}

// TestConvPaddedGridMatchesDirect runs the grid path on output widths that
// are not a multiple of 8 (it computes the next multiple and drops the
// extra columns): SqueezeNet's 55 and 111, 23, 31 and 46 wide maps, with
// padding, strides 1-2, dilation, channel counts that are not a multiple of
// 8, two groups and batches, against the direct reference.
func TestConvPaddedGridMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, tc := range []struct{ n, c, m, group, h, w, k, s, d, pad int }{
		{1, 16, 64, 1, 55, 55, 3, 1, 1, 1},  // SqueezeNet's first expand 3x3
		{1, 3, 64, 1, 224, 224, 3, 2, 1, 0}, // its stem: 111 wide
		{2, 5, 20, 1, 9, 23, 3, 1, 1, 1},
		{1, 12, 30, 2, 13, 61, 3, 2, 1, 1}, // 31 wide
		{1, 7, 13, 1, 11, 31, 3, 1, 2, 2},
		{1, 9, 40, 1, 6, 47, 2, 1, 1, 0}, // 46 wide, a 2x2 kernel
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: tc.d, dw: tc.d}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		if !gridFits(g) {
			t.Fatalf("%+v: output %dx%d does not take the grid path", tc, g.oh, g.ow)
		}
		checkConvBias(t, r, g, tc.n, tc.c, tc.m, tc.group, 1)
	}
	for _, ow := range []int{13, 15, 27} {
		if gridFits(convGeom{h: ow, w: ow, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, oh: ow, ow: ow}) {
			t.Errorf("%d columns count as whole on the grid (it computes %d)", ow, roundUp8(ow))
		}
	}
}

// TestConvWidePaddingOnGrid: output widths far from a multiple of 8 (2,
// 3, 7, 9, 12, 13, 17, 27, 75) go to the grid path (or the stem path, few
// input channels) when the co-tiles do not take them, computing up to 7
// columns a row for nothing: DenseNet's 64 -> 16 3x3 on 12x12, tiny maps,
// a 7x7 stride 2. Each must take that path and match the direct reference
// at 1, 2 and 3 threads (bands split unevenly, with ForceSplit).
func TestConvWidePaddingOnGrid(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	defer parallel.ForceSplit(parallel.ForcedSplit())
	for _, tc := range []struct {
		n, c, m, group, h, w, k, s, d, pad int
		want                               convPath
	}{
		{1, 64, 16, 1, 12, 12, 3, 1, 1, 1, pathGrid}, // DenseNet-style growth layer
		{1, 256, 16, 1, 3, 3, 3, 1, 1, 1, pathGrid},
		{1, 64, 16, 1, 2, 2, 3, 1, 1, 1, pathGrid},
		{1, 16, 16, 1, 9, 9, 3, 1, 1, 1, pathGrid},
		{2, 32, 24, 2, 13, 13, 3, 1, 1, 1, pathGrid}, // two groups, a batch
		{1, 24, 20, 1, 20, 34, 5, 2, 1, 2, pathGrid}, // 17 wide
		{1, 16, 8, 1, 27, 27, 3, 1, 2, 2, pathGrid},  // dilated
		{1, 16, 16, 1, 75, 75, 3, 1, 1, 1, pathGrid},
		{1, 16, 16, 1, 19, 19, 7, 2, 1, 3, pathGrid}, // 10 wide
		{1, 3, 16, 1, 24, 24, 3, 1, 1, 1, pathStem},  // 24 wide: whole
		{1, 3, 16, 1, 12, 28, 7, 2, 1, 3, pathStem},  // 14 wide
		{1, 1, 8, 1, 13, 13, 3, 1, 1, 1, pathStem},
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: tc.d, dw: tc.d}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		w := randFloats(r, tc.m*(tc.c/tc.group)*g.kh*g.kw)
		s := convSessionOf(t, w, randFloats(r, tc.m), []int{tc.m, tc.c / tc.group, g.kh, g.kw}, g, tc.group, 1)
		k := s.steps[0].k.(*convKernel)
		in, cc := constCall(t, k, graph.Float32Tensor([]int{tc.n, tc.c, g.h, g.w}, make([]float32, tc.n*tc.c*g.h*g.w)))
		if got := k.pathOf(in, cc, false); got != tc.want {
			t.Fatalf("%+v: output %dx%d takes path %d, want %d", tc, g.oh, g.ow, got, tc.want)
		}
		for _, threads := range []int{1, 2, 3} {
			parallel.ForceSplit(threads)
			checkConvBias(t, r, g, tc.n, tc.c, tc.m, tc.group, 1)
		}
	}
}

// TestConvGridBandsMatchOneThread: on the grid path, each band of a small
// input lays out the phase rows it reads into its own buffer (its rows and
// the halo below);
// any row it missed would read zeros or stale data. Split over 3 bands
// (uneven, odd rows) with strides, dilation, kernels of 2-5, groups and
// batches, the output must have the same bits as on one thread.
func TestConvGridBandsMatchOneThread(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, tc := range []struct{ n, c, m, group, h, w, k, s, d, pad int }{
		{1, 16, 16, 1, 8, 8, 3, 1, 1, 1},
		{1, 16, 32, 1, 16, 16, 3, 2, 1, 1},
		{2, 8, 16, 2, 11, 16, 3, 1, 1, 1},
		{1, 6, 8, 1, 13, 24, 5, 1, 1, 2},
		{1, 5, 12, 1, 15, 32, 3, 2, 2, 2},
		{2, 4, 8, 1, 7, 9, 2, 1, 1, 0},
		{1, 32, 8, 1, 64, 64, 3, 1, 1, 1}, // past ownBufFloats: one buffer, laid out in its own region
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: tc.d, dw: tc.d}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		if !gridFits(g) {
			t.Fatalf("%+v: output %dx%d does not take the grid path", tc, g.oh, g.ow)
		}
		x := randFloats(r, tc.n*tc.c*g.h*g.w)
		w := randFloats(r, tc.m*(tc.c/tc.group)*g.kh*g.kw)
		b := randFloats(r, tc.m)
		xs, ws := []int{tc.n, tc.c, g.h, g.w}, []int{tc.m, tc.c / tc.group, g.kh, g.kw}
		want := runConv(t, x, w, b, xs, ws, g, tc.group, true, 1)
		parallel.ForceSplit(3)
		got := runConv(t, x, w, b, xs, ws, g, tc.group, true, 3)
		again := runConv(t, x, w, b, xs, ws, g, tc.group, true, 3)
		parallel.ForceSplit(0)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(again[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: out[%d] = %v (then %v) in bands, %v on one thread", tc, i, got[i], again[i], want[i])
			}
		}
	}
}

// addConv adds a Conv node with geometry g (its end pads derived from the
// output size) to gr and returns its output.
func addConv(gr *graph.Graph, ins []*graph.Value, out string, g convGeom, group int) *graph.Value {
	pb := (g.oh-1)*g.sh + g.dh*(g.kh-1) + 1 - g.h - g.pt
	pr := (g.ow-1)*g.sw + g.dw*(g.kw-1) + 1 - g.w - g.pl
	return gr.AddNode("Conv", "conv", ins, []string{out},
		graph.AttrIntOf("group", int64(group)),
		graph.AttrIntsOf("kernel_shape", int64(g.kh), int64(g.kw)),
		graph.AttrIntsOf("strides", int64(g.sh), int64(g.sw)),
		graph.AttrIntsOf("dilations", int64(g.dh), int64(g.dw)),
		graph.AttrIntsOf("pads", int64(g.pt), int64(g.pl), int64(max(0, pb)), int64(max(0, pr)))).Output()
}

// TestConvOneByOneMapsMatchDirect runs pointwise convolutions of 1x1 maps
// (a squeeze-excitation's convolutions after global pooling), which take
// the transposed-weights product (runVector), against the direct
// reference: one image and a batch, input channels past a k block (256),
// output channels that fill no whole panel, with and without bias, on 1
// and 2 threads; two groups take the convolution paths.
func TestConvOneByOneMapsMatchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	g := convGeom{h: 1, w: 1, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, oh: 1, ow: 1}
	for _, tc := range []struct{ n, c, m, group int }{
		{1, 48, 1152, 1}, {1, 1152, 48, 1}, {3, 300, 33, 1}, {2, 7, 1, 1}, {1, 16, 40, 2},
	} {
		for bias := 0; bias < 2; bias++ {
			checkConvBias(t, r, g, tc.n, tc.c, tc.m, tc.group, bias)
		}
	}
}

// TestConvOneByOneMapsFusedSameBits: on 1x1 maps, the convolution with its
// fused epilogue (Sigmoid over the whole block; BatchNormalization and
// Relu per channel; a shortcut Add) gives the bits of the nodes run one by
// one.
func TestConvOneByOneMapsFusedSameBits(t *testing.T) {
	b := testmodels.NewBuilder(3, 17)
	x := b.Input("x", 2, 96, 1, 1)
	se := b.Sigmoid(b.Conv(b.Relu(b.Conv(x, 24, 1, testmodels.ConvOpts{})), 96, 1, testmodels.ConvOpts{}))
	bn := b.Relu(b.BatchNorm(b.Conv(x, 64, 1, testmodels.ConvOpts{NoBias: true})))
	res := b.Relu(b.Add(b.Conv(x, 96, 1, testmodels.ConvOpts{}), x))
	for _, v := range []*graph.Value{se, bn, res} {
		b.Output(v)
	}
	m := b.Finish()
	in := map[string]*graph.Tensor{"x": graph.Float32Tensor([]int{2, 96, 1, 1}, randFloats(rand.New(rand.NewPCG(1, 2)), 192))}
	run := func(noFusion bool) map[string]*graph.Tensor {
		return compileAndRun(t, m, Options{Threads: 1, NoFusion: noFusion}, in)
	}
	fused, apart := run(false), run(true)
	for _, o := range m.Graph.Outputs {
		f, a := fused[o.Name].Float32s(), apart[o.Name].Float32s()
		for i := range a {
			if math.Float32bits(f[i]) != math.Float32bits(a[i]) {
				t.Errorf("%s[%d]: fused %v, node by node %v", o.Name, i, f[i], a[i])
				break
			}
		}
	}
}

// TestConvStride4And8MatchDirect runs convolutions of strides 4 and 8, whose
// input rows are dealt to their column phases at once (vec.DealRows): patch
// embeddings (kernel = stride) on the stem path (3 channels) and the grid
// path, widths that are not a multiple of the stride, left padding (the
// phases then start at other residues), a kernel larger than the stride,
// groups and batches, against the direct reference at 1 and 2 threads.
func TestConvStride4And8MatchDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, tc := range []struct{ n, c, m, group, h, w, k, s, pad int }{
		{1, 3, 96, 1, 64, 64, 4, 4, 0}, {1, 3, 32, 1, 64, 48, 8, 8, 0}, {1, 16, 24, 1, 30, 30, 4, 4, 0},
		{1, 8, 16, 1, 37, 45, 8, 8, 4}, {2, 6, 12, 3, 33, 33, 6, 4, 1}, {1, 3, 16, 1, 50, 61, 7, 4, 3},
		{1, 4, 8, 1, 20, 21, 8, 8, 0},
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		checkConv(t, r, g, tc.n, tc.c, tc.m, tc.group)
	}
}
