package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// stemModel is one dense Conv (c -> m channels in group groups, geometry g,
// with a bias) followed by the epilogue named by epi as exporters write it:
// "silu" (Sigmoid and Mul, YOLO's), "bn-relu6" (BatchNormalization then Clip
// 0..6, MobileNet's), "relu" (SqueezeNet's) or "" (none).
func stemModel(r *rand.Rand, g convGeom, c, m, group int, epi string) *graph.Model {
	md := graph.NewModel(graph.Opset{Domain: "", Version: 21})
	gr := md.Graph
	cg := c / group
	ins := []*graph.Value{gr.AddInput("x", graph.Float, nil),
		gr.AddInitializer("w", graph.Float32Tensor([]int{m, cg, g.kh, g.kw}, randFloats(r, m*cg*g.kh*g.kw))),
		gr.AddInitializer("b", graph.Float32Tensor([]int{m}, randFloats(r, m)))}
	y := addConv(gr, ins, "conv_out", g, group)
	scalar := func(name string, v float32) *graph.Value {
		return gr.AddInitializer(name, graph.Float32Tensor([]int{}, []float32{v}))
	}
	switch epi {
	case "silu":
		s := gr.AddNode("Sigmoid", "sigmoid", []*graph.Value{y}, []string{"sig"}).Output()
		y = gr.AddNode("Mul", "mul", []*graph.Value{y, s}, []string{"silu"}).Output()
	case "bn-relu6":
		v := make([]float32, m)
		for i := range v {
			v[i] = 0.25 + r.Float32()
		}
		y = gr.AddNode("BatchNormalization", "bn", []*graph.Value{y,
			gr.AddInitializer("scale", graph.Float32Tensor([]int{m}, randFloats(r, m))),
			gr.AddInitializer("shift", graph.Float32Tensor([]int{m}, randFloats(r, m))),
			gr.AddInitializer("mean", graph.Float32Tensor([]int{m}, randFloats(r, m))),
			gr.AddInitializer("var", graph.Float32Tensor([]int{m}, v))}, []string{"bn_out"}).Output()
		y = gr.AddNode("Clip", "clip", []*graph.Value{y, scalar("lo", 0), scalar("hi", 6)}, []string{"clip_out"}).Output()
	case "relu":
		y = gr.AddNode("Relu", "relu", []*graph.Value{y}, []string{"relu_out"}).Output()
	}
	gr.AddOutput(y)
	return md
}

// TestConvStemMatchesGrid runs stems (1-4 input channels) on the stem path
// and on the grid path, both with their epilogues fused, on one thread and
// split over two (and three: bands of uneven rows): all must give the same
// bits, and without an epilogue the stem path must match the direct
// reference convolution. The shapes have padding and none, output widths
// that are no multiple of 8 (computed 8 wider, the extra column landing on
// the next row), several strips with a shorter last one, batches of 2, two
// groups, 3x3 and 7x7 kernels, strides 1 and 2, and a dilation.
func TestConvStemMatchesGrid(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	defer func() { forceGridStem = false }()
	cases := 0
	for _, tc := range []struct{ n, c, m, group, h, w, k, s, d, pad int }{
		{1, 3, 16, 1, 66, 64, 3, 2, 1, 1},   // YOLO's stem, smaller: 32 wide
		{1, 3, 64, 1, 96, 94, 3, 2, 1, 0},   // SqueezeNet's: 46 wide, no padding
		{2, 3, 32, 1, 50, 48, 3, 2, 1, 1},   // MobileNetV2's, a batch of 2
		{1, 3, 24, 1, 80, 80, 7, 2, 1, 3},   // ResNet's 7x7
		{1, 1, 8, 1, 40, 47, 3, 1, 1, 1},    // grayscale, 47 wide, stride 1
		{2, 4, 20, 1, 45, 63, 3, 2, 1, 0},   // RGBA, 31 wide
		{1, 2, 13, 1, 37, 45, 3, 2, 2, 2},   // dilated, 23 wide
		{1, 4, 12, 2, 33, 48, 3, 2, 1, 1},   // two groups of 2 channels
		{1, 3, 40, 1, 160, 222, 3, 2, 1, 0}, // several strips, 110 wide
	} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: tc.d, dw: tc.d}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, tc.d, tc.pad, tc.pad, "NOTSET")
		if !gridFits(g) {
			t.Fatalf("%+v: output %dx%d does not take the grid path", tc, g.oh, g.ow)
		}
		if !stemFits(tc.c / tc.group) {
			t.Fatalf("%+v: does not take the stem path", tc)
		}
		if l := newStemLayout(g, tc.c/tc.group, tc.m/tc.group, false, 0); tc.h > 100 && l.rows >= g.oh {
			t.Fatalf("%+v: %d rows per strip, want several strips", tc, l.rows)
		}
		for _, epi := range []string{"", "silu", "bn-relu6", "relu"} {
			cases++
			md := stemModel(r, g, tc.c, tc.m, tc.group, epi)
			x := graph.Float32Tensor([]int{tc.n, tc.c, g.h, g.w}, randFloats(r, tc.n*tc.c*g.h*g.w))
			name := fmt.Sprintf("%+v %q", tc, epi)
			run := func(grid bool, threads int) []float32 {
				forceGridStem = grid
				return runSplit(t, md, x, threads, name)
			}
			got := run(false, 1)
			for _, other := range []struct {
				grid    bool
				threads int
			}{{true, 1}, {true, 2}, {false, 2}, {false, 3}} {
				want := run(other.grid, other.threads)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s: out[%d] = %v on the stem path, %v with grid=%v threads=%d", name, i, got[i], want[i], other.grid, other.threads)
					}
				}
			}
			if epi != "" {
				continue
			}
			w := md.Graph.Initializers[0].Const.Float32s()
			b := md.Graph.Initializers[1].Const.Float32s()
			ref, mag := convNaive(x.Float32s(), w, b, tc.n, tc.c, g.h, g.w, tc.m, tc.group, g.kh, g.kw, g)
			for i := range ref {
				if math.Abs(float64(got[i]-ref[i])) > 1e-6*(1+float64(mag[i])) {
					t.Fatalf("%s: out[%d] = %v, direct convolution %v", name, i, got[i], ref[i])
				}
			}
		}
	}
	if cases != 36 {
		t.Fatalf("%d cases", cases)
	}
}

