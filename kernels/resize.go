package kernels

import (
	"fmt"
	"math"
	"sync"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// resizeParams are Resize's (and Upsample's) attributes.
type resizeParams struct {
	mode          string // nearest, linear, cubic
	coordMode     string
	nearestMode   string
	cubicA        float64
	excludeOut    bool
	extrapolation float32
	antialias     bool
	aspectPolicy  string
	axes          []int64
	upsample      bool // Upsample, or Resize-10: scales only, asymmetric

	// An axis's taps depend only on its lengths, scale and region, the same
	// run after run: laid out once per such key (DeepLab's bilinear
	// upsamples rebuilt them at 25 KB a run).
	tapsMu sync.Mutex
	taps   map[axisTapKey]*axisTapPlan
}

// axisTapKey is what an axis's taps depend on.
type axisTapKey struct {
	inLen, outLen           int
	scale, roiStart, roiEnd float64
}

// axisTapPlan is an axis's taps and the forms resizeAxis's paths read.
type axisTapPlan struct {
	taps   [][]tap
	idx    []int // nearest: each output position's input index
	i0, i1 []int // linear: twoTaps's layout, where two is set
	w0, w1 []float64
	two    bool
}

// axisPlan returns the taps for an axis, from the cache when made before.
func (p *resizeParams) axisPlan(inLen, outLen int, scale, roiStart, roiEnd float64) *axisTapPlan {
	key := axisTapKey{inLen, outLen, scale, roiStart, roiEnd}
	p.tapsMu.Lock()
	defer p.tapsMu.Unlock()
	if t := p.taps[key]; t != nil {
		return t
	}
	t := &axisTapPlan{taps: axisTaps(p, inLen, outLen, scale, roiStart, roiEnd)}
	t.idx = make([]int, outLen)
	for j, tp := range t.taps {
		t.idx[j] = tp[0].idx
	}
	t.i0, t.i1, t.w0, t.w1, t.two = twoTaps(t.taps)
	if p.taps == nil || len(p.taps) >= 64 { // shapes that change each run: a bounded cache
		p.taps = map[axisTapKey]*axisTapPlan{}
	}
	p.taps[key] = t
	return t
}

func newResize(upsample bool) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		p := &resizeParams{
			mode:          a.String("mode", "nearest"),
			coordMode:     a.String("coordinate_transformation_mode", "half_pixel"),
			nearestMode:   a.String("nearest_mode", "round_prefer_floor"),
			cubicA:        float64(a.Float("cubic_coeff_a", -0.75)),
			excludeOut:    a.Int("exclude_outside", 0) != 0,
			extrapolation: a.Float("extrapolation_value", 0),
			antialias:     a.Int("antialias", 0) != 0,
			aspectPolicy:  a.String("keep_aspect_ratio_policy", "stretch"),
			axes:          a.Ints("axes", nil),
			upsample:      upsample || ni.Opset < 11,
		}
		attrScales := a.Floats("scales", nil)
		if a.err != nil {
			return nil, a.err
		}
		if p.mode == "bilinear" && upsample {
			p.mode = "linear"
		}
		switch p.mode {
		case "nearest", "linear", "cubic":
		default:
			return nil, fmt.Errorf("unknown mode %q", p.mode)
		}
		if p.upsample {
			p.coordMode, p.nearestMode = "asymmetric", "floor"
			if p.mode == "cubic" {
				return nil, fmt.Errorf("cubic mode needs Resize from opset 11")
			}
		}
		switch p.coordMode {
		case "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn":
		default:
			return nil, fmt.Errorf("unknown coordinate_transformation_mode %q", p.coordMode)
		}
		switch p.nearestMode {
		case "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
		default:
			return nil, fmt.Errorf("unknown nearest_mode %q", p.nearestMode)
		}
		if p.antialias && p.mode != "nearest" {
			return nil, fmt.Errorf("antialias is not supported")
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			r := x.Rank()
			// Which inputs hold what: Upsample-7 (attr), Upsample-9/Resize-10 (scales at 1),
			// Resize-11+ (roi 1, scales 2, sizes 3).
			var scales, roi []float64
			var sizes []int
			opt := func(i int) *graph.Tensor {
				if i < len(in) && in[i] != nil && in[i].Len() > 0 {
					return in[i]
				}
				return nil
			}
			switch {
			case upsample && ni.Opset < 9:
				for _, s := range attrScales {
					scales = append(scales, float64(s))
				}
			case p.upsample:
				t := opt(1)
				if t == nil {
					return nil, fmt.Errorf("scales input is required")
				}
				f, err := t.AsFloat32()
				if err != nil {
					return nil, err
				}
				for _, s := range f {
					scales = append(scales, float64(s))
				}
			default:
				if t := opt(1); t != nil {
					v, err := asFloat64s(t)
					if err != nil {
						return nil, err
					}
					roi = v
				}
				if t := opt(2); t != nil {
					f, err := t.AsFloat32()
					if err != nil {
						return nil, err
					}
					for _, s := range f {
						scales = append(scales, float64(s))
					}
				}
				if t := opt(3); t != nil {
					s, err := ints(t)
					if err != nil {
						return nil, err
					}
					sizes = s
				}
			}
			if (scales == nil) == (sizes == nil) {
				return nil, fmt.Errorf("exactly one of scales and sizes must be given")
			}
			axes := make([]int, 0, r)
			if p.axes == nil {
				for i := 0; i < r; i++ {
					axes = append(axes, i)
				}
			} else {
				for _, ax := range p.axes {
					i, err := normAxis(ax, r)
					if err != nil {
						return nil, err
					}
					axes = append(axes, i)
				}
			}
			n := len(axes)
			if (scales != nil && len(scales) != n) || (sizes != nil && len(sizes) != n) {
				return nil, fmt.Errorf("scales/sizes have %d values for %d axes", max(len(scales), len(sizes)), n)
			}
			// Per axis of x: scale and output size.
			fullScale := make([]float64, r)
			outShape := append([]int(nil), x.Shape...)
			for i := range fullScale {
				fullScale[i] = 1
			}
			fullRoi := make([]float64, 2*r)
			for i := 0; i < r; i++ {
				fullRoi[i], fullRoi[i+r] = 0, 1
			}
			if roi != nil {
				if len(roi) != 2*n {
					return nil, fmt.Errorf("roi has %d values for %d axes", len(roi), n)
				}
				for k, ax := range axes {
					fullRoi[ax], fullRoi[ax+r] = roi[k], roi[k+n]
				}
			}
			if scales != nil {
				for k, ax := range axes {
					if scales[k] <= 0 {
						return nil, fmt.Errorf("scale %v must be positive", scales[k])
					}
					fullScale[ax] = scales[k]
					length := float64(x.Shape[ax])
					if p.coordMode == "tf_crop_and_resize" {
						length *= fullRoi[ax+r] - fullRoi[ax]
					}
					outShape[ax] = int(math.Floor(length * scales[k]))
				}
			} else {
				s := make([]float64, n)
				for k, ax := range axes {
					s[k] = float64(sizes[k]) / float64(x.Shape[ax])
				}
				if p.aspectPolicy != "stretch" {
					pick := s[0]
					for _, v := range s {
						if (p.aspectPolicy == "not_larger" && v < pick) || (p.aspectPolicy == "not_smaller" && v > pick) {
							pick = v
						}
					}
					for k, ax := range axes {
						s[k] = pick
						sizes[k] = int(math.Round(pick * float64(x.Shape[ax])))
					}
				}
				for k, ax := range axes {
					fullScale[ax] = s[k]
					outShape[ax] = sizes[k]
				}
			}
			cur := x
			if cur.DType != graph.Float {
				if p.mode != "nearest" {
					return nil, fmt.Errorf("%s resize of %s is not supported", p.mode, x.DType.Short())
				}
			}
			if out := resizeNearestPlanes(ctx, x, outShape, fullScale, fullRoi, p); out != nil {
				return one(out), nil
			}
			for _, ax := range axisOrder(x.Shape, outShape) {
				if outShape[ax] == cur.Shape[ax] && fullScale[ax] == 1 && p.coordMode != "tf_crop_and_resize" {
					continue
				}
				next, err := resizeAxis(ctx, cur, ax, outShape[ax], fullScale[ax], fullRoi[ax], fullRoi[ax+r], p)
				if err != nil {
					return nil, err
				}
				if cur != x && cur.DType == graph.Float {
					ctx.Release(cur.Float32s()) // the previous axis's result, read now
				}
				cur = next
			}
			return one(cur), nil
		}), nil
	}
}

