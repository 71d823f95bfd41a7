package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- com.microsoft Gelu, BiasGelu, FastGelu, QuickGelu ----
//
// The GELU forms ONNX Runtime's transformer fusions write:
//   Gelu(X)            = X * Phi(X), Phi the normal CDF (the erf form)
//   BiasGelu(A, B)     = Gelu(A + B), B one value per last-axis element
//   FastGelu(X [, b])  = the tanh approximation
//                        0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) of x = X (+ b)
//   QuickGelu(X)       = X * sigmoid(alpha X), alpha 1.702 by default

func init() {
	Register("com.microsoft", "Gelu", 1, func(*NodeInfo) (Kernel, error) {
		return biasAct("Gelu", vec.GeluErf, noBias), nil
	})
	Register("com.microsoft", "BiasGelu", 1, func(*NodeInfo) (Kernel, error) {
		return biasAct("BiasGelu", vec.GeluErf, needsBias), nil
	})
	Register("com.microsoft", "FastGelu", 1, func(*NodeInfo) (Kernel, error) {
		return biasAct("FastGelu", vec.GeluTanh, mayBias), nil
	})
	Register("com.microsoft", "QuickGelu", 1, func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		alpha := a.Float("alpha", 1.702)
		if a.err != nil {
			return nil, a.err
		}
		return biasAct("QuickGelu", func(dst, x []float32) {
			vec.MulScalar(dst, x, alpha)
			vec.Sigmoid(dst, dst)
			vec.Mul(dst, dst, x)
		}, noBias), nil
	})
}

type biasUse int

const (
	noBias    biasUse = iota // one input; f may read x after writing dst
	mayBias                  // an optional bias input
	needsBias                // a required bias input
)

// biasAct applies f to X, or to X + bias when the op takes a bias input (one
// value per element of X's last axis).
func biasAct(op string, f func(dst, x []float32), use biasUse) Kernel {
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, op+" input"); err != nil {
			return nil, err
		}
		var bias []float32
		if use != noBias && len(in) > 1 && in[1] != nil {
			b := in[1]
			if err := wantFloat(b, op+" bias"); err != nil {
				return nil, err
			}
			if x.Rank() == 0 || b.Len() != x.Shape[x.Rank()-1] {
				return nil, fmt.Errorf("%s: bias has %d values, want one per element of the input's last axis (input %v)", op, b.Len(), x.Shape)
			}
			bias = b.Float32s()
		} else if use == needsBias {
			return nil, fmt.Errorf("%s: input 1 (bias) is required", op)
		}
		out := ctx.Float32(x.Shape)
		xd, od := x.Float32s(), out.Float32s()
		if bias == nil {
			parallelFor(threadsFor(ctx, len(xd), 1<<14), len(xd)/1024+1, func(lo, hi int) {
				l, h := min(lo*1024, len(xd)), min(hi*1024, len(xd))
				f(od[l:h], xd[l:h])
			})
			return one(out), nil
		}
		cols := len(bias)
		rows := len(xd) / max(cols, 1)
		parallelFor(threadsFor(ctx, len(xd), 1<<14), rows, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				dst := od[r*cols : (r+1)*cols]
				vec.Add(dst, xd[r*cols:(r+1)*cols], bias)
				f(dst, dst)
			}
		})
		return one(out), nil
	})
}
