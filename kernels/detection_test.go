package kernels

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// runDet compiles op at an opset with attrs and runs it once on in (nil for
// an omitted input) at 2 threads; a compile or run error is returned.
func runDet(t *testing.T, op string, opset int64, attrs []*onnxpb.AttributeProto, in ...*graph.Tensor) (*graph.Tensor, error) {
	t.Helper()
	f, err := lookup("", op, opset)
	if err != nil {
		t.Fatal(err)
	}
	k, err := f(&NodeInfo{Node: &graph.Node{OpType: op, Name: "n", Attrs: attrs}, Opset: opset})
	if err != nil {
		return nil, err
	}
	out, err := k.Run(&Context{Threads: 2}, in)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// detWant fails unless got has the shape and, within 1e-5, the values.
func detWant(t *testing.T, what string, got *graph.Tensor, err error, shape []int, want []float32) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !slices.Equal(got.Shape, shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, shape)
	}
	for i, v := range got.Float32s() {
		if math.Abs(float64(v-want[i])) > 1e-5 {
			t.Fatalf("%s: %v, want %v", what, got.Float32s(), want)
		}
	}
}

// detErr fails unless err is a one-line error that mentions each of words.
func detErr(t *testing.T, what string, err error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	t.Logf("%s: %v", what, err)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error spans lines: %q", what, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not mention %q", what, err, w)
		}
	}
}

func detF32(shape []int, v ...float32) *graph.Tensor { return graph.Float32Tensor(shape, v) }
func detI64(shape []int, v ...int64) *graph.Tensor   { return graph.Int64Tensor(shape, v) }

// nmsRun runs NonMaxSuppression-11 and returns its rows.
func nmsRun(t *testing.T, center int64, in ...*graph.Tensor) ([][3]int64, error) {
	t.Helper()
	out, err := runDet(t, "NonMaxSuppression", 11, []*onnxpb.AttributeProto{graph.AttrIntOf("center_point_box", center)}, in...)
	if err != nil {
		return nil, err
	}
	if out.DType != graph.Int64 || out.Rank() != 2 || out.Shape[1] != 3 {
		t.Fatalf("selected_indices is %s %v, want int64 [n, 3]", out.DType.Short(), out.Shape)
	}
	d := out.Int64s()
	rows := make([][3]int64, out.Shape[0])
	for i := range rows {
		rows[i] = [3]int64{d[i*3], d[i*3+1], d[i*3+2]}
	}
	return rows, nil
}

func nmsWant(t *testing.T, what string, got [][3]int64, err error, want ...[3]int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: selected %v, want %v", what, got, want)
	}
}

// TestNonMaxSuppressionBatchesClasses: two batches, two classes, centre-point
// boxes, a score threshold (strictly greater), a limit of two boxes a class,
// a zero-area box (never suppressed) and tied scores (lower index first).
func TestNonMaxSuppressionBatchesClasses(t *testing.T) {
	boxes := detF32([]int{2, 5, 4},
		// batch 0: 0 and 1 overlap by IoU 0.82, 2 and 3 by 0.6, 4 alone
		0.5, 0.5, 1, 1, 0.6, 0.5, 1, 1, 5, 5, 2, 2, 5.5, 5, 2, 2, 10, 10, 1, 1,
		// batch 1: 0-1 and 0-2 IoU 1/3, 0-3 0.9, 2-3 0.31, 4 has no area
		0, 0, 2, 2, 1, 0, 2, 2, 0, 1, 2, 2, 0.1, 0, 2, 2, 3, 3, 0, 0)
	scores := detF32([]int{2, 2, 5},
		0.9, 0.95, 0.3, 0.8, 0.1, // 4 is under the threshold
		0.2, 0.5, 0.7, 0.6, 0.25, // 0 equals the threshold: dropped
		0.5, 0.6, 0.7, 0.8, 0.9, // the limit stops before 2
		0.9, 0.9, 0.9, 0.9, 0.1) // ties: 0 then 1
	got, err := nmsRun(t, 1, boxes, scores, detI64([]int{1}, 2), detF32([]int{1}, 0.5), detF32([]int{1}, 0.2))
	nmsWant(t, "batches and classes", got, err,
		[3]int64{0, 0, 1}, [3]int64{0, 0, 3}, [3]int64{0, 1, 2}, [3]int64{0, 1, 1},
		[3]int64{1, 0, 4}, [3]int64{1, 0, 3}, [3]int64{1, 1, 0}, [3]int64{1, 1, 1})
}

// TestNonMaxSuppressionCorners: [y1, x1, y2, x2] boxes with any two opposite
// corners; box 1 is given flipped and must still suppress box 0.
func TestNonMaxSuppressionCorners(t *testing.T) {
	boxes := detF32([]int{1, 3, 4}, 0, 0, 1, 1, 1, 1.1, 0, 0.1, 1, 1, 2, 2)
	scores := detF32([]int{1, 1, 3}, 0.9, 0.95, 0.5)
	got, err := nmsRun(t, 0, boxes, scores, detI64(nil, 10), detF32(nil, 0.5))
	nmsWant(t, "flipped corners", got, err, [3]int64{0, 0, 1}, [3]int64{0, 0, 2})
}