// axisOrder is the order resizeAxis takes the axes in: the last axis first
// when the others grow (an upsample), else in order. Resizing the last axis
// is a gather per element, the others blends of whole rows, so the last
// goes where it has the fewest rows: a 2x bilinear upsample of 1x64x56x56
// then gathers 56 rows a plane instead of 112. The axes are independent:
// any order computes the same interpolation, up to the float32 rounding of
// the intermediate (cubic 2x: 2.3e-7 from ORT instead of 1.7e-7).
func axisOrder(in, out []int) []int {
	r := len(in)
	order := make([]int, 0, r)
	if r > 1 && graph.Numel(out[:r-1]) > graph.Numel(in[:r-1]) {
		order = append(order, r-1)
		r--
	}
	for ax := 0; ax < r; ax++ {
		order = append(order, ax)
	}
	return order
}

// origCoord maps an output coordinate to the input coordinate per the mode. The
// spec's "length_resized" is input length x scale as a real number (equal to the
// output size when sizes are given), not the floored output size.
func origCoord(p *resizeParams, xr float64, scale float64, inLen, outLen int, roiStart, roiEnd float64) float64 {
	resized := float64(inLen) * scale
	switch p.coordMode {
	case "tf_half_pixel_for_nn":
		return (xr + 0.5) / scale
	case "half_pixel":
		return (xr+0.5)/scale - 0.5
	case "half_pixel_symmetric":
		adj := float64(outLen) / (scale * float64(inLen))
		center := float64(inLen) / 2
		offset := center * (1 - adj)
		return offset + (xr+0.5)/scale - 0.5
	case "pytorch_half_pixel":
		if resized > 1 {
			return (xr+0.5)/scale - 0.5
		}
		return 0
	case "align_corners":
		if resized == 1 {
			return 0
		}
		return xr * float64(inLen-1) / (resized - 1)
	case "tf_crop_and_resize":
		if outLen > 1 {
			return roiStart*float64(inLen-1) + xr*(roiEnd-roiStart)*float64(inLen-1)/float64(outLen-1)
		}
		return 0.5 * (roiStart + roiEnd) * float64(inLen-1)
	}
	return xr / scale // asymmetric
}

