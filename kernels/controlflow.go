package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// Control flow: If, Loop and Scan run their subgraphs as sessions of their
// own, compiled once with the node. A subgraph reads values of the enclosing
// graph by name; the session hands them to the node after its inputs
// (NodeInfo.Node.Implicit order), and the node passes each subgraph the ones
// it reads as extra graph inputs (graph.Model.SubgraphModel). Results are
// copied into the enclosing run's buffers and the subgraph's own go back to
// its session, so repeated runs allocate no more than a plain graph. Taps
// and calibration see the node's outputs, not the tensors inside its
// subgraphs (which the converter leaves in float). Loop state and branch
// results may be sequences or optionals (sequence.go).

func init() {
	Register("", "If", 1, newIf)
	Register("", "Loop", 1, newLoop)
	Register("", "Scan", 8, newScan)
}

// subgraph is one compiled subgraph and where its outer values come from.
type subgraph struct {
	s        *Session
	formal   int   // the subgraph's own inputs
	outer    []int // per extra input: its index among the node's implicit values
	names    []string
	outTypes []graph.DataType // declared output element types (float32 for half or none)
}

// compileSubgraph compiles the graph attribute attr of the node.
func compileSubgraph(ni *NodeInfo, attr string) (*subgraph, error) {
	var gp *onnxpb.GraphProto
	for _, a := range ni.Node.Attrs {
		if a.GetName() == attr {
			gp = a.G
		}
	}
	if gp == nil {
		return nil, fmt.Errorf("attribute %q (a graph) is missing", attr)
	}
	if ni.model == nil {
		return nil, fmt.Errorf("%s: subgraphs need a model to compile in", ni.Node.OpType)
	}
	m, outer, err := ni.model.SubgraphModel(gp)
	if err != nil {
		return nil, err
	}
	s, err := NewSession(m, Options{Threads: max(1, ni.threads), Packs: ni.packs})
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v", attr, gp.GetName(), err)
	}
	// Shapes declared inside a body may be looser or staler than the values
	// the loop carries (ONNX Runtime does not hold bodies to them either).
	for i := range s.inputs {
		s.inputs[i].HasShape = false
	}
	sg := &subgraph{s: s, formal: len(s.inputs) - len(outer), names: s.inputNames()}
	for _, v := range m.Graph.Outputs {
		dt := v.ElemType()
		if dt == graph.Undefined || isHalf(dt) {
			dt = graph.Float
		}
		sg.outTypes = append(sg.outTypes, dt)
	}
	at := map[string]int{}
	for i, v := range ni.Node.Implicit {
		at[v.Name] = i
	}
	for _, name := range outer {
		i, ok := at[name]
		if !ok {
			return nil, fmt.Errorf("%s reads %q, which the node does not list as an outer value", attr, name)
		}
		sg.outer = append(sg.outer, i)
	}
	return sg, nil
}

// run runs the subgraph on its formal inputs and the node's implicit values,
// and returns its outputs in order; done hands them back to the subgraph.
func (sg *subgraph) run(formal, implicit []*graph.Tensor) (outs []*graph.Tensor, done func(), err error) {
	if len(formal) != sg.formal {
		return nil, nil, fmt.Errorf("the subgraph takes %d inputs, the node gives %d", sg.formal, len(formal))
	}
	feed := make(map[string]*graph.Tensor, len(sg.names))
	for i, t := range formal {
		feed[sg.names[i]] = t
	}
	for i, j := range sg.outer {
		feed[sg.names[sg.formal+i]] = implicit[j]
	}
	res, err := sg.s.Run(feed)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range sg.s.OutputNames() {
		outs = append(outs, res[name])
	}
	return outs, func() { sg.s.Recycle(res) }, nil
}