// TestNonMaxSuppressionThresholds: an IoU equal to the threshold does not
// suppress; the default threshold 0 suppresses any overlap but not boxes that
// only touch; a score must exceed score_threshold; without one (or with an
// empty one) negative scores stay.
func TestNonMaxSuppressionThresholds(t *testing.T) {
	// IoU of these two is exactly 1/2.
	half := detF32([]int{1, 2, 4}, 0, 0, 1, 1, 0, 0, 1, 2)
	s := detF32([]int{1, 1, 2}, 0.9, 0.8)
	got, err := nmsRun(t, 0, half, s, detI64([]int{1}, 5), detF32([]int{1}, 0.5))
	nmsWant(t, "IoU at the threshold", got, err, [3]int64{0, 0, 0}, [3]int64{0, 0, 1})
	got, err = nmsRun(t, 0, half, s, detI64([]int{1}, 5), detF32([]int{1}, 0.49))
	nmsWant(t, "IoU over the threshold", got, err, [3]int64{0, 0, 0})

	// B overlaps A by a sliver, C touches A along an edge.
	abc := detF32([]int{1, 3, 4}, 0, 0, 1, 1, 0.99, 0, 2, 1, 1, 0, 2, 1)
	got, err = nmsRun(t, 0, abc, detF32([]int{1, 1, 3}, 0.9, 0.8, 0.7), detI64([]int{1}, 5), nil, nil)
	nmsWant(t, "default IoU threshold", got, err, [3]int64{0, 0, 0}, [3]int64{0, 0, 2})

	apart := detF32([]int{1, 2, 4}, 0, 0, 1, 1, 5, 5, 6, 6)
	neg := detF32([]int{1, 1, 2}, -2, -1)
	got, err = nmsRun(t, 0, apart, neg, detI64([]int{1}, 5), detF32([]int{1}, 0.5))
	nmsWant(t, "no score threshold", got, err, [3]int64{0, 0, 1}, [3]int64{0, 0, 0})
	got, err = nmsRun(t, 0, apart, neg, detI64([]int{1}, 5), detF32([]int{1}, 0.5), detF32([]int{0}))
	nmsWant(t, "empty score threshold", got, err, [3]int64{0, 0, 1}, [3]int64{0, 0, 0})
	got, err = nmsRun(t, 0, apart, neg, detI64([]int{1}, 5), detF32([]int{1}, 0.5), detF32([]int{1}, -1.5))
	nmsWant(t, "negative score threshold", got, err, [3]int64{0, 0, 1})
	got, err = nmsRun(t, 0, apart, detF32([]int{1, 1, 2}, 0.5, 0.25), detI64([]int{1}, 5), detF32([]int{1}, 0.5), detF32([]int{1}, 0.25))
	nmsWant(t, "score at the threshold", got, err, [3]int64{0, 0, 0})
}

