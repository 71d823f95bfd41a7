package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// naiveConvND is the definition on any number of spatial axes, summed in
// float64: y[n,m,o] = b[m] + sum over c, k of x[n, g*cg+c, o*s - pb + k*d]
// * w[m, c, k], zero outside the input.
func naiveConvND(x, w *graph.Tensor, b []float32, s, d, pb []int, group int, out []int) []float32 {
	n, c, m := x.Shape[0], x.Shape[1], w.Shape[0]
	cg, mg := c/group, m/group
	in, k := x.Shape[2:], w.Shape[2:]
	sp := len(in)
	inPlane, taps, outPlane := graph.Numel(in), graph.Numel(k), graph.Numel(out[2:])
	y := make([]float32, graph.Numel(out))
	xd, wd := x.Float32s(), w.Float32s()
	o, kt := make([]int, sp), make([]int, sp)
	unflat := func(i int, dims, v []int) {
		for a := sp - 1; a >= 0; a-- {
			v[a] = i % dims[a]
			i /= dims[a]
		}
	}
	for bi := 0; bi < n; bi++ {
		for mi := 0; mi < m; mi++ {
			gi := mi / mg
			for op := 0; op < outPlane; op++ {
				unflat(op, out[2:], o)
				var acc float64
				if b != nil {
					acc = float64(b[mi])
				}
				for ci := 0; ci < cg; ci++ {
					for t := 0; t < taps; t++ {
						unflat(t, k, kt)
						at, inside := 0, true
						for a := 0; a < sp; a++ {
							p := o[a]*s[a] - pb[a] + kt[a]*d[a]
							inside = inside && p >= 0 && p < in[a]
							at = at*in[a] + p
						}
						if inside {
							acc += float64(xd[(bi*c+gi*cg+ci)*inPlane+at]) * float64(wd[(mi*cg+ci)*taps+t])
						}
					}
				}
				y[(bi*m+mi)*outPlane+op] = float32(acc)
			}
		}
	}
	return y
}