// tap is one input index and its weight; index -1 means the extrapolation value.
type tap struct {
	idx int
	w   float64
}

// axisTaps computes, for each output position of one axis, the input taps.
func axisTaps(p *resizeParams, inLen, outLen int, scale, roiStart, roiEnd float64) [][]tap {
	out := make([][]tap, outLen)
	for o := range out {
		x := origCoord(p, float64(o), scale, inLen, outLen, roiStart, roiEnd)
		if p.coordMode == "tf_crop_and_resize" && (x < 0 || x > float64(inLen-1)) {
			out[o] = []tap{{-1, 1}}
			continue
		}
		switch p.mode {
		case "nearest":
			out[o] = []tap{{nearestIdx(p, x, inLen), 1}}
		case "linear":
			x = max(0, min(float64(inLen-1), x))
			i0 := int(math.Floor(x))
			t := x - float64(i0)
			i1 := min(inLen-1, i0+1)
			out[o] = []tap{{i0, 1 - t}, {i1, t}}
		case "cubic":
			i0 := int(math.Floor(x))
			t := x - float64(i0)
			A := p.cubicA
			ws := [4]float64{
				((A*(t+1)-5*A)*(t+1)+8*A)*(t+1) - 4*A,
				((A+2)*t-(A+3))*t*t + 1,
				((A+2)*(1-t)-(A+3))*(1-t)*(1-t) + 1,
				((A*(2-t)-5*A)*(2-t)+8*A)*(2-t) - 4*A,
			}
			var taps []tap
			sum := 0.0
			for k := 0; k < 4; k++ {
				idx := i0 - 1 + k
				if p.excludeOut && (idx < 0 || idx >= inLen) {
					continue
				}
				taps = append(taps, tap{clampIdx(idx, inLen), ws[k]})
				sum += ws[k]
			}
			if p.excludeOut && sum != 0 {
				for k := range taps {
					taps[k].w /= sum
				}
			}
			out[o] = taps
		}
	}
	return out
}

