package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Box is a detection or a ground-truth box in pixels of the stored image.
type Box struct {
	X1, Y1, X2, Y2 float64
	Class          int
	Score          float64 // 1 for ground truth
}

func (b Box) area() float64 { return math.Max(0, b.X2-b.X1) * math.Max(0, b.Y2-b.Y1) }

// IoU of two boxes in continuous coordinates (no "+1").
func IoU(a, b Box) float64 {
	iw := math.Min(a.X2, b.X2) - math.Max(a.X1, b.X1)
	ih := math.Min(a.Y2, b.Y2) - math.Max(a.Y1, b.Y1)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	u := a.area() + b.area() - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

// Decode turns FastestDet's [1,85,G,G] head into one box per grid cell whose
// score obj^0.6 * p^0.4 exceeds thresh: channel 0 is the sigmoided
// objectness, 1-2 the centre offsets (tanh), 3-4 the size as a fraction of
// the image (sigmoid), 5-84 the softmaxed class probabilities.
func Decode(out *graph.Tensor, w, h int, thresh float64) ([]Box, error) {
	if out.DType != graph.Float || len(out.Shape) != 4 || out.Shape[0] != 1 || out.Shape[1] < 6 || out.Shape[2] != out.Shape[3] {
		return nil, fmt.Errorf("output is %s%v, not float32 [1,85,G,G]", out.DType.Short(), out.Shape)
	}
	d := out.Float32s()
	nc, g := out.Shape[1], out.Shape[2]
	at := func(c, y, x int) float64 { return float64(d[(c*g+y)*g+x]) }
	sigmoid := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	var boxes []Box
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			cls, p := 0, at(5, gy, gx)
			for c := 6; c < nc; c++ {
				if v := at(c, gy, gx); v > p {
					cls, p = c-5, v
				}
			}
			obj := at(0, gy, gx)
			// A quantized model may give a probability a hair below 0.
			score := math.Pow(math.Max(obj, 0), 0.6) * math.Pow(math.Max(p, 0), 0.4)
			if !(score > thresh) {
				continue
			}
			cx := (float64(gx) + math.Tanh(at(1, gy, gx))) / float64(g)
			cy := (float64(gy) + math.Tanh(at(2, gy, gx))) / float64(g)
			bw, bh := sigmoid(at(3, gy, gx)), sigmoid(at(4, gy, gx))
			boxes = append(boxes, Box{
				X1: (cx - bw/2) * float64(w), Y1: (cy - bh/2) * float64(h),
				X2: (cx + bw/2) * float64(w), Y2: (cy + bh/2) * float64(h),
				Class: cls, Score: score,
			})
		}
	}
	return boxes, nil
}

// NMS is greedy per-class non-maximum suppression: a box whose IoU with a
// kept higher-scoring box of its class exceeds iou is dropped; at most
// maxPerClass boxes of a class are kept (pycocotools' maxDets is per image
// and class).
func NMS(boxes []Box, iou float64, maxPerClass int) []Box {
	sorted := append([]Box(nil), boxes...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Score > sorted[j].Score })
	var kept []Box
	perClass := map[int]int{}
	for _, b := range sorted {
		if perClass[b.Class] >= maxPerClass {
			continue
		}
		ok := true
		for _, k := range kept {
			if k.Class == b.Class && IoU(k, b) > iou {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, b)
			perClass[b.Class]++
		}
	}
	return kept
}

// readLabels reads YOLO labels (class cx cy w h, normalised) as pixel boxes
// of a w x h image.
func readLabels(path string, w, h int) ([]Box, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Box
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if len(fs) != 5 {
			return nil, fmt.Errorf("%s:%d: want 'class cx cy w h', got %d fields", path, line, len(fs))
		}
		var v [5]float64
		for i, s := range fs {
			if v[i], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("%s:%d: %q is not a number", path, line, s)
			}
		}
		cx, cy, bw, bh := v[1]*float64(w), v[2]*float64(h), v[3]*float64(w), v[4]*float64(h)
		out = append(out, Box{X1: cx - bw/2, Y1: cy - bh/2, X2: cx + bw/2, Y2: cy + bh/2, Class: int(v[0]), Score: 1})
	}
	return out, sc.Err()
}

// IoUThresholds are COCO's 0.50:0.05:0.95.
var IoUThresholds = func() []float64 {
	var t []float64
	for i := 0; i < 10; i++ {
		t = append(t, 0.5+0.05*float64(i))
	}
	return t
}()

// MeanAP scores per-image detections against per-image ground truth as
// COCO does (area "all", no crowd boxes): for each class and IoU
// threshold, detections in score order each match the unmatched ground
// truth box of highest IoU at or above the threshold; AP is the 101-point
// interpolated precision (the monotone envelope sampled at recall
// 0, 0.01, ..., 1). It returns mAP at IoU 0.5, mAP averaged over the ten
// thresholds, both over the classes that have ground truth, and the number
// of such classes. A class with ground truth and no detection scores 0.
func MeanAP(dets, gts [][]Box) (map50, mapAll float64, classes int) {
	nGT := map[int]int{}
	for _, g := range gts {
		for _, b := range g {
			nGT[b.Class]++
		}
	}
	for c, n := range nGT {
		for ti, t := range IoUThresholds {
			ap := classAP(dets, gts, c, t, n)
			if ti == 0 {
				map50 += ap
			}
			mapAll += ap / float64(len(IoUThresholds))
		}
	}
	classes = len(nGT)
	if classes == 0 {
		return 0, 0, 0
	}
	return map50 / float64(classes), mapAll / float64(classes), classes
}

type scored struct {
	score float64
	tp    bool
}

func classAP(dets, gts [][]Box, class int, thresh float64, nGT int) float64 {
	var all []scored
	for i := range gts {
		var d, g []Box
		for _, b := range dets[i] {
			if b.Class == class {
				d = append(d, b)
			}
		}
		for _, b := range gts[i] {
			if b.Class == class {
				g = append(g, b)
			}
		}
		sort.SliceStable(d, func(a, b int) bool { return d[a].Score > d[b].Score })
		used := make([]bool, len(g))
		for _, db := range d {
			best, m := math.Min(thresh, 1-1e-10), -1
			for j, gb := range g {
				if used[j] {
					continue
				}
				if v := IoU(db, gb); v >= best {
					best, m = v, j
				}
			}
			if m >= 0 {
				used[m] = true
			}
			all = append(all, scored{db.Score, m >= 0})
		}
	}
	if len(all) == 0 {
		return 0
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].score > all[b].score })
	prec := make([]float64, len(all))
	rec := make([]float64, len(all))
	tp := 0
	for i, s := range all {
		if s.tp {
			tp++
		}
		prec[i] = float64(tp) / float64(i+1)
		rec[i] = float64(tp) / float64(nGT)
	}
	for i := len(prec) - 1; i > 0; i-- {
		prec[i-1] = math.Max(prec[i-1], prec[i])
	}
	var sum float64
	for k := 0; k <= 100; k++ {
		r := float64(k) / 100
		// The first detection whose recall reaches r.
		i := sort.SearchFloat64s(rec, r)
		if i < len(rec) {
			sum += prec[i]
		}
	}
	return sum / 101
}