// copyTo returns t's values in a tensor of the enclosing run (float32 for a
// half type: the enclosing session computes half-precision graphs in it).
func copyTo(ctx *Context, t *graph.Tensor) (*graph.Tensor, error) {
	if t.DType == graph.SequenceOf || t.DType == graph.OptionalOf {
		return t.Clone(), nil // their tensors live outside the pool
	}
	if isHalf(t.DType) {
		w, err := widen(t)
		if err != nil {
			return nil, err
		}
		t = w
	}
	out := ctx.Empty(t.DType, t.Shape)
	copierOf(out, t).run(0, 0, t.Len())
	return out, nil
}

// scalarTrue reads a one-element bool tensor (a condition).
func scalarTrue(t *graph.Tensor, what string) (bool, error) {
	if t.DType != graph.Bool || t.Len() != 1 {
		return false, fmt.Errorf("%s must be one bool, got %s %v", what, t.DType.Short(), t.Shape)
	}
	return t.Data().([]bool)[0], nil
}

// ifKernel runs then_branch or else_branch.
type ifKernel struct {
	then, els *subgraph
	nIn       int // the node's own inputs (the condition)
}

func newIf(ni *NodeInfo) (Kernel, error) {
	then, err := compileSubgraph(ni, "then_branch")
	if err != nil {
		return nil, err
	}
	els, err := compileSubgraph(ni, "else_branch")
	if err != nil {
		return nil, err
	}
	if len(then.s.outputs) != len(els.s.outputs) {
		return nil, fmt.Errorf("then_branch has %d outputs, else_branch %d", len(then.s.outputs), len(els.s.outputs))
	}
	if then.formal != 0 || els.formal != 0 {
		return nil, fmt.Errorf("If branches take no inputs")
	}
	return &ifKernel{then: then, els: els, nIn: len(ni.Node.Inputs)}, nil
}

func (k *ifKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if len(in) < 1 || in[0] == nil {
		return nil, fmt.Errorf("If needs its condition")
	}
	cond, err := scalarTrue(in[0], "If's condition")
	if err != nil {
		return nil, err
	}
	b := k.els
	if cond {
		b = k.then
	}
	outs, done, err := b.run(nil, in[k.nIn:])
	if err != nil {
		return nil, err
	}
	defer done()
	res := make([]*graph.Tensor, len(outs))
	for i, t := range outs {
		if res[i], err = copyTo(ctx, t); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// maxLoopIterations stops a Loop whose trip count and condition are both
// absent (a model that loops forever by the letter of the spec).
const maxLoopIterations = 1 << 31

// loopKernel runs body while the trip count and the condition allow.
type loopKernel struct {
	body *subgraph
	nIn  int // the node's own inputs: M, cond, then the initial loop state
}

func newLoop(ni *NodeInfo) (Kernel, error) {
	body, err := compileSubgraph(ni, "body")
	if err != nil {
		return nil, err
	}
	carried := len(ni.Node.Inputs) - 2
	if carried < 0 {
		return nil, fmt.Errorf("Loop takes a trip count and a condition (either may be empty) before its loop state")
	}
	if body.formal != 2+carried {
		return nil, fmt.Errorf("Loop body takes %d inputs; it must take 2 + the %d loop-carried values", body.formal, carried)
	}
	if len(body.s.outputs) < 1+carried {
		return nil, fmt.Errorf("Loop body has %d outputs; it must return the condition and %d loop-carried values", len(body.s.outputs), carried)
	}
	return &loopKernel{body: body, nIn: len(ni.Node.Inputs)}, nil
}

func (k *loopKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	carried := k.nIn - 2
	scans := len(k.body.s.outputs) - 1 - carried
	trips := int64(maxLoopIterations)
	if in[0] != nil {
		if in[0].DType != graph.Int64 || in[0].Len() != 1 {
			return nil, fmt.Errorf("Loop's trip count must be one int64, got %s %v", in[0].DType.Short(), in[0].Shape)
		}
		trips = in[0].Int64s()[0]
	}
	cond := true
	if in[1] != nil {
		var err error
		if cond, err = scalarTrue(in[1], "Loop's condition"); err != nil {
			return nil, err
		}
	}
	state := make([]*graph.Tensor, carried)
	for i := range state {
		if in[2+i] == nil {
			return nil, fmt.Errorf("Loop's loop-carried value %d is missing", i)
		}
		state[i] = in[2+i]
	}
	implicit := in[k.nIn:]
	stacked := make([]scanStack, scans)
	iter := graph.Int64Tensor([]int{}, []int64{0})
	condT, _ := graph.TensorOf(graph.Bool, []int{}, []bool{true})
	var i int64
	for ; i < trips && cond; i++ {
		iter.Int64s()[0] = i
		condT.Data().([]bool)[0] = cond
		outs, done, err := k.body.run(append([]*graph.Tensor{iter, condT}, state...), implicit)
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %v", i, err)
		}
		c, err := scalarTrue(outs[0], "Loop body's condition output")
		if err == nil && in[1] != nil { // without a condition input, the body's is ignored
			cond = c
		}
		for j := 0; err == nil && j < carried; j++ {
			old := state[j]
			if state[j], err = copyTo(ctx, outs[1+j]); err == nil && old != in[2+j] {
				recycleTemp(ctx, old) // the previous iteration's copy: nothing else holds it
			}
		}
		for j := 0; err == nil && j < scans; j++ {
			err = stacked[j].add(outs[1+carried+j])
		}
		done()
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %v", i, err)
		}
	}
	if trips == maxLoopIterations && i == trips {
		return nil, fmt.Errorf("Loop ran %d iterations without a trip count or a false condition", i)
	}
	res := make([]*graph.Tensor, 0, carried+scans)
	for j, t := range state {
		if t == in[2+j] { // no iteration ran: the initial value, in a buffer of this run
			var err error
			if t, err = copyTo(ctx, t); err != nil {
				return nil, err
			}
		}
		res = append(res, t)
	}
	for j := range stacked {
		res = append(res, stacked[j].tensor(ctx, 0, false, k.body.outTypes[1+carried+j]))
	}
	return res, nil
}

