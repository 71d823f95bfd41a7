package kernels

import (
	"fmt"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestResizeNearestPlanesMatchesPerAxis compares the one-pass nearest resize
// of the last two axes with the per-axis path on awkward shapes, scales and
// every coordinate and rounding mode.
func TestResizeNearestPlanesMatchesPerAxis(t *testing.T) {
	shapes := [][]int{{1, 3, 13, 13}, {2, 1, 5, 7}, {1, 2, 1, 9}, {3, 4}, {1, 2, 6, 24}}
	scales := [][2]float64{{2, 2}, {3, 3}, {2, 3}, {1.5, 2.5}, {0.5, 0.6}, {1, 2}, {2, 1}, {1.25, 0.75}}
	coords := []string{"asymmetric", "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "tf_half_pixel_for_nn"}
	nearest := []string{"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
	planes := 0
	for _, shape := range shapes {
		for _, sc := range scales {
			for _, cm := range coords {
				for _, nm := range nearest {
					r := len(shape)
					p := &resizeParams{mode: "nearest", coordMode: cm, nearestMode: nm}
					full := make([]float64, r)
					roi := make([]float64, 2*r)
					outShape := append([]int(nil), shape...)
					for i := range full {
						full[i], roi[i+r] = 1, 1
					}
					for k := 0; k < 2; k++ {
						ax := r - 2 + k
						full[ax] = sc[k]
						outShape[ax] = int(float64(shape[ax]) * sc[k])
					}
					x := seeded(uint64(planes+1), shape...)
					ctx := &Context{Threads: 2}
					got := resizeNearestPlanes(ctx, x, outShape, full, roi, p)
					if got == nil {
						t.Fatalf("%v x %v: no one-pass resize", shape, sc)
					}
					planes++
					want := x
					for ax := r - 2; ax < r; ax++ {
						if outShape[ax] == want.Shape[ax] && full[ax] == 1 {
							continue
						}
						next, err := resizeAxis(ctx, want, ax, outShape[ax], full[ax], 0, 1, p)
						if err != nil {
							t.Fatal(err)
						}
						want = next
					}
					name := fmt.Sprint(shape, sc, cm, nm)
					if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
						t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
					}
					g, w := got.Float32s(), want.Float32s()
					for i := range w {
						if g[i] != w[i] {
							t.Fatalf("%s: element %d is %v, want %v", name, i, g[i], w[i])
						}
					}
				}
			}
		}
	}
}

// TestResizeUpsample2x runs YOLO's upsample as a node: each value becomes a
// 2x2 block.
func TestResizeUpsample2x(t *testing.T) {
	x := graph.Float32Tensor([]int{1, 1, 2, 3}, []float32{1, 2, 3, 4, 5, 6})
	scales := graph.Float32Tensor([]int{4}, []float32{1, 1, 2, 2})
	attrs := []*onnxpb.AttributeProto{
		graph.AttrStringOf("mode", "nearest"),
		graph.AttrStringOf("coordinate_transformation_mode", "asymmetric"),
		graph.AttrStringOf("nearest_mode", "floor"),
	}
	y := runOp(t, "Resize", attrs, x, nil, scales)[0]
	want := []float32{
		1, 1, 2, 2, 3, 3,
		1, 1, 2, 2, 3, 3,
		4, 4, 5, 5, 6, 6,
		4, 4, 5, 5, 6, 6,
	}
	if fmt.Sprint(y.Shape) != "[1 1 4 6]" || fmt.Sprint(y.Float32s()) != fmt.Sprint(want) {
		t.Fatalf("got %v %v, want [1 1 4 6] %v", y.Shape, y.Float32s(), want)
	}
	// The other axes are left to the per-axis path; the result still holds.
	x = seeded(5, 2, 1, 3, 3)
	y = runOp(t, "Resize", attrs, x, nil, graph.Float32Tensor([]int{4}, []float32{2, 1, 1, 2}))[0]
	if fmt.Sprint(y.Shape) != "[4 1 3 6]" || y.Float32s()[71] != x.Float32s()[17] {
		t.Fatalf("leading-axis resize: shape %v, last %v want %v", y.Shape, y.Float32s()[71], x.Float32s()[17])
	}
}