// resizeNearestPlanes resizes the last two axes of x in one pass when they are
// the only ones resized, the mode is nearest and the data float32: each
// output row is gathered once through axisTaps' indices, and an output row
// whose source row is the one before's is a copy of it (YOLO's 2x upsamples:
// one pass instead of one per axis and an intermediate tensor). It returns
// nil when the resize does not fit, for the per-axis path.
func resizeNearestPlanes(ctx *Context, x *graph.Tensor, outShape []int, scale, roi []float64, p *resizeParams) *graph.Tensor {
	r := x.Rank()
	if r < 2 || x.DType != graph.Float || p.mode != "nearest" || p.coordMode == "tf_crop_and_resize" {
		return nil
	}
	for ax := 0; ax < r-2; ax++ {
		if outShape[ax] != x.Shape[ax] || scale[ax] != 1 {
			return nil
		}
	}
	// The source index of each output position of one axis, as the per-axis
	// path would take it (the identity on an axis it leaves alone).
	// One slice for both axes (axisTaps' slice a position was most of a
	// 2x upsampling's garbage).
	idx := make([]int, outShape[r-2]+outShape[r-1])
	indices := func(ax int, idx []int) []int {
		inLen, outLen := x.Shape[ax], outShape[ax]
		if outLen == inLen && scale[ax] == 1 {
			for i := range idx {
				idx[i] = i
			}
			return idx
		}
		for o := range idx {
			idx[o] = nearestIdx(p, origCoord(p, float64(o), scale[ax], inLen, outLen, roi[ax], roi[ax+r]), inLen)
		}
		return idx
	}
	h, w := x.Shape[r-2], x.Shape[r-1]
	if h == 0 || w == 0 {
		return nil // the per-axis path says which axis is empty
	}
	rows, cols := indices(r-2, idx[:outShape[r-2]]), indices(r-1, idx[outShape[r-2]:])
	double := len(cols) == 2*w // every source value written twice, side by side
	for j := 0; double && j < len(cols); j++ {
		double = cols[j] == j>>1
	}
	// Every row twice as well (the 2x upsampling of FPN and YOLO necks):
	// each input row goes to its two output rows in one pass, a plane a
	// call, where a row at a time and a copy of it read the row back
	// (survey 1x64x56x56: 1.51 of ORT's time).
	twice := double && len(rows) == 2*h
	for y := 0; twice && y < len(rows); y++ {
		twice = rows[y] == y>>1
	}
	out := ctx.Empty(graph.Float, outShape) // every element is written below
	xd, od := x.Float32s(), out.Float32s()
	oh, ow := len(rows), len(cols)
	planes := graph.Numel(outShape[:r-2])
	parallelFor(threadsFor(ctx, planes*oh*ow, 1<<15), planes, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			src, dst := xd[pl*h*w:(pl+1)*h*w], od[pl*oh*ow:(pl+1)*oh*ow]
			if twice {
				vec.Double2Rows(dst, ow, src, w, h, w)
				continue
			}
			for y, iy := range rows {
				row := dst[y*ow : (y+1)*ow]
				if y > 0 && iy == rows[y-1] {
					copy(row, dst[(y-1)*ow:y*ow])
					continue
				}
				in := src[iy*w : (iy+1)*w]
				if double {
					vec.Double2(row, in)
					continue
				}
				for j, i := range cols {
					row[j] = in[i]
				}
			}
		}
	})
	return out
}

func clampIdx(i, n int) int { return max(0, min(n-1, i)) }

// nearestIdx is the input index nearest mode takes for the input coordinate
// x of an axis of inLen.
func nearestIdx(p *resizeParams, x float64, inLen int) int {
	var i float64
	switch p.nearestMode {
	case "round_prefer_floor":
		if x-math.Floor(x) == 0.5 {
			i = math.Floor(x)
		} else {
			i = math.Round(x)
		}
	case "round_prefer_ceil":
		i = math.Round(x) // Go rounds halves away from zero: up for x >= 0
		if x < 0 && x-math.Floor(x) == 0.5 {
			i = math.Ceil(x)
		}
	case "floor":
		i = math.Floor(x)
	case "ceil":
		i = math.Ceil(x)
	}
	return clampIdx(int(i), inLen)
}

