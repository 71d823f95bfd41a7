package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// depthwiseEpilogueModel is one depthwise Conv (c channels, geometry g, a
// bias when withBias) followed by the elementwise chain named by epi, as
// exported models have them: "bn-relu6" (BatchNormalization then Clip 0..6,
// MobileNet's), "bn-relu", "bn", "relu", "mul-clip" (a scalar Mul, then
// Clip: an epilogue the kernel does not take over) and "bn-sigmoid".
func depthwiseEpilogueModel(r *rand.Rand, g convGeom, c int, withBias bool, epi string) *graph.Model {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 21})
	gr := m.Graph
	x := gr.AddInput("x", graph.Float, nil)
	ins := []*graph.Value{x, gr.AddInitializer("w", graph.Float32Tensor([]int{c, 1, g.kh, g.kw}, randFloats(r, c*g.kh*g.kw)))}
	if withBias {
		ins = append(ins, gr.AddInitializer("b", graph.Float32Tensor([]int{c}, randFloats(r, c))))
	}
	y := addConv(gr, ins, "conv_out", g, c)
	scalar := func(name string, v float32) *graph.Value {
		return gr.AddInitializer(name, graph.Float32Tensor([]int{}, []float32{v}))
	}
	positive := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 0.25 + r.Float32()
		}
		return v
	}
	for i, op := range map[string][]string{
		"bn-relu6": {"bn", "relu6"}, "bn-relu": {"bn", "relu"}, "bn": {"bn"}, "relu": {"relu"},
		"mul-clip": {"mul", "relu6"}, "bn-sigmoid": {"bn", "sigmoid"},
	}[epi] {
		out := fmt.Sprintf("t%d", i)
		switch op {
		case "bn":
			y = gr.AddNode("BatchNormalization", "bn", []*graph.Value{y,
				gr.AddInitializer("scale", graph.Float32Tensor([]int{c}, randFloats(r, c))),
				gr.AddInitializer("shift", graph.Float32Tensor([]int{c}, randFloats(r, c))),
				gr.AddInitializer("mean", graph.Float32Tensor([]int{c}, randFloats(r, c))),
				gr.AddInitializer("var", graph.Float32Tensor([]int{c}, positive(c)))}, []string{out}).Output()
		case "relu6":
			y = gr.AddNode("Clip", "clip", []*graph.Value{y, scalar("lo", 0), scalar("hi", 6)}, []string{out}).Output()
		case "relu":
			y = gr.AddNode("Relu", "relu", []*graph.Value{y}, []string{out}).Output()
		case "mul":
			y = gr.AddNode("Mul", "mul", []*graph.Value{y, scalar("k", 1.75)}, []string{out}).Output()
		case "sigmoid":
			y = gr.AddNode("Sigmoid", "sigmoid", []*graph.Value{y}, []string{out}).Output()
		}
	}
	gr.AddOutput(y)
	return m
}

// TestDepthwisePathsAgree runs depthwise convolutions with their epilogues
// on padded rows (vec.TapRows, BatchNormalization and Clip/Relu in the
// kernel), on phase planes (then the epilogue's passes) and 8 channels at a
// time (depthwiseC8, the epilogue in the kernel too), fused and unfused, on 1
// and 2 threads: all must give the same bits, and the phase planes must match
// the direct reference convolution. Strides 1 and 2 (and 3, where the rows
// path takes the phase planes), 3x3 and 5x5 kernels, dilations 1 and 2, pads
// below, at and above "same", widths that are no multiple of 8 (below 8 too;
// from splitWidth up, stride-2 rows are split into even and odd columns; 150
// takes several bands), channel counts that are no multiple of 8 (a last
// block of 8 that is partly empty), batches of 1 and 2.
func TestDepthwisePathsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	defer func() { depthwisePath = dwAuto }()
	epis := []string{"bn-relu6", "bn-relu", "bn", "relu", "mul-clip", "bn-sigmoid", ""}
	cases := 0
	for _, s := range []int{1, 2, 3} {
		for _, k := range []int{3, 5} {
			for _, d := range []int{1, 2} {
				for _, hw := range []int{1, 2, 5, 7, 9, 13, 14, 17, 30, 49, 150} {
					for _, pad := range []int{0, 1, k / 2 * d} {
						g := convGeom{h: hw, w: hw + r.IntN(3), kh: k, kw: k, sh: s, sw: s, dh: d, dw: d}
						g.oh, g.pt, _ = convOut(g.h, k, s, d, pad, pad, "NOTSET")
						g.ow, g.pl, _ = convOut(g.w, k, s, d, pad, pad, "NOTSET")
						if g.oh <= 0 || g.ow <= 0 {
							continue
						}
						cases++
						c := []int{1, 3, 11, 19}[r.IntN(4)]
						n := 1 + r.IntN(2)
						epi := epis[r.IntN(len(epis))]
						m := depthwiseEpilogueModel(r, g, c, r.IntN(2) == 0, epi)
						x := graph.Float32Tensor([]int{n, c, g.h, g.w}, randFloats(r, n*c*g.h*g.w))
						name := fmt.Sprintf("n%d c%d %dx%d k%d s%d d%d p%d,%d %q", n, c, g.h, g.w, k, s, d, g.pt, g.pl, epi)
						var want []float32
						for _, path := range []int{dwPhases, dwRows, dwBlocked} {
							for _, noFusion := range []bool{true, false} {
								for _, threads := range []int{1, 2} {
									depthwisePath = path
									sess, err := NewSession(m, Options{Threads: threads, NoFusion: noFusion})
									if err != nil {
										t.Fatal(err)
									}
									out, err := sess.Run(map[string]*graph.Tensor{"x": x})
									if err != nil {
										t.Fatalf("%s: %v", name, err)
									}
									got := out[m.Graph.Outputs[0].Name].Float32s()
									if want == nil {
										want = got
										continue
									}
									for i := range want {
										if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
											t.Fatalf("%s path=%d noFusion=%v threads=%d: out[%d] = %v, want %v (phase planes, unfused, 1 thread)", name, path, noFusion, threads, i, got[i], want[i])
										}
									}
								}
							}
						}
						if epi == "" {
							depthwisePath = dwAuto
							w := m.Graph.Initializers[0].Const.Float32s()
							var b []float32
							if len(m.Graph.Initializers) > 1 {
								b = m.Graph.Initializers[1].Const.Float32s()
							}
							ref, mag := convNaive(x.Float32s(), w, b, n, c, g.h, g.w, c, c, k, k, g)
							for i := range ref {
								if math.Abs(float64(want[i]-ref[i])) > 1e-6*(1+float64(mag[i])) {
									t.Fatalf("%s: out[%d] = %v, direct convolution %v", name, i, want[i], ref[i])
								}
							}
						}
					}
				}
			}
		}
	}
	if cases < 200 {
		t.Fatalf("only %d geometries", cases)
	}
}