// runSplit runs md on x (its input "x") in a fresh session on threads,
// every parallel loop split that many ways (parallel.ForceSplit), and
// returns its first output.
func runSplit(t *testing.T, md *graph.Model, x *graph.Tensor, threads int, name string) []float32 {
	t.Helper()
	if threads > 1 {
		parallel.ForceSplit(threads)
		defer parallel.ForceSplit(0)
	}
	s, err := NewSession(md, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{"x": x})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out[md.Graph.Outputs[0].Name].Float32s()
}

// BenchmarkConvStemVsGrid times zoo models' stems in the whole model (their
// input and output in memory, not cache, as in use) on the stem path and on
// the grid path, alternating run by run, at 1 and 2 threads. At 1 thread the
// stem's time is the thread CPU time from the input's tap to the stem
// output's (on a shared machine it counts what the stem costs, not the time
// spent waiting for a core); at 2 threads the wall time of its profiled
// step. It reports each path's median ms and their ratio, and at 1 thread
// the ratio of the whole runs' thread CPU times.
func BenchmarkConvStemVsGrid(b *testing.B) {
	for _, name := range []string{"yolo-silu", "squeezenet", "mobilenetv2", "resnet50"} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", name, threads), func(b *testing.B) { benchStemVsGrid(b, name, threads) })
		}
	}
}

func benchStemVsGrid(b *testing.B, name string, threads int) {
	m, err := testmodels.Build(name, 1)
	if err != nil {
		b.Fatal(err)
	}
	ins, err := testmodels.Samples(name, m, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	in := ins[0]
	// The stem's step: the first one that is a Conv; its output is its last
	// node's.
	s, err := NewSession(m, Options{Threads: threads, Profile: true})
	if err != nil {
		b.Fatal(err)
	}
	out, err := s.Run(in)
	if err != nil {
		b.Fatal(err)
	}
	s.Recycle(out)
	stem := -1
	for i, st := range s.Profile().Steps {
		if strings.HasPrefix(st.OpType, "Conv") {
			stem = i
			break
		}
	}
	if stem < 0 {
		b.Fatalf("%s has no Conv step", name)
	}
	names := strings.Split(s.Profile().Steps[stem].Name, "+")
	var stemOut string
	for _, n := range m.Graph.Nodes {
		if n.Name == names[len(names)-1] {
			stemOut = n.Outputs[0].Name
		}
	}
	input := m.Graph.Inputs[0].Name
	var t0, t1 float64
	opts := Options{Threads: threads, Profile: threads > 1}
	if threads == 1 {
		opts.TapOnly = map[string]bool{input: true, stemOut: true}
		opts.Tap = func(name string, _ *graph.Tensor) {
			if name == input {
				t0 = threadCPU()
			} else {
				t1 = threadCPU()
			}
		}
	}
	if s, err = NewSession(m, opts); err != nil {
		b.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() { forceGridStem = false }()
	var times, runs [2][]float64
	for i := 0; i < b.N+2; i++ {
		for path := 0; path < 2; path++ {
			forceGridStem = path == 1
			if threads > 1 {
				s.ResetProfile()
			}
			t0, t1 = 0, 0
			start := threadCPU()
			out, err := s.Run(in)
			if err != nil {
				b.Fatal(err)
			}
			s.Recycle(out)
			if i < 2 {
				continue
			}
			if threads == 1 {
				if t1 <= t0 {
					b.Fatalf("the taps of %s and %s did not time the stem", input, stemOut)
				}
				times[path] = append(times[path], t1-t0)
				runs[path] = append(runs[path], threadCPU()-start)
				continue
			}
			for _, e := range s.Profile().Events {
				if e.Step == stem {
					times[path] = append(times[path], float64(e.Dur.Microseconds())/1e3)
				}
			}
		}
	}
	med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
	st, gs := med(times[0]), med(times[1])
	b.ReportMetric(st, "stem-ms")
	b.ReportMetric(gs, "grid-ms")
	b.ReportMetric(st/gs, "stem/grid")
	if threads == 1 {
		b.ReportMetric(med(runs[0])/med(runs[1]), "run-stem/grid")
	}
}
