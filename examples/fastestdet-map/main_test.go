package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

// fastestDet is the shared FastestDet folder, beside the repository.
func fastestDet(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testdata.Root(), "..", "shared", "models", "fastestdet")
	if _, err := os.Stat(filepath.Join(dir, "FastestDet.onnx")); err != nil {
		if os.Getenv("ONNXQ_REQUIRE_DATA") != "" {
			t.Fatalf("FastestDet not found at %s", dir)
		}
		t.Skipf("FastestDet not found at %s", dir)
	}
	return dir
}

// The float model scores the README's mAP for Go's JPEG decoder and onnxq's
// bilinear loader (eval mAP50 0.2918, mAP50:95 0.1373).
func TestFloatMAPMatchesREADME(t *testing.T) {
	dir := fastestDet(t)
	r, err := Evaluate(filepath.Join(dir, "FastestDet.onnx"), dir, "eval", 0, func(m *graph.Model, p string) (runFunc, error) {
		return runtimes["onnxq"](m, p, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Images != 32 || r.Classes != 48 {
		t.Errorf("%d images, %d classes; the README has 32 and 48", r.Images, r.Classes)
	}
	if math.Abs(100*r.MAP-13.73) > 0.1 || math.Abs(100*r.MAP50-29.18) > 0.1 {
		t.Errorf("mAP50:95 %.2f, mAP50 %.2f; README: 13.73, 29.18", 100*r.MAP, 100*r.MAP50)
	}
}

// The loader reproduces the README's reference tensor up to JPEG decoding
// differences (README: mean 0.0030, max 0.27 over all images).
func TestPreprocessMatchesReference(t *testing.T) {
	dir := fastestDet(t)
	ref, err := npy.ReadFile(filepath.Join(dir, "reference", "000000000009_input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	in := []dataset.Input{{Name: "input.1", DType: graph.Float, Dims: []int64{1, 3, 352, 352}}}
	x, err := Preprocess(filepath.Join(dir, "calib", "000000000009.jpg"), in)
	if err != nil {
		t.Fatal(err)
	}
	a, b := x["input.1"].Float32s(), ref.Float32s()
	if len(a) != len(b) {
		t.Fatalf("%d values, reference %d", len(a), len(b))
	}
	var sum, worst float64
	for i := range a {
		d := math.Abs(float64(a[i] - b[i]))
		sum += d
		worst = math.Max(worst, d)
	}
	if mean := sum / float64(len(a)); mean > 0.006 || worst > 0.3 {
		t.Errorf("mean abs diff %.4f, max %.3f from the reference", mean, worst)
	}
}

// Ground truth fed back as detections scores 1; boxes shrunk to IoU 0.72
// score mAP50 1 and mAP50:95 0.5 (thresholds 0.50..0.70 match, 0.75.. miss).
func TestMeanAPSelfCheck(t *testing.T) {
	gts := [][]Box{
		{{X1: 10, Y1: 10, X2: 110, Y2: 60, Class: 0, Score: 1}, {X1: 200, Y1: 50, X2: 260, Y2: 170, Class: 3, Score: 1}},
		{{X1: 0, Y1: 0, X2: 40, Y2: 40, Class: 3, Score: 1}},
	}
	ap50, ap, n := MeanAP(gts, gts)
	if n != 2 || ap50 != 1 || math.Abs(ap-1) > 1e-12 {
		t.Errorf("GT as detections: mAP50 %v, mAP %v, %d classes", ap50, ap, n)
	}
	shrunk := make([][]Box, len(gts))
	s := math.Sqrt(0.72)
	for i, g := range gts {
		for _, b := range g {
			cx, cy, w, h := (b.X1+b.X2)/2, (b.Y1+b.Y2)/2, (b.X2-b.X1)*s, (b.Y2-b.Y1)*s
			shrunk[i] = append(shrunk[i], Box{X1: cx - w/2, Y1: cy - h/2, X2: cx + w/2, Y2: cy + h/2, Class: b.Class, Score: 0.9})
		}
	}
	ap50, ap, _ = MeanAP(shrunk, gts)
	if math.Abs(ap50-1) > 1e-12 || math.Abs(ap-0.5) > 1e-12 {
		t.Errorf("shrunk to IoU 0.72: mAP50 %v, mAP %v; want 1, 0.5", ap50, ap)
	}
	// One of two GT found, behind a higher-scoring false positive: the
	// envelope is 0.5 up to recall 0.5 and 0 beyond.
	dets := [][]Box{{{X1: 300, Y1: 300, X2: 320, Y2: 320, Class: 0, Score: 0.9}, {X1: 10, Y1: 10, X2: 110, Y2: 60, Class: 0, Score: 0.5}}}
	two := [][]Box{{gts[0][0], {X1: 400, Y1: 400, X2: 450, Y2: 450, Class: 0}}}
	if ap50, _, _ = MeanAP(dets, two); math.Abs(ap50-0.5*51/101) > 1e-12 {
		t.Errorf("mAP50 %v, want %v", ap50, 0.5*51/101)
	}
}

func TestDecodeAndNMS(t *testing.T) {
	out := graph.NewTensor(graph.Float, []int{1, 85, 2, 2})
	d := out.Float32s()
	set := func(c, y, x int, v float32) { d[(c*2+y)*2+x] = v }
	// Cell (1, 0): obj 0.8, centre offsets 0, size sigmoid(0) = 0.5, class 7 at 0.9.
	set(0, 1, 0, 0.8)
	set(12, 1, 0, 0.9)
	// Cell (1, 1): same class, the same box shifted a little, lower score.
	set(0, 1, 1, 0.5)
	set(1, 1, 1, -0.8) // tanh(-0.8) = -0.664: centre x = (1 - 0.664)/2
	set(12, 1, 1, 0.9)
	boxes, err := Decode(out, 100, 200, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 2 {
		t.Fatalf("%d boxes, want 2", len(boxes))
	}
	b := boxes[0]
	wantScore := math.Pow(0.8, 0.6) * math.Pow(0.9, 0.4)
	if b.Class != 7 || math.Abs(b.Score-wantScore) > 1e-6 || math.Abs(b.X1-(-25)) > 1e-9 || math.Abs(b.Y2-150) > 1e-9 {
		t.Errorf("box %+v; want class 7, score %.4f, x1 -25, y2 150", b, wantScore)
	}
	if k := NMS(boxes, 0.45, 100); len(k) != 1 || k[0].Score != b.Score {
		t.Errorf("NMS kept %+v; want only the first box", k)
	}
	if _, err := Decode(graph.NewTensor(graph.Float, []int{1, 85, 22}), 1, 1, 0); err == nil {
		t.Error("a rank-3 output decoded without error")
	}
}
