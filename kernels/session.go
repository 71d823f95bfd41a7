package kernels

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/fpenv"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// Options tune a Session.
type Options struct {
	// Threads is how many goroutines kernels may use; 0 means all cores.
	Threads int
	// Tap, when set, sees every graph input and every tensor a node produces, once
	// per run, in execution order (not sequence or optional values). The tensor is valid only during the call: copy
	// what you keep, and do not modify it.
	Tap func(name string, t *graph.Tensor)
	// TapOnly, when set, limits Tap to these tensors, and
	// keeps elementwise fusion on around them: a tapped tensor is always
	// materialized. Without it, Tap turns fusion off to see every tensor.
	TapOnly map[string]bool
	// NoFusion runs every node by itself.
	NoFusion bool
	// TapHolds lets Tap keep a tensor past its return, to read it on another
	// goroutine while the run goes on: the session then recycles the tensor's
	// buffer only after Release(t), which Tap's owner must call once for every
	// tensor Tap saw.
	TapHolds bool
	// Profile records how long every step of every run takes (see
	// Session.Profile); off, it costs one branch per step.
	Profile bool
	// KeepSubnormals computes with subnormal floats as IEEE 754 does. By
	// default the kernels flush them to zero (package fpenv: an x86
	// instruction on a subnormal takes a microcode assist, and a few of them
	// in a layer's input made it 8x slower); results then differ only by
	// less than 2^-126 in magnitude.
	KeepSubnormals bool
	// Pool, when set, is where the runs take and return their
	// intermediate buffers, shared with every session made with the same
	// Pool; by default each session has a pool of its own. Sessions run
	// one after another on one model's pieces (sensitivity analysis runs
	// hundreds of suffix sessions, each once per sample) then keep one set
	// of buffers instead of one set each. Runs of sessions that share a
	// pool may overlap: a buffer one of them still uses is then left to the
	// garbage collector rather than reused.
	Pool *BufferPool
	// Packs, when set, shares packed weights with every session made with
	// the same cache: sessions of variants of one model (sensitivity,
	// tune) then pack each weight once (see PackCache: no weight may be
	// changed in place while the cache is used).
	Packs *PackCache
}

// BufferPool is the memory sessions reuse for their intermediate tensors
// (see Options.Pool).
type BufferPool struct{ p *bufferPool }

// NewBufferPool returns an empty pool for Options.Pool.
func NewBufferPool() *BufferPool { return &BufferPool{p: newBufferPool()} }

// Session is a graph compiled for repeated runs: kernels resolved, constants
// decoded and folded, weights packed, and a free plan that drops each
// intermediate after its last reader. One Run at a time per Session; separate
// Sessions may run in parallel.
type Session struct {
	steps   []step
	inputs  []InputSpec
	outputs []outputRef
	base    []*graph.Tensor // slot values known before any run (constants)
	folded  []foldedValue   // constants computed at compile time, shown to the tap
	slots   map[string]int
	opts    Options
	ctx     Context
	mu      sync.Mutex
	// noRegions: the last run offered the pool's workers no loop (see Run).
	noRegions bool

	// With TapHolds: how many Release calls each tapped buffer still awaits,
	// and the buffers a run dropped while held, recycled by the last Release.
	holdMu  sync.Mutex
	holds   map[unsafe.Pointer]int
	dropped map[unsafe.Pointer]bool

	// lent: pool buffers the last Run returned as outputs, which Recycle may
	// hand back; the next Run forgets those it did not get back.
	lent map[unsafe.Pointer]bool

	prof *profiler // with Options.Profile

	half *halfIO // float16/bfloat16 graph inputs and outputs (halfgraph.go)

	concats concatRun // the in-place Concats' state in the last run (concat_place.go)

	// A run's slot values and buffer reference counts, kept from run to run
	// (cleared after each): a loop over a model then allocates little per
	// run, and the garbage a run leaves is what makes the heap grow into
	// fresh pages, each a page fault at its first touch (ResNet-20: 2-3 a
	// run for its first 500 runs, 10-15 us each on the 2-vCPU VM).
	vals []*graph.Tensor
	refs map[unsafe.Pointer]int

	// Branch lanes (lanes.go): the region starting at each step, nil where
	// none does (and with no regions at all); what steps run in a lane
	// leave for the bookkeeping; the lanes' contexts.
	regionAt  []*laneRegion
	laneSteps []laneStep
	laneCtx   [2]Context
	lanes     laneChoice

	// The steps' choice between the session's threads and one
	// (stepthreads.go).
	threads threadChoice
}

