package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// Sequence ops: lists of tensors (graph.Sequence, carried in a Tensor of
// DType graph.SequenceOf). Exporters emit them for Python lists built in a
// model (torch.split into a list, a list appended in a loop and stacked).
// Items are the sequence's own copies, outside the buffer pool: a tensor put
// into a sequence outlives the step that produced it, and the session
// recycles only pool buffers by liveness, so an item must not share one.

func init() {
	Register("", "SequenceEmpty", 11, newSequenceEmpty)
	Register("", "SequenceConstruct", 11, newSequenceConstruct)
	Register("", "SequenceInsert", 11, newSequenceInsert)
	Register("", "SequenceAt", 11, newSequenceAt)
	Register("", "SequenceErase", 11, newSequenceErase)
	Register("", "SequenceLength", 11, newSequenceLength)
	Register("", "SplitToSequence", 11, newSplitToSequence)
	Register("", "ConcatFromSequence", 11, newConcatFromSequence)
	Register("", "SequenceMap", 17, newSequenceMap)
}

// takeAlong copies slices [at, at+n) of x along an axis into dst (which
// holds exactly them): x is [outer, size, inner] around that axis.
func takeAlong(dst, x *graph.Tensor, outer, size, inner, at, n int) {
	c := copierOf(dst, x)
	for o := 0; o < outer; o++ {
		c.run(o*n*inner, (o*size+at)*inner, n*inner)
	}
}

// joinAlong lays parts one after another along an axis of out, which is
// [outer, total, inner] around it; part p holds counts[p] slices of it.
func joinAlong(out *graph.Tensor, parts []*graph.Tensor, counts []int, outer, total, inner int) {
	at := 0
	for p, t := range parts {
		n := counts[p]
		c := copierOf(out, t)
		for o := 0; o < outer; o++ {
			c.run((o*total+at)*inner, o*n*inner, n*inner)
		}
		at += n
	}
}

// seqOf reads a sequence input.
func seqOf(t *graph.Tensor, what string) (*graph.Sequence, error) {
	if t == nil {
		return nil, fmt.Errorf("%s is missing", what)
	}
	s, ok := t.Sequence()
	if !ok {
		return nil, fmt.Errorf("%s must be a sequence, got a %s tensor", what, t.DType.Short())
	}
	return s, nil
}

// seqItem is a copy of t for a sequence of element type elem (Undefined:
// any), in float32 when t is a half type (the session computes those in it).
func seqItem(t *graph.Tensor, elem graph.DataType) (*graph.Tensor, error) {
	if _, ok := t.Sequence(); ok {
		return nil, fmt.Errorf("a sequence cannot hold a sequence here")
	}
	if isHalf(t.DType) {
		w, err := widen(t)
		if err != nil {
			return nil, err
		}
		t = w
	}
	if elem != graph.Undefined && t.DType != elem {
		return nil, fmt.Errorf("a %s tensor cannot join a sequence of %s", t.DType.Short(), elem.Short())
	}
	return t.Clone(), nil
}

// position reads an optional position input: an index in [-n, n) (or
// [-n, n] where end is allowed), negative from the back; def when absent.
func position(t *graph.Tensor, n int, end bool, def int) (int, error) {
	if t == nil {
		return def, nil
	}
	v, err := ints(t)
	if err != nil || len(v) != 1 {
		return 0, fmt.Errorf("position must be one integer")
	}
	p, hi := v[0], n-1
	if end {
		hi = n
	}
	if p < -n || p > hi {
		return 0, fmt.Errorf("position %d is outside [%d, %d] for a sequence of %d", p, -n, hi, n)
	}
	if p < 0 {
		p += n
	}
	return p, nil
}

func newSequenceEmpty(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	dt := graph.DataType(a.Int("dtype", int64(graph.Float)))
	if a.err != nil {
		return nil, a.err
	}
	if isHalf(dt) {
		dt = graph.Float
	}
	return KernelFunc(func(*Context, []*graph.Tensor) ([]*graph.Tensor, error) {
		return one(graph.SequenceTensor(dt, nil)), nil
	}), nil
}

func newSequenceConstruct(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		items := make([]*graph.Tensor, len(in))
		elem := graph.Undefined
		for i, t := range in {
			it, err := seqItem(t, elem)
			if err != nil {
				return nil, err
			}
			items[i], elem = it, it.DType
		}
		return one(graph.SequenceTensor(elem, items)), nil
	}), nil
}

