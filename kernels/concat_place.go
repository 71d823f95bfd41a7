package kernels

import (
	"slices"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
)

// Concat in place. A Concat along an axis with only size-1 dimensions
// before it (the channels of one image: fire modules, CSP blocks, SPP,
// Inception and DenseNet blocks) copies each input into its slice of the
// output. When an input is written by a step for that Concat alone, the step
// can write it there to begin with: before the step runs, the session offers
// it that slice of the Concat's output buffer (Context.place), the kernel's
// first Empty of the output's shape takes it, and the Concat then finds the
// input in place and skips its copy.
//
// Nothing depends on a kernel taking the offer: an input that is not in its
// place (a kernel that returns another tensor, a shape that changed) is
// copied as before. The shapes come from the run before (the first run
// copies everything). The buffer is the pool's and pinned while it is in
// use: every tensor in it is counted against it (Run's aliases), so it goes
// back to the pool when the last of them, the Concat's output included, is
// done with, and a kernel that releases a tensor in it cannot free it.

// placement is a slice of a Concat's output offered to the step that
// produces one of its inputs (or the whole output, to the Concat).
type placement struct {
	shape []int
	data  []float32
	// out is the step's output the slice is for. A step with one output
	// (only) takes it with its first Empty of the shape; one with several
	// only through EmptyOutput(out, ...): an earlier output of the same
	// shape that took it (a Split's other half) lay in the Concat's buffer,
	// where the Concat then copied its input over it.
	out  int
	only bool
	// made is the tensor Context.placed made in the slice, until took
	// notes it in the run's made list (see concatRun.made).
	made *graph.Tensor
}

// concatPlan is one Concat whose inputs some steps may write in place.
type concatPlan struct {
	axis int64
	// producer is, per Concat input, the step that writes it for the Concat
	// alone, or -1: copied.
	producer []int
	// shape and ins are the output's and the inputs' shapes in the last
	// run, nil before the first run or when the axis has outer dimensions
	// over 1; offs are the inputs' offsets in the output.
	shape []int
	ins   [][]int
	offs  []int
	// offers are the placements offered in a run, reused: one per input,
	// and the whole output last.
	offers []placement
}

// planConcats finds the Concats whose inputs are written for them alone:
// float inputs computed by a step (not constants or graph inputs) that no
// other step reads, that are not graph outputs, and that a tap that may
// hold them (TapHolds) does not see; each such producer step gets the plan.
func (s *Session) planConcats() {
	if noConcatPlace {
		return
	}
	readers := map[int]int{}
	producer := map[int][2]int{} // slot -> step, output
	for i, st := range s.steps {
		for _, j := range st.in {
			if j >= 0 {
				readers[j]++
			}
		}
		for o, j := range st.out {
			if j >= 0 {
				producer[j] = [2]int{i, o}
			}
		}
	}
	for _, o := range s.outputs {
		readers[o.slot] += 2 // a graph output is never placed
	}
	names := make(map[int]string, len(s.slots))
	for name, j := range s.slots {
		names[j] = name
	}
	held := func(j int) bool { return s.tapHolds(names[j]) }
	for ci := range s.steps {
		ck, ok := s.steps[ci].k.(*concatKernel)
		if !ok {
			continue
		}
		plan := &concatPlan{axis: ck.axis}
		some := false
		for _, j := range s.steps[ci].in {
			p := -1
			if pr, ok := producer[j]; ok && j >= 0 && readers[j] == 1 && !held(j) && pr[0] < ci && s.steps[pr[0]].placeInto == nil {
				p = pr[0]
				st := &s.steps[p]
				st.placeInto, st.placeAt, st.placeOut = plan, len(plan.producer), pr[1]
				some = true
			}
			plan.producer = append(plan.producer, p)
		}
		if some {
			s.steps[ci].concat = plan
		}
	}
}

// concatRun is a run's state of the in-place Concats: each plan's buffer,
// and the tensors in it, by their data pointer. The session keeps one and
// resets it for each run, so a run allocates no maps.
type concatRun struct {
	bufs   map[*concatPlan][]float32
	alias  map[unsafe.Pointer]unsafe.Pointer // tensor data -> its buffer
	placed int                               // inputs written in place
	views  int                               // Split outputs made views (split_view.go)
	// made is the run's tensors made in the Concats' buffers, by buffer:
	// when a buffer's count falls to zero they are dead, and become the
	// pool's shells (Session.recycleLast).
	made []placedTensor
}

// placedTensor is a tensor made in a buffer (a Concat's, a view's), and
// the buffer.
type placedTensor struct {
	buf unsafe.Pointer
	t   *graph.Tensor
}

func (r *concatRun) reset() {
	clear(r.bufs)
	clear(r.alias)
	clear(r.made)
	r.made = r.made[:0]
	r.placed, r.views = 0, 0
}

// keepMade moves the tensor made for offer o of plan pl, if any, into the
// run's made list.
func (r *concatRun) keepMade(o *placement, pl *concatPlan) {
	t := o.made
	o.made = nil
	if b := r.bufs[pl]; t != nil && len(b) > 0 {
		r.made = append(r.made, placedTensor{unsafe.Pointer(&b[0]), t})
	}
}