// scanStack gathers one scan output's per-iteration values.
type scanStack struct {
	dt    graph.DataType
	shape []int
	parts []*graph.Tensor
}

func (st *scanStack) add(t *graph.Tensor) error {
	if isHalf(t.DType) {
		w, err := widen(t)
		if err != nil {
			return err
		}
		t = w
	}
	if st.parts == nil {
		st.dt, st.shape = t.DType, append([]int(nil), t.Shape...)
	} else if t.DType != st.dt || !slices.Equal(t.Shape, st.shape) {
		return fmt.Errorf("a scan output changed from %s %v to %s %v between iterations", st.dt.Short(), st.shape, t.DType.Short(), t.Shape)
	}
	st.parts = append(st.parts, t.Clone())
	return nil
}

// tensor stacks the parts along axis (reversed when reverse is set); with
// no parts, an empty tensor of the declared type dt.
func (st *scanStack) tensor(ctx *Context, axis int, reverse bool, dt graph.DataType) *graph.Tensor {
	if len(st.parts) == 0 {
		return ctx.New(dt, []int{0})
	}
	n := len(st.parts)
	out := ctx.Empty(st.dt, slices.Insert(slices.Clone(st.shape), axis, n))
	parts, counts := slices.Clone(st.parts), make([]int, n)
	if reverse {
		slices.Reverse(parts)
	}
	for i := range counts {
		counts[i] = 1
	}
	joinAlong(out, parts, counts, graph.Numel(st.shape[:axis]), n, graph.Numel(st.shape[axis:]))
	return out
}

// scanKernel runs body once per slice of its scan inputs, carrying state.
// From opset 9 every input is unbatched; opset 8 puts a batch axis first on
// every state and scan input (and a sequence_lens input before them).
type scanKernel struct {
	body                *subgraph
	states, scans, outs int
	inAxes, inDirs      []int64
	outAxes, outDirs    []int64
	batched             bool // opset 8
}