// TestNonMaxSuppressionNoOutput: max_output_boxes_per_class absent, empty, 0
// or negative selects nothing, as a [0, 3] tensor.
func TestNonMaxSuppressionNoOutput(t *testing.T) {
	boxes := detF32([]int{1, 1, 4}, 0, 0, 1, 1)
	scores := detF32([]int{1, 1, 1}, 0.9)
	for name, m := range map[string]*graph.Tensor{"absent": nil, "empty": detI64([]int{0}), "zero": detI64([]int{1}, 0), "negative": detI64(nil, -3)} {
		out, err := runDet(t, "NonMaxSuppression", 10, nil, boxes, scores, m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(out.Shape, []int{0, 3}) || out.DType != graph.Int64 {
			t.Errorf("%s: %s %v, want int64 [0 3]", name, out.DType.Short(), out.Shape)
		}
	}
	out, err := runDet(t, "NonMaxSuppression", 10, nil, boxes, scores)
	if err != nil || !slices.Equal(out.Shape, []int{0, 3}) {
		t.Errorf("two inputs only: %v %v, want [0 3]", out, err)
	}
}

// TestNonMaxSuppressionManyClasses compares a run split over threads with a
// plain loop over batches and classes, on random boxes where many overlap.
func TestNonMaxSuppressionManyClasses(t *testing.T) {
	const nb, nc, ns = 2, 10, 500 // enough work for two threads
	r := rand.New(rand.NewPCG(3, 9))
	bd := make([]float32, nb*ns*4)
	for i := range bd {
		bd[i] = float32(r.IntN(40)) / 4 // coarse grid: equal scores and exact IoUs occur
	}
	sd := make([]float32, nb*nc*ns)
	for i := range sd {
		sd[i] = float32(r.IntN(100)) / 100
	}
	got, err := nmsRun(t, 0, detF32([]int{nb, ns, 4}, bd...), detF32([]int{nb, nc, ns}, sd...), detI64(nil, 20), detF32(nil, 0.3), detF32(nil, 0.25))
	if err != nil {
		t.Fatal(err)
	}
	// Independent plain version: corners sorted per box, IoU in float32.
	iou := func(b, i, j int) float32 {
		p, q := bd[(b*ns+i)*4:], bd[(b*ns+j)*4:]
		y0, y1 := min(p[0], p[2]), max(p[0], p[2])
		x0, x1 := min(p[1], p[3]), max(p[1], p[3])
		v0, v1 := min(q[0], q[2]), max(q[0], q[2])
		u0, u1 := min(q[1], q[3]), max(q[1], q[3])
		ih, iw := min(y1, v1)-max(y0, v0), min(x1, u1)-max(x0, u0)
		a, c := float32((y1-y0)*(x1-x0)), float32((v1-v0)*(u1-u0))
		if ih <= 0 || iw <= 0 || a <= 0 || c <= 0 {
			return 0
		}
		in := float32(ih * iw)
		return in / (a + c - in)
	}
	var want [][3]int64
	for b := 0; b < nb; b++ {
		for c := 0; c < nc; c++ {
			s := sd[(b*nc+c)*ns : (b*nc+c+1)*ns]
			var cand []int
			for i := range s {
				if s[i] > 0.25 {
					cand = append(cand, i)
				}
			}
			sort.SliceStable(cand, func(i, j int) bool { return s[cand[i]] > s[cand[j]] })
			var sel []int
			for _, i := range cand {
				ok := len(sel) < 20
				for _, j := range sel {
					ok = ok && !(iou(b, i, j) > 0.3)
				}
				if ok {
					sel = append(sel, i)
					want = append(want, [3]int64{int64(b), int64(c), int64(i)})
				}
			}
		}
	}
	if len(want) < nb*nc*10 {
		t.Fatalf("the plain version selects only %d boxes", len(want))
	}
	nmsWant(t, "random boxes", got, nil, want...)
}

func TestNonMaxSuppressionBadInputs(t *testing.T) {
	boxes := detF32([]int{1, 2, 4}, 0, 0, 1, 1, 0, 0, 1, 1)
	scores := detF32([]int{1, 1, 2}, 0.5, 0.6)
	m := detI64([]int{1}, 3)
	_, err := nmsRun(t, 2, boxes, scores, m)
	detErr(t, "center_point_box 2", err, "center_point_box")
	for _, c := range []struct {
		name  string
		in    []*graph.Tensor
		words []string
	}{
		{"no scores", []*graph.Tensor{boxes, nil, m}, []string{"input 1"}},
		{"boxes of 3 values", []*graph.Tensor{detF32([]int{1, 2, 3}, 0, 0, 1, 0, 0, 1), scores, m}, []string{"boxes", "[1 2 3]"}},
		{"2-D boxes", []*graph.Tensor{detF32([]int{2, 4}, 0, 0, 1, 1, 0, 0, 1, 1), scores, m}, []string{"boxes"}},
		{"int boxes", []*graph.Tensor{detI64([]int{1, 2, 4}, 0, 0, 1, 1, 0, 0, 1, 1), scores, m}, []string{"boxes", "float32"}},
		{"batch mismatch", []*graph.Tensor{boxes, detF32([]int{2, 1, 2}, 1, 2, 3, 4), m}, []string{"scores", "[2 1 2]"}},
		{"box count mismatch", []*graph.Tensor{boxes, detF32([]int{1, 1, 3}, 1, 2, 3), m}, []string{"scores", "[1 1 3]"}},
		{"2-D scores", []*graph.Tensor{boxes, detF32([]int{1, 2}, 1, 2), m}, []string{"scores"}},
		{"two max counts", []*graph.Tensor{boxes, scores, detI64([]int{2}, 1, 2)}, []string{"max_output_boxes_per_class", "scalar"}},
		{"float max count", []*graph.Tensor{boxes, scores, detF32([]int{1}, 2)}, []string{"max_output_boxes_per_class"}},
		{"IoU over 1", []*graph.Tensor{boxes, scores, m, detF32([]int{1}, 1.5)}, []string{"iou_threshold", "1.5"}},
		{"negative IoU", []*graph.Tensor{boxes, scores, m, detF32([]int{1}, -0.1)}, []string{"iou_threshold"}},
		{"NaN IoU", []*graph.Tensor{boxes, scores, m, detF32([]int{1}, float32(math.NaN()))}, []string{"iou_threshold"}},
		{"int score threshold", []*graph.Tensor{boxes, scores, m, detF32([]int{1}, 0.5), detI64([]int{1}, 0)}, []string{"score_threshold"}},
	} {
		_, err := nmsRun(t, 0, c.in...)
		detErr(t, c.name, err, c.words...)
	}
}

// The RoiAlign tests use a 4x4 map X[y][x] = 1 + 4y + x: bilinear sampling of
// a linear map is exact, so a bin's average is the map at its samples' mean
// position (after clamping to the map) and values are computed by hand.
func roiMap() *graph.Tensor {
	d := make([]float32, 16)
	for i := range d {
		d[i] = float32(1 + i)
	}
	return detF32([]int{1, 1, 4, 4}, d...)
}

func roiAttrs(mode string, oh, ow, ratio int64, extra ...*onnxpb.AttributeProto) []*onnxpb.AttributeProto {
	return append([]*onnxpb.AttributeProto{graph.AttrStringOf("mode", mode), graph.AttrIntOf("output_height", oh),
		graph.AttrIntOf("output_width", ow), graph.AttrIntOf("sampling_ratio", ratio)}, extra...)
}

// TestRoiAlignHalfPixel: RoiAlign-10 samples without the half-pixel shift,
// RoiAlign-16 shifts by default (the samples left of the map clamp to it) and
// not when told output_half_pixel.
func TestRoiAlignHalfPixel(t *testing.T) {
	rois, idx := detF32([]int{1, 4}, 0, 0, 2, 2), detI64([]int{1}, 0)
	// Samples at 0.25, 0.75 | 1.25, 1.75 on each axis.
	noShift := []float32{3.5, 4.5, 7.5, 8.5}
	out, err := runDet(t, "RoiAlign", 10, roiAttrs("avg", 2, 2, 2), roiMap(), rois, idx)
	detWant(t, "opset 10", out, err, []int{1, 1, 2, 2}, noShift)
	// Samples at -0.25 (clamped to 0), 0.25 | 0.75, 1.25.
	out, err = runDet(t, "RoiAlign", 16, roiAttrs("avg", 2, 2, 2), roiMap(), rois, idx)
	detWant(t, "opset 16 default", out, err, []int{1, 1, 2, 2}, []float32{1.625, 2.5, 5.125, 6})
	out, err = runDet(t, "RoiAlign", 16, roiAttrs("avg", 2, 2, 2, graph.AttrStringOf("coordinate_transformation_mode", "output_half_pixel")), roiMap(), rois, idx)
	detWant(t, "opset 16 output_half_pixel", out, err, []int{1, 1, 2, 2}, noShift)
	// spatial_scale maps the roi to (1, 1, 3, 3): samples at 1.25, 1.75 | 2.25, 2.75.
	out, err = runDet(t, "RoiAlign", 10, roiAttrs("avg", 2, 2, 2, graph.AttrFloatOf("spatial_scale", 0.5)), roiMap(), detF32([]int{1, 4}, 2, 2, 6, 6), idx)
	detWant(t, "spatial_scale", out, err, []int{1, 1, 2, 2}, []float32{8.5, 9.5, 12.5, 13.5})
}

// TestRoiAlignAdaptiveSampling: sampling_ratio 0 takes ceil(roi / output)
// points a bin along each axis.
func TestRoiAlignAdaptiveSampling(t *testing.T) {
	idx := detI64([]int{1}, 0)
	// 3 points at 1.5, 2.5, 3.5 (clamped to 3): mean 7/3 on both axes.
	out, err := runDet(t, "RoiAlign", 10, roiAttrs("avg", 1, 1, 0), roiMap(), detF32([]int{1, 4}, 1, 1, 4, 4), idx)
	detWant(t, "3x3 points", out, err, []int{1, 1, 1, 1}, []float32{38.0 / 3})
	// A 4x1 roi in 1x2 bins: 1 point at y 0.5, 2 at x 0.5, 1.5 | 2.5, 3.5 (-> 3).
	out, err = runDet(t, "RoiAlign", 10, roiAttrs("avg", 1, 2, 0), roiMap(), detF32([]int{1, 4}, 0, 0, 4, 1), idx)
	detWant(t, "1x2 points", out, err, []int{1, 1, 1, 2}, []float32{4, 5.75})
	// A roi of no size is 1x1 without the half-pixel shift (one point at 1.5),
	// and has no points with it (0).
	dot := detF32([]int{1, 4}, 1, 1, 1, 1)
	out, err = runDet(t, "RoiAlign", 16, roiAttrs("avg", 1, 1, 0, graph.AttrStringOf("coordinate_transformation_mode", "output_half_pixel")), roiMap(), dot, idx)
	detWant(t, "empty roi forced to 1x1", out, err, []int{1, 1, 1, 1}, []float32{8.5})
	out, err = runDet(t, "RoiAlign", 16, roiAttrs("avg", 1, 1, 0), roiMap(), dot, idx)
	detWant(t, "empty roi, half_pixel", out, err, []int{1, 1, 1, 1}, []float32{0})
}

// TestRoiAlignMax: max mode is, as in the ONNX reference, the largest of each
// sample's four weighted corners, not of the interpolated values (which would
// give 7.5 here).
func TestRoiAlignMax(t *testing.T) {
	// Samples at 0.5 and 1.5 on each axis, all four weights 1/4: the last one's
	// corners are 6, 7, 10, 11, so 11/4.
	out, err := runDet(t, "RoiAlign", 10, roiAttrs("max", 1, 1, 2), roiMap(), detF32([]int{1, 4}, 0, 0, 2, 2), detI64([]int{1}, 0))
	detWant(t, "max", out, err, []int{1, 1, 1, 1}, []float32{2.75})
	// On the negated map the first sample's -1/4 is the largest.
	neg := roiMap()
	for i, v := range neg.Float32s() {
		neg.Float32s()[i] = -v
	}
	out, err = runDet(t, "RoiAlign", 10, roiAttrs("max", 1, 1, 2), neg, detF32([]int{1, 4}, 0, 0, 2, 2), detI64([]int{1}, 0))
	detWant(t, "max of negatives", out, err, []int{1, 1, 1, 1}, []float32{-0.25})
}

// TestRoiAlignOutside: samples beyond a pixel outside the map weigh nothing
// but still count in the average; those within clamp to the edge.
func TestRoiAlignOutside(t *testing.T) {
	idx := detI64([]int{1}, 0)
	// Samples at 3 (the corner, 16) and 5 (outside) on each axis.
	far := detF32([]int{1, 4}, 2, 2, 6, 6)
	out, err := runDet(t, "RoiAlign", 10, roiAttrs("avg", 1, 1, 2), roiMap(), far, idx)
	detWant(t, "avg right-bottom", out, err, []int{1, 1, 1, 1}, []float32{4})
	out, err = runDet(t, "RoiAlign", 10, roiAttrs("max", 1, 1, 2), roiMap(), far, idx)
	detWant(t, "max right-bottom", out, err, []int{1, 1, 1, 1}, []float32{16})
	// With the shift: samples at 2.5 (13.5) and 4.5 (outside).
	out, err = runDet(t, "RoiAlign", 16, roiAttrs("avg", 1, 1, 2), roiMap(), far, idx)
	detWant(t, "half_pixel right-bottom", out, err, []int{1, 1, 1, 1}, []float32{13.5 / 4})
	// Samples at -1.5 (outside) and -0.5 (clamped to 0, value 1).
	near := detF32([]int{1, 4}, -2, -2, 0, 0)
	out, err = runDet(t, "RoiAlign", 10, roiAttrs("avg", 1, 1, 2), roiMap(), near, idx)
	detWant(t, "avg left-top", out, err, []int{1, 1, 1, 1}, []float32{0.25})
	out, err = runDet(t, "RoiAlign", 10, roiAttrs("max", 1, 1, 2), roiMap(), near, idx)
	detWant(t, "max left-top", out, err, []int{1, 1, 1, 1}, []float32{1})
}

// TestRoiAlignBatchIndices: each roi reads its own image, every channel.
func TestRoiAlignBatchIndices(t *testing.T) {
	d := make([]float32, 2*2*16)
	for n := 0; n < 2; n++ {
		for c := 0; c < 2; c++ {
			for i := 0; i < 16; i++ {
				d[(n*2+c)*16+i] = float32(1 + i + 100*n + 10*c)
			}
		}
	}
	rois := detF32([]int{2, 4}, 0, 0, 2, 2, 0, 0, 2, 2)
	out, err := runDet(t, "RoiAlign", 10, roiAttrs("avg", 2, 2, 2), detF32([]int{2, 2, 4, 4}, d...), rois, detI64([]int{2}, 1, 0))
	detWant(t, "batch indices", out, err, []int{2, 2, 2, 2}, []float32{
		103.5, 104.5, 107.5, 108.5, 113.5, 114.5, 117.5, 118.5,
		3.5, 4.5, 7.5, 8.5, 13.5, 14.5, 17.5, 18.5})
}

func TestRoiAlignBadInputs(t *testing.T) {
	for name, c := range map[string]struct {
		attrs []*onnxpb.AttributeProto
		word  string
	}{
		"mode":        {roiAttrs("min", 1, 1, 0), "mode"},
		"transform":   {roiAttrs("avg", 1, 1, 0, graph.AttrStringOf("coordinate_transformation_mode", "align_corners")), "coordinate_transformation_mode"},
		"height 0":    {roiAttrs("avg", 0, 1, 0), "output size"},
		"width -1":    {roiAttrs("avg", 1, -1, 0), "output size"},
		"ratio -1":    {roiAttrs("avg", 1, 1, -1), "sampling_ratio"},
		"string size": {[]*onnxpb.AttributeProto{graph.AttrStringOf("output_height", "7")}, "output_height"},
	} {
		_, err := runDet(t, "RoiAlign", 16, c.attrs, roiMap(), detF32([]int{1, 4}, 0, 0, 1, 1), detI64([]int{1}, 0))
		detErr(t, name, err, c.word)
	}
	x, rois, idx := roiMap(), detF32([]int{1, 4}, 0, 0, 1, 1), detI64([]int{1}, 0)
	for _, c := range []struct {
		name  string
		in    []*graph.Tensor
		words []string
	}{
		{"no batch indices", []*graph.Tensor{x, rois}, []string{"3 inputs"}},
		{"3-D X", []*graph.Tensor{detF32([]int{1, 4, 4}, make([]float32, 16)...), rois, idx}, []string{"4-D"}},
		{"int X", []*graph.Tensor{detI64([]int{1, 1, 1, 1}, 1), rois, idx}, []string{"X", "float32"}},
		{"5 roi values", []*graph.Tensor{x, detF32([]int{1, 5}, 0, 0, 0, 1, 1), idx}, []string{"rois", "[1 5]"}},
		{"1-D rois", []*graph.Tensor{x, detF32([]int{4}, 0, 0, 1, 1), idx}, []string{"rois"}},
		{"too few indices", []*graph.Tensor{x, detF32([]int{2, 4}, 0, 0, 1, 1, 0, 0, 1, 1), idx}, []string{"batch_indices", "[2]"}},
		{"index past batch", []*graph.Tensor{x, rois, detI64([]int{1}, 1)}, []string{"batch index 1", "[0, 1)"}},
		{"negative index", []*graph.Tensor{x, rois, detI64([]int{1}, -1)}, []string{"batch index -1"}},
		{"float indices", []*graph.Tensor{x, rois, detF32([]int{1}, 0)}, []string{"batch_indices"}},
		{"empty map", []*graph.Tensor{detF32([]int{1, 1, 0, 4}), rois, idx}, []string{"empty"}},
		{"huge roi", []*graph.Tensor{x, detF32([]int{1, 4}, 0, 0, 1e9, 1e9), idx}, []string{"sampling points"}},
	} {
		_, err := runDet(t, "RoiAlign", 16, roiAttrs("avg", 1, 1, 0), c.in...)
		detErr(t, c.name, err, c.words...)
	}
}

// TestDetectionOpsets: the versions each op is registered for.
func TestDetectionOpsets(t *testing.T) {
	for _, c := range []struct {
		op     string
		opset  int64
		wanted bool
	}{
		{"NonMaxSuppression", 9, false}, {"NonMaxSuppression", 10, true}, {"NonMaxSuppression", 11, true},
		{"RoiAlign", 9, false}, {"RoiAlign", 10, true}, {"RoiAlign", 16, true}, {"RoiAlign", 22, true},
		{"MaxUnpool", 8, false}, {"MaxUnpool", 9, true}, {"MaxUnpool", 11, true}, {"MaxUnpool", 22, true},
	} {
		if Supported("", c.op, c.opset) != c.wanted {
			t.Errorf("%s at opset %d: supported %v, want %v", c.op, c.opset, !c.wanted, c.wanted)
		}
	}
}

// nmsCase is one random NonMaxSuppression problem.
type nmsCase struct {
	nb, nc, ns int
	center     bool
	boxes      []float32 // [nb, ns, 4]
	scores     []float32 // [nb, nc, ns]
	maxOut     int64
	iou        float32
	useMin     bool
	minScore   float32
}

func (c nmsCase) String() string {
	return fmt.Sprintf("%d batches x %d classes x %d boxes, center %v, max %d, iou %v, score threshold %v (%v)",
		c.nb, c.nc, c.ns, c.center, c.maxOut, c.iou, c.minScore, c.useMin)
}

// nmsReference is NonMaxSuppression as the ONNX reference states it: per
// batch and class, the boxes scoring above the threshold sorted stably by
// descending score (NaN last), each kept unless its IoU with a box kept
// before exceeds the threshold, until max_output_boxes_per_class are kept.
func nmsReference(c nmsCase) [][3]int64 {
	var rows [][3]int64
	for b := 0; b < c.nb; b++ {
		for k := 0; k < c.nc; k++ {
			s := c.scores[(b*c.nc+k)*c.ns : (b*c.nc+k+1)*c.ns]
			var cand []int
			for i, v := range s {
				if !c.useMin || v > c.minScore {
					cand = append(cand, i)
				}
			}
			slices.SortStableFunc(cand, func(i, j int) int { return cmp.Compare(s[j], s[i]) })
			var kept []int
			for _, i := range cand {
				if int64(len(kept)) >= c.maxOut {
					break
				}
				if !slices.ContainsFunc(kept, func(j int) bool { return nmsIoU(c, b, i, j) > c.iou }) {
					kept = append(kept, i)
					rows = append(rows, [3]int64{int64(b), int64(k), int64(i)})
				}
			}
		}
	}
	return rows
}

// nmsIoU is the IoU of boxes i and j of batch b in float32, 0 where they
// do not intersect or either has no area (NaN where an infinity makes it so).
func nmsIoU(c nmsCase, b, i, j int) float32 {
	type box struct{ x0, x1, y0, y1, area float32 }
	geo := func(i int) box {
		d := c.boxes[(b*c.ns+i)*4 : (b*c.ns+i)*4+4]
		var q box
		if c.center {
			q = box{d[0] - d[2]/2, d[0] + d[2]/2, d[1] - d[3]/2, d[1] + d[3]/2, 0}
		} else {
			q = box{min(d[1], d[3]), max(d[1], d[3]), min(d[0], d[2]), max(d[0], d[2]), 0}
		}
		q.area = float32((q.x1 - q.x0) * (q.y1 - q.y0))
		return q
	}
	p, q := geo(i), geo(j)
	ix := min(p.x1, q.x1) - max(p.x0, q.x0)
	iy := min(p.y1, q.y1) - max(p.y0, q.y0)
	if ix <= 0 || iy <= 0 || p.area <= 0 || q.area <= 0 {
		return 0
	}
	inter := float32(ix * iy)
	union := p.area + q.area - inter
	if inter <= 0 || union <= 0 {
		return 0
	}
	return inter / union
}

// nmsRandomCase draws boxes and scores that make ties, exact IoUs at the
// threshold, heavy suppression and degenerate boxes likely.
func nmsRandomCase(r *rand.Rand) nmsCase {
	c := nmsCase{nb: 1 + r.IntN(3), nc: 1 + r.IntN(4), ns: r.IntN(300), center: r.IntN(2) == 1}
	many := false
	switch r.IntN(10) {
	case 0:
		c.ns = r.IntN(4)
	case 1: // boxes enough for the kernel to guess a first cut from a sample
		c.nb, c.nc, c.ns, many = 1, 1+r.IntN(2), 2048+r.IntN(2000), true
	}
	clusters := 0 // boxes near a few: most suppressed
	if r.IntN(3) == 0 {
		clusters = 1 + r.IntN(5)
	}
	// Boxes on a coarse grid in a small field overlap a lot and exactly; a
	// wide field of fine coordinates seldom. The field is put across or
	// below 0 at times: negative coordinates order otherwise as bits.
	field, grid := float32(4+r.IntN(60)), float32(1)/float32(1+r.IntN(4))
	if r.IntN(3) == 0 {
		field, grid = 600, 0
	}
	shift := []float32{0, 0, -0.5, -1}[r.IntN(4)] * field
	coord := func(lo, hi float32) float32 {
		v := lo + r.Float32()*(hi-lo)
		if grid > 0 {
			v = float32(math.Round(float64(v/grid))) * grid
		}
		return v
	}
	weird := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-30, 3e38}
	c.boxes = make([]float32, c.nb*c.ns*4)
	for i := 0; i < c.nb*c.ns; i++ {
		d := c.boxes[i*4 : i*4+4]
		w, h := coord(0, field/3), coord(0, field/3)
		if c.center {
			d[0], d[1], d[2], d[3] = coord(0, field)+shift, coord(0, field)+shift, w, h
		} else {
			y, x := coord(0, field)+shift, coord(0, field)+shift
			d[0], d[1], d[2], d[3] = y, x, y+h, x+w
			if r.IntN(4) == 0 { // any two opposite corners
				d[0], d[2] = d[2], d[0]
			}
		}
		switch r.IntN(20) {
		case 0: // no width or height
			d[2+r.IntN(2)] = d[r.IntN(2)]
			if c.center {
				d[2+r.IntN(2)] = 0
			}
		case 1: // a NaN, infinite or extreme coordinate
			d[r.IntN(4)] = weird[r.IntN(len(weird))]
		case 2: // negative width and height: inverted
			if c.center {
				d[2], d[3] = -d[2], -d[3]
			}
		case 3: // a duplicate of an earlier box
			if i > 0 {
				copy(d, c.boxes[r.IntN(i)*4:])
			}
		}
		if clusters > 0 && i >= clusters && r.IntN(4) != 0 { // a near copy of a cluster's first box
			k := r.IntN(clusters)
			copy(d, c.boxes[k*4:k*4+4])
			d[r.IntN(4)] += coord(-1, 1)
		}
	}
	levels := 1 + r.IntN(20) // few levels: many equal scores
	c.scores = make([]float32, c.nb*c.nc*c.ns)
	for i := range c.scores {
		c.scores[i] = float32(r.IntN(levels)) / float32(levels)
		if r.IntN(2) == 0 {
			c.scores[i] = r.Float32()
		}
		if r.IntN(30) == 0 {
			c.scores[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
				float32(math.Copysign(0, -1)), 0, -0.5}[r.IntN(6)]
		}
	}
	switch r.IntN(6) {
	case 0:
		c.maxOut = 1
	case 1:
		c.maxOut = 1 << 40
	default:
		c.maxOut = int64(1 + r.IntN(30))
	}
	if many {
		c.maxOut = int64(1 + r.IntN(30))
	}
	c.iou = []float32{0, 0.5, 1, r.Float32(), 0.25, 1.0 / 3}[r.IntN(6)]
	if r.IntN(3) == 0 && c.ns > 1 {
		// The IoU of a class's two best boxes, which are compared: a
		// comparison at the threshold that another rounding of the IoU (or
		// its operations in another order) would decide otherwise.
		b, k := r.IntN(c.nb), r.IntN(c.nc)
		order := make([]int, c.ns)
		for i := range order {
			order[i] = i
		}
		s := c.scores[(b*c.nc+k)*c.ns:]
		slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(s[j], s[i]) })
		if v := nmsIoU(c, b, order[0], order[1]); v > 0 && v <= 1 {
			c.iou = []float32{v, math.Nextafter32(v, 0), math.Nextafter32(v, 1)}[r.IntN(3)]
		}
	}
	switch r.IntN(4) {
	case 0: // none
	case 1:
		c.useMin, c.minScore = true, float32(r.IntN(levels))/float32(levels) // equal to many scores
	case 2:
		c.useMin, c.minScore = true, r.Float32()-0.2
	case 3:
		c.useMin, c.minScore = true, []float32{float32(math.Inf(-1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1))}[r.IntN(4)]
	}
	return c
}