// shells gives the pool the tensors made in Concat buffer k, whose count
// has fallen to zero.
func (r *concatRun) shells(k unsafe.Pointer, pool *bufferPool) {
	if r.alias[k] != k { // not a Concat's buffer
		return
	}
	kept := r.made[:0]
	for _, pt := range r.made {
		if pt.buf == k {
			pool.addShells(pt.t)
		} else {
			kept = append(kept, pt)
		}
	}
	clear(r.made[len(kept):])
	r.made = kept
}

// hasKey reports whether refs ever counted a tensor in buffer k: one
// recycled when its count fell to zero must not be recycled again.
func hasKey(refs map[unsafe.Pointer]int, k unsafe.Pointer) bool {
	_, ok := refs[k]
	return ok
}

// offer sets ctx.place for step st, if it writes a Concat input in place or
// is a Concat whose inputs were, allocating and pinning the Concat's buffer
// on first use in the run.
func (r *concatRun) offer(ctx *Context, st *step) {
	switch {
	case st.placeInto != nil && st.placeInto.shape != nil:
		pl := st.placeInto
		buf := r.buffer(ctx, pl)
		at, n := pl.offs[st.placeAt], graph.Numel(pl.ins[st.placeAt])
		o := &pl.offers[st.placeAt]
		o.shape, o.data = pl.ins[st.placeAt], buf[at:at+n:at+n]
		o.out, o.only = st.placeOut, len(st.out) == 1
		ctx.place.Store(o)
	case st.concat != nil && r.bufs[st.concat] != nil:
		o := &st.concat.offers[len(st.concat.offers)-1]
		o.shape, o.data = st.concat.shape, r.bufs[st.concat]
		o.out, o.only = 0, true
		ctx.place.Store(o)
	}
}

func (r *concatRun) buffer(ctx *Context, pl *concatPlan) []float32 {
	if b := r.bufs[pl]; b != nil {
		return b
	}
	n := graph.Numel(pl.shape)
	p := ctx.pool.get(4 * n)
	ctx.pool.pin(p)
	b := unsafe.Slice((*float32)(p), n)
	if r.bufs == nil {
		r.bufs, r.alias = map[*concatPlan][]float32{}, map[unsafe.Pointer]unsafe.Pointer{}
	}
	r.bufs[pl] = b
	r.alias[p] = p
	return b
}

// took notes, after step st ran with an offer, which of its outputs lie in
// a Concat's buffer; after a Concat (its inputs in vals), it keeps the
// shapes for the next run.
func (r *concatRun) took(ctx *Context, st *step, vals, outs []*graph.Tensor) {
	ctx.place.Store(nil)
	if pl := st.placeInto; pl != nil && st.placeAt < len(pl.offers) {
		r.keepMade(&pl.offers[st.placeAt], pl)
	}
	if pl := st.concat; pl != nil && len(pl.offers) > 0 {
		r.keepMade(&pl.offers[len(pl.offers)-1], pl)
	}
	if pl := st.placeInto; pl != nil && r.bufs[pl] != nil && st.placeOut < len(outs) && outs[st.placeOut] != nil {
		if d, ok := outs[st.placeOut].Data().([]float32); ok && len(d) > 0 {
			b := r.bufs[pl]
			if at := pl.offs[st.placeAt]; at < len(b) && &d[0] == &b[at] {
				r.alias[unsafe.Pointer(&d[0])] = unsafe.Pointer(&b[0])
				r.placed++
			}
		}
	}
	if pl := st.concat; pl != nil && len(outs) == 1 && outs[0] != nil {
		pl.record(st, vals, outs[0])
	}
}

// record keeps the shapes of a Concat's run (st, its inputs in vals) for
// the next run's offers, or none when the output is not float or has
// outer dimensions over 1. Unchanged shapes are kept as they are.
func (pl *concatPlan) record(st *step, vals []*graph.Tensor, out *graph.Tensor) {
	if pl.same(st, vals, out) {
		return
	}
	pl.shape, pl.ins, pl.offs = nil, nil, nil
	ax, err := normAxis(pl.axis, out.Rank())
	if err != nil || out.DType != graph.Float || graph.Numel(out.Shape[:ax]) != 1 || len(st.in) != len(pl.producer) {
		return
	}
	at := 0
	for _, j := range st.in {
		if j < 0 || vals[j] == nil {
			pl.ins, pl.offs = nil, nil
			return
		}
		pl.ins = append(pl.ins, append([]int(nil), vals[j].Shape...))
		pl.offs = append(pl.offs, at)
		at += vals[j].Len()
	}
	pl.shape = append([]int(nil), out.Shape...)
	if pl.offers == nil {
		pl.offers = make([]placement, len(pl.producer)+1)
	}
}

// same reports whether this run's shapes are the recorded ones.
func (pl *concatPlan) same(st *step, vals []*graph.Tensor, out *graph.Tensor) bool {
	if pl.shape == nil || !slices.Equal(pl.shape, out.Shape) || len(pl.ins) != len(st.in) {
		return false
	}
	for i, j := range st.in {
		if j < 0 || vals[j] == nil || !slices.Equal(pl.ins[i], vals[j].Shape) {
			return false
		}
	}
	return true
}

// key is the buffer a tensor's data belongs to: its Concat's buffer for a
// tensor in one, else its own.
func (r *concatRun) key(k unsafe.Pointer) unsafe.Pointer {
	if b, ok := r.alias[k]; ok {
		return b
	}
	return k
}

// noConcatPlace turns the in-place Concat inputs off, for the tests and
// benchmarks that compare.
var noConcatPlace = false