func newSequenceInsert(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		s, err := seqOf(in[0], "SequenceInsert's input")
		if err != nil {
			return nil, err
		}
		var pos *graph.Tensor
		if len(in) > 2 {
			pos = in[2]
		}
		at, err := position(pos, len(s.Items), true, len(s.Items))
		if err != nil {
			return nil, err
		}
		it, err := seqItem(in[1], s.Elem)
		if err != nil {
			return nil, err
		}
		return one(graph.SequenceTensor(it.DType, slices.Insert(slices.Clone(s.Items), at, it))), nil
	}), nil
}

func newSequenceAt(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		s, err := seqOf(in[0], "SequenceAt's input")
		if err != nil {
			return nil, err
		}
		if len(s.Items) == 0 {
			return nil, fmt.Errorf("SequenceAt on an empty sequence")
		}
		at, err := position(in[1], len(s.Items), false, 0)
		if err != nil {
			return nil, err
		}
		return one(s.Items[at]), nil // items are never written: no copy
	}), nil
}

func newSequenceErase(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		s, err := seqOf(in[0], "SequenceErase's input")
		if err != nil {
			return nil, err
		}
		if len(s.Items) == 0 {
			return nil, fmt.Errorf("SequenceErase on an empty sequence")
		}
		var pos *graph.Tensor
		if len(in) > 1 {
			pos = in[1]
		}
		at, err := position(pos, len(s.Items), false, len(s.Items)-1)
		if err != nil {
			return nil, err
		}
		return one(graph.SequenceTensor(s.Elem, slices.Delete(slices.Clone(s.Items), at, at+1))), nil
	}), nil
}

func newSequenceLength(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		s, err := seqOf(in[0], "SequenceLength's input")
		if err != nil {
			return nil, err
		}
		return one(graph.Int64Tensor([]int{}, []int64{int64(len(s.Items))})), nil
	}), nil
}

// newSplitToSequence splits along axis into pieces of the sizes split gives
// (a scalar: pieces of that size, the last one shorter; a list: those
// sizes), or into single slices without split, squeezed unless keepdims.
func newSplitToSequence(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis, keep := a.Int("axis", 0), a.Int("keepdims", 1) != 0
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if _, ok := x.Sequence(); ok {
			return nil, fmt.Errorf("SplitToSequence splits a tensor, not a sequence")
		}
		ax, err := normAxis(axis, x.Rank())
		if err != nil {
			return nil, err
		}
		n := x.Shape[ax]
		var sizes []int
		squeeze := false
		switch {
		case len(in) < 2 || in[1] == nil:
			for range n {
				sizes = append(sizes, 1)
			}
			squeeze = !keep
		case in[1].Rank() == 0:
			v, err := ints(in[1])
			if err != nil || v[0] <= 0 {
				return nil, fmt.Errorf("split must be a positive integer")
			}
			for at := 0; at < n; at += v[0] {
				sizes = append(sizes, min(v[0], n-at))
			}
		default:
			v, err := ints(in[1])
			if err != nil {
				return nil, err
			}
			sum := 0
			for _, s := range v {
				if s < 0 {
					return nil, fmt.Errorf("split sizes must not be negative, got %v", v)
				}
				sum += s
			}
			if sum != n {
				return nil, fmt.Errorf("split sizes %v do not add up to axis %d's %d", v, ax, n)
			}
			sizes = v
		}
		items := make([]*graph.Tensor, len(sizes))
		outer, inner := graph.Numel(x.Shape[:ax]), graph.Numel(x.Shape[ax+1:])
		at := 0
		for i, sz := range sizes {
			shape := slices.Clone(x.Shape)
			shape[ax] = sz
			t := graph.NewTensor(x.DType, shape)
			takeAlong(t, x, outer, n, inner, at, sz)
			if squeeze {
				t.Shape = slices.Delete(t.Shape, ax, ax+1)
			}
			items[i], at = t, at+sz
		}
		return one(graph.SequenceTensor(x.DType, items)), nil
	}), nil
}