func newScan(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	m := int(a.Int("num_scan_inputs", -1))
	k := &scanKernel{batched: ni.Opset < 9}
	if k.batched {
		k.inDirs = a.Ints("directions", nil)
	} else {
		k.inAxes, k.inDirs = a.Ints("scan_input_axes", nil), a.Ints("scan_input_directions", nil)
		k.outAxes, k.outDirs = a.Ints("scan_output_axes", nil), a.Ints("scan_output_directions", nil)
	}
	if a.err != nil {
		return nil, a.err
	}
	n := len(ni.Node.Inputs)
	if k.batched {
		n-- // sequence_lens
	}
	if m < 1 || m > n {
		return nil, fmt.Errorf("num_scan_inputs %d is not between 1 and the %d inputs", m, n)
	}
	body, err := compileSubgraph(ni, "body")
	if err != nil {
		return nil, err
	}
	k.body, k.states, k.scans = body, n-m, m
	k.outs = len(body.s.outputs) - k.states
	if body.formal != n || k.outs < 0 {
		return nil, fmt.Errorf("Scan body takes %d inputs and returns %d outputs; it must take the %d state and %d scan values and return the state first",
			body.formal, len(body.s.outputs), k.states, m)
	}
	for _, c := range []struct {
		name string
		v    []int64
		n    int
	}{{"scan_input_axes", k.inAxes, m}, {"scan_input_directions", k.inDirs, m}, {"scan_output_axes", k.outAxes, k.outs}, {"scan_output_directions", k.outDirs, k.outs}} {
		if c.v != nil && len(c.v) != c.n {
			return nil, fmt.Errorf("%s has %d values for %d tensors", c.name, len(c.v), c.n)
		}
	}
	for _, d := range append(slices.Clone(k.inDirs), k.outDirs...) {
		if d != 0 && d != 1 {
			return nil, fmt.Errorf("a scan direction is %d; it must be 0 (forward) or 1 (reverse)", d)
		}
	}
	return k, nil
}

func at(v []int64, i int) int64 {
	if v == nil {
		return 0
	}
	return v[i]
}

