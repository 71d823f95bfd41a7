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
			var z roiTaps
			for r := lo; r < hi; r++ {
				g := grids[r]
				xb := xd[bi[r]*c*plane : (bi[r]+1)*c*plane]
				ob := od[r*c*bins : (r+1)*c*bins]
				if mode == "avg" {
					z.avg(g, xb, ob, h, w)
				} else {
					z.max(g, xb, ob, h, w)
				}
			}
		})
		return one(out), nil
	}), nil
}

// roiTaps is an roi's bins for avg mode as short dot products: a bin's
// samples are a grid of gh x gw points, each the product of its row's two
// taps and its column's two, so the bin's average is the sum over the
// pixels of the rows and columns its samples touch (merged, as neighboring
// samples often share pixels) of (row weight * column weight / samples) *
// pixel, in float64: usually 9 pixels for the 16 corners of 2 x 2 samples.
// The sum differs from the sample by sample one by rounding in float64
// only. A sample outside the map weighs nothing, but the old sum read pixel 0
// for it (0 times an Inf or NaN there is NaN), so such a bin also reads pixel
// 0 at weight 0; the pixels read are then those the sample by sample sum
// reads, so a bin's sum is finite exactly when that one's is, and a bin that
// is not is summed again sample by sample, as RoiAlign did before.
type roiTaps struct {
	start      []int32   // bin b's taps are start[b]:start[b+1]
	off        []int32   // a tap's pixel
	wt         []float64 // and weight
	rows, cols []roiTap  // the taps of each bin row, column
	rowAt      []int32   // bin row ph's taps are rows[rowAt[ph]:rowAt[ph+1]]
	colAt      []int32
	rowIn      []bool // every sample of bin row ph is within a pixel of the map
	colIn      []bool
	samples    []roiSample // the roi's samples, when a bin needs them
	sampled    bool
}

// roiTap is a pixel along one axis and its weight, summed over samples.
type roiTap struct {
	i int
	w float64
}

// build makes the taps of roi g on an h x w map.
func (z *roiTaps) build(g roiGrid, h, w int) {
	z.sampled = false
	z.rows, z.rowAt, z.rowIn = roiAxisTaps(z.rows[:0], z.rowAt[:0], z.rowIn[:0], g.y0, g.bh, g.oh, g.gh, h)
	z.cols, z.colAt, z.colIn = roiAxisTaps(z.cols[:0], z.colAt[:0], z.colIn[:0], g.x0, g.bw, g.ow, g.gw, w)
	z.start, z.off, z.wt = z.start[:0], z.off[:0], z.wt[:0]
	count := float64(max(g.gh*g.gw, 1))
	for ph := 0; ph < g.oh; ph++ {
		rows := z.rows[z.rowAt[ph]:z.rowAt[ph+1]]
		for pw := 0; pw < g.ow; pw++ {
			z.start = append(z.start, int32(len(z.off)))
			cols := z.cols[z.colAt[pw]:z.colAt[pw+1]]
			for _, r := range rows {
				for _, c := range cols {
					z.off = append(z.off, int32(r.i*w+c.i))
					z.wt = append(z.wt, r.w*c.w/count)
				}
			}
			if g.gh*g.gw > 0 && !(z.rowIn[ph] && z.colIn[pw]) {
				z.off = append(z.off, 0)
				z.wt = append(z.wt, 0)
			}
		}
	}
	z.start = append(z.start, int32(len(z.off)))
}

// roiAxisTaps appends, for each of the bins p < bins along an axis of size
// pixels, the merged taps of its n samples (the pixels below and above each
// sample within the map), where they start, and whether all its samples
// are within a pixel of the map.
func roiAxisTaps(taps []roiTap, at []int32, in []bool, origin, bin float32, bins, n, size int) ([]roiTap, []int32, []bool) {
	for p := 0; p < bins; p++ {
		first := len(taps)
		at = append(at, int32(first))
		all := true
		for i := 0; i < n; i++ {
			ok, lo, hi, wlo, whi := roiAxis(float64(roiCoord(origin, bin, p, i, n)), size)
			if !ok {
				all = false
				continue
			}
			taps = roiMerge(taps, first, lo, wlo)
			taps = roiMerge(taps, first, hi, whi)
		}
		in = append(in, all)
	}
	return taps, append(at, int32(len(taps))), in
}

