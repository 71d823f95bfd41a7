package kernels

import (
	"fmt"
	"math"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Detection ops: NonMaxSuppression and RoiAlign, computed as the ONNX
// reference implementation (onnx/reference/ops) computes them, which is what
// the backend test data was made with.

func init() {
	// NonMaxSuppression-11 changed only the documentation of version 10.
	Register("", "NonMaxSuppression", 10, newNonMaxSuppression)
	// RoiAlign-16 added coordinate_transformation_mode; 10 is output_half_pixel.
	Register("", "RoiAlign", 10, newRoiAlign)
	Register("", "RoiAlign", 16, newRoiAlign)
}

// nmsBox is a box as its x and y extents and its area, in float32 like the
// reference so that an IoU at the threshold compares the same way.
type nmsBox struct{ x0, x1, y0, y1, area float32 }

// newNonMaxSuppression selects, per batch and class, boxes in descending score
// order (ties: lower box index first) that overlap no box already selected by
// an IoU above iou_threshold, and returns [batch, class, box] rows.
func newNonMaxSuppression(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	center := a.Int("center_point_box", 0)
	if a.err != nil {
		return nil, a.err
	}
	if center != 0 && center != 1 {
		return nil, fmt.Errorf("NonMaxSuppression center_point_box must be 0 or 1, got %d", center)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		boxes, scores := in[0], in[1]
		if err := wantFloat(boxes, "NonMaxSuppression boxes"); err != nil {
			return nil, err
		}
		if err := wantFloat(scores, "NonMaxSuppression scores"); err != nil {
			return nil, err
		}
		if boxes.Rank() != 3 || boxes.Shape[2] != 4 {
			return nil, fmt.Errorf("NonMaxSuppression boxes must be [batches, boxes, 4], got %v", boxes.Shape)
		}
		nb, nbox := boxes.Shape[0], boxes.Shape[1]
		if scores.Rank() != 3 || scores.Shape[0] != nb || scores.Shape[2] != nbox {
			return nil, fmt.Errorf("NonMaxSuppression scores %v do not fit boxes %v: want [%d, classes, %d]", scores.Shape, boxes.Shape, nb, nbox)
		}
		ncls := scores.Shape[1]
		// The three optional scalars; an empty tensor counts as omitted.
		maxOut, iou, minScore, useMin := 0, float32(0), float32(0), false
		if t, err := nmsScalar(in, 2, "max_output_boxes_per_class"); err != nil {
			return nil, err
		} else if t != nil {
			v, err := ints(t)
			if err != nil {
				return nil, fmt.Errorf("NonMaxSuppression max_output_boxes_per_class: %v", err)
			}
			maxOut = max(v[0], 0) // the reference treats a negative count as 0
		}
		if t, err := nmsScalar(in, 3, "iou_threshold"); err != nil {
			return nil, err
		} else if t != nil {
			if err := wantFloat(t, "NonMaxSuppression iou_threshold"); err != nil {
				return nil, err
			}
			iou = t.Float32s()[0]
			if !(iou >= 0 && iou <= 1) {
				return nil, fmt.Errorf("NonMaxSuppression iou_threshold %g is outside [0, 1]", iou)
			}
		}
		if t, err := nmsScalar(in, 4, "score_threshold"); err != nil {
			return nil, err
		} else if t != nil {
			if err := wantFloat(t, "NonMaxSuppression score_threshold"); err != nil {
				return nil, err
			}
			minScore, useMin = t.Float32s()[0], true
		}
		if maxOut == 0 || nbox == 0 {
			return one(graph.NewTensor(graph.Int64, []int{0, 3})), nil
		}
		bd, sd := boxes.Float32s(), scores.Float32s()
		picked := make([][]int32, nb*ncls)
		parallelFor(threadsFor(ctx, nb*ncls*nbox, 1<<12), nb*ncls, func(lo, hi int) {
			z := nmsSelectors.Get().(*nmsSelector)
			z.nmsParams = nmsParams{centered: center == 1, iou: iou, maxOut: maxOut, useMin: useMin, minScore: minScore}
			// The chunk's selections, class after class: room for every class
			// to fill up, within reason.
			sel := make([]int32, 0, min(min(maxOut, nbox)*(hi-lo), 1<<12))
			for p := lo; p < hi; p++ {
				b := p / ncls
				n := len(sel)
				sel = z.class(sd[p*nbox:(p+1)*nbox], bd[b*nbox*4:(b+1)*nbox*4], sel)
				picked[p] = sel[n:len(sel):len(sel)]
			}
			nmsSelectors.Put(z)
		})
		n := 0
		for _, sel := range picked {
			n += len(sel)
		}
		out := ctx.Empty(graph.Int64, []int{n, 3})
		od := out.Int64s()
		r := 0
		for p, sel := range picked {
			for _, i := range sel {
				od[r*3], od[r*3+1], od[r*3+2] = int64(p/ncls), int64(p%ncls), int64(i)
				r++
			}
		}
		return one(out), nil
	}), nil
}