// nmsRunCase runs the kernel on c at a thread count (2 forces the split of
// batches and classes over two threads).
func nmsRunCase(t *testing.T, c nmsCase, threads int) [][3]int64 {
	t.Helper()
	f, err := lookup("", "NonMaxSuppression", 11)
	if err != nil {
		t.Fatal(err)
	}
	k, err := f(&NodeInfo{Node: &graph.Node{OpType: "NonMaxSuppression", Name: "n",
		Attrs: []*onnxpb.AttributeProto{graph.AttrIntOf("center_point_box", map[bool]int64{false: 0, true: 1}[c.center])}}, Opset: 11})
	if err != nil {
		t.Fatal(err)
	}
	in := []*graph.Tensor{detF32([]int{c.nb, c.ns, 4}, c.boxes...), detF32([]int{c.nb, c.nc, c.ns}, c.scores...),
		detI64(nil, c.maxOut), detF32(nil, c.iou)}
	if c.useMin {
		in = append(in, detF32(nil, c.minScore))
	}
	if threads > 1 {
		defer parallel.ForceSplit(parallel.ForcedSplit())
		parallel.ForceSplit(threads)
	}
	out, err := k.Run(&Context{Threads: threads}, in)
	if err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	d := out[0].Int64s()
	rows := make([][3]int64, out[0].Shape[0])
	for i := range rows {
		rows[i] = [3]int64{d[i*3], d[i*3+1], d[i*3+2]}
	}
	return rows
}