// resizeAxis resizes x along one axis.
func resizeAxis(ctx *Context, x *graph.Tensor, ax, outLen int, scale, roiStart, roiEnd float64, p *resizeParams) (*graph.Tensor, error) {
	inLen := x.Shape[ax]
	if inLen == 0 {
		return nil, fmt.Errorf("cannot resize an empty axis")
	}
	plan := p.axisPlan(inLen, outLen, scale, roiStart, roiEnd)
	taps := plan.taps
	var sb [8]int
	shape := append(sb[:0], x.Shape...)
	shape[ax] = outLen
	// From the run's pool: a fresh tensor per axis and run cost more than
	// the copies (page faults; YOLO's two 2x upsamples: 0.38 ms).
	var out *graph.Tensor
	if x.DType == graph.Float {
		out = ctx.Empty(x.DType, shape) // every element is written below
	} else {
		out = ctx.New(x.DType, shape)
	}
	outer := graph.Numel(x.Shape[:ax])
	inner := graph.Numel(x.Shape[ax+1:])
	if x.DType != graph.Float {
		c := copierOf(out, x)
		for o := 0; o < outer; o++ {
			for j, tp := range taps {
				if tp[0].idx < 0 {
					continue // extrapolation of non-float data stays zero
				}
				c.run((o*outLen+j)*inner, (o*inLen+tp[0].idx)*inner, inner)
			}
		}
		return out, nil
	}
	xd, od := x.Float32s(), out.Float32s()
	ext := p.extrapolation
	if inner == 1 && p.mode == "nearest" && p.coordMode != "tf_crop_and_resize" {
		// Nearest along the last axis: a plain gather through precomputed indices.
		idx := plan.idx
		parallelFor(threadsFor(ctx, outer*outLen, 1<<15), outer, func(lo, hi int) {
			for o := lo; o < hi; o++ {
				src := xd[o*inLen : (o+1)*inLen]
				dst := od[o*outLen : (o+1)*outLen]
				for j, i := range idx {
					dst[j] = src[i]
				}
			}
		})
		return out, nil
	}
	if plan.two && !noLinearAxis {
		linearAxis(ctx, xd, od, outer, inLen, outLen, inner, plan.i0, plan.i1, plan.w0, plan.w1)
		return out, nil
	}
	parallelFor(threadsFor(ctx, outer*outLen*inner, 1<<15), outer, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			src := xd[o*inLen*inner : (o+1)*inLen*inner]
			dst := od[o*outLen*inner : (o+1)*outLen*inner]
			for j, tp := range taps {
				row := dst[j*inner : (j+1)*inner]
				if len(tp) == 1 {
					if tp[0].idx < 0 {
						for i := range row {
							row[i] = ext
						}
					} else if inner == 1 {
						row[0] = src[tp[0].idx] // resizing the last axis: no copy call per element
					} else {
						copy(row, src[tp[0].idx*inner:(tp[0].idx+1)*inner])
					}
					continue
				}
				for i := range row {
					var s float64
					for _, t := range tp {
						s += t.w * float64(src[t.idx*inner+i])
					}
					row[i] = float32(s)
				}
			}
		}
	})
	return out, nil
}

// twoTaps lays out linear taps (two per output position, none outside
// the input) as index and weight arrays; ok is false for any other taps.
func twoTaps(taps [][]tap) (i0, i1 []int, w0, w1 []float64, ok bool) {
	n := len(taps)
	i0, i1, w0, w1 = make([]int, n), make([]int, n), make([]float64, n), make([]float64, n)
	for j, tp := range taps {
		if len(tp) != 2 || tp[0].idx < 0 || tp[1].idx < 0 {
			return nil, nil, nil, nil, false
		}
		i0[j], i1[j], w0[j], w1[j] = tp[0].idx, tp[1].idx, tp[0].w, tp[1].w
	}
	return i0, i1, w0, w1, true
}

// linearAxis is resizeAxis's general loop for two taps per output, with
// the same sums (0 + w0*a + w1*b in float64, then float32), without the
// loop over each output's taps: whole rows at once along an outer axis,
// through index arrays along the last one.
func linearAxis(ctx *Context, xd, od []float32, outer, inLen, outLen, inner int, i0, i1 []int, w0, w1 []float64) {
	parallelFor(threadsFor(ctx, outer*outLen*inner, 1<<15), outer, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			src := xd[o*inLen*inner : (o+1)*inLen*inner]
			dst := od[o*outLen*inner : (o+1)*outLen*inner]
			if inner == 1 {
				for j := range dst {
					s := 0.0
					s += w0[j] * float64(src[i0[j]])
					s += w1[j] * float64(src[i1[j]])
					dst[j] = float32(s)
				}
				continue
			}
			for j := 0; j < outLen; j++ {
				row := dst[j*inner : (j+1)*inner]
				a, b := src[i0[j]*inner:(i0[j]+1)*inner], src[i1[j]*inner:(i1[j]+1)*inner]
				vec.Lerp64(row, a, b, w0[j], w1[j]) // the scalar loop's float64 steps
			}
		}
	})
}

// noLinearAxis keeps linear resizes on the general loop, for the tests that
// compare.
var noLinearAxis = false

func init() {
	Register("", "Resize", 10, newResize(false))
	Register("", "Upsample", 7, newResize(true))
}
