package kernels

import (
	"sort"

	"github.com/onnxq/onnxq/graph"
)

// Rotary position embedding fusion: the rotate-half form that Llama-style
// exports spell out,
//
//	x1 = Slice(x, 0, D/2), x2 = Slice(x, D/2, D)     (last axis)
//	y  = x*cos + Concat(Neg(x2), x1)*sin
//
// is seven steps over tensors with rows of D (8 to 128) values, each paying
// a broadcast walk or a strided copy per row; as one step it is one pass.
// Every element is computed as the unfused ops compute it: the two products
// rounded, then their sum.

type ropeKernel struct {
	lo, hi   sliceSpec // the two Slices: x1 and x2
	axis     int64     // the Concat's axis
	fallback stepList  // the unfused steps, inputs x, cos, sin
}

// sliceSpec is a one-axis Slice with constant starts, ends and axes.
type sliceSpec struct{ start, end, axis int }

// fuseRope replaces each rotate-half pattern whose intermediates nothing else
// reads (and are neither outputs nor tapped) with one ropeKernel.
func (s *Session) fuseRope(escapes map[int]bool) {
	s.fuseMatched(escapes, func(m *normMatcher, i int) (regionKernel, []int, []int, bool) { return m.rope(i) })
}

func (k *ropeKernel) setFallback(f stepList) { k.fallback = f }

// rope matches the pattern from its Concat at step c; it returns the kernel,
// the fused step's inputs (x, cos, sin) and the steps in order.
func (m *normMatcher) rope(c int) (k *ropeKernel, ins, region []int, ok bool) {
	s := m.s
	if m.used[c] || !m.op(c, "Concat") || len(s.steps[c].in) != 2 {
		return nil, nil, nil, false
	}
	a := attrsOf(s.steps[c].node)
	k = &ropeKernel{axis: a.Int("axis", 0)}
	if a.err != nil {
		return nil, nil, nil, false
	}
	neg, lo := s.steps[c].in[0], s.steps[c].in[1]
	// Each of these steps' outputs is read only by the next one in the pattern.
	from := func(slot int, opType string, reader int) (int, bool) {
		p, ok := m.producer[slot]
		if !ok || !m.op(p, opType) || m.used[p] {
			return 0, false
		}
		r, ok := m.only(slot)
		return p, ok && r == reader
	}
	ni, ok1 := from(neg, "Neg", c)
	s1, ok2 := from(lo, "Slice", c)
	if !ok1 || !ok2 || len(s.steps[ni].in) != 1 {
		return nil, nil, nil, false
	}
	s2, ok := from(s.steps[ni].in[0], "Slice", ni)
	if !ok {
		return nil, nil, nil, false
	}
	x := s.steps[s1].in[0]
	if x < 0 || s.steps[s2].in[0] != x {
		return nil, nil, nil, false
	}
	if k.lo, ok = m.slice(s1); !ok {
		return nil, nil, nil, false
	}
	if k.hi, ok = m.slice(s2); !ok {
		return nil, nil, nil, false
	}
	// Concat(...) * sin + x * cos, each product read only by the Add.
	other := func(i, slot int) int {
		in := s.steps[i].in
		if len(in) != 2 || (in[0] == slot) == (in[1] == slot) {
			return -1
		}
		if in[0] == slot {
			return in[1]
		}
		return in[0]
	}
	mb, ok := m.only(s.steps[c].out[0])
	if !ok || !m.op(mb, "Mul") {
		return nil, nil, nil, false
	}
	sin := other(mb, s.steps[c].out[0])
	ad, ok := m.only(s.steps[mb].out[0])
	if !ok || !m.op(ad, "Add") || sin < 0 {
		return nil, nil, nil, false
	}
	ma, ok := from(other(ad, s.steps[mb].out[0]), "Mul", ad)
	if !ok {
		return nil, nil, nil, false
	}
	cos := other(ma, x)
	if cos < 0 {
		return nil, nil, nil, false
	}
	region = []int{s1, s2, ni, c, mb, ma, ad}
	seen := map[int]bool{}
	for _, j := range region {
		if m.used[j] || seen[j] {
			return nil, nil, nil, false
		}
		seen[j] = true
	}
	sort.Ints(region)
	return k, []int{x, cos, sin}, region, true
}

