package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// naiveConv3D is the definition: y[n,m,o] = b[m] + sum over c, k of
// x[n, g*cg+c, o*s - pb + k*d] * w[m, c, k], zero outside the input.
func naiveConv3D(x, w *graph.Tensor, b []float32, s, d, pb []int, group int, out []int) []float32 {
	n, c, m := x.Shape[0], x.Shape[1], w.Shape[0]
	cg, mg := c/group, m/group
	in, k := x.Shape[2:], w.Shape[2:]
	y := make([]float32, graph.Numel(out))
	xd, wd := x.Float32s(), w.Float32s()
	i := 0
	for bi := 0; bi < n; bi++ {
		for mi := 0; mi < m; mi++ {
			gi := mi / mg
			for o0 := 0; o0 < out[2]; o0++ {
				for o1 := 0; o1 < out[3]; o1++ {
					for o2 := 0; o2 < out[4]; o2++ {
						var acc float64
						if b != nil {
							acc = float64(b[mi])
						}
						for ci := 0; ci < cg; ci++ {
							for k0 := 0; k0 < k[0]; k0++ {
								for k1 := 0; k1 < k[1]; k1++ {
									for k2 := 0; k2 < k[2]; k2++ {
										p0, p1, p2 := o0*s[0]-pb[0]+k0*d[0], o1*s[1]-pb[1]+k1*d[1], o2*s[2]-pb[2]+k2*d[2]
										if p0 < 0 || p1 < 0 || p2 < 0 || p0 >= in[0] || p1 >= in[1] || p2 >= in[2] {
											continue
										}
										xv := xd[(((bi*c+gi*cg+ci)*in[0]+p0)*in[1]+p1)*in[2]+p2]
										wv := wd[(((mi*cg+ci)*k[0]+k0)*k[1]+k1)*k[2]+k2]
										acc += float64(xv) * float64(wv)
									}
								}
							}
						}
						y[i] = float32(acc)
						i++
					}
				}
			}
		}
	}
	return y
}

func runOneNode(t *testing.T, op string, attrs []*onnxpb.AttributeProto, constW bool, x, w, b *graph.Tensor) (*graph.Tensor, error) {
	t.Helper()
	m := graph.NewModel(graph.Opset{Version: 17})
	g := m.Graph
	xv := g.AddInput("x", graph.Float, nil)
	var wv, bv *graph.Value
	feeds := map[string]*graph.Tensor{"x": x}
	if constW {
		wv = g.AddInitializer("w", w)
	} else {
		wv = g.AddInput("w", graph.Float, nil)
		feeds["w"] = w
	}
	ins := []*graph.Value{xv, wv}
	if b != nil {
		bv = g.AddInitializer("b", b)
		ins = append(ins, bv)
	}
	n := g.AddNode(op, "n", ins, []string{"y"}, attrs...)
	g.AddOutput(n.Outputs[0])
	s, err := NewSession(m, Options{Threads: 2})
	if err != nil {
		return nil, err
	}
	out, err := s.Run(feeds)
	if err != nil {
		return nil, err
	}
	return out["y"], nil
}

