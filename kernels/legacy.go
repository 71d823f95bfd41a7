package kernels

import (
	"fmt"
	"math"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// Operators as opsets 1-6 define them, for the models exported before
// opset 7 (Caffe2 and early PyTorch exports; the ONNX model zoo's opset 1-6
// classics). Each runs as its opset-7 form with the inputs reshaped the way
// the old version reads them, so the arithmetic is the same kernel's.

// LegacyBroadcastOps are the binary ops whose opset 1-6 versions broadcast
// through the broadcast and axis attributes instead of numpy's rules.
var LegacyBroadcastOps = []string{"Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less"}

// legacyAlign is the shape the second input b takes against the first, a,
// under the broadcasting of opsets 1-6. Without broadcast the shapes must be
// equal. With it, b is a single element, or its dimensions equal (or are 1
// against) a run of a's starting at axis (by default a's trailing ones), and
// b is read as if it had a's rank with ones around that run. The spec's
// text asks for equal dimensions; its backend tests (PyTorch's exports of
// x + y with y [2, 1] against x [2, 3]) also stretch those of size 1.
func legacyAlign(a, b []int, broadcast bool, axis int, hasAxis bool) ([]int, error) {
	if !broadcast {
		if !slices.Equal(a, b) {
			return nil, fmt.Errorf("shapes %v and %v differ and the broadcast attribute is not set (opset < 7)", a, b)
		}
		return b, nil
	}
	if graph.Numel(b) == 1 && len(b) <= len(a) {
		return []int{}, nil
	}
	if !hasAxis {
		axis = len(a) - len(b)
	} else if axis < 0 {
		axis += len(a)
	}
	if axis < 0 || axis+len(b) > len(a) {
		return nil, fmt.Errorf("shape %v does not broadcast to %v at axis %d (opset < 7)", b, a, axis)
	}
	out := make([]int, len(a))
	for i := range out {
		out[i] = 1
	}
	for i, d := range b {
		if d != a[axis+i] && d != 1 {
			return nil, fmt.Errorf("shape %v does not broadcast to %v at axis %d (opset < 7)", b, a, axis)
		}
		out[axis+i] = d
	}
	return out, nil
}

// legacyBroadcastKernel runs a binary op of opsets 1-6 as its opset-7 kernel
// on the second input reshaped by legacyAlign.
type legacyBroadcastKernel struct {
	k         Kernel
	broadcast bool
	axis      int
	hasAxis   bool
}

// legacyBinary makes the opset 1-6 factory of a binary op from its opset-7 one.
func legacyBinary(modern Factory) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		broadcast := a.Int("broadcast", 0) != 0
		axis := a.Int("axis", 0)
		if a.err != nil {
			return nil, a.err
		}
		k, err := modern(ni)
		if err != nil {
			return nil, err
		}
		return &legacyBroadcastKernel{k: k, broadcast: broadcast, axis: int(axis), hasAxis: ni.Node.HasAttr("axis")}, nil
	}
}

func (k *legacyBroadcastKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	shape, err := legacyAlign(in[0].Shape, in[1].Shape, k.broadcast, k.axis, k.hasAxis)
	if err != nil {
		return nil, err
	}
	b := in[1]
	if !slices.Equal(shape, b.Shape) {
		b = view(b, shape)
	}
	return k.k.Run(ctx, []*graph.Tensor{in[0], b})
}

// numpyAligned reports whether numpy's rules read the op's inputs as the
// legacy ones do (no broadcast, or the default trailing alignment), so the
// session may fuse it as an opset-7 op.
func (k *legacyBroadcastKernel) numpyAligned() bool { return !k.broadcast || !k.hasAxis }

// legacyAligned reports whether step st is a legacy broadcast that numpy's
// rules would read differently: the fusions, which broadcast by numpy's
// rules, leave it alone.
func legacyAligned(st *step) bool {
	k, ok := st.k.(*legacyBroadcastKernel)
	return ok && !k.numpyAligned()
}

// legacyPRelu is PRelu of opsets 1-6: a slope of one element is shared, and
// a 1-D slope as long as the input's channel axis (axis 1) is per channel,
// as the frameworks that exported it meant (PyTorch's PReLU); any other
// slope broadcasts as from opset 7.
func legacyPRelu(ni *NodeInfo) (Kernel, error) {
	k, err := newPRelu(ni)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, s := in[0], in[1]
		switch {
		case s.Len() == 1 && s.Rank() > 0:
			s = view(s, []int{})
		case s.Rank() == 1 && x.Rank() >= 3 && s.Shape[0] == x.Shape[1]:
			shape := make([]int, x.Rank()-1)
			for i := range shape {
				shape[i] = 1
			}
			shape[0] = s.Shape[0]
			s = view(s, shape)
		}
		return k.Run(ctx, []*graph.Tensor{x, s})
	}), nil
}