// TestNonMaxSuppressionMatchesReference compares the kernel with
// nmsReference on random problems, at 1 and 2 threads, with the kernel's
// first candidate window and with windows of 1 and 3 (which take several a
// class wherever suppression runs through one).
func TestNonMaxSuppressionMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	defer func(w int) { nmsTestWindow = w }(nmsTestWindow)
	var rows, limited, suppressed, nan int
	for n := 0; n < 600; n++ {
		c := nmsRandomCase(r)
		want := nmsReference(c)
		for _, window := range []int{0, 1, 3} {
			nmsTestWindow = window
			for _, threads := range []int{1, 2} {
				if got := nmsRunCase(t, c, threads); !slices.Equal(got, want) {
					t.Fatalf("case %d (%v), window %d, %d threads:\n got %v\nwant %v", n, c, window, threads, got, want)
				}
			}
		}
		rows += len(want)
		for b := 0; b < c.nb; b++ {
			for k := 0; k < c.nc; k++ {
				got, live := 0, 0
				for _, w := range want {
					if w[0] == int64(b) && w[1] == int64(k) {
						got++
						if s := c.scores[(b*c.nc+k)*c.ns+int(w[2])]; s != s {
							nan++
						}
					}
				}
				for _, s := range c.scores[(b*c.nc+k)*c.ns : (b*c.nc+k+1)*c.ns] {
					if !c.useMin || s > c.minScore {
						live++
					}
				}
				if int64(got) == c.maxOut && live > got {
					limited++
				} else if got < live {
					suppressed++
				}
			}
		}
	}
	t.Logf("%d rows; classes cut by the limit %d, with suppression only %d; NaN scores selected %d", rows, limited, suppressed, nan)
	if limited < 100 || suppressed < 100 || nan < 10 {
		t.Errorf("the random cases do not cover the limit, suppression and NaN scores enough")
	}
}

