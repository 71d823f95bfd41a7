package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// convTransposeNaive is ConvTranspose by its definition: every input pixel
// adds its value times each tap's weight at y = iy*sh + ki*dh - pt,
// x = ix*sw + kj*dw - pl, and each output channel starts from its bias.
func convTransposeNaive(x, w, b []float32, n, c, h, wd, mg, group, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow int) []float32 {
	m := mg * group
	cg := c / group
	out := make([]float64, n*m*oh*ow)
	for bi := 0; bi < n; bi++ {
		for o := 0; o < m; o++ {
			for i := 0; i < oh*ow; i++ {
				if b != nil {
					out[(bi*m+o)*oh*ow+i] = float64(b[o])
				}
			}
		}
		for ci := 0; ci < c; ci++ {
			gi := ci / cg
			for oi := 0; oi < mg; oi++ {
				o := gi*mg + oi
				for ki := 0; ki < kh; ki++ {
					for kj := 0; kj < kw; kj++ {
						wv := float64(w[((ci*mg+oi)*kh+ki)*kw+kj])
						for iy := 0; iy < h; iy++ {
							y := iy*sh + ki*dh - pt
							if y < 0 || y >= oh {
								continue
							}
							for ix := 0; ix < wd; ix++ {
								xx := ix*sw + kj*dw - pl
								if xx < 0 || xx >= ow {
									continue
								}
								out[((bi*m+o)*oh+y)*ow+xx] += wv * float64(x[((bi*c+ci)*h+iy)*wd+ix])
							}
						}
					}
				}
			}
		}
	}
	r := make([]float32, len(out))
	for i, v := range out {
		r[i] = float32(v)
	}
	return r
}

// TestConvTransposeMatchesDirect runs ConvTranspose with and without a bias,
// groups, batches, strides 1-3 with and without overlapping taps (PaddleOCR
// det's 2x2 stride-2 upsampling, 3x3 stride 2), dilation and pads, on 1 and
// 2 threads, against its definition.
func TestConvTransposeMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, tc := range []struct{ n, c, mg, group, h, w, k, s, d, pad int }{
		{1, 24, 24, 1, 20, 20, 2, 2, 1, 0}, {2, 4, 3, 2, 7, 9, 3, 2, 1, 1}, {1, 5, 1, 1, 16, 16, 2, 2, 1, 0},
		{1, 6, 4, 1, 5, 6, 3, 1, 2, 1}, {1, 8, 8, 1, 40, 40, 4, 2, 1, 1},
		// rows through col2im's vector adds (stride 1 and 2) and the
		// scalar loop (stride 3), with dilation 2 at stride 2
		{1, 4, 4, 1, 12, 37, 3, 1, 1, 1}, {1, 3, 5, 1, 9, 33, 4, 2, 2, 2}, {1, 3, 2, 1, 9, 30, 3, 3, 1, 1},
	} {
		oh := (tc.h-1)*tc.s + (tc.k-1)*tc.d + 1 - 2*tc.pad
		ow := (tc.w-1)*tc.s + (tc.k-1)*tc.d + 1 - 2*tc.pad
		x := randFloats(r, tc.n*tc.c*tc.h*tc.w)
		w := randFloats(r, tc.c*tc.mg*tc.k*tc.k)
		for _, withBias := range []bool{false, true} {
			var b []float32
			if withBias {
				b = randFloats(r, tc.mg*tc.group)
			}
			want := convTransposeNaive(x, w, b, tc.n, tc.c, tc.h, tc.w, tc.mg, tc.group, tc.k, tc.k, tc.s, tc.s, tc.d, tc.d, tc.pad, tc.pad, oh, ow)
			var first []float32 // the first variant's output: the others must give its bits
			for _, v := range []struct {
				threads int
				constW  bool
			}{{1, true}, {2, true}, {1, false}, {2, false}} {
				threads := v.threads
				m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
				gr := m.Graph
				wt := graph.Float32Tensor([]int{tc.c, tc.mg, tc.k, tc.k}, w)
				feeds := map[string]*graph.Tensor{"x": graph.Float32Tensor([]int{tc.n, tc.c, tc.h, tc.w}, x)}
				wv := gr.AddInitializer("w", wt) // packed once
				if !v.constW {
					wv = gr.AddInput("w", graph.Float, nil) // packed by each run's GEMM
					feeds["w"] = wt
				}
				ins := []*graph.Value{gr.AddInput("x", graph.Float, nil), wv}
				if b != nil {
					ins = append(ins, gr.AddInitializer("b", graph.Float32Tensor([]int{len(b)}, b)))
				}
				gr.AddOutput(gr.AddNode("ConvTranspose", "ct", ins, []string{"y"},
					graph.AttrIntOf("group", int64(tc.group)),
					graph.AttrIntsOf("kernel_shape", int64(tc.k), int64(tc.k)),
					graph.AttrIntsOf("strides", int64(tc.s), int64(tc.s)),
					graph.AttrIntsOf("dilations", int64(tc.d), int64(tc.d)),
					graph.AttrIntsOf("pads", int64(tc.pad), int64(tc.pad), int64(tc.pad), int64(tc.pad))).Output())
				s, err := NewSession(m, Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%+v bias=%v threads=%d constant weights=%v", tc, withBias, threads, v.constW)
				for run := 0; run < 2; run++ { // the second run gets recycled buffers
					outs, err := s.Run(feeds)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					got := outs["y"].Float32s()
					if len(got) != len(want) {
						t.Fatalf("%s: %d outputs, want %d", name, len(got), len(want))
					}
					for i := range want {
						if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
							t.Fatalf("%s run %d: y[%d] = %v, want %v", name, run, i, got[i], want[i])
						}
					}
					if first == nil {
						first = slices.Clone(got)
					} else if !sameBits(got, first) {
						t.Fatalf("%s run %d: not the bits of the first variant", name, run)
					}
					s.Recycle(outs)
				}
			}
		}
	}
}