// roiMerge adds weight w to pixel i among the bin's taps (from first): the
// samples move one way along the axis, so a pixel seen before is one of the
// last two.
func roiMerge(taps []roiTap, first, i int, w float64) []roiTap {
	for k := len(taps) - 1; k >= max(first, len(taps)-2); k-- {
		if taps[k].i == i {
			taps[k].w += w
			return taps
		}
	}
	return append(taps, roiTap{i, w})
}

// fourPlanes is planes ch to ch+3 of x, each n floats.
func fourPlanes(x []float32, ch, n int) (p0, p1, p2, p3 []float32) {
	return x[ch*n : (ch+1)*n], x[(ch+1)*n : (ch+2)*n], x[(ch+2)*n : (ch+3)*n], x[(ch+3)*n : (ch+4)*n]
}

// avg pools roi g from xb (every channel of its image) into ob, four
// channels at a time: a bin's taps are read once for the four, and their
// sums are four independent chains of adds.
func (z *roiTaps) avg(g roiGrid, xb, ob []float32, h, w int) {
	z.build(g, h, w)
	plane, bins := h*w, g.oh*g.ow
	c := len(ob) / bins
	start, off, wt := z.start[:bins+1], z.off, z.wt
	ch := 0
	for ; ch+4 <= c; ch += 4 {
		s0, s1, s2, s3 := fourPlanes(xb, ch, plane)
		d0, d1, d2, d3 := fourPlanes(ob, ch, bins)
		for b := range d0 {
			var v0, v1, v2, v3 float64
			for k := start[b]; k < start[b+1]; k++ {
				o, f := off[k], wt[k]
				v0 += f * float64(s0[o])
				v1 += f * float64(s1[o])
				v2 += f * float64(s2[o])
				v3 += f * float64(s3[o])
			}
			if v0-v0 != 0 || v1-v1 != 0 || v2-v2 != 0 || v3-v3 != 0 { // Inf or NaN
				v0, v1 = z.finite(v0, g, s0, b, h, w), z.finite(v1, g, s1, b, h, w)
				v2, v3 = z.finite(v2, g, s2, b, h, w), z.finite(v3, g, s3, b, h, w)
			}
			d0[b], d1[b], d2[b], d3[b] = float32(v0), float32(v1), float32(v2), float32(v3)
		}
	}
	for ; ch < c; ch++ {
		src, dst := xb[ch*plane:(ch+1)*plane], ob[ch*bins:(ch+1)*bins]
		for b := range dst {
			var v float64
			for k := start[b]; k < start[b+1]; k++ {
				v += wt[k] * float64(src[off[k]])
			}
			dst[b] = float32(z.finite(v, g, src, b, h, w))
		}
	}
}

// finite is v, bin b's sum of src, when finite, else the bin summed again
// sample by sample.
func (z *roiTaps) finite(v float64, g roiGrid, src []float32, b, h, w int) float64 {
	if v-v == 0 {
		return v
	}
	return z.exact(g, src, b, h, w)
}

// exact is bin b of a channel's plane src averaged sample by sample.
func (z *roiTaps) exact(g roiGrid, src []float32, b, h, w int) float64 {
	if !z.sampled {
		z.samples, z.sampled = g.samples(z.samples[:0], h, w), true
	}
	per := g.gh * g.gw
	var v float64
	for _, s := range z.samples[b*per : (b+1)*per] {
		v += s.w[0]*float64(src[s.p[0]]) + s.w[1]*float64(src[s.p[1]]) +
			s.w[2]*float64(src[s.p[2]]) + s.w[3]*float64(src[s.p[3]])
	}
	return v / float64(max(per, 1))
}