// legacyVariadic is Max, Min, Sum and Mean before opset 8: no broadcasting,
// every input of one shape.
func legacyVariadic(op string) Factory {
	modern := newVariadic(op)
	return func(ni *NodeInfo) (Kernel, error) {
		k, err := modern(ni)
		if err != nil {
			return nil, err
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			for _, t := range in {
				if t != nil && in[0] != nil && !slices.Equal(t.Shape, in[0].Shape) {
					return nil, fmt.Errorf("%s before opset 8 needs inputs of one shape, got %v and %v", op, in[0].Shape, t.Shape)
				}
			}
			return k.Run(ctx, in)
		}), nil
	}
}

// legacyTile is Tile-1: input, tiles (a scalar count) and axis (a scalar):
// tiles copies along one axis.
func legacyTile(ni *NodeInfo) (Kernel, error) {
	k, err := newTile(ni)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		tiles, err1 := WholeValues(in[1]) // float tensors in Tile-1's schema
		axis, err2 := WholeValues(in[2])
		if err := firstErr(err1, err2); err != nil {
			return nil, err
		}
		if len(tiles) != 1 || len(axis) != 1 {
			return nil, fmt.Errorf("Tile-1 needs a scalar tiles and axis, got %d and %d values", len(tiles), len(axis))
		}
		ax, err := normAxis(axis[0], in[0].Rank())
		if err != nil {
			return nil, err
		}
		reps := make([]int64, in[0].Rank())
		for i := range reps {
			reps[i] = 1
		}
		reps[ax] = tiles[0]
		return k.Run(ctx, []*graph.Tensor{in[0], graph.Int64Tensor([]int{len(reps)}, reps)})
	}), nil
}

// upsample1 is the experimental Upsample of opsets 1-6: a 4-D input, its
// height and width scaled by the height_scale and width_scale attributes;
// that is Upsample-7 with scales [1, 1, height_scale, width_scale].
func upsample1(ni *NodeInfo) (Kernel, error) {
	if ni.Node.HasAttr("scales") {
		return newResize(true)(ni)
	}
	a := attrsOf(ni.Node)
	hs, ws := a.Float("height_scale", 0), a.Float("width_scale", 0)
	if a.err != nil {
		return nil, a.err
	}
	if !ni.Node.HasAttr("height_scale") || !ni.Node.HasAttr("width_scale") {
		return nil, fmt.Errorf("Upsample-1 needs height_scale and width_scale")
	}
	node := *ni.Node // the kernel's own copy: the model keeps its attributes
	node.Attrs = append(slices.Clone(ni.Node.Attrs), graph.AttrFloatsOf("scales", 1, 1, hs, ws))
	mi := *ni
	mi.Node = &node
	k, err := newResize(true)(&mi)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		if in[0].Rank() != 4 {
			return nil, fmt.Errorf("Upsample-1 needs a 4-D input, got shape %v", in[0].Shape)
		}
		return k.Run(ctx, in[:1])
	}), nil
}

func init() {
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		Register("", op, 1, legacyVariadic(op))
	}
	Register("", "PRelu", 1, legacyPRelu)
	Register("", "Tile", 1, legacyTile)
	Register("", "Upsample", 1, upsample1)
	// The recurrent ops of opsets 1-6 differ only in attributes that say
	// which optional outputs are wanted (output_sequence); GRU-3 added
	// linear_before_reset, whose default is GRU-1's behaviour.
	Register("", "RNN", 1, newRecurrent(kindRNN))
	Register("", "GRU", 1, newRecurrent(kindGRU))
	Register("", "LSTM", 1, newRecurrent(kindLSTM))
}

// WholeValues reads a real tensor whose values are whole numbers (Tile-1's
// and Split-1's float-typed counts, or integer tensors) as int64.
func WholeValues(t *graph.Tensor) ([]int64, error) {
	v, err := t.AsFloat64()
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(v))
	for i, x := range v {
		if x != math.Trunc(x) || math.Abs(x) > 1<<62 {
			return nil, fmt.Errorf("%g is not a whole number", x)
		}
		out[i] = int64(x)
	}
	return out, nil
}