// InputSpec is a graph input the caller must (or may) provide.
type InputSpec struct {
	Name  string
	DType graph.DataType
	// Dims is the declared shape: -1 where a dimension is unknown or symbolic.
	Dims []int64
	// Rank is false when the model does not declare the input's shape.
	HasShape bool
	// Optional inputs have a default (an initializer of the same name).
	Optional bool
	slot     int
}

type outputRef struct {
	name string
	slot int
}

type foldedValue struct {
	name string
	slot int
}

type step struct {
	node *graph.Node
	ni   *NodeInfo
	k    Kernel
	in   []int // slot per input, -1 for omitted
	out  []int // slot per output, -1 for omitted
	free []int // slots whose last reader is this step

	// placeInto is the Concat whose input placeAt this step's output
	// placeOut is, written in place (concat_place.go); concat is set on a
	// Concat with such inputs.
	placeInto         *concatPlan
	placeAt, placeOut int
	concat            *concatPlan
	// views marks the outputs that may be views of the input (split_view.go).
	views []bool
	// args holds the input tensors while the step runs (a slice made per
	// step and run was an eighth of a small model's allocations); cleared
	// after, so that it keeps nothing alive.
	args []*graph.Tensor
}

// NewSession compiles the model's main graph. It only reads the model, so
// several sessions may be compiled from one model at once (for a model loaded with
// lazy external data, call Materialize on its tensors first).
func NewSession(m *graph.Model, opts Options) (*Session, error) {
	// A float16/bfloat16 model runs as its float32 lowering (halfgraph.go).
	m, half, err := lowerHalf(m)
	if err != nil {
		return nil, err
	}
	g := m.Graph
	if err := g.Validate(); err != nil {
		return nil, err
	}
	nodes, err := g.TopoOrder()
	if err != nil {
		return nil, err
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.GOMAXPROCS(0)
	}
	// Constant nodes run below, in the mode the runs use.
	defer flushSubnormals(opts)()
	s := &Session{slots: map[string]int{}, opts: opts, ctx: Context{Threads: opts.Threads}, half: half}
	// A pool shared between sessions, or one whose session has taps, keeps
	// each request to its class (see poolReach).
	var pool *bufferPool
	if opts.Pool != nil {
		pool = opts.Pool.p
	} else {
		pool = newBufferPool()
		if opts.Tap == nil {
			pool.reach = poolReach
		}
	}
	slot := func(v *graph.Value) int {
		if v == nil {
			return -1
		}
		if i, ok := s.slots[v.Name]; ok {
			return i
		}
		s.slots[v.Name] = len(s.base)
		s.base = append(s.base, nil)
		return s.slots[v.Name]
	}
	for _, v := range g.Initializers {
		if err := v.Const.Materialize(); err != nil {
			return nil, err
		}
		s.base[slot(v)] = v.Const
	}
	for _, v := range g.Inputs {
		spec := InputSpec{Name: v.Name, DType: v.ElemType(), Optional: v.Const != nil, slot: slot(v)}
		if dims, ok := v.Shape(); ok {
			spec.HasShape = true
			for _, d := range dims {
				if d.Known && d.Param == "" {
					spec.Dims = append(spec.Dims, d.Value)
				} else {
					spec.Dims = append(spec.Dims, -1)
				}
			}
		}
		s.inputs = append(s.inputs, spec)
	}
	s.half.declareInputs(s.inputs)
	var errs []error
	for _, n := range nodes {
		opset := m.OpsetVersion(n.Domain)
		f, err := lookup(n.Domain, n.OpType, opset)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %v", n, err))
			continue
		}
		ni := &NodeInfo{Node: n, Opset: opset, Dir: m.Dir, model: m, threads: opts.Threads, packs: opts.Packs}
		st := step{node: n, ni: ni}
		allConst := true
		// The values a node's subgraphs read from this graph (If, Loop,
		// Scan) come after its inputs: liveness keeps them until the node
		// runs, and the kernel finds them in that order (n.Implicit).
		for _, v := range slices.Concat(n.Inputs, n.Implicit) {
			i := slot(v)
			st.in = append(st.in, i)
			var c *graph.Tensor
			if i >= 0 {
				c = s.base[i]
				if c == nil {
					allConst = false
				}
			}
			ni.Consts = append(ni.Consts, c)
		}
		for _, v := range n.Outputs {
			st.out = append(st.out, slot(v))
		}
		k, err := f(ni)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %v", n, err))
			continue
		}
		st.k = k
		// A node whose inputs are all constants runs once, now.
		if allConst && !isGraphInputSlot(s, st.in) {
			outs, err := s.runStep(&st, s.base, &s.ctx)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for j, t := range outs {
				if st.out[j] >= 0 && t != nil {
					s.base[st.out[j]] = t
					s.folded = append(s.folded, foldedValue{n.Outputs[j].Name, st.out[j]})
				}
			}
			continue
		}
		s.steps = append(s.steps, st)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, v := range g.Outputs {
		s.outputs = append(s.outputs, outputRef{v.Name, slot(v)})
	}
	var orig []step // the steps before fusion, to name fused ones after their nodes
	if opts.Profile {
		for _, st := range s.steps {
			st.in, st.out = slices.Clone(st.in), slices.Clone(st.out) // fusion rewrites out in place
			orig = append(orig, st)
		}
	}
	if (opts.Tap == nil || opts.TapOnly != nil) && !opts.NoFusion {
		tapped := map[int]bool{}
		for name := range opts.TapOnly {
			if i, ok := s.slots[name]; ok {
				tapped[i] = true
			}
		}
		s.fuseRegions(g, tapped)
		seen := maps.Clone(tapped)
		for _, o := range s.outputs {
			seen[o.slot] = true
		}
		s.fuseResiduals(seen)
		s.fuseStemPools(seen)
	}
	s.planFrees()
	s.planConcats()
	s.planViews()
	s.planLanes()
	if opts.Threads >= 2 && parallel.Workers() >= 2 {
		s.threads.phase = threadsWarm
	}
	for i := range s.laneCtx {
		s.laneCtx[i].Threads, s.laneCtx[i].pool, s.laneCtx[i].lane = 1, pool, true
	}
	if opts.Profile {
		s.prof = &profiler{steps: nameSteps(orig, s.steps)}
	}
	// The pool is used by runs only: compile-time (folded) results stay unpooled.
	s.ctx.pool = pool
	return s, nil
}

