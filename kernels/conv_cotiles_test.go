package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// TestConvCoTilesMatchIm2col: convolutions on the co-tile path give the
// bits of im2col's (whose GEMM sums the same way): widths that are not a
// multiple of the tile (1, 7, 13, 27, 28, 55), strides 1 and 2, dilation,
// asymmetric and no padding, 3x3, 5x5 and 1x3 kernels, 32 to 100 output
// channels (the last block of 32 partial), taps within one k block and over
// several, two groups, a batch, pointwise convolutions on small maps,
// strided 1x1 ones gathered to small maps, with
// and without a bias, on 1 thread and split 3 ways (one block of channels
// on a small map split into bands of rows or pixels).
func TestConvCoTilesMatchIm2col(t *testing.T) {
	if !gemm.HasCoTiles() {
		t.Skip("no co-tile kernels on this machine")
	}
	r := rand.New(rand.NewPCG(51, 52))
	defer func() { forceIm2col = false }()
	ran := 0
	for _, tc := range []struct{ n, c, m, group, h, w, kh, kw, s, d, pt, pl, pb, pr int }{
		{1, 16, 32, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1}, // 144 taps
		{1, 64, 64, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1},
		{1, 40, 48, 1, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1},
		{1, 40, 45, 1, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1}, // 19 of 64 lanes empty: not taken
		{2, 16, 100, 1, 27, 27, 3, 3, 1, 1, 1, 1, 1, 1},
		{1, 32, 64, 1, 56, 56, 3, 3, 2, 1, 1, 1, 1, 1},
		{1, 16, 40, 1, 55, 55, 3, 3, 1, 1, 0, 0, 0, 0},
		{1, 64, 64, 2, 15, 17, 3, 3, 1, 2, 2, 2, 2, 2},
		{1, 8, 32, 1, 20, 31, 5, 5, 2, 1, 2, 1, 1, 2}, // 200 taps
		{1, 48, 96, 1, 9, 30, 1, 3, 1, 1, 0, 1, 0, 1},
		{1, 64, 32, 1, 14, 14, 1, 1, 2, 1, 0, 0, 0, 0}, // a strided 1x1 of 64 taps: not taken
		// Strided 1x1 (ResNet's shortcuts) to small maps: gathered, then
		// pointwise co-tiles; strides 2 and 3, odd sizes, groups, a batch.
		{1, 256, 64, 1, 14, 14, 1, 1, 2, 1, 0, 0, 0, 0},
		{2, 512, 96, 2, 13, 13, 1, 1, 2, 1, 0, 0, 0, 0},
		{1, 128, 48, 1, 9, 12, 1, 1, 3, 1, 0, 0, 0, 0},
		{1, 64, 64, 1, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1},
		{1, 16, 64, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1},
		// Pointwise on small maps (the input read where it lies, one long
		// row of pixels): k blocks, two groups, a partial block, a batch.
		{1, 600, 64, 1, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0},
		{2, 384, 50, 1, 14, 14, 1, 1, 1, 1, 0, 0, 0, 0},
		{1, 300, 96, 2, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0},
		{1, 128, 256, 1, 3, 11, 1, 1, 1, 1, 0, 0, 0, 0},
		{1, 256, 256, 1, 13, 13, 1, 1, 1, 1, 0, 0, 0, 0}, // 169 pixels, 256 channels: not taken
		// One block of 32 channels and one band: split into narrower
		// bands so that every seat gets items (Inception's 5x5 on 11x11,
		// its 1x7 on 5x5, a pointwise on 11x11).
		{1, 24, 32, 1, 11, 11, 5, 5, 1, 1, 2, 2, 2, 2},
		{1, 32, 32, 1, 5, 5, 1, 7, 1, 1, 0, 3, 0, 3},
		{1, 176, 32, 1, 11, 11, 1, 1, 1, 1, 0, 0, 0, 0},
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.kh, kw: tc.kw, sh: tc.s, sw: tc.s, dh: tc.d, dw: tc.d}
		g.oh, g.pt, _ = convOut(g.h, tc.kh, tc.s, tc.d, tc.pt, tc.pb, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.kw, tc.s, tc.d, tc.pl, tc.pr, "NOTSET")
		cg, mg := tc.c/tc.group, tc.m/tc.group
		if !coFits(g, cg, mg) && !(stridedPointwise(g) && coFits(gatheredGeom(g), cg, mg)) {
			t.Logf("%+v: not on the co-tile path (that is fine: coFits says so)", tc)
			continue
		}
		ran++
		x := randFloats(r, tc.n*tc.c*g.h*g.w)
		w := randFloats(r, tc.m*cg*g.kh*g.kw)
		xs, ws := []int{tc.n, tc.c, g.h, g.w}, []int{tc.m, cg, g.kh, g.kw}
		for _, b := range [][]float32{nil, randFloats(r, tc.m)} {
			forceIm2col = true
			want := runConv(t, x, w, b, xs, ws, g, tc.group, true, 1)
			forceIm2col = false
			got := runConv(t, x, w, b, xs, ws, g, tc.group, true, 1)
			parallel.ForceSplit(3)
			split := runConv(t, x, w, b, xs, ws, g, tc.group, true, 3)
			parallel.ForceSplit(0)
			what := fmt.Sprintf("%+v bias=%v", tc, b != nil)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(split[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s: out[%d] = %v (split: %v), im2col %v", what, i, got[i], split[i], want[i])
				}
			}
		}
	}
	if ran < 16 {
		t.Fatalf("only %d cases took the co-tile path", ran)
	}
}