func (k *scanKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	first := 0
	if k.batched {
		first = 1
	}
	vals := in[first : first+k.states+k.scans]
	implicit := in[first+k.states+k.scans:]
	for i, t := range vals {
		if t == nil {
			return nil, fmt.Errorf("Scan input %d is missing", first+i)
		}
	}
	if !k.batched {
		states, stacks, err := k.scan(ctx, vals[:k.states], vals[k.states:], implicit)
		if err != nil {
			return nil, err
		}
		res := states
		for j := range stacks {
			r := len(stacks[j].shape) + 1
			ax, err := normAxis(at(k.outAxes, j), r)
			if err != nil {
				return nil, fmt.Errorf("scan_output_axes: %v", err)
			}
			res = append(res, stacks[j].tensor(ctx, ax, at(k.outDirs, j) == 1, k.body.outTypes[k.states+j]))
		}
		return res, nil
	}
	// Opset 8: one scan per batch entry, the results stacked on axis 0.
	batch := -1
	for i, t := range vals {
		if t.Rank() < 1+btoi(i >= k.states) {
			return nil, fmt.Errorf("Scan (opset 8) input %d has rank %d; it needs a batch axis (and a sequence axis for scan inputs)", first+i, t.Rank())
		}
		if batch >= 0 && t.Shape[0] != batch {
			return nil, fmt.Errorf("Scan (opset 8) inputs disagree on the batch size (%d and %d)", batch, t.Shape[0])
		}
		batch = t.Shape[0]
	}
	if lens := in[0]; lens != nil {
		if lens.DType != graph.Int64 || lens.Len() != batch {
			return nil, fmt.Errorf("sequence_lens must hold %d int64 values", batch)
		}
		for _, l := range lens.Int64s() {
			if int(l) != vals[k.states].Shape[1] {
				return nil, fmt.Errorf("sequence_lens %d differs from the sequence length %d; onnxq scans whole sequences only", l, vals[k.states].Shape[1])
			}
		}
	}
	per := make([][]*graph.Tensor, k.states+k.outs) // per output, per batch entry
	for b := 0; b < batch; b++ {
		sl := make([]*graph.Tensor, len(vals))
		for i, t := range vals {
			sl[i] = sliceAxis(nil, t, 0, b)
		}
		states, stacks, err := k.scan(ctx, sl[:k.states], sl[k.states:], implicit)
		if err != nil {
			return nil, err
		}
		for i, t := range states {
			per[i] = append(per[i], t)
		}
		for j := range stacks {
			per[k.states+j] = append(per[k.states+j], stacks[j].tensor(nil, 0, false, k.body.outTypes[k.states+j]))
		}
	}
	res := make([]*graph.Tensor, len(per))
	for i, parts := range per {
		var st scanStack
		for _, t := range parts {
			if err := st.add(t); err != nil {
				return nil, err
			}
		}
		res[i] = st.tensor(ctx, 0, false, k.body.outTypes[i])
	}
	return res, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scan runs the body over the scan inputs' slices (unbatched), returning
// the final state (in this run's buffers) and the scan outputs' parts.
func (k *scanKernel) scan(ctx *Context, init, xs, implicit []*graph.Tensor) ([]*graph.Tensor, []scanStack, error) {
	steps, axes := -1, make([]int, len(xs))
	for j, x := range xs {
		ax, err := normAxis(at(k.inAxes, j), x.Rank())
		if err != nil {
			return nil, nil, fmt.Errorf("scan_input_axes: %v", err)
		}
		axes[j] = ax
		if steps >= 0 && x.Shape[ax] != steps {
			return nil, nil, fmt.Errorf("scan inputs disagree on the sequence length (%d and %d)", steps, x.Shape[ax])
		}
		steps = x.Shape[ax]
	}
	state := slices.Clone(init)
	slicesNow := make([]*graph.Tensor, len(xs))
	stacks := make([]scanStack, k.outs)
	for t := 0; t < steps; t++ {
		for j, x := range xs {
			i := t
			if at(k.inDirs, j) == 1 {
				i = steps - 1 - t
			}
			slicesNow[j] = sliceAxis(slicesNow[j], x, axes[j], i)
		}
		outs, done, err := k.body.run(append(slices.Clone(state), slicesNow...), implicit)
		if err != nil {
			return nil, nil, fmt.Errorf("scan step %d: %v", t, err)
		}
		for i := 0; err == nil && i < k.states; i++ {
			state[i], err = copyTo(nil, outs[i]) // unpooled: a state may be an input of the caller
		}
		for j := 0; err == nil && j < k.outs; j++ {
			err = stacks[j].add(outs[k.states+j])
		}
		done()
		if err != nil {
			return nil, nil, fmt.Errorf("scan step %d: %v", t, err)
		}
	}
	for i, t := range state {
		c, err := copyTo(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		state[i] = c
	}
	return state, stacks, nil
}

// sliceAxis returns x's slice i along axis (that axis removed), reusing dst
// when it has the right type and size.
func sliceAxis(dst, x *graph.Tensor, axis, i int) *graph.Tensor {
	shape := slices.Delete(slices.Clone(x.Shape), axis, axis+1)
	if dst == nil || dst.DType != x.DType || !slices.Equal(dst.Shape, shape) {
		dst = graph.NewTensor(x.DType, shape)
	}
	takeAlong(dst, x, graph.Numel(x.Shape[:axis]), x.Shape[axis], graph.Numel(x.Shape[axis+1:]), i, 1)
	return dst
}