// isGraphInputSlot reports whether any slot is a graph input: an input that has an
// initializer default may be overridden at run time, so it is not a constant.
func isGraphInputSlot(s *Session, slots []int) bool {
	for _, in := range s.inputs {
		for _, i := range slots {
			if i == in.slot {
				return true
			}
		}
	}
	return false
}

// planFrees marks, for every intermediate, the step after which nothing reads it.
func (s *Session) planFrees() {
	last := map[int]int{}
	for i, st := range s.steps {
		for _, j := range st.in {
			if j >= 0 {
				last[j] = i
			}
		}
		for _, j := range st.out {
			if j >= 0 {
				if _, ok := last[j]; !ok {
					last[j] = i // produced but never read: free right away
				}
			}
		}
	}
	keep := map[int]bool{}
	for _, o := range s.outputs {
		keep[o.slot] = true
	}
	for j, i := range last {
		if !keep[j] && s.base[j] == nil {
			s.steps[i].free = append(s.steps[i].free, j)
		}
	}
}

// Inputs describes the inputs Run expects.
func (s *Session) Inputs() []InputSpec { return s.inputs }

// OutputNames lists the graph outputs in order.
func (s *Session) OutputNames() []string {
	out := make([]string, len(s.outputs))
	for i, o := range s.outputs {
		out[i] = o.name
	}
	return out
}

// flushSubnormals holds the calling goroutine's OS thread and turns on its
// flush-to-zero mode unless opts keep subnormals (the thread's mode is what
// the arithmetic reads, and the worker pool's seats adopt it); the returned
// func restores both.
func flushSubnormals(opts Options) func() {
	if opts.KeepSubnormals || !fpenv.Supported {
		return func() {}
	}
	runtime.LockOSThread()
	prev := fpenv.Flush()
	return func() {
		fpenv.Restore(prev)
		runtime.UnlockOSThread()
	}
}

