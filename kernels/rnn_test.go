package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// rnnCase is one randomized RNN/GRU/LSTM node with its inputs.
type rnnCase struct {
	desc   string
	node   *graph.Node
	inputs []*graph.Tensor
	consts []*graph.Tensor
}

var rnnActNames = []string{"Sigmoid", "Tanh", "Relu", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus"}

func randTensor(r *rand.Rand, shape []int, scale float64) *graph.Tensor {
	t := graph.NewTensor(graph.Float, shape)
	for i := range t.Float32s() {
		t.Float32s()[i] = float32(r.NormFloat64() * scale)
	}
	return t
}

func randRNNCase(r *rand.Rand, kind rnnKind) rnnCase { return randRNNCaseOf(r, kind, 0) }

// randRNNCaseOf is randRNNCase with hidden units hs (random when hs <= 0).
func randRNNCaseOf(r *rand.Rand, kind rnnKind, hidden int) rnnCase {
	op := [...]string{"RNN", "GRU", "LSTM"}[kind]
	g := kind.gates()
	seq, batch, isz, hs := 1+r.IntN(7), 1+r.IntN(6), 1+r.IntN(9), 1+r.IntN(20)
	if hidden > 0 {
		hs = hidden
	}
	direction := [...]string{"forward", "reverse", "bidirectional"}[r.IntN(3)]
	dirs := 1
	if direction == "bidirectional" {
		dirs = 2
	}
	layout := int64(r.IntN(2))
	n := &graph.Node{OpType: op, Attrs: []*onnxpb.AttributeProto{
		graph.AttrIntOf("hidden_size", int64(hs)),
		graph.AttrStringOf("direction", direction),
		graph.AttrIntOf("layout", layout),
	}}
	desc := fmt.Sprintf("%s %s layout=%d seq=%d batch=%d in=%d hidden=%d", op, direction, layout, seq, batch, isz, hs)
	if r.IntN(3) == 0 {
		clip := float32(0.3 + r.Float64())
		n.Attrs = append(n.Attrs, graph.AttrFloatOf("clip", clip))
		desc += fmt.Sprintf(" clip=%.2f", clip)
	}
	if kind == kindGRU && r.IntN(2) == 0 {
		n.Attrs = append(n.Attrs, graph.AttrIntOf("linear_before_reset", 1))
		desc += " linear_before_reset"
	}
	if kind == kindLSTM && r.IntN(4) == 0 {
		n.Attrs = append(n.Attrs, graph.AttrIntOf("input_forget", 1))
		desc += " input_forget"
	}
	if r.IntN(2) == 0 {
		per := [...]int{1, 2, 3}[kind]
		var names [][]byte
		var alphas, betas []float32
		for i := 0; i < per*dirs; i++ {
			name := rnnActNames[r.IntN(len(rnnActNames))]
			if kind != kindRNN && i%per == 0 {
				// Gate activations outside [0, 1] make GRU and LSTM
				// recurrences amplify rounding differences step by step
				// (z > 1 in (1-z)⊙h' + z⊙h); TestRNNActivations covers
				// every activation on its own.
				name = [...]string{"Sigmoid", "HardSigmoid"}[r.IntN(2)]
			}
			names = append(names, []byte(name))
			switch strings.ToLower(name) {
			case "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu":
				alphas = append(alphas, float32(0.1+r.Float64()))
				betas = append(betas, float32(0.1+r.Float64()))
			}
		}
		n.Attrs = append(n.Attrs, &onnxpb.AttributeProto{Name: proto.String("activations"), Type: onnxpb.AttributeProto_STRINGS.Enum(), Strings: names})
		if len(alphas) > 0 && r.IntN(3) > 0 {
			n.Attrs = append(n.Attrs, graph.AttrFloatsOf("activation_alpha", alphas...), graph.AttrFloatsOf("activation_beta", betas...))
			desc += fmt.Sprintf(" alpha=%v beta=%v", alphas, betas)
		}
		desc += fmt.Sprintf(" activations=%q", names)
	}
	xShape := []int{seq, batch, isz}
	if layout == 1 {
		xShape = []int{batch, seq, isz}
	}
	in := []*graph.Tensor{
		randTensor(r, xShape, 1),
		randTensor(r, []int{dirs, g * hs, isz}, 1/math.Sqrt(float64(isz))),
		randTensor(r, []int{dirs, g * hs, hs}, 1/math.Sqrt(float64(hs))),
		nil, nil, nil, nil, nil,
	}
	if r.IntN(4) > 0 {
		in[3] = randTensor(r, []int{dirs, 2 * g * hs}, 0.3)
	}
	if r.IntN(2) == 0 {
		lens := make([]int32, batch)
		for b := range lens {
			lens[b] = int32(r.IntN(seq + 1))
		}
		in[4], _ = graph.TensorOf(graph.Int32, []int{batch}, lens)
		desc += fmt.Sprintf(" sequence_lens=%v", lens)
	}
	stShape := []int{dirs, batch, hs}
	if layout == 1 {
		stShape = []int{batch, dirs, hs}
	}
	if r.IntN(2) == 0 {
		in[5] = randTensor(r, stShape, 0.5)
		desc += " initial_h"
	}
	if kind == kindLSTM {
		if r.IntN(2) == 0 {
			in[6] = randTensor(r, stShape, 0.5)
			desc += " initial_c"
		}
		if r.IntN(2) == 0 {
			in[7] = randTensor(r, []int{dirs, 3 * hs}, 0.5)
			desc += " peepholes"
		}
	}
	for len(in) > 3 && in[len(in)-1] == nil {
		in = in[:len(in)-1]
	}
	// Half the cases give W and R at compile time (packed once), half at run time.
	var consts []*graph.Tensor
	if r.IntN(2) == 0 {
		consts = []*graph.Tensor{nil, in[1], in[2]}
		desc += " const-weights"
	}
	return rnnCase{desc: desc, node: n, inputs: in, consts: consts}
}

func runRNNKernel(t *testing.T, f Factory, c rnnCase, threads int) []*graph.Tensor {
	t.Helper()
	k, err := f(&NodeInfo{Node: c.node, Opset: 14, Consts: c.consts})
	if err != nil {
		t.Fatalf("%s: compile: %v", c.desc, err)
	}
	out, err := k.Run(&Context{Threads: threads}, c.inputs)
	if err != nil {
		t.Fatalf("%s: run: %v", c.desc, err)
	}
	return out
}

// TestRecurrentMatchesScalarReference runs random RNN, GRU and LSTM nodes over
// directions, layouts, sequence_lens, initial states, peepholes, clip,
// activations and batch sizes on both sides of the GEMM/AXPY switch, against
// the scalar float64 kernel the float32 one replaced.
func TestRecurrentMatchesScalarReference(t *testing.T) {
	const tol = 1e-5 // relative, against max(|ref|, 1): hidden states are O(1)
	r := rand.New(rand.NewPCG(11, 7))
	worst := 0.0
	for _, kind := range []rnnKind{kindRNN, kindGRU, kindLSTM} {
		for i := 0; i < 300; i++ {
			c := randRNNCase(r, kind)
			want := runRNNKernel(t, refRecurrent(kind), c, 1)
			got := runRNNKernel(t, newRecurrent(kind), c, 1+i%2)
			if len(got) != len(want) {
				t.Fatalf("%s: %d outputs, want %d", c.desc, len(got), len(want))
			}
			for o := range want {
				if !slices.Equal(got[o].Shape, want[o].Shape) {
					t.Fatalf("%s: output %d shape %v, want %v", c.desc, o, got[o].Shape, want[o].Shape)
				}
				g, w := got[o].Float32s(), want[o].Float32s()
				for j := range w {
					e := math.Abs(float64(g[j])-float64(w[j])) / math.Max(1, math.Abs(float64(w[j])))
					if !(e <= tol) {
						t.Fatalf("%s: output %d[%d] = %g, reference %g (error %.2g)", c.desc, o, j, g[j], w[j], e)
					}
					worst = math.Max(worst, e)
				}
			}
		}
	}
	t.Logf("900 random nodes; worst relative error %.2g (bound %g)", worst, tol)
}

// TestRecurrentUnitSplitMatchesReference runs RNN, GRU and LSTM nodes wide
// enough that two threads split each step's hidden units (unitParts; a GRU
// under linear_before_reset), with the same random directions,
// sequence_lens, peepholes, clip and activations, against the scalar
// reference.
func TestRecurrentUnitSplitMatchesReference(t *testing.T) {
	const tol = 1e-5
	r := rand.New(rand.NewPCG(31, 7))
	split := 0
	for _, kind := range []rnnKind{kindRNN, kindGRU, kindLSTM} {
		for i := 0; i < 60; i++ {
			hs := []int{100, 128, 203}[i%3]
			c := randRNNCaseOf(r, kind, hs)
			batch := c.inputs[0].Shape[1]
			if layout, _ := c.node.AttrInt("layout", 0); layout == 1 {
				batch = c.inputs[0].Shape[0]
			}
			lbr := strings.Contains(c.desc, "linear_before_reset")
			parts, _ := (&recurrentKernel{kind: kind, linearBeforeReset: lbr}).unitParts(2, batch, hs)
			if parts > 1 && !strings.Contains(c.desc, "bidirectional") { // two directions take a thread each
				split++
			}
			want := runRNNKernel(t, refRecurrent(kind), c, 1)
			got := runRNNKernel(t, newRecurrent(kind), c, 2)
			for o := range want {
				g, w := got[o].Float32s(), want[o].Float32s()
				for j := range w {
					if e := math.Abs(float64(g[j])-float64(w[j])) / math.Max(1, math.Abs(float64(w[j]))); !(e <= tol) {
						t.Fatalf("%s: output %d[%d] = %g, reference %g (error %.2g)", c.desc, o, j, g[j], w[j], e)
					}
				}
			}
		}
	}
	if split < 30 {
		t.Fatalf("only %d of 180 nodes split their steps", split)
	}
	t.Logf("%d of 180 nodes split their steps across 2 threads", split)
}

// TestRecurrentBadInput checks that malformed nodes and inputs are errors, not panics.
func TestRecurrentBadInput(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := func() rnnCase {
		for {
			c := randRNNCase(r, kindLSTM)
			if c.consts == nil && len(c.inputs) == 3 && c.inputs[0].Shape[0] > 1 {
				return c
			}
		}
	}
	cases := []struct {
		name, want string
		edit       func(c *rnnCase)
	}{
		{"sequence_lens too long", "sequence_lens", func(c *rnnCase) {
			b := c.inputs[0].Shape[1]
			if l, _ := c.node.AttrInt("layout", 0); l == 1 {
				b = c.inputs[0].Shape[0]
			}
			lens := make([]int32, b)
			lens[0] = 1000
			t, _ := graph.TensorOf(graph.Int32, []int{b}, lens)
			c.inputs = append(c.inputs, nil, t)
		}},
		{"W of the wrong shape", "do not fit", func(c *rnnCase) {
			w := c.inputs[1]
			c.inputs[1] = graph.NewTensor(graph.Float, []int{w.Shape[0], w.Shape[1], w.Shape[2] + 1})
		}},
		{"bias of the wrong length", "B [", func(c *rnnCase) {
			c.inputs = append(c.inputs, graph.NewTensor(graph.Float, []int{1, 3}))
		}},
		{"X not 3-D", "3-D", func(c *rnnCase) {
			c.inputs[0] = graph.NewTensor(graph.Float, []int{4, 4})
		}},
	}
	for _, tc := range cases {
		c := base()
		tc.edit(&c)
		k, err := newRecurrent(kindLSTM)(&NodeInfo{Node: c.node, Opset: 14})
		if err != nil {
			t.Fatalf("%s: compile: %v", tc.name, err)
		}
		_, err = k.Run(&Context{Threads: 1}, c.inputs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	bad := &graph.Node{OpType: "GRU", Attrs: []*onnxpb.AttributeProto{
		graph.AttrIntOf("hidden_size", 4),
		{Name: proto.String("activations"), Type: onnxpb.AttributeProto_STRINGS.Enum(), Strings: [][]byte{[]byte("Sigmoid"), []byte("Cube")}},
	}}
	if _, err := newRecurrent(kindGRU)(&NodeInfo{Node: bad, Opset: 14}); err == nil || !strings.Contains(err.Error(), "Cube") {
		t.Errorf("unknown activation: got %v", err)
	}
}

// TestRNNActivations compares each float32 activation, with random alpha and
// beta, against its float64 definition over [-12, 12] and the edges.
func TestRNNActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 9))
	xs := []float32{0, -0, 1e-30, -1e-30, 30, -30, 88, -88, 100, -100}
	for i := 0; i < 4000; i++ {
		xs = append(xs, float32(r.Float64()*24-12))
	}
	for _, name := range rnnActNames {
		for trial := 0; trial < 3; trial++ {
			alpha, beta := defaultAlphaBeta(name)
			if trial > 0 {
				alpha, beta = float64(float32(0.1+r.Float64())), float64(float32(r.Float64()))
			}
			ref, err := refActivation(name, alpha, beta)
			if err != nil {
				t.Fatal(err)
			}
			act, err := newRNNAct(name, float32(alpha), float32(beta))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(xs))
			act.apply(got, xs)
			worst := 0.0
			for j, x := range xs {
				want := ref(float64(x))
				if strings.EqualFold(name, "ThresholdedRelu") && float64(x) == alpha {
					continue // the threshold itself: float32 vs float64 alpha
				}
				// Relative, absolute below 0.1 (alpha*x+beta cancels near HardSigmoid's 0).
				e := math.Abs(float64(got[j])-want) / math.Max(math.Abs(want), 0.1)
				if !(e <= 1e-6) {
					t.Fatalf("%s alpha=%g beta=%g at %g: %g, want %g", name, alpha, beta, x, got[j], want)
				}
				worst = math.Max(worst, e)
			}
			if trial == 0 {
				t.Logf("%-15s worst relative error %.2g", name, worst)
			}
		}
	}
}