// BenchmarkNonMaxSuppression: the op survey's two cases, one thread: 1000
// boxes of 1 class with uniform scores, and a YOLO-style 8400 boxes x 80
// classes whose scores are mostly under the threshold.
func BenchmarkNonMaxSuppression(b *testing.B) {
	for _, c := range []struct {
		name       string
		nbox, ncls int
		pow        int
	}{{"1000x1", 1000, 1, 1}, {"8400x80", 8400, 80, 4}} {
		b.Run(c.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(7, 11))
			bd := make([]float32, c.nbox*4)
			for i := 0; i < c.nbox; i++ {
				x, y := r.Float32()*600, r.Float32()*600
				w, h := 10+r.Float32()*100, 10+r.Float32()*100
				bd[4*i], bd[4*i+1], bd[4*i+2], bd[4*i+3] = y, x, y+h, x+w
			}
			sd := make([]float32, c.nbox*c.ncls)
			for i := range sd {
				v := r.Float32()
				sd[i] = v
				for range c.pow - 1 {
					sd[i] *= v
				}
			}
			f, err := lookup("", "NonMaxSuppression", 11)
			if err != nil {
				b.Fatal(err)
			}
			k, err := f(&NodeInfo{Node: &graph.Node{OpType: "NonMaxSuppression", Name: "n"}, Opset: 11})
			if err != nil {
				b.Fatal(err)
			}
			in := []*graph.Tensor{detF32([]int{1, c.nbox, 4}, bd...), detF32([]int{1, c.ncls, c.nbox}, sd...),
				detI64(nil, 100), detF32(nil, 0.5), detF32(nil, 0.25)}
			ctx := &Context{Threads: 1}
			b.ResetTimer()
			for range b.N {
				if _, err := k.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