// Run executes the graph on the named inputs and returns the graph outputs by name.
func (s *Session) Run(inputs map[string]*graph.Tensor) (map[string]*graph.Tensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.threads.begin(len(s.steps))
	if s.ctx.Threads > 1 && s.threads.mode != modeNarrow && !s.noRegions {
		// The worker parked if the caller paused between runs (over
		// 2 ms); woken now, its wake-up overlaps the run's start instead
		// of the first parallel step's (DenseNet's first 3 steps at 2
		// threads, a 1-thread session's run between: 201 -> 174 us).
		// Not when the last run offered the workers nothing (a model of
		// tiny ops: a recommender's 20 us run): woken for nothing, the
		// worker spun on the other CPU through every run, and a machine
		// with other work (ORT's own spinning threads, in benchort) then
		// took the caller's CPU now and then (dlrm at 2 threads 1.5x its
		// 1-thread time in some runs).
		parallel.Warm(s.ctx.Threads)
	}
	regions0, _ := parallel.Regions()
	defer flushSubnormals(s.opts)()
	if len(s.vals) < len(s.base) {
		s.vals = make([]*graph.Tensor, len(s.base))
	}
	vals := s.vals[:len(s.base)]
	copy(vals, s.base)
	defer clear(vals) // no tensor stays reachable from the session
	found := 0
	for _, in := range s.inputs {
		t, ok := inputs[in.Name]
		if !ok {
			if in.Optional {
				continue
			}
			return nil, fmt.Errorf("input %q is missing", in.Name)
		}
		found++
		t, err := s.half.input(in, t) // checks t; widens a half input
		if err != nil {
			return nil, err
		}
		vals[in.slot] = t
		s.tap(in.Name, t)
	}
	if found != len(inputs) { // a name that is not a graph input
		for name := range inputs {
			if !slices.ContainsFunc(s.inputs, func(in InputSpec) bool { return in.Name == name }) {
				return nil, fmt.Errorf("the model has no input %q (inputs: %s)", name, strings.Join(s.inputNames(), ", "))
			}
		}
	}
	for _, f := range s.folded {
		s.tap(f.name, vals[f.slot])
	}
	// Buffers that belong to the caller or to the model are never recycled:
	// the pool takes back only its own. What is still out when the run ends
	// (the outputs, or everything after an error) is left to the caller and
	// the garbage collector; the outputs are lent until the next Run, and
	// forgotten now: one fed back as an input is the caller's.
	s.ctx.pool.forget(s.lent)
	s.lent = nil
	defer s.disownLeftovers()
	if s.prof != nil {
		defer s.prof.endRun(s.prof.beginRun())
	}
	if s.refs == nil {
		s.refs = map[unsafe.Pointer]int{}
	}
	refs := s.refs
	defer clear(refs)
	cr := &s.concats
	cr.reset()
	defer s.ctx.place.Store(nil)
	settled := s.threads.settled() // the lanes' trials wait for the steps' choice
	lanes := s.regionAt != nil && settled && s.lanes.useLanes()
	t0 := time.Now()
	for i := 0; i < len(s.steps); i++ {
		if s.regionAt != nil && s.regionAt[i] != nil {
			r := s.regionAt[i]
			if err := s.runRegion(r, lanes, vals, refs, cr); err != nil {
				return nil, err
			}
			i = r.end - 1
			continue
		}
		if err := s.runOne(i, vals, refs, cr); err != nil {
			return nil, err
		}
	}
	d := time.Since(t0)
	s.threads.end(d)
	regions1, _ := parallel.Regions()
	s.noRegions = regions1 == regions0
	if s.regionAt != nil && !s.lanes.decided && settled {
		var saving time.Duration // only the costing run's is read
		for _, r := range s.regionAt {
			if r != nil && r.cost != nil && !s.lanes.costed {
				saving += r.saving()
			}
		}
		s.lanes.record(lanes, d, saving)
	}
	res := make(map[string]*graph.Tensor, len(s.outputs))
	var converted []unsafe.Pointer
	for _, o := range s.outputs {
		if vals[o.slot] == nil {
			return nil, fmt.Errorf("output %q was not produced", o.name)
		}
		res[o.name] = s.half.output(o.name, vals[o.slot])
		k, ok := bufKey(vals[o.slot])
		switch {
		case !ok:
		case res[o.name] == vals[o.slot]:
			if s.lent == nil {
				s.lent = map[unsafe.Pointer]bool{}
			}
			s.lent[k] = true
		default:
			converted = append(converted, k)
		}
	}
	// A half output is a converted copy: its float32 buffer goes back to
	// the pool (left out, it was a fresh buffer every run), unless another
	// output hands the same buffer out as it is.
	for _, k := range converted {
		if !s.lent[k] {
			s.recycle(k)
		}
	}
	return res, nil
}