// BenchmarkLSTM times the zoo LSTM's first layer (bidirectional, seq 64,
// batch 1, input 64, hidden 128, constant weights) with the float32 kernel and
// with the scalar reference it replaced, one thread.
func BenchmarkLSTM(b *testing.B) {
	const seq, in, hs = 64, 64, 128
	r := rand.New(rand.NewPCG(1, 2))
	n := &graph.Node{OpType: "LSTM", Attrs: []*onnxpb.AttributeProto{
		graph.AttrIntOf("hidden_size", hs), graph.AttrStringOf("direction", "bidirectional")}}
	w := randTensor(r, []int{2, 4 * hs, in}, 0.125)
	rr := randTensor(r, []int{2, 4 * hs, hs}, 0.07)
	inputs := []*graph.Tensor{randTensor(r, []int{seq, 1, in}, 1), w, rr, randTensor(r, []int{2, 8 * hs}, 0.05)}
	for _, impl := range []struct {
		name string
		f    Factory
	}{{"float32", newRecurrent(kindLSTM)}, {"scalar-reference", refRecurrent(kindLSTM)}} {
		b.Run(impl.name, func(b *testing.B) {
			k, err := impl.f(&NodeInfo{Node: n, Opset: 14, Consts: []*graph.Tensor{nil, w, rr}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := &Context{Threads: 1}
			for i := 0; i < b.N; i++ {
				if _, err := k.Run(ctx, inputs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