// TestConv3DMatchesDefinition runs 3-D convolutions (constant and run-time
// weights, strides, dilations, asymmetric pads, groups, a batch, and columns
// streamed in several strips) against the definition summed in float64.
func TestConv3DMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ints := graph.AttrIntsOf
	for _, tc := range []struct {
		name         string
		x, w         []int
		s, d, pb, pe []int
		group        int
	}{
		{"plain", []int{1, 3, 5, 6, 7}, []int{4, 3, 3, 3, 3}, []int{1, 1, 1}, []int{1, 1, 1}, []int{0, 0, 0}, []int{0, 0, 0}, 1},
		{"strided padded", []int{2, 4, 6, 5, 9}, []int{6, 4, 3, 2, 3}, []int{2, 1, 3}, []int{1, 1, 1}, []int{1, 0, 2}, []int{0, 1, 1}, 1},
		{"dilated groups", []int{1, 6, 7, 7, 6}, []int{4, 3, 2, 3, 2}, []int{1, 2, 1}, []int{2, 1, 3}, []int{1, 1, 1}, []int{1, 1, 1}, 2},
		{"columns in strips", []int{1, 8, 12, 48, 48}, []int{2, 8, 3, 3, 3}, []int{1, 1, 1}, []int{1, 1, 1}, []int{1, 1, 1}, []int{1, 1, 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, w, b := randTensor(r, tc.x, 1), randTensor(r, tc.w, 1), randTensor(r, []int{tc.w[0]}, 1)
			out := []int{tc.x[0], tc.w[0]}
			for i := 0; i < 3; i++ {
				o, _, _ := convOut(tc.x[2+i], tc.w[2+i], tc.s[i], tc.d[i], tc.pb[i], tc.pe[i], "NOTSET")
				out = append(out, o)
			}
			want := naiveConv3D(x, w, b.Float32s(), tc.s, tc.d, tc.pb, tc.group, out)
			attrs := []*onnxpb.AttributeProto{ints("strides", toInt64s(tc.s)...), ints("dilations", toInt64s(tc.d)...),
				ints("pads", toInt64s(append(append([]int(nil), tc.pb...), tc.pe...))...), graph.AttrIntOf("group", int64(tc.group))}
			for _, constW := range []bool{true, false} {
				y, err := runOneNode(t, "Conv", attrs, constW, x, w, b)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(y.Shape, out) {
					t.Fatalf("shape %v, want %v", y.Shape, out)
				}
				if e := maxRelErr(y.Float32s(), want); e > 1e-5 {
					t.Fatalf("const weights %v: max error %.3g relative to the largest output", constW, e)
				}
			}
		})
	}
}

// TestConvTranspose3DIsConvAdjoint checks ConvTranspose 3-D through the
// adjoint identity <Conv(x), y> = <x, ConvTranspose(y)> for the same weights
// (no bias), strides, dilations and pads: a wrong tap offset, stride or pad
// in either breaks it.
func TestConvTranspose3DIsConvAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ints := graph.AttrIntsOf
	x := randTensor(r, []int{1, 4, 7, 6, 8}, 1)
	w := randTensor(r, []int{6, 4, 3, 2, 3}, 1) // Conv: 4 -> 6 channels; ConvTranspose reads it as 6 -> 4
	attrs := []*onnxpb.AttributeProto{ints("strides", 2, 1, 2), ints("dilations", 1, 2, 1), ints("pads", 1, 0, 1, 1, 1, 0)}
	cx, err := runOneNode(t, "Conv", attrs, true, x, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	y := randTensor(r, cx.Shape, 1)
	ty, err := runOneNode(t, "ConvTranspose", append(attrs[:2:2], ints("pads", 1, 0, 1, 1, 1, 0)), true, y, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ty.Shape, x.Shape) {
		t.Fatalf("ConvTranspose shape %v, want %v", ty.Shape, x.Shape)
	}
	dot := func(a, b []float32) (s float64) {
		for i := range a {
			s += float64(a[i]) * float64(b[i])
		}
		return s
	}
	l, rr := dot(cx.Float32s(), y.Float32s()), dot(x.Float32s(), ty.Float32s())
	if math.Abs(l-rr) > 1e-4*math.Abs(l) {
		t.Fatalf("<Conv(x), y> = %.6g but <x, ConvTranspose(y)> = %.6g", l, rr)
	}
	if _, err := runOneNode(t, "Conv", []*onnxpb.AttributeProto{ints("strides", 1, 1)}, true, x, w, nil); err == nil {
		t.Fatal("two strides for a 3-D convolution ran")
	}
}

func toInt64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func maxRelErr(got, want []float32) float64 {
	var e, top float64
	for i := range want {
		e = max(e, math.Abs(float64(got[i])-float64(want[i])))
		top = max(top, math.Abs(float64(want[i])))
	}
	return e / max(top, 1e-30)
}