// TestDepthwiseC8FollowsGeometry runs one session's depthwise Conv (weights
// and epilogue laid out once per geometry, and kept) on inputs of changing
// sizes and batches: each run must give the rows path's bits.
func TestDepthwiseC8FollowsGeometry(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	defer func() { depthwisePath = dwAuto }()
	const c = 19
	g := convGeom{h: 7, w: 7, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, oh: 7, ow: 7}
	m := depthwiseEpilogueModel(r, g, c, true, "bn-relu6")
	blocked, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][3]int{{1, 7, 7}, {2, 14, 9}, {1, 7, 7}, {1, 3, 2}} {
		x := graph.Float32Tensor([]int{s[0], c, s[1], s[2]}, randFloats(r, s[0]*c*s[1]*s[2]))
		depthwisePath = dwBlocked
		got, err := blocked.Run(map[string]*graph.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		depthwisePath = dwRows
		want, err := rows.Run(map[string]*graph.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		name := m.Graph.Outputs[0].Name
		gv, wv := got[name].Float32s(), want[name].Float32s()
		if len(gv) != len(wv) {
			t.Fatalf("input %v: %d outputs, want %d", s, len(gv), len(wv))
		}
		for i := range wv {
			if math.Float32bits(gv[i]) != math.Float32bits(wv[i]) {
				t.Fatalf("input %v: out[%d] = %v, want %v (rows path)", s, i, gv[i], wv[i])
			}
		}
	}
}

// TestDepthwiseC8DirtyScratch runs depthwiseC8 on pool buffers that hold NaN
// from an earlier user: the map's padding must be cleared (only the padding
// is), so the outputs are the rows path's bits. Pads on every side, none,
// and more than the kernel's reach; strides 1 and 2.
func TestDepthwiseC8DirtyScratch(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	defer func() { depthwisePath = dwAuto }()
	for _, tc := range []struct{ h, w, k, s, pad int }{{7, 7, 3, 1, 1}, {9, 6, 3, 2, 1}, {5, 8, 3, 1, 0}, {6, 5, 5, 1, 3}, {13, 13, 5, 2, 2}} {
		g := convGeom{h: tc.h, w: tc.w, kh: tc.k, kw: tc.k, sh: tc.s, sw: tc.s, dh: 1, dw: 1}
		g.oh, g.pt, _ = convOut(g.h, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		g.ow, g.pl, _ = convOut(g.w, tc.k, tc.s, 1, tc.pad, tc.pad, "NOTSET")
		const c, n = 11, 2
		x := randFloats(r, n*c*g.h*g.w)
		w := randFloats(r, c*tc.k*tc.k)
		bias := randFloats(r, c)
		d, err := newDepthwiseMap(g)
		if err != nil {
			t.Fatal(err)
		}
		var want []float32
		for _, path := range []int{dwRows, dwBlocked} {
			ctx := &Context{Threads: 1, pool: newBufferPool()}
			dirty := ctx.Scratch(8 * d.vecs)
			for i := range dirty {
				dirty[i] = float32(math.NaN())
			}
			ctx.Release(dirty)
			out := make([]float32, n*c*g.oh*g.ow)
			depthwisePath = path
			depthwise(ctx, g, n, c, x, w, bias, out, nil, nil, nil, nil, nil)
			if want == nil {
				want = out
				continue
			}
			for i := range want {
				if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%+v: out[%d] = %v, want %v (rows path)", tc, i, out[i], want[i])
				}
			}
		}
	}
}
