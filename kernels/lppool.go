package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// LpPool and GlobalLpPool: the p-norm of each window, (sum |x|^p)^(1/p),
// padding counting as zeros. Rare in models (some face and audio nets), so
// one window at a time, summed in float64. GlobalLpPool is a kind of the
// global pools (pool.go) with these terms.

// lpOrder reads p: a float before opset 2 (LpPool-1, GlobalLpPool-1), an
// integer from then on; 2 by default.
func lpOrder(ni *NodeInfo) (float64, error) {
	a := ni.Node.Attr("p")
	if a == nil {
		return 2, nil
	}
	var p float64
	switch a.GetType() {
	case onnxpb.AttributeProto_FLOAT:
		p = float64(a.GetF())
	case onnxpb.AttributeProto_INT:
		p = float64(a.GetI())
	default:
		return 0, fmt.Errorf("p must be a number, got a %s attribute", a.GetType())
	}
	if !(p > 0) || math.IsInf(p, 0) {
		return 0, fmt.Errorf("p must be positive, got %g", p)
	}
	return p, nil
}

// lpNorm finishes a window's sum of |x|^p.
func lpNorm(sum, p float64) float32 {
	if p == 2 {
		return float32(math.Sqrt(sum))
	}
	return float32(math.Pow(sum, 1/p))
}

// lpTerm is |v|^p.
func lpTerm(v float32, p float64) float64 {
	a := math.Abs(float64(v))
	if p == 2 {
		return a * a
	}
	return math.Pow(a, p)
}

func newLpPool(ni *NodeInfo) (Kernel, error) {
	p, err := lpOrder(ni)
	if err != nil {
		return nil, err
	}
	pp, err := readPoolParams(ni) // kernel_shape, strides, pads, auto_pad; ceil_mode and dilations (opset 18)
	if err != nil {
		return nil, err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "LpPool input"); err != nil {
			return nil, err
		}
		xs, err := as4D(x.Shape, pp.spatial)
		if err != nil {
			return nil, err
		}
		g, err := pp.geometry(xs[2], xs[3])
		if err != nil {
			return nil, err
		}
		shape := []int{xs[0], xs[1], g.oh, g.ow}
		if pp.spatial == 1 {
			shape = []int{xs[0], xs[1], g.ow}
		}
		out := ctx.Float32(shape)
		xd, od := x.Float32s(), out.Float32s()
		h, w, oh, ow := g.h, g.w, g.oh, g.ow
		parallelFor(threadsFor(ctx, len(od)*pp.kh*pp.kw, 1<<14), xs[0]*xs[1], func(lo, hi int) {
			for nc := lo; nc < hi; nc++ {
				src, dst := xd[nc*h*w:(nc+1)*h*w], od[nc*oh*ow:(nc+1)*oh*ow]
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						y0, x0 := oy*pp.sh-g.pt, ox*pp.sw-g.pl
						var sum float64
						for ki := 0; ki < pp.kh; ki++ {
							iy := y0 + ki*pp.dh
							if iy < 0 || iy >= h {
								continue
							}
							for kj := 0; kj < pp.kw; kj++ {
								if ix := x0 + kj*pp.dw; ix >= 0 && ix < w {
									sum += lpTerm(src[iy*w+ix], p)
								}
							}
						}
						dst[oy*ow+ox] = lpNorm(sum, p)
					}
				}
			}
		})
		return one(out), nil
	}), nil
}

func init() {
	Register("", "LpPool", 1, newLpPool)
	Register("", "GlobalLpPool", 1, newGlobalPool("lp"))
}