// nmsScalar returns optional input i, nil when omitted or empty, and fails
// when it holds more than one value.
func nmsScalar(in []*graph.Tensor, i int, what string) (*graph.Tensor, error) {
	if i >= len(in) || in[i] == nil || in[i].Len() == 0 {
		return nil, nil
	}
	if in[i].Len() != 1 {
		return nil, fmt.Errorf("NonMaxSuppression %s must be a scalar, got shape %v", what, in[i].Shape)
	}
	return in[i], nil
}

// newRoiAlign pools each region of interest of an NCHW feature map into an
// output_height x output_width grid, each bin the average (or maximum) of
// bilinearly sampled points.
func newRoiAlign(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	mode := strings.ToLower(a.String("mode", "avg"))
	oh, ow := int(a.Int("output_height", 1)), int(a.Int("output_width", 1))
	ratio := int(a.Int("sampling_ratio", 0))
	scale := a.Float("spatial_scale", 1)
	ctm := "output_half_pixel" // RoiAlign-10 does not shift by half a pixel
	if ni.Opset >= 16 {
		ctm = strings.ToLower(a.String("coordinate_transformation_mode", "half_pixel"))
	}
	if a.err != nil {
		return nil, a.err
	}
	switch {
	case mode != "avg" && mode != "max":
		return nil, fmt.Errorf("RoiAlign mode %q is not avg or max", mode)
	case ctm != "half_pixel" && ctm != "output_half_pixel":
		return nil, fmt.Errorf("RoiAlign coordinate_transformation_mode %q is not half_pixel or output_half_pixel", ctm)
	case oh < 1 || ow < 1:
		return nil, fmt.Errorf("RoiAlign output size %dx%d must be positive", oh, ow)
	case ratio < 0:
		return nil, fmt.Errorf("RoiAlign sampling_ratio %d is negative", ratio)
	}
	halfPixel := ctm == "half_pixel"
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		x, rois := in[0], in[1]
		if err := wantFloat(x, "RoiAlign X"); err != nil {
			return nil, err
		}
		if err := wantFloat(rois, "RoiAlign rois"); err != nil {
			return nil, err
		}
		if x.Rank() != 4 {
			return nil, fmt.Errorf("RoiAlign X must be 4-D (N, C, H, W), got %v", x.Shape)
		}
		if rois.Rank() != 2 || rois.Shape[1] != 4 {
			return nil, fmt.Errorf("RoiAlign rois must be [num_rois, 4], got %v", rois.Shape)
		}
		nr := rois.Shape[0]
		if in[2].Rank() != 1 || in[2].Shape[0] != nr {
			return nil, fmt.Errorf("RoiAlign batch_indices must be [%d] to match rois, got %v", nr, in[2].Shape)
		}
		bi, err := ints(in[2])
		if err != nil {
			return nil, fmt.Errorf("RoiAlign batch_indices: %v", err)
		}
		n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		for r, b := range bi {
			if b < 0 || b >= n {
				return nil, fmt.Errorf("RoiAlign batch index %d of roi %d is outside [0, %d)", b, r, n)
			}
		}
		if nr > 0 && (h == 0 || w == 0) {
			return nil, fmt.Errorf("RoiAlign feature map %v is empty", x.Shape)
		}
		xd, rd := x.Float32s(), rois.Float32s()
		grids := make([]roiGrid, nr)
		work := 0
		for r := range grids {
			g := newRoiGrid(rd[r*4:r*4+4], scale, halfPixel, oh, ow, ratio)
			if g.gh*g.gw > maxRoiSamples/(oh*ow) {
				return nil, fmt.Errorf("RoiAlign roi %d %v takes more than %d sampling points", r, rd[r*4:r*4+4], maxRoiSamples)
			}
			grids[r] = g
			work += g.gh * g.gw * oh * ow * c
		}
		out := ctx.Empty(graph.Float, []int{nr, c, oh, ow})
		od := out.Float32s()
		plane, bins := h*w, oh*ow
		parallelFor(threadsFor(ctx, work, 1<<14), nr, func(lo, hi int) {
			var samples []roiSample
			for r := lo; r < hi; r++ {
				g := grids[r]
				samples = g.samples(samples[:0], h, w)
				per := g.gh * g.gw
				count := float64(max(per, 1))
				for ch := 0; ch < c; ch++ {
					src := xd[(bi[r]*c+ch)*plane : (bi[r]*c+ch+1)*plane]
					dst := od[(r*c+ch)*bins : (r*c+ch+1)*bins]
					for b := range dst {
						var v float64
						if mode == "avg" {
							for _, s := range samples[b*per : (b+1)*per] {
								v += s.w[0]*float64(src[s.p[0]]) + s.w[1]*float64(src[s.p[1]]) +
									s.w[2]*float64(src[s.p[2]]) + s.w[3]*float64(src[s.p[3]])
							}
							v /= count
						} else {
							// The reference's max mode: the largest weighted corner of
							// each sample, not the interpolated value (onnx/onnx#4764).
							for k, s := range samples[b*per : (b+1)*per] {
								m := max(s.w[0]*float64(src[s.p[0]]), s.w[1]*float64(src[s.p[1]]),
									s.w[2]*float64(src[s.p[2]]), s.w[3]*float64(src[s.p[3]]))
								if k == 0 || m > v {
									v = m
								}
							}
						}
						dst[b] = float32(v)
					}
				}
			}
		})
		return one(out), nil
	}), nil
}