// max pools roi g from xb into ob in max mode: the reference's largest
// weighted corner of each sample, not the interpolated value
// (onnx/onnx#4764). Four channels at a time, as avg.
func (z *roiTaps) max(g roiGrid, xb, ob []float32, h, w int) {
	z.samples = g.samples(z.samples[:0], h, w)
	plane, bins, per := h*w, g.oh*g.ow, g.gh*g.gw
	c := len(ob) / bins
	ch := 0
	for ; ch+4 <= c; ch += 4 {
		s0, s1, s2, s3 := fourPlanes(xb, ch, plane)
		d0, d1, d2, d3 := fourPlanes(ob, ch, bins)
		for b := range d0 {
			var v0, v1, v2, v3 float64
			for k := range z.samples[b*per : (b+1)*per] {
				s := &z.samples[b*per+k]
				m0, m1, m2, m3 := roiCornerMax(s, s0), roiCornerMax(s, s1), roiCornerMax(s, s2), roiCornerMax(s, s3)
				if k == 0 {
					v0, v1, v2, v3 = m0, m1, m2, m3
					continue
				}
				if m0 > v0 {
					v0 = m0
				}
				if m1 > v1 {
					v1 = m1
				}
				if m2 > v2 {
					v2 = m2
				}
				if m3 > v3 {
					v3 = m3
				}
			}
			d0[b], d1[b], d2[b], d3[b] = float32(v0), float32(v1), float32(v2), float32(v3)
		}
	}
	for ; ch < c; ch++ {
		src, dst := xb[ch*plane:(ch+1)*plane], ob[ch*bins:(ch+1)*bins]
		for b := range dst {
			var v float64
			for k := range z.samples[b*per : (b+1)*per] {
				s := &z.samples[b*per+k]
				if m := roiCornerMax(s, src); k == 0 || m > v {
					v = m
				}
			}
			dst[b] = float32(v)
		}
	}
}

// roiCornerMax is the largest of sample s's four weighted corners in src.
func roiCornerMax(s *roiSample, src []float32) float64 {
	return max(s.w[0]*float64(src[s.p[0]]), s.w[1]*float64(src[s.p[1]]),
		s.w[2]*float64(src[s.p[2]]), s.w[3]*float64(src[s.p[3]]))
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
				y := roiCoord(g.y0, g.bh, ph, iy, g.gh)
				for ix := 0; ix < g.gw; ix++ {
					dst = append(dst, bilinear(float64(y), float64(roiCoord(g.x0, g.bw, pw, ix, g.gw)), h, w))
				}
			}
		}
	}
	return dst
}

// roiCoord is the position of sample i of n in bin p along an axis starting
// at origin in bins of size bin (float32, as ONNX Runtime computes it).
func roiCoord(origin, bin float32, p, i, n int) float32 {
	return origin + float32(p)*bin + (float32(i)+0.5)*bin/float32(n)
}

// bilinear is the sampling point at (y, x): clamped to the map within one
// pixel of it, zero weight beyond (and at NaN).
func bilinear(y, x float64, h, w int) roiSample {
	oky, yl, yh, hy, ly := roiAxis(y, h)
	okx, xl, xh, hx, lx := roiAxis(x, w)
	if !oky || !okx {
		return roiSample{}
	}
	return roiSample{
		p: [4]int{yl*w + xl, yl*w + xh, yh*w + xl, yh*w + xh},
		w: [4]float64{hy * hx, hy * lx, ly * hx, ly * lx},
	}
}

// roiAxis is bilinear along one axis of size pixels: whether v is within a
// pixel of the map (not NaN), and the pixels below and above it (both the
// last at or past it) and their weights.
func roiAxis(v float64, size int) (ok bool, lo, hi int, wlo, whi float64) {
	if !(v >= -1 && v <= float64(size)) {
		return false, 0, 0, 0, 0
	}
	v = math.Max(v, 0)
	lo = int(v)
	hi = lo + 1
	if lo >= size-1 {
		lo, hi, v = size-1, size-1, float64(size-1)
	}
	l := v - float64(lo)
	return true, lo, hi, 1 - l, l
}
