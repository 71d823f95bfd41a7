package kernels

import (
	"fmt"
	"math"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// The loss heads that training exports leave on a model:
// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss. Opset 13 and 22
// only widened their types, so one registration from 12 covers them.

func init() {
	Register("", "NegativeLogLikelihoodLoss", 12, newLoss(false))
	Register("", "SoftmaxCrossEntropyLoss", 12, newLoss(true))
}

// lossAttrs are the attributes both losses share.
type lossAttrs struct {
	op        string
	reduction string // none, sum or mean
	ignore    int64  // the target value that contributes nothing
	hasIgnore bool   // ignore_index has no default: unset ignores no target
	softmax   bool   // SoftmaxCrossEntropyLoss: log_softmax the scores first
	logProb   bool   // SoftmaxCrossEntropyLoss's optional log_prob output is wanted
}

func newLoss(softmax bool) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		la := &lossAttrs{
			op:        ni.Node.OpType,
			reduction: a.String("reduction", "mean"),
			ignore:    a.Int("ignore_index", 0),
			hasIgnore: ni.Node.HasAttr("ignore_index"),
			softmax:   softmax,
		}
		if a.err != nil {
			return nil, a.err
		}
		switch la.reduction {
		case "none", "sum", "mean":
		default:
			return nil, fmt.Errorf("%s reduction %q is not none, sum or mean", la.op, la.reduction)
		}
		la.logProb = softmax && len(ni.Node.Outputs) > 1 && ni.Node.Outputs[1] != nil
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 2); err != nil {
				return nil, fmt.Errorf("%s: %v", la.op, err)
			}
			var w *graph.Tensor
			if len(in) > 2 {
				w = in[2]
			}
			switch in[0].DType {
			case graph.Float:
				return runLoss[float32](ctx, la, in[0], in[1], w)
			case graph.Double:
				return runLoss[float64](ctx, la, in[0], in[1], w)
			}
			return nil, fmt.Errorf("%s input must be float32 or float64, got %s", la.op, in[0].DType.Short())
		}), nil
	}
}

// runLoss computes the per-element loss -x[n, t, d...] * weight[t] over the
// target's shape, then reduces it.
func runLoss[T float32 | float64](ctx *Context, la *lossAttrs, x, target, weight *graph.Tensor) ([]*graph.Tensor, error) {
	if x.Rank() < 2 {
		return nil, fmt.Errorf("%s input must be [N, C, d1, ...], got shape %v", la.op, x.Shape)
	}
	n, c, inner := x.Shape[0], x.Shape[1], graph.Numel(x.Shape[2:])
	lossShape := append([]int{n}, x.Shape[2:]...)
	if !slices.Equal(target.Shape, lossShape) {
		return nil, fmt.Errorf("%s target shape %v does not fit input shape %v (want %v)", la.op, target.Shape, x.Shape, lossShape)
	}
	labels, err := lossLabels(la.op, target)
	if err != nil {
		return nil, err
	}
	var wd []T
	if weight != nil {
		if weight.DType != x.DType || weight.Rank() != 1 || weight.Shape[0] != c {
			return nil, fmt.Errorf("%s weight must be %s [%d], got %s %v", la.op, x.DType.Short(), c, weight.DType.Short(), weight.Shape)
		}
		wd = graph.Elems[T](weight)
	}
	for k, t := range labels {
		if (t < 0 || t >= int64(c)) && !(la.hasIgnore && t == la.ignore) {
			return nil, fmt.Errorf("%s target %d at index %d is outside [0, %d) and is not ignore_index", la.op, t, k, c)
		}
	}
	xd := graph.Elems[T](x)
	var logp *graph.Tensor
	if la.softmax {
		lp := make([]T, len(xd)) // scratch unless log_prob is an output
		if la.logProb {
			logp = ctx.Empty(x.DType, x.Shape)
			lp = graph.Elems[T](logp)
		}
		logSoftmaxAxis1(xd, lp, n, c, inner)
		xd = lp
	}

	loss := make([]float64, n*inner)
	var sum, wsum float64
	for i := 0; i < n; i++ {
		for d := 0; d < inner; d++ {
			k := i*inner + d
			t := labels[k]
			if la.hasIgnore && t == la.ignore {
				continue // an ignored target contributes 0 to the loss and to the weights
			}
			w := 1.0
			if wd != nil {
				w = float64(wd[t])
			}
			loss[k] = -float64(xd[(i*c+int(t))*inner+d]) * w
			sum += loss[k]
			wsum += w
		}
	}

	var out *graph.Tensor
	switch la.reduction {
	case "none":
		out = ctx.Empty(x.DType, lossShape)
		od := graph.Elems[T](out)
		for i, v := range loss {
			od[i] = T(v)
		}
	case "sum":
		out = lossScalar[T](ctx, x.DType, sum)
	case "mean":
		// the weighted mean: all targets ignored gives 0/0 = NaN, as in PyTorch
		out = lossScalar[T](ctx, x.DType, sum/wsum)
	}
	if la.logProb {
		return []*graph.Tensor{out, logp}, nil
	}
	return one(out), nil
}

func lossScalar[T float32 | float64](ctx *Context, dt graph.DataType, v float64) *graph.Tensor {
	t := ctx.Empty(dt, nil)
	graph.Elems[T](t)[0] = T(v)
	return t
}

// lossLabels reads an int32 or int64 target as int64.
func lossLabels(op string, t *graph.Tensor) ([]int64, error) {
	switch d := t.Data().(type) {
	case []int64:
		return d, nil
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s target must be int32 or int64, got %s", op, t.DType.Short())
}

// logSoftmaxAxis1 writes log(softmax(x)) along axis 1 of an [n, c, inner]
// view, subtracting the maximum first so exp cannot overflow.
func logSoftmaxAxis1[T float32 | float64](x, out []T, n, c, inner int) {
	for i := 0; i < n; i++ {
		for d := 0; d < inner; d++ {
			base := i*c*inner + d
			m := math.Inf(-1)
			for j := 0; j < c; j++ {
				m = math.Max(m, float64(x[base+j*inner]))
			}
			var s float64
			for j := 0; j < c; j++ {
				s += math.Exp(float64(x[base+j*inner]) - m)
			}
			lse := m + math.Log(s)
			for j := 0; j < c; j++ {
				out[base+j*inner] = T(float64(x[base+j*inner]) - lse)
			}
		}
	}
}