// runOne runs step i and its bookkeeping.
func (s *Session) runOne(i int, vals []*graph.Tensor, refs map[unsafe.Pointer]int, cr *concatRun) error {
	st := &s.steps[i]
	var t0 time.Time
	if s.prof != nil || s.threads.timing {
		t0 = time.Now()
	}
	placing := st.placeInto != nil || st.concat != nil
	if placing {
		cr.offer(&s.ctx, st)
	}
	s.ctx.views, s.ctx.viewed = st.views, s.ctx.viewed[:0]
	wide, one := s.ctx.Threads, s.threads.narrowAt(i)
	if one {
		s.ctx.Threads = 1
	}
	outs, err := s.runStep(st, vals, &s.ctx)
	s.ctx.Threads = wide
	if s.threads.timing {
		s.threads.step(i, time.Since(t0))
	}
	s.ctx.views = nil
	if err == nil && len(s.ctx.viewed) > 0 {
		cr.aliasViews(s.ctx.viewed)
	}
	clear(s.ctx.viewed) // holds no caller's input past the run
	if s.prof != nil {
		s.prof.step(i, t0, time.Now(), 0, one, outs)
	}
	if err != nil {
		return err
	}
	if placing {
		cr.took(&s.ctx, st, vals, outs)
	}
	s.after(st, outs, vals, refs, cr)
	return nil
}

// after does a step's bookkeeping once its outputs are in: they go into
// vals and are counted against their buffers and tapped; the buffers of
// outputs nothing reads and of the values this step read last go back to
// the pool.
func (s *Session) after(st *step, outs, vals []*graph.Tensor, refs map[unsafe.Pointer]int, cr *concatRun) {
	for j, t := range outs {
		if j < len(st.out) && st.out[j] >= 0 {
			vals[st.out[j]] = t
			if k, ok := bufKey(t); ok {
				refs[cr.key(k)]++
			}
			if t != nil {
				s.tap(st.node.Outputs[j].Name, t)
			}
		}
	}
	// An output the graph does not use (an omitted optional output,
	// which a kernel may compute anyway: an LSTM's Y_h and Y_c) goes
	// back to the pool now, unless a value in use shares its buffer:
	// left out, it was a new buffer every run.
	for j, t := range outs {
		if j < len(st.out) && st.out[j] >= 0 {
			continue
		}
		if k, ok := bufKey(t); ok && refs[cr.key(k)] == 0 {
			s.recycle(cr.key(k))
		}
	}
	for _, j := range st.free {
		if k, ok := bufKey(vals[j]); ok {
			k = cr.key(k)
			refs[k]--
			if refs[k] == 0 {
				s.recycleLast(k)
			}
		}
		vals[j] = nil
	}
	// A Concat that did not take its buffer (its shape changed) leaves
	// it to the tensors still in it, or to the pool when there are none.
	if b := cr.bufs[st.concat]; b != nil {
		if k := unsafe.Pointer(&b[0]); !hasKey(refs, k) {
			s.recycle(k)
		}
		delete(cr.bufs, st.concat)
	}
}

func (s *Session) runStep(st *step, vals []*graph.Tensor, ctx *Context) (outs []*graph.Tensor, err error) {
	if cap(st.args) < len(st.in) {
		st.args = make([]*graph.Tensor, len(st.in))
	}
	in := st.args[:len(st.in)]
	defer clear(in)
	for i, j := range st.in {
		if j >= 0 {
			in[i] = vals[j]
			if in[i] == nil {
				return nil, fmt.Errorf("node %s: input %q has no value", st.node, slices.Concat(st.node.Inputs, st.node.Implicit)[i].Name)
			}
		}
	}
	// A kernel that indexes out of range on malformed data must not take the
	// process down: report it as this node's error.
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("node %s: kernel failed: %v", st.node, r)
		}
	}()
	outs, err = st.k.Run(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("node %s: %v", st.node, err)
	}
	return outs, nil
}

func (s *Session) inputNames() []string {
	var out []string
	for _, in := range s.inputs {
		out = append(out, in.Name)
	}
	return out
}

// check compares a provided tensor with the declared input type.
func (in InputSpec) check(t *graph.Tensor) error {
	if in.DType != graph.Undefined && t.DType != in.DType {
		return fmt.Errorf("input %q: expected %s, got %s", in.Name, in.DType.Short(), t.DType.Short())
	}
	if !in.HasShape {
		return nil
	}
	ok := len(t.Shape) == len(in.Dims)
	for i := 0; ok && i < len(in.Dims); i++ {
		ok = in.Dims[i] < 0 || in.Dims[i] == int64(t.Shape[i])
	}
	if !ok {
		return fmt.Errorf("input %q: expected shape %s, got %v", in.Name, graph.FormatDims(in.Dims), t.Shape)
	}
	return nil
}