// TestZooCoTilesSameOutputs: whole models whose convolutions take the
// co-tile path with fused epilogues (BatchNormalization, Relu, Clip) and
// shortcuts (Add, Add+Relu) give the bits of the same models without it.
func TestZooCoTilesSameOutputs(t *testing.T) {
	if !gemm.HasCoTiles() {
		t.Skip("no co-tile kernels on this machine")
	}
	defer func() { noCoTiles = false }()
	for _, name := range []string{"resnet50-bnfolded", "mobilenetv2", "squeezenet"} {
		m, err := testmodels.Build(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		in, err := testmodels.Samples(name, m, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSession(m, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		noCoTiles = false
		got, err := s.Run(in[0])
		if err != nil {
			t.Fatal(err)
		}
		noCoTiles = true
		want, err := s.Run(in[0])
		if err != nil {
			t.Fatal(err)
		}
		for out, w := range want {
			sameTensorBits(t, name+" "+out, got[out], w)
		}
	}
}

// TestNewPathsAllocateNoMore: a run with the co-tiles and the in-place
// Concats allocates no more than one without them (SqueezeNet takes both;
// a kernel called through a func value once moved each tile's scratch to
// the heap: about 950 allocations a run more).
func TestNewPathsAllocateNoMore(t *testing.T) {
	defer func() { noCoTiles, noConcatPlace = false, false }()
	m, err := testmodels.Build("squeezenet", 1)
	if err != nil {
		t.Fatal(err)
	}
	in, err := testmodels.Samples("squeezenet", m, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	var allocs [2]float64
	for i, off := range []bool{false, true} {
		noCoTiles, noConcatPlace = off, off
		s, err := NewSession(m, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		allocs[i] = testing.AllocsPerRun(3, func() {
			out, err := s.Run(in[0])
			if err != nil {
				t.Fatal(err)
			}
			s.Recycle(out)
		})
	}
	t.Logf("allocations a run: %.0f with the new paths, %.0f without", allocs[0], allocs[1])
	if allocs[0] > allocs[1]+8 {
		t.Errorf("%.0f allocations a run with co-tiles and Concats in place, %.0f without", allocs[0], allocs[1])
	}
}