// newConcatFromSequence concatenates the items along axis, or stacks them
// along a new axis (new_axis 1).
func newConcatFromSequence(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	axis, stack := a.Int("axis", 0), a.Int("new_axis", 0) != 0
	if !ni.Node.HasAttr("axis") {
		return nil, fmt.Errorf("ConcatFromSequence needs its axis attribute")
	}
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		s, err := seqOf(in[0], "ConcatFromSequence's input")
		if err != nil {
			return nil, err
		}
		if len(s.Items) == 0 {
			return nil, fmt.Errorf("ConcatFromSequence of an empty sequence")
		}
		first := s.Items[0]
		r := first.Rank()
		if stack {
			r++
		}
		ax, err := normAxis(axis, r)
		if err != nil {
			return nil, err
		}
		// Each item as [outer, size along axis, inner].
		outer := graph.Numel(first.Shape[:ax])
		inner := 1
		if !stack {
			inner = graph.Numel(first.Shape[ax+1:])
		} else {
			inner = graph.Numel(first.Shape[ax:])
		}
		total := 0
		for _, t := range s.Items {
			ok := t.DType == first.DType && t.Rank() == first.Rank()
			for d := 0; ok && d < t.Rank(); d++ {
				ok = t.Shape[d] == first.Shape[d] || !stack && d == ax
			}
			if !ok {
				return nil, fmt.Errorf("ConcatFromSequence items %s %v and %s %v do not fit along axis %d", first.DType.Short(), first.Shape, t.DType.Short(), t.Shape, axis)
			}
			if stack {
				total++
			} else {
				total += t.Shape[ax]
			}
		}
		shape := slices.Clone(first.Shape)
		if stack {
			shape = slices.Insert(shape, ax, total)
		} else {
			shape[ax] = total
		}
		counts := make([]int, len(s.Items))
		for i, t := range s.Items {
			counts[i] = 1
			if !stack {
				counts[i] = t.Shape[ax]
			}
		}
		out := ctx.Empty(first.DType, shape)
		joinAlong(out, s.Items, counts, outer, total, inner)
		return one(out), nil
	}), nil
}

// sequenceMap runs body once per position of the sequence inputs (the
// first is required; later inputs that are tensors are given whole every
// time), gathering each body output into an output sequence.
type sequenceMap struct {
	body *subgraph
	nIn  int
}

func newSequenceMap(ni *NodeInfo) (Kernel, error) {
	body, err := compileSubgraph(ni, "body")
	if err != nil {
		return nil, err
	}
	if body.formal != len(ni.Node.Inputs) {
		return nil, fmt.Errorf("SequenceMap body takes %d inputs for the node's %d", body.formal, len(ni.Node.Inputs))
	}
	return &sequenceMap{body: body, nIn: len(ni.Node.Inputs)}, nil
}

func (k *sequenceMap) Run(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	s, err := seqOf(in[0], "SequenceMap's input_sequence")
	if err != nil {
		return nil, err
	}
	n := len(s.Items)
	for i := 1; i < k.nIn; i++ {
		if o, ok := in[i].Sequence(); ok && len(o.Items) != n {
			return nil, fmt.Errorf("SequenceMap's sequences have %d and %d items", n, len(o.Items))
		}
	}
	outs := make([][]*graph.Tensor, len(k.body.s.outputs))
	args := make([]*graph.Tensor, k.nIn)
	for p := 0; p < n; p++ {
		for i := 0; i < k.nIn; i++ {
			args[i] = in[i]
			if o, ok := in[i].Sequence(); ok {
				args[i] = o.Items[p]
			}
		}
		res, done, err := k.body.run(args, in[k.nIn:])
		if err != nil {
			return nil, fmt.Errorf("item %d: %v", p, err)
		}
		for j, t := range res {
			it, err := seqItem(t, graph.Undefined)
			if err != nil {
				done()
				return nil, err
			}
			outs[j] = append(outs[j], it)
		}
		done()
	}
	res := make([]*graph.Tensor, len(outs))
	for j, items := range outs {
		res[j] = graph.SequenceTensor(k.body.outTypes[j], items)
	}
	return res, nil
}

// Optional values (opset 15; 18 lets OptionalHasElement and
// OptionalGetElement take a plain tensor or sequence too): a tensor or a
// sequence, or none, carried as graph.Optional.
func init() {
	Register("", "Optional", 15, newOptional)
	Register("", "OptionalHasElement", 15, newOptionalHasElement)
	Register("", "OptionalGetElement", 15, newOptionalGetElement)
}

func newOptional(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if len(in) == 0 || in[0] == nil {
			return one(graph.OptionalTensor(nil)), nil
		}
		return one(graph.OptionalTensor(in[0].Clone())), nil // outlives its producer's buffer
	}), nil
}

func newOptionalHasElement(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		has := len(in) > 0 && in[0] != nil
		if has {
			if o, ok := in[0].Optional(); ok {
				has = o.Value != nil
			}
		}
		t, _ := graph.TensorOf(graph.Bool, []int{}, []bool{has})
		return one(t), nil
	}), nil
}

func newOptionalGetElement(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		o, ok := in[0].Optional()
		if !ok {
			return one(in[0]), nil // a plain tensor or sequence (opset 18)
		}
		if o.Value == nil {
			return nil, fmt.Errorf("OptionalGetElement of an empty optional")
		}
		return one(o.Value), nil
	}), nil
}
