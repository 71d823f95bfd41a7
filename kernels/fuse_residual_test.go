package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// residualBlock is x -> Conv+BN+Relu -> Conv+BN ("y") -> Add(y, short) [->
// Relu] -> "out", with short the block's input x, or a second graph input
// "s" when broadcast (shape [1, C, 1, 1]); swap puts the shortcut first in
// the Add. The Convs are ks x ks, padded to keep the size.
func residualBlock(r *rand.Rand, c, hw, ks int, relu, swap, broadcast bool) *graph.Model {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 21})
	gr := m.Graph
	x := gr.AddInput("x", graph.Float, nil)
	k := 0
	name := func(s string) string { k++; return s + string(rune('a'+k)) }
	p := int64(ks / 2)
	conv := func(in *graph.Value, out string, act bool) *graph.Value {
		w := gr.AddInitializer(name("w"), graph.Float32Tensor([]int{c, c, ks, ks}, randFloats(r, c*c*ks*ks)))
		y := gr.AddNode("Conv", name("conv"), []*graph.Value{in, w}, []string{name("cy")},
			graph.AttrIntsOf("kernel_shape", int64(ks), int64(ks)), graph.AttrIntsOf("pads", p, p, p, p)).Output()
		vr := make([]float32, c)
		for i := range vr {
			vr[i] = 0.5 + r.Float32()
		}
		bnOut := out
		if act {
			bnOut = name("bn")
		}
		y = gr.AddNode("BatchNormalization", name("bn"), []*graph.Value{y,
			gr.AddInitializer(name("scale"), graph.Float32Tensor([]int{c}, randFloats(r, c))),
			gr.AddInitializer(name("shift"), graph.Float32Tensor([]int{c}, randFloats(r, c))),
			gr.AddInitializer(name("mean"), graph.Float32Tensor([]int{c}, randFloats(r, c))),
			gr.AddInitializer(name("var"), graph.Float32Tensor([]int{c}, vr))}, []string{bnOut}).Output()
		if act {
			y = gr.AddNode("Relu", name("relu"), []*graph.Value{y}, []string{out}).Output()
		}
		return y
	}
	y := conv(conv(x, "h", true), "y", false)
	short := x
	if broadcast {
		short = gr.AddInput("s", graph.Float, nil)
	}
	ins := []*graph.Value{y, short}
	if swap {
		ins[0], ins[1] = short, y
	}
	sum := "out"
	if relu {
		sum = "sum"
	}
	v := gr.AddNode("Add", "add", ins, []string{sum}).Output()
	if relu {
		v = gr.AddNode("Relu", "relu_out", []*graph.Value{v}, []string{"out"}).Output()
	}
	gr.AddOutput(v)
	return m
}

// TestResidualFusionMatchesUnfused: the Conv that runs the shortcut Add and
// Relu gives the same bits as the Conv, Add and Relu run apart (the Conv's
// output tapped, which keeps the Add out of it), on one thread and in bands,
// on 32x32 and 8x8 maps, with the shortcut on either side of the Add, without
// the Relu, and a broadcast shortcut (run unfused inside the Conv's step).
func TestResidualFusionMatchesUnfused(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, tc := range []struct {
		c, hw, ks             int
		relu, swap, broadcast bool
	}{
		{16, 32, 3, true, false, false}, {16, 32, 3, true, true, false}, {32, 8, 3, false, false, false},
		{24, 14, 1, true, false, false}, {16, 17, 3, true, false, false}, // im2col's path: pointwise, and 17 wide
		{8, 16, 3, true, false, true}, {8, 16, 3, false, true, true},
	} {
		m := residualBlock(r, tc.c, tc.hw, tc.ks, tc.relu, tc.swap, tc.broadcast)
		feed := map[string]*graph.Tensor{"x": graph.Float32Tensor([]int{1, tc.c, tc.hw, tc.hw}, randFloats(r, tc.c*tc.hw*tc.hw))}
		if tc.broadcast {
			feed["s"] = graph.Float32Tensor([]int{1, tc.c, 1, 1}, randFloats(r, tc.c))
		}
		for _, threads := range []int{1, 3} {
			if threads > 1 {
				parallel.ForceSplit(threads)
			}
			apart, err := NewSession(m, Options{Threads: threads, Tap: func(string, *graph.Tensor) {}, TapOnly: map[string]bool{"y": true}})
			if err != nil {
				t.Fatal(err)
			}
			fused, err := NewSession(m, Options{Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			if len(fused.steps) != 2 || len(apart.steps) < 3 {
				t.Fatalf("%+v: %d steps fused, %d apart; want 2 (two Convs) and more", tc, len(fused.steps), len(apart.steps))
			}
			want, err := apart.Run(feed)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fused.Run(feed)
			if err != nil {
				t.Fatal(err)
			}
			parallel.ForceSplit(0)
			w, g := want["out"].Float32s(), got["out"].Float32s()
			if len(g) != len(w) {
				t.Fatalf("%+v: %d outputs, want %d", tc, len(g), len(w))
			}
			negatives := 0
			for i := range w {
				if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
					t.Fatalf("%+v threads=%d: out[%d] = %v fused, %v apart", tc, threads, i, g[i], w[i])
				}
				if w[i] < 0 {
					negatives++
				}
			}
			if tc.relu != (negatives == 0) {
				t.Fatalf("%+v: %d negative outputs", tc, negatives)
			}
		}
	}
}
