package kernels

import (
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// Branch lanes: independent branches of a graph run at once, one per core.
//
// A model of many small operators (Inception's blocks: 45 convolutions of
// 4-10 us on 11x11 and 5x5 maps) gains little from splitting each operator
// over two threads: a split costs a hand-off and the reads of rows the
// other core wrote, about as much as such an operator's half. Where the
// steps between two points of the run fall into chains that read nothing of
// one another (the branches of an Inception block before their Concat, the
// pools of an SPP, a detector's heads), each core can instead run whole
// chains, one thread each, with nothing to hand over until the end.
//
// planLanes finds such regions among consecutive steps; the first runs of
// the session try the regions both ways, run by run, and keep the faster
// (laneChoice: whether lanes win depends on the operators' sizes and on
// the machine, so it is measured, not guessed). The bits are the same
// either way: every kernel gives the same bits at any thread count.
//
// In a region run in lanes, each lane has a Context of its own (one thread,
// the session's buffer pool, its own placement); the session's bookkeeping
// (the Concat placements offered before, the buffer counts, frees, taps and
// profile after) runs on the calling thread in step order, as it would
// step by step, so a buffer a step frees in the region goes back to the
// pool only when the region ends.

// laneRegion is a run of consecutive steps [first, end) that splits into
// independent chains (comps: each chain's steps in order).
type laneRegion struct {
	first, end int
	comps      [][]int
	// cost is each chain's time in the runs step by step (the least
	// seen), and order the chains by cost, the costliest first (in step
	// order before a run has measured them): the lanes take them in that
	// order.
	cost  []time.Duration
	order []int
}

// laneChoice is a session's choice between its regions in lanes and step
// by step: whole runs, not regions, are timed each way, since a lane
// leaves its outputs in its core's cache, and the steps after the region
// pay for that (ShuffleNet's units: their regions alone ran faster in
// lanes, the runs slower).
type laneChoice struct {
	// trials holds the run times of the trial runs, [0] step by step,
	// [1] in lanes; warm is set after the first run in lanes (unrecorded:
	// its buffers were new to the pool, page faults); decided once both
	// have laneTrials, on telling the choice.
	trials        [2][]time.Duration
	costed        bool // a run step by step gave the chains' costs
	warm, decided bool
	on            bool
}

// laneTrials is how many runs each way decide (their medians), laneEarly
// after how many a clean split decides; laneWin is how much faster the
// lanes must be to be kept.
const (
	laneTrials = 7
	laneEarly  = 4
	laneWin    = 0.95
)

// noLanes turns branch lanes off, for the tests and benchmarks that compare;
// forceLanes runs every region in lanes from the first run.
var noLanes, forceLanes = false, false

// laneStep is what a step run in a lane leaves for the bookkeeping after.
type laneStep struct {
	outs   []*graph.Tensor
	err    error
	t0, t1 time.Time
	seat   int
	place  *placement
	viewed []viewOf
}

// planLanes finds the regions: walking the steps in order, a region grows
// while its steps form two or more chains. A step that reads chains of the
// region joins them into one; one that would join them all (a Concat of
// every branch) ends the region before it. While the region is a single
// chain, a step that reads it moves the region's start past it: those
// steps run one after another anyway.
func (s *Session) planLanes() {
	s.regionAt = nil
	if s.opts.Threads < 2 || parallel.Workers() < 2 || s.opts.Tap != nil {
		return
	}
	producer := map[int]int{} // slot -> step
	for i, st := range s.steps {
		for _, j := range st.out {
			if j >= 0 {
				producer[j] = i
			}
		}
	}
	var regions []*laneRegion
	first := 0
	comp := map[int]int{} // step -> chain id, for the steps in the region
	parent := []int{}     // union-find over chain ids
	find := func(c int) int {
		for parent[c] != c {
			parent[c] = parent[parent[c]]
			c = parent[c]
		}
		return c
	}
	chains := func() int {
		n := 0
		for c := range parent {
			if find(c) == c {
				n++
			}
		}
		return n
	}
	closeAt := func(end int) {
		if end-first >= 2 && chains() >= 2 {
			r := &laneRegion{first: first, end: end}
			ids := map[int]int{} // chain id -> index in comps (and order, until costs)
			for i := first; i < end; i++ {
				c := find(comp[i])
				k, ok := ids[c]
				if !ok {
					k = len(r.comps)
					ids[c] = k
					r.comps = append(r.comps, nil)
					r.order = append(r.order, k)
				}
				r.comps[k] = append(r.comps[k], i)
			}
			regions = append(regions, r)
		}
		first = end
		clear(comp)
		parent = parent[:0]
	}
	for i, st := range s.steps {
		if st.k == nil || laneBarrier(st) {
			closeAt(i)
			first = i + 1
			continue
		}
		read := map[int]bool{}
		for _, j := range st.in {
			if p, ok := producer[j]; ok && j >= 0 && p >= first && p < i {
				read[find(comp[p])] = true
			}
		}
		if n := chains(); len(read) > 0 && (n == 1 || len(read) == n) {
			// The region is one chain that this step continues (it runs
			// before this step in any case), or this step joins every
			// chain: a new region starts here.
			closeAt(i)
			clear(read)
		}
		c := len(parent)
		parent = append(parent, c)
		for r := range read {
			parent[find(r)] = c
		}
		comp[i] = c
	}
	closeAt(len(s.steps))
	if len(regions) == 0 {
		return
	}
	s.regionAt = make([]*laneRegion, len(s.steps))
	for _, r := range regions {
		s.regionAt[r.first] = r
	}
	s.laneSteps = make([]laneStep, len(s.steps))
}

// laneBarrier reports whether a step must run by itself: control flow,
// which runs subgraphs of its own.
func laneBarrier(st step) bool {
	switch st.node.OpType {
	case "If", "Loop", "Scan", "SequenceMap":
		return true
	}
	return false
}

// useLanes tells whether this run takes the regions in lanes: the first
// run step by step (the chains' costs), one in lanes (warm-up), then the
// trial runs alternate, then the choice holds.
func (c *laneChoice) useLanes() bool {
	switch {
	case noLanes:
		return false
	case forceLanes:
		return true
	case c.decided:
		return c.on
	case !c.costed:
		return false
	case !c.warm:
		return true
	}
	return len(c.trials[1]) < len(c.trials[0])
}

// record adds a run's time d, made in lanes or not, and decides once both
// ways have laneTrials, or sooner when the answer is already plain: after
// the first run, step by step, if saving (the most the lanes could take
// off that run, from the chains' costs) is under what a win needs; after
// laneEarly runs each way, if every run one way beat every run the other
// (by laneWin for the lanes).
func (c *laneChoice) record(lanes bool, d, saving time.Duration) {
	switch {
	case c.decided || noLanes || forceLanes:
		return
	case !lanes:
		if !c.costed && float64(saving) < (1-laneWin)*float64(d) {
			c.decide(false)
			return
		}
		if c.costed {
			c.trials[0] = append(c.trials[0], d)
		}
		c.costed = true
	case !c.warm:
		c.warm = true
	default:
		c.trials[1] = append(c.trials[1], d)
	}
	seq, ln := c.trials[0], c.trials[1]
	switch {
	case len(seq) >= laneTrials && len(ln) >= laneTrials:
		c.decide(float64(medianDur(ln)) < laneWin*float64(medianDur(seq)))
	case len(seq) >= laneEarly && len(seq) == len(ln):
		// Each way's runs interleave with the other's, so a drift of the
		// machine falls on both.
		switch {
		case float64(slices.Max(ln)) < laneWin*float64(slices.Min(seq)):
			c.decide(true)
		case float64(slices.Min(ln)) >= laneWin*float64(slices.Max(seq)):
			c.decide(false)
		}
	}
}

func (c *laneChoice) decide(on bool) {
	c.decided, c.on = true, on
	c.trials = [2][]time.Duration{}
}

// saving is the most that running the region in lanes on two seats could
// take off its time step by step: the chains' total less the longer of
// the costliest chain and half the total.
func (r *laneRegion) saving() time.Duration {
	var sum, most time.Duration
	for _, c := range r.cost {
		sum += c
		most = max(most, c)
	}
	return sum - max(most, (sum+1)/2)
}

// costs keeps each chain's time from a sequential run of the region (its
// steps' start and end times in ls), the fastest seen per chain, and orders
// the chains by it.
func (r *laneRegion) costs(ls []laneStep) {
	if r.cost == nil {
		r.cost = make([]time.Duration, len(r.comps))
		for c := range r.cost {
			r.cost[c] = -1
		}
	}
	for c, steps := range r.comps {
		var d time.Duration
		for _, i := range steps {
			d += ls[i].t1.Sub(ls[i].t0)
		}
		if r.cost[c] < 0 || d < r.cost[c] {
			r.cost[c] = d
		}
	}
	r.order = r.order[:0]
	for c := range r.comps {
		r.order = append(r.order, c)
	}
	slices.SortStableFunc(r.order, func(a, b int) int { return int(r.cost[b] - r.cost[a]) })
}

func medianDur(v []time.Duration) time.Duration {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// runLanes runs region r's chains on up to two seats, each seat taking the
// next chain, costliest first, until none is left; a seat the pool does
// not staff leaves its chains to the caller. Each step's outputs go into
// vals at once (the chain's next steps read them); the rest is left in
// s.laneSteps for the bookkeeping.
func (s *Session) runLanes(r *laneRegion, vals []*graph.Tensor) {
	var next atomic.Int64
	ls := s.laneSteps
	parallel.ForSeat(2, 2, func(seat, _ int) {
		ctx := &s.laneCtx[seat]
		for {
			k := int(next.Add(1)) - 1
			if k >= len(r.order) {
				return
			}
			for _, i := range r.comps[r.order[k]] {
				st := &s.steps[i]
				l := &ls[i]
				l.seat = seat + 1
				if l.place != nil {
					ctx.place.Store(l.place)
				}
				ctx.views, ctx.viewed = st.views, ctx.viewed[:0]
				l.t0 = time.Now()
				l.outs, l.err = s.runStep(st, vals, ctx)
				l.t1 = time.Now()
				ctx.place.Store(nil)
				ctx.views = nil
				if len(ctx.viewed) > 0 {
					l.viewed = append(l.viewed[:0], ctx.viewed...)
				}
				clear(ctx.viewed)
				if l.err != nil {
					return // the chain stops; the bookkeeping reports it
				}
				for j, t := range l.outs {
					if j < len(st.out) && st.out[j] >= 0 {
						vals[st.out[j]] = t
					}
				}
			}
		}
	})
}

// runRegion runs region r, in lanes or step by step, with the bookkeeping
// of runOne for each step.
func (s *Session) runRegion(r *laneRegion, lanes bool, vals []*graph.Tensor, refs map[unsafe.Pointer]int, cr *concatRun) error {
	ls := s.laneSteps
	if !lanes {
		timed := !s.lanes.decided // the chains' costs matter only until the choice
		for i := r.first; i < r.end; i++ {
			if timed {
				ls[i].t0 = time.Now()
			}
			if err := s.runOne(i, vals, refs, cr); err != nil {
				return err
			}
			if timed {
				ls[i].t1 = time.Now()
			}
		}
		if timed {
			r.costs(ls)
		}
		return nil
	}
	// The placements, in step order, before any step runs: offering one
	// may take a Concat's buffer from the pool.
	for i := r.first; i < r.end; i++ {
		ls[i] = laneStep{viewed: ls[i].viewed[:0]}
		if st := &s.steps[i]; st.placeInto != nil || st.concat != nil {
			cr.offer(&s.ctx, st)
			ls[i].place = s.ctx.place.Swap(nil)
		}
	}
	s.runLanes(r, vals)
	var first error
	for i := r.first; i < r.end; i++ {
		st, l := &s.steps[i], &ls[i]
		if first == nil {
			first = l.err
		}
		if first != nil {
			continue // the steps after an error are not counted, as step by step
		}
		if len(l.viewed) > 0 {
			cr.aliasViews(l.viewed)
		}
		if s.prof != nil {
			s.prof.step(i, l.t0, l.t1, l.seat, false, l.outs)
		}
		if st.placeInto != nil || st.concat != nil { // as runOne
			cr.took(&s.ctx, st, vals, l.outs)
		}
		s.after(st, l.outs, vals, refs, cr)
	}
	for i := r.first; i < r.end; i++ { // holds no tensor past the run
		clear(ls[i].viewed)
		ls[i].outs, ls[i].place = nil, nil
	}
	return first
}

// Settling is how many more runs the session's first-run trials take at
// most (the choice of threads step by step, then of branch lanes; 0 at one
// thread, or once made): a timing loop that wants the steady state runs
// that many first.
func (s *Session) Settling() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.lanes
	n := s.threads.settling()
	if s.regionAt == nil || c.decided || noLanes || forceLanes {
		return n
	}
	n += 2*laneTrials - len(c.trials[0]) - len(c.trials[1])
	if !c.costed {
		n++
	}
	if !c.warm {
		n++
	}
	return n
}