// runConvNDNode runs one Conv node (weights an initializer) on threads.
func runConvNDNode(t *testing.T, attrs []*onnxpb.AttributeProto, x, w, b *graph.Tensor, threads int) *graph.Tensor {
	t.Helper()
	m := graph.NewModel(graph.Opset{Version: 17})
	g := m.Graph
	ins := []*graph.Value{g.AddInput("x", graph.Float, nil), g.AddInitializer("w", w)}
	if b != nil {
		ins = append(ins, g.AddInitializer("b", b))
	}
	n := g.AddNode("Conv", "n", ins, []string{"y"}, attrs...)
	g.AddOutput(n.Outputs[0])
	s, err := NewSession(m, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	return out["y"]
}

// TestConvNDGridMatchesIm2col holds the grid form of N-D Conv to the
// definition (float64) and to the bits of the im2col form it replaces (the
// same sums in the same order), over random
// 3-D cases (kernels of 1-3 a axis, strides and dilations 1-2, asymmetric
// pads, auto_pad, groups 1 and 2, bias or none, odd sizes, batches of 1
// and 2) and a few 4-D and pointwise ones, and checks that 1, 2 and 3
// threads give the same bits (the threads take whole output slices or
// whole panels of one).
func TestConvNDGridMatchesIm2col(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ints := graph.AttrIntsOf
	type ndCase struct {
		x, w            []int
		s, d, pb, pe    []int
		group           int
		autoPad         string
		bias            bool
		mustTakeTheGrid bool
	}
	var cases []ndCase
	for i := 0; i < 60; i++ {
		group := 1 + r.IntN(2)
		tc := ndCase{group: group, bias: r.IntN(2) == 0, autoPad: "NOTSET"}
		cg, mg := 1+r.IntN(5), 1+r.IntN(9)
		tc.x = []int{1 + r.IntN(2), cg * group}
		tc.w = []int{mg * group, cg}
		for a := 0; a < 3; a++ {
			k, d := 1+r.IntN(3), 1+r.IntN(2)
			tc.w = append(tc.w, k)
			tc.s, tc.d = append(tc.s, 1+r.IntN(2)), append(tc.d, d)
			tc.pb, tc.pe = append(tc.pb, r.IntN(3)), append(tc.pe, r.IntN(3))
			tc.x = append(tc.x, (k-1)*d+1+r.IntN(9))
		}
		switch r.IntN(8) {
		case 0:
			tc.autoPad = "SAME_UPPER"
		case 1:
			tc.autoPad = "SAME_LOWER"
		case 2:
			tc.autoPad = "VALID"
		}
		cases = append(cases, tc)
	}
	cases = append(cases,
		// Rows of 8 and 16 (stored in place), of 13 (computed wq wide),
		// stride 2 on the last axes (phase planes), odd slice counts
		// (2 and 3 threads split one slice's panels).
		ndCase{x: []int{2, 6, 3, 10, 16}, w: []int{16, 6, 3, 3, 3}, s: []int{1, 1, 1}, d: []int{1, 1, 1}, pb: []int{1, 1, 1}, pe: []int{1, 1, 1}, group: 1, bias: true, mustTakeTheGrid: true},
		ndCase{x: []int{1, 8, 5, 13, 13}, w: []int{32, 8, 3, 3, 3}, s: []int{1, 1, 1}, d: []int{1, 1, 1}, pb: []int{1, 1, 1}, pe: []int{1, 1, 1}, group: 1, mustTakeTheGrid: true},
		ndCase{x: []int{1, 3, 7, 33, 30}, w: []int{12, 3, 3, 7, 7}, s: []int{1, 2, 2}, d: []int{1, 1, 1}, pb: []int{1, 3, 3}, pe: []int{1, 3, 2}, group: 1, bias: true, mustTakeTheGrid: true},
		ndCase{x: []int{2, 8, 6, 11, 12}, w: []int{10, 4, 3, 3, 3}, s: []int{2, 2, 2}, d: []int{1, 2, 1}, pb: []int{1, 2, 1}, pe: []int{0, 2, 1}, group: 2, bias: true, mustTakeTheGrid: true},
		// Pointwise: the input read in place.
		ndCase{x: []int{2, 12, 3, 5, 7}, w: []int{20, 12, 1, 1, 1}, s: []int{1, 1, 1}, d: []int{1, 1, 1}, pb: []int{0, 0, 0}, pe: []int{0, 0, 0}, group: 1, bias: true, mustTakeTheGrid: true},
		ndCase{x: []int{1, 8, 4, 6, 6}, w: []int{6, 4, 1, 1, 1}, s: []int{1, 1, 1}, d: []int{2, 1, 2}, pb: []int{0, 0, 0}, pe: []int{0, 0, 0}, group: 2, mustTakeTheGrid: true},
		// Four spatial axes: two leading ones.
		ndCase{x: []int{1, 3, 4, 5, 6, 16}, w: []int{7, 3, 2, 3, 2, 3}, s: []int{1, 2, 1, 1}, d: []int{2, 1, 1, 1}, pb: []int{1, 0, 1, 1}, pe: []int{0, 1, 0, 1}, group: 1, bias: true, mustTakeTheGrid: true},
		ndCase{x: []int{2, 4, 3, 4, 5, 7}, w: []int{4, 2, 3, 2, 2, 3}, s: []int{1, 1, 2, 2}, d: []int{1, 2, 1, 1}, pb: []int{1, 1, 0, 2}, pe: []int{1, 0, 1, 0}, group: 2, mustTakeTheGrid: true},
	)
	took := 0
	for ci, tc := range cases {
		if tc.autoPad == "" {
			tc.autoPad = "NOTSET"
		}
		sp := len(tc.s)
		x, w := randTensor(r, tc.x, 1), randTensor(r, tc.w, 1)
		var b *graph.Tensor
		var bd []float32
		if tc.bias {
			b = randTensor(r, []int{tc.w[0]}, 1)
			bd = b.Float32s()
		}
		out, pb := []int{tc.x[0], tc.w[0]}, make([]int, sp)
		for a := 0; a < sp; a++ {
			var o int
			o, pb[a], _ = convOut(tc.x[2+a], tc.w[2+a], tc.s[a], tc.d[a], tc.pb[a], tc.pe[a], tc.autoPad)
			out = append(out, o)
		}
		attrs := []*onnxpb.AttributeProto{ints("strides", toInt64s(tc.s)...), ints("dilations", toInt64s(tc.d)...),
			graph.AttrIntOf("group", int64(tc.group))}
		if tc.autoPad == "NOTSET" {
			attrs = append(attrs, ints("pads", toInt64s(append(append([]int(nil), tc.pb...), tc.pe...))...))
		} else {
			attrs = append(attrs, graph.AttrStringOf("auto_pad", tc.autoPad))
		}
		p := &ndParams{spatial: sp, strides: tc.s, dils: tc.d}
		taken := ndGridFor(tc.x, tc.x[1]/tc.group, tc.w[0]/tc.group, tc.w[2:], pb, out[2:], p) != nil
		if tc.mustTakeTheGrid && !taken {
			t.Fatalf("case %d %+v: not on the grid", ci, tc)
		}
		if taken {
			took++
		}
		what := fmt.Sprintf("case %d %+v (grid %v)", ci, tc, taken)
		want := naiveConvND(x, w, bd, tc.s, tc.d, pb, tc.group, out)
		forceNDIm2col = true
		old := runConvNDNode(t, attrs, x, w, b, 1)
		forceNDIm2col = false
		one := runConvNDNode(t, attrs, x, w, b, 1)
		if e := maxRelErr(one.Float32s(), want); e > 1e-5 {
			t.Fatalf("%s: max error %.3g relative to the largest output", what, e)
		}
		for i, v := range one.Float32s() {
			if math.Float32bits(old.Float32s()[i]) != math.Float32bits(v) {
				t.Fatalf("%s: out[%d] = %v, the im2col form %v", what, i, v, old.Float32s()[i])
			}
		}
		for _, threads := range []int{2, 3} {
			parallel.ForceSplit(threads)
			split := runConvNDNode(t, attrs, x, w, b, threads)
			parallel.ForceSplit(0)
			for i, v := range one.Float32s() {
				if math.Float32bits(split.Float32s()[i]) != math.Float32bits(v) {
					t.Fatalf("%s: %d threads give out[%d] = %v, 1 thread %v", what, threads, i, split.Float32s()[i], v)
				}
			}
		}
	}
	if took < len(cases)*3/4 {
		t.Fatalf("only %d of %d cases took the grid form", took, len(cases))
	}
}