// roiSample is one bilinear sampling point: four pixel offsets and weights.
type roiSample struct {
	p [4]int
	w [4]float64
}

// maxRoiSamples bounds the sampling points of one roi (64 bytes each), which
// an adaptive sampling_ratio makes proportional to the roi's area.
const maxRoiSamples = 1 << 24

// roiGrid is one roi on the feature map: its corner, bin size, and gh x gw
// sampling points a bin. The geometry is float32, as ONNX Runtime computes
// it: an roi edge like 5 * 0.8 is 4 there but 4.00000006 in float64, whose
// ceil gives an adaptive grid of another size.
type roiGrid struct {
	y0, x0, bh, bw float32
	oh, ow, gh, gw int
}

// newRoiGrid places roi (x1, y1, x2, y2) on the feature map.
func newRoiGrid(roi []float32, scale float32, halfPixel bool, oh, ow, ratio int) roiGrid {
	var off float32
	if halfPixel {
		off = 0.5
	}
	x0, y0 := roi[0]*scale-off, roi[1]*scale-off
	rw, rh := roi[2]*scale-off-x0, roi[3]*scale-off-y0
	if !halfPixel { // force malformed rois to 1x1
		rw, rh = max(rw, 1), max(rh, 1)
	}
	g := roiGrid{y0: y0, x0: x0, bh: rh / float32(oh), bw: rw / float32(ow), oh: oh, ow: ow, gh: ratio, gw: ratio}
	if ratio == 0 { // adaptive: about one point per input pixel
		g.gh, g.gw = ceilCount(g.bh), ceilCount(g.bw)
	}
	return g
}

// ceilCount is ceil(v) as a count: 0 for a negative or NaN v, and capped so
// that a huge roi fails the size check instead of overflowing.
func ceilCount(v float32) int {
	if !(v > 0) {
		return 0
	}
	return int(math.Min(math.Ceil(float64(v)), maxRoiSamples+1))
}

// samples appends the roi's sampling points bin by bin in row-major order.
func (g roiGrid) samples(dst []roiSample, h, w int) []roiSample {
	for ph := 0; ph < g.oh; ph++ {
		for pw := 0; pw < g.ow; pw++ {
			for iy := 0; iy < g.gh; iy++ {
				y := g.y0 + float32(ph)*g.bh + (float32(iy)+0.5)*g.bh/float32(g.gh)
				for ix := 0; ix < g.gw; ix++ {
					x := g.x0 + float32(pw)*g.bw + (float32(ix)+0.5)*g.bw/float32(g.gw)
					dst = append(dst, bilinear(float64(y), float64(x), h, w))
				}
			}
		}
	}
	return dst
}

// bilinear is the sampling point at (y, x): clamped to the map within one
// pixel of it, zero weight beyond (and at NaN).
func bilinear(y, x float64, h, w int) roiSample {
	if !(y >= -1 && y <= float64(h) && x >= -1 && x <= float64(w)) {
		return roiSample{}
	}
	y, x = math.Max(y, 0), math.Max(x, 0)
	yl, xl := int(y), int(x)
	yh, xh := yl+1, xl+1
	if yl >= h-1 {
		yl, yh, y = h-1, h-1, float64(h-1)
	}
	if xl >= w-1 {
		xl, xh, x = w-1, w-1, float64(w-1)
	}
	ly, lx := y-float64(yl), x-float64(xl)
	hy, hx := 1-ly, 1-lx
	return roiSample{
		p: [4]int{yl*w + xl, yl*w + xh, yh*w + xl, yh*w + xh},
		w: [4]float64{hy * hx, hy * lx, ly * hx, ly * lx},
	}
}