// slice reads a Slice of opset >= 10 along one axis with step 1, its
// starts, ends and axes constant.
func (m *normMatcher) slice(i int) (sliceSpec, bool) {
	st := m.s.steps[i]
	if st.ni.Opset < 10 || len(st.in) < 4 {
		return sliceSpec{}, false
	}
	var v [4][]int
	for j := 1; j < len(st.in) && j <= 4; j++ {
		slot := st.in[j]
		if slot < 0 || m.s.base[slot] == nil {
			return sliceSpec{}, false
		}
		vals, err := ints(m.s.base[slot])
		if err != nil || len(vals) != 1 {
			return sliceSpec{}, false
		}
		v[j-1] = vals
	}
	if v[3] != nil && v[3][0] != 1 {
		return sliceSpec{}, false
	}
	return sliceSpec{start: v[0][0], end: v[1][0], axis: v[2][0]}, true
}

// check reports whether the slice takes values [from, to) of the last axis
// of a rank-r tensor whose last dimension is d.
func (sp sliceSpec) check(r, d, from, to int) bool {
	ax, err := normAxis(int64(sp.axis), r)
	if err != nil || ax != r-1 {
		return false
	}
	start, count := sliceRange(sp.start, sp.end, 1, d)
	return start == from && count == to-from
}

func (k *ropeKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 3); err != nil {
		return nil, err
	}
	x, cos, sin := in[0], in[1], in[2]
	r := x.Rank()
	if x.DType != graph.Float || cos.DType != graph.Float || sin.DType != graph.Float || r == 0 {
		return k.fallback.runIn(ctx, in)
	}
	d := x.Shape[r-1]
	h := d / 2
	ax, err := normAxis(k.axis, r)
	if d%2 != 0 || h == 0 || err != nil || ax != r-1 || !k.lo.check(r, d, 0, h) || !k.hi.check(r, d, h, d) ||
		!sameBroadcast(cos.Shape, x.Shape) || !sameBroadcast(sin.Shape, x.Shape) {
		return k.fallback.runIn(ctx, in)
	}
	out := ctx.Float32(x.Shape)
	xd, cd, sd, od := x.Float32s(), cos.Float32s(), sin.Float32s(), out.Float32s()
	cs, ss := bcastStrides(cos.Shape, x.Shape), bcastStrides(sin.Shape, x.Shape)
	outer := x.Shape[:r-1]
	rows := graph.Numel(outer)
	// 4K values a thread: a rotation costs several ops per value (14 ns a
	// row of 8), and stories260K's keys, [1, 256, 4, 8], left on one thread
	// at 2 threads read what the other core's projection wrote (15.1 us a
	// call; split, 9.0).
	parallelFor(threadsFor(ctx, len(xd), minStreamWork), rows, func(lo, hi int) {
		// The cos and sin rows follow an odometer over the outer dimensions.
		idx := make([]int, len(outer))
		co, so := 0, 0
		for d, rest := len(outer)-1, lo; d >= 0; d-- {
			idx[d] = rest % outer[d]
			co += idx[d] * cs[d]
			so += idx[d] * ss[d]
			rest /= outer[d]
		}
		for row := lo; row < hi; row++ {
			x1, x2 := xd[row*d:row*d+h], xd[row*d+h:row*d+h+h]
			o1, o2 := od[row*d:row*d+h], od[row*d+h:row*d+h+h]
			c1, c2 := cd[co:co+h], cd[co+h:co+h+h]
			s1, s2 := sd[so:so+h], sd[so+h:so+h+h]
			for j, a := range x1 {
				b := x2[j]
				// Conversions round each product, as the separate ops do
				// (Go may otherwise fuse a*b + c*d into an FMA).
				o1[j] = float32(a*c1[j]) + float32(-b*s1[j])
				o2[j] = float32(b*c2[j]) + float32(a*s2[j])
			}
			for d := len(outer) - 1; d >= 0; d-- {
				idx[d]++
				co += cs[d]
				so += ss[d]
				if idx[d] < outer[d] {
					break
				}
				co -= idx[d] * cs[d]
				so -= idx[d] * ss[d]
				idx[d] = 0
			}
		}
	})
	return one(out), nil
}

// sameBroadcast reports whether c broadcasts to shape without changing it
// and has shape's last dimension.
func sameBroadcast(c, shape []int) bool {
	if len(c) == 0 || len(c) > len(shape) || c[len(c)-1] != shape[len(shape)-1] {
		return false
	}
	off := len(shape) - len(c)
	for i, d := range c {
		if d != 1 && d != shape[off+i] {
			return false
		}
	}
	return true
}