// epilogueKernel is a kernel that can run a fused elementwise program on its
// output while it is still its own (a Conv followed by its BN-as-Mul/Add and
// activation). withEpilogue returns nil when the program does not fit.
type epilogueKernel interface {
	withEpilogue(p *ewProgram) Kernel
}

// activations builds the in-place form of the unary elementwise ops a region can fuse.
var activations = map[string]func(ni *NodeInfo) (sliceFn, error){}

// tap hands a tensor to Options.Tap when it asked for it.
func (s *Session) tap(name string, t *graph.Tensor) {
	if t.DType == graph.SequenceOf || t.DType == graph.OptionalOf {
		return // taps see tensors: observers, compare and shape passes read data and shapes
	}
	if s.opts.Tap != nil && (s.opts.TapOnly == nil || s.opts.TapOnly[name]) {
		if s.opts.TapHolds {
			if k, ok := bufKey(t); ok {
				s.holdMu.Lock()
				if s.holds == nil {
					s.holds, s.dropped = map[unsafe.Pointer]int{}, map[unsafe.Pointer]bool{}
				}
				s.holds[k]++
				s.holdMu.Unlock()
			}
		}
		s.opts.Tap(name, t)
	}
}

// recycle returns a buffer the run is done with to the pool, or leaves it to
// the last Release when the tap still holds it.
func (s *Session) recycle(k unsafe.Pointer) {
	s.ctx.pool.unpin(k) // a Concat's buffer: nothing in it is in use now
	if s.opts.TapHolds {
		s.holdMu.Lock()
		defer s.holdMu.Unlock()
		if s.holds[k] > 0 {
			s.dropped[k] = true
			return
		}
	}
	s.ctx.pool.put(k)
}

// recycleLast is recycle for a buffer whose last value a step has just
// stopped using: no slot holds a tensor on it now, so the tensor the pool
// made on it is dead too and may hold the next one the pool makes
// (bufferPool.putShell). Not with a tap, which may keep tensors it was
// shown.
func (s *Session) recycleLast(k unsafe.Pointer) {
	if s.opts.Tap != nil || noShells {
		s.recycle(k)
		return
	}
	s.ctx.pool.unpin(k)
	s.ctx.pool.putShell(k)
	s.concats.shells(k, s.ctx.pool)
}

// noShells turns the reuse of dead tensors' structs off, for the tests
// that compare.
var noShells = false

// disownLeftovers ends a run: the pool forgets every buffer still out except
// those dropped while the tap holds them, which the last Release recycles.
func (s *Session) disownLeftovers() {
	keep := s.lent // read only, unless the tap's dropped buffers join it
	if s.opts.TapHolds {
		keep = maps.Clone(s.lent)
		s.holdMu.Lock()
		if keep == nil {
			keep = map[unsafe.Pointer]bool{}
		}
		maps.Copy(keep, s.dropped)
		s.holdMu.Unlock()
	}
	s.ctx.pool.disown(keep)
}

// Recycle hands the outputs of the last Run back to the session, for the next
// Run to reuse their memory: a caller that runs a model in a loop and is done
// with each run's outputs before the next (calibration, timing) then
// allocates nothing per run. The tensors must not be used afterwards. Tensors
// that are not such outputs are ignored.
func (s *Session) Recycle(outputs map[string]*graph.Tensor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// In the graph's output order, not the map's: the pool hands out the
	// most recently freed buffer, and the same order each run keeps its
	// buffers the same.
	for _, o := range s.outputs {
		if k, ok := bufKey(outputs[o.name]); ok && s.lent[k] {
			delete(s.lent, k)
			s.recycle(k)
		}
	}
}

// Release ends the hold Tap had on t (with Options.TapHolds); it may be
// called from any goroutine, also after the run that produced t returned.
func (s *Session) Release(t *graph.Tensor) {
	k, ok := bufKey(t)
	if !ok || !s.opts.TapHolds {
		return
	}
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	switch n := s.holds[k]; {
	case n > 1:
		s.holds[k] = n - 1
	case n == 1:
		delete(s.holds, k)
		if s.dropped[k] {
			delete(s.dropped, k)
			s.ctx.pool.put(k)
		}
	}
}
