package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// stemPoolModel is stemModel with a 3x3 stride-2 MaxPool after it, of pads
// (top, left, bottom, right) and ceil mode ceil.
func stemPoolModel(r *rand.Rand, g convGeom, c, m, group int, epi string, pads [4]int64, ceil bool) *graph.Model {
	md := stemModel(r, g, c, m, group, epi)
	gr := md.Graph
	y := gr.Outputs[0]
	gr.Outputs = nil
	attrs := []*onnxpb.AttributeProto{graph.AttrIntsOf("kernel_shape", 3, 3), graph.AttrIntsOf("strides", 2, 2), graph.AttrIntsOf("pads", pads[:]...)}
	if ceil {
		attrs = append(attrs, graph.AttrIntOf("ceil_mode", 1))
	}
	gr.AddOutput(gr.AddNode("MaxPool", "pool", []*graph.Value{y}, []string{"pooled"}, attrs...).Output())
	return md
}

// TestStemPoolMatchesUnfused runs stems with a 3x3 stride-2 MaxPool after
// them fused (the pool on each strip as the stem path computes it) and
// unfused, on one thread and split over two and three: the same bits. The
// cases: SqueezeNet's (ceil mode, 111-wide-like odd maps), ResNet's 7x7 with
// a padded pool, AlexNet's 11x11 stride 4, pads of 2 and uneven pads,
// ceil-mode windows past the map on both axes (the columns computed past
// it), batches, two groups, every epilogue the stem path fuses, and NaNs in
// the input. Each fused session
// must have fused the pool and take the strip path for the input.
func TestStemPoolMatchesUnfused(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	defer func() { noStemPools = false }()
	cases := 0
	for _, tc := range []struct {
		n, c, m, group, h, w, k, s, pad int
		pads                            [4]int64
		ceil                            bool
	}{
		{1, 3, 64, 1, 96, 94, 3, 2, 0, [4]int64{}, true},            // SqueezeNet's: 46 wide, ceil
		{1, 3, 64, 1, 95, 95, 3, 2, 0, [4]int64{}, true},            // 47x47: ceil windows past the map
		{1, 3, 24, 1, 80, 80, 7, 2, 3, [4]int64{1, 1, 1, 1}, false}, // ResNet's
		{2, 3, 32, 1, 50, 48, 3, 2, 1, [4]int64{1, 1, 1, 1}, true},  // a batch of 2
		{1, 1, 8, 1, 40, 47, 3, 1, 1, [4]int64{2, 2, 2, 2}, false},  // grayscale, pads of 2
		{1, 4, 12, 2, 33, 48, 3, 2, 1, [4]int64{0, 1, 1, 0}, true},  // two groups, uneven pads
		{1, 3, 40, 1, 160, 222, 3, 2, 0, [4]int64{}, true},          // several strips, 110 wide
		{1, 3, 32, 1, 131, 131, 11, 4, 2, [4]int64{}, false},        // AlexNet's 11x11 stride 4: 32x32
		{1, 3, 16, 1, 26, 26, 3, 2, 1, [4]int64{}, true},            // 13 wide: 3 columns computed for nothing
		{1, 3, 16, 1, 28, 28, 7, 2, 3, [4]int64{1, 1, 1, 1}, false}, // 14 wide
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		for _, epi := range []string{"", "relu", "bn-relu6"} {
			for _, nan := range []bool{false, true} {
				cases++
				md := stemPoolModel(r, g, tc.c, tc.m, tc.group, epi, tc.pads, tc.ceil)
				xv := randFloats(r, tc.n*tc.c*g.h*g.w)
				if nan {
					for i := 0; i < len(xv); i += 997 {
						xv[i] = float32(math.NaN())
					}
				}
				x := graph.Float32Tensor([]int{tc.n, tc.c, g.h, g.w}, xv)
				name := fmt.Sprintf("%+v %q nan=%v", tc, epi, nan)
				noStemPools = false
				s, err := NewSession(md, Options{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				if !stripPooled(t, s, x) {
					t.Fatalf("%s: the pool is not fused, or not on the strip path", name)
				}
				for _, threads := range []int{1, 2, 3} {
					noStemPools = false
					got := runSplit(t, md, x, threads, name)
					noStemPools = true
					want := runSplit(t, md, x, threads, name)
					if len(got) != len(want) {
						t.Fatalf("%s: %d outputs fused, %d unfused", name, len(got), len(want))
					}
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s threads=%d: out[%d] = %v fused, %v unfused", name, threads, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	if cases != 60 {
		t.Fatalf("%d cases", cases)
	}
}

// stripPooled reports whether s has a Conv with a fused pool that takes the
// strip path (runStemPool) for input x.
func stripPooled(t *testing.T, s *Session, x *graph.Tensor) bool {
	t.Helper()
	for _, st := range s.steps {
		k, ok := st.k.(*convKernel)
		if !ok || k.pool == nil {
			continue
		}
		in, cc := constCall(t, k, x)
		_, ok = k.stemPooled(in, cc)
		return ok
	}
	return false
}

// constCall is the inputs and call of Conv kernel k on x with its const
// weights (and bias, if it has one), as its Run would set them up.
func constCall(t *testing.T, k *convKernel, x *graph.Tensor) ([]*graph.Tensor, convCall) {
	t.Helper()
	in := []*graph.Tensor{x, k.wConst}
	if len(k.ni.Node.Inputs) > 2 {
		in = append(in, k.ni.Const(2))
	}
	cc, err := k.setup(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, cc
}

// TestStemPoolFallsBack: a fused pool whose Conv does not take the stem
// path for an input (sent to im2col here: any width takes the stem path
// now, so no input shape does this today; the fallback keeps a future
// path rule from computing a pool on the wrong layout) computes the Conv
// whole and pools it after, and a pool whose input is also a graph output
// stays unfused; both give the unfused bits.
func TestStemPoolFallsBack(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	defer func() { noStemPools, forceIm2col = false, false }()
	forceIm2col = true
	g := convGeom{h: 26, w: 26, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, oh: 13, ow: 13}
	x := graph.Float32Tensor([]int{2, 3, 26, 26}, randFloats(r, 2*3*26*26))
	for _, extra := range []bool{false, true} {
		md := stemPoolModel(r, g, 3, 16, 1, "relu", [4]int64{1, 1, 1, 1}, true)
		if extra {
			md.Graph.AddOutput(md.Graph.Outputs[0].Producer.Inputs[0])
		}
		s, err := NewSession(md, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		fused := false
		for _, st := range s.steps {
			if k, ok := st.k.(*convKernel); ok && k.pool != nil {
				fused = true
			}
		}
		if fused == extra || stripPooled(t, s, x) {
			t.Fatalf("extra output %v: fused %v, or on the strip path", extra, fused)
		}
		for _, threads := range []int{1, 2} {
			noStemPools = false
			got := runSplit(t, md, x, threads, "fallback")
			noStemPools = true
			want := runSplit(t, md, x, threads, "fallback")
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("extra output %v, threads %d: out[%d] = %v fused, %v unfused", extra, threads, i, got[i], want[i])
				}
			}
		}
	}
}

// TestStemPoolFallbackIntoConcat: a fused pool on the fallback path whose
// output a Concat places in its own buffer (the Conv's output, a temporary,
// is 1x1 like the pooled one, and must not take that place): run after run,
// the unfused bits, and both of the Concat's inputs written in place.
func TestStemPoolFallbackIntoConcat(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	defer func() { noStemPools = false }()
	g := convGeom{h: 2, w: 2, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, oh: 1, ow: 1}
	md := stemPoolModel(r, g, 3, 8, 1, "relu", [4]int64{1, 1, 1, 1}, false)
	gr := md.Graph
	pooled := gr.Outputs[0]
	gr.Outputs = nil
	other := gr.AddNode("GlobalAveragePool", "other", []*graph.Value{gr.Inputs[0]}, []string{"other"}).Output()
	gr.AddOutput(gr.AddNode("Concat", "cat", []*graph.Value{pooled, other}, []string{"cat"}, graph.AttrIntOf("axis", 1)).Output())
	var outs [2][]float32
	for i := range outs {
		noStemPools = i == 1
		s, err := NewSession(md, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 3; run++ {
			x := graph.Float32Tensor([]int{1, 3, 2, 2}, randFloats(rand.New(rand.NewPCG(uint64(run), 7)), 12))
			o, err := s.Run(map[string]*graph.Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			outs[i] = append(outs[i], o["cat"].Float32s()...)
			if run > 0 && s.concats.placed != 2 {
				t.Fatalf("run %d (fused %v): %d inputs written in the Concat's place, want both", run, i == 0, s.concats.placed)
			}
			s.Recycle(o)
		}
	}
	if len(outs[0]) != 3*(8+3) {
		t.Fatalf("%d outputs", len(outs[0]))
	}
	for i := range outs[1] {
		if math.Float32bits(outs[0][i]) != math.Float32bits(outs[1][i]) {
			t.Fatalf("out[%d] = %v fused, %v unfused", i, outs[0][i], outs[1][i])
		}
	}
}
