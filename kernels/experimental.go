package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// The experimental ops of the default domain (opsets 1-9, dropped at 10)
// that models of that time carry: ImageScaler in front of detectors and
// classifiers converted from Caffe and CoreML (Tiny YOLOv2, FER+), Affine,
// Scale, ScaledTanh and ParametricSoftplus as activations, Crop. ONNX Runtime
// still runs them; passes' upgrade-opset rewrites them into standard ops.

// newImageScaler is ImageScaler: y = scale * x + bias[c] on an NCHW image,
// one bias per channel (none: 0).
func newImageScaler(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	scale := a.Float("scale", 1)
	bias := a.Floats("bias", nil)
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := wantFloat(x, "ImageScaler input"); err != nil {
			return nil, err
		}
		if x.Rank() != 4 {
			return nil, fmt.Errorf("ImageScaler needs a 4-D NCHW input, got shape %v", x.Shape)
		}
		c, plane := x.Shape[1], x.Shape[2]*x.Shape[3]
		if bias != nil && len(bias) != c {
			return nil, fmt.Errorf("ImageScaler has %d biases for %d channels", len(bias), c)
		}
		out := ctx.Float32(x.Shape)
		xd, od := x.Float32s(), out.Float32s()
		parallelFor(threadsFor(ctx, len(xd), minStreamWork), x.Shape[0]*c, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				var b float32
				if bias != nil {
					b = bias[p%c]
				}
				vec.Affine(od[p*plane:(p+1)*plane], xd[p*plane:(p+1)*plane], scale, b)
			}
		})
		return one(out), nil
	}), nil
}

// newCrop is Crop: an NCHW image without its borders (left, top, right,
// bottom), or with scale (height, width) that window from its top-left
// border corner.
func newCrop(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	border := a.Ints("border", nil)
	scale := a.Ints("scale", nil)
	if a.err != nil {
		return nil, a.err
	}
	if len(border) != 4 {
		return nil, fmt.Errorf("Crop needs border = (left, top, right, bottom), got %v", border)
	}
	if scale != nil && len(scale) != 2 {
		return nil, fmt.Errorf("Crop scale must be (height, width), got %v", scale)
	}
	for _, v := range append(border, scale...) {
		if v < 0 {
			return nil, fmt.Errorf("Crop border %v and scale %v must not be negative", border, scale)
		}
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() != 4 {
			return nil, fmt.Errorf("Crop needs a 4-D NCHW input, got shape %v", x.Shape)
		}
		h, w := x.Shape[2], x.Shape[3]
		left, top := int(border[0]), int(border[1])
		oh, ow := h-top-int(border[3]), w-left-int(border[2])
		if scale != nil {
			oh, ow = int(scale[0]), int(scale[1])
		}
		if oh <= 0 || ow <= 0 || top+oh > h || left+ow > w {
			return nil, fmt.Errorf("Crop border %v, scale %v do not fit a %dx%d image", border, scale, h, w)
		}
		out := ctx.Empty(x.DType, []int{x.Shape[0], x.Shape[1], oh, ow}) // every element is written below
		c := copierOf(out, x)
		for p := 0; p < x.Shape[0]*x.Shape[1]; p++ {
			for r := 0; r < oh; r++ {
				c.run((p*oh+r)*ow, p*h*w+(top+r)*w+left, ow)
			}
		}
		return one(out), nil
	}), nil
}

func init() {
	Register("", "ImageScaler", 1, newImageScaler)
	Register("", "Crop", 1, newCrop)
	unaryFloat("Affine", 1, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		alpha, beta := a.Float("alpha", 1), a.Float("beta", 0)
		return func(dst, src []float32) { vec.Affine(dst, src, alpha, beta) }, nil
	})
	unaryFloat("Scale", 1, func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		scale := a.Float("scale", 1)
		return func(dst, src []float32) { vec.MulScalar(dst, src, scale) }, nil
	})
	unaryFloat("ScaledTanh", 1, scaledActivation(vec.Tanh))
	unaryFloat("ParametricSoftplus", 1, scaledActivation(vec.Softplus))
}

// scaledActivation is alpha * act(beta * x), ScaledTanh's and
// ParametricSoftplus's form (alpha and beta 1 by default).
func scaledActivation(act func(dst, x []float32)) func(*attrs, *NodeInfo) (sliceFn, error) {
	return func(a *attrs, _ *NodeInfo) (sliceFn, error) {
		alpha, beta := a.Float("alpha", 1), a.Float("beta", 1)
		return func(dst, src []float32) {
			vec.MulScalar(dst, src, beta)
			act(dst, dst)
			vec.MulScalar(dst, dst, alpha)
		}, nil
	}
}

// newConstantFill is ConstantFill: a tensor of dtype (float by default)
// filled with value, its shape the shape attribute without an input; with
// one, the input's shape, or with input_as_shape the input's values; either
// followed by extra_shape. Old PyTorch exports made RNN initial states so.
func newConstantFill(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	dt := graph.DataType(a.Int("dtype", int64(graph.Float)))
	extra := a.Ints("extra_shape", nil)
	asShape := a.Int("input_as_shape", 0) != 0
	shapeAttr := a.Ints("shape", nil)
	value := float64(a.Float("value", 0))
	if a.err != nil {
		return nil, a.err
	}
	switch dt {
	case graph.Float, graph.Double, graph.Int32, graph.Int64, graph.Int8, graph.Uint8, graph.Bool:
	default:
		return nil, fmt.Errorf("ConstantFill dtype %s is not supported", dt.Short())
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		var shape []int
		switch {
		case len(in) == 0 || in[0] == nil:
			if extra != nil || asShape {
				return nil, fmt.Errorf("ConstantFill without an input takes only the shape attribute")
			}
			for _, d := range shapeAttr {
				shape = append(shape, int(d))
			}
		case shapeAttr != nil:
			return nil, fmt.Errorf("ConstantFill with an input must not set shape")
		case asShape:
			s, err := ints(in[0])
			if err != nil {
				return nil, fmt.Errorf("ConstantFill input_as_shape: %v", err)
			}
			shape = s
		default:
			shape = append(shape, in[0].Shape...)
		}
		for _, d := range extra {
			shape = append(shape, int(d))
		}
		for _, d := range shape {
			if d < 0 {
				return nil, fmt.Errorf("ConstantFill shape %v has a negative size", shape)
			}
		}
		out := ctx.New(dt, shape)
		if err := fillConst(out, value); err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

func init() { Register("", "ConstantFill", 1, newConstantFill) }
