package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

// ---- com.microsoft QLinearGlobalAveragePool, QLinearAveragePool ----
//
// Inputs X, x_scale, x_zero_point?, y_scale, y_zero_point?; attribute
// channels_last (NHWC input and output). Both are registered in
// contrib_qlinear.go.

// qlPoolLayout splits X's shape into batch, channels and spatial sizes, and
// gives the element strides of a batch, a channel and each spatial axis.
func qlPoolLayout(shape []int, channelsLast bool) (n, c int, spatial, sStride []int, nStride, cStride int) {
	r := len(shape)
	n = shape[0]
	if channelsLast {
		c, spatial = shape[r-1], shape[1:r-1]
	} else {
		c, spatial = shape[1], shape[2:]
	}
	sStride = make([]int, len(spatial))
	s := 1
	if channelsLast {
		s = c
	}
	for i := len(spatial) - 1; i >= 0; i-- {
		sStride[i] = s
		s *= spatial[i]
	}
	if channelsLast {
		return n, c, spatial, sStride, s, 1
	}
	return n, c, spatial, sStride, c * s, s
}

// qlPoolOutShape is X's shape with the spatial sizes replaced.
func qlPoolOutShape(shape, spatial []int, channelsLast bool) []int {
	out := append([]int(nil), shape...)
	first := 2
	if channelsLast {
		first = 1
	}
	copy(out[first:], spatial)
	return out
}

// qlPoolInputs checks a pool's X (rank 3 or more, nothing empty) and reads
// its and Y's scale and zero point.
func qlPoolInputs(op string, in []*graph.Tensor) (x *graph.Tensor, xs float32, xz int32, ys float32, yz int32, err error) {
	x, xs, xz, ys, yz, err = qlUnaryInputs(op, in, "x", "y")
	if err == nil && (x.Rank() < 3 || x.Len() == 0) {
		err = fmt.Errorf("%s: X has shape %v, want rank 3 or more (batch, channels and spatial axes) and no empty axis", op, x.Shape)
	}
	return
}

func newQLinearGlobalAveragePool(ni *NodeInfo) (Kernel, error) {
	const op = "QLinearGlobalAveragePool"
	a := attrsOf(ni.Node)
	cl := a.Int("channels_last", 0) != 0
	if a.err != nil {
		return nil, fmt.Errorf("%s: %v", op, a.err)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		x, xs, xz, ys, yz, err := qlPoolInputs(op, in)
		if err != nil {
			return nil, err
		}
		ones := make([]int, x.Rank()-2)
		for i := range ones {
			ones[i] = 1
		}
		out := ctx.Empty(x.DType, qlPoolOutShape(x.Shape, ones, cl))
		qlStore(out, qlGlobalAverage(x, cl, xs, xz, ys, yz))
		return one(out), nil
	}), nil
}

// qlGlobalAverage averages each plane as MLAS does, in integers: the sum of
// the codes minus zero point x size, times x_scale / (y_scale * size) in
// float32, rounded, plus y's zero point. Codes come out in N, C order (the
// layout of a [N, C, 1...] or [N, 1..., C] output alike).
func qlGlobalAverage(x *graph.Tensor, channelsLast bool, xs float32, xz int32, ys float32, yz int32) []int32 {
	n, c, spatial, _, nStride, cStride := qlPoolLayout(x.Shape, channelsLast)
	size := graph.Numel(spatial)
	step := 1
	if channelsLast {
		step = c
	}
	scale := xs / (ys * float32(size))
	lo, hi, _ := QuantRange(x.DType)
	xv := qlCodes(x)
	res := make([]int32, n*c)
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			acc := -xz * int32(size)
			base := b*nStride + ch*cStride
			for i := 0; i < size; i++ {
				acc += xv[base+i*step]
			}
			res[b*c+ch] = qlRound(float32(acc)*scale, lo-float64(yz), hi-float64(yz)) + yz
		}
	}
	return res
}

// newQLinearAveragePool is AveragePool between dequantize and quantize as ORT
// computes it: codes dequantized to float32, each window summed in row-major
// order and divided by its count (the whole kernel with count_include_pad,
// else the positions inside the input), then y = round(avg / y_scale + y_zp).
// A window covering the whole unpadded plane takes the integer path of
// QLinearGlobalAveragePool, as ORT's does.
func newQLinearAveragePool(ni *NodeInfo) (Kernel, error) {
	const op = "QLinearAveragePool"
	p, err := readPoolNDParams(ni)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	if len(p.kernel) == 0 {
		return nil, fmt.Errorf("%s: the kernel_shape attribute is required", op)
	}
	for _, d := range p.dilations {
		if d != 1 {
			return nil, fmt.Errorf("%s: dilations %v are not supported", op, p.dilations)
		}
	}
	a := attrsOf(ni.Node)
	cl := a.Int("channels_last", 0) != 0
	if a.err != nil {
		return nil, fmt.Errorf("%s: %v", op, a.err)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		x, xs, xz, ys, yz, err := qlPoolInputs(op, in)
		if err != nil {
			return nil, err
		}
		if x.Rank() != len(p.kernel)+2 {
			return nil, fmt.Errorf("%s: X has shape %v, want rank %d for kernel_shape %v", op, x.Shape, len(p.kernel)+2, p.kernel)
		}
		n, c, spatial, sStride, nStride, cStride := qlPoolLayout(x.Shape, cl)
		ax, err := p.axes(spatial)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", op, err)
		}
		outSp := make([]int, len(ax))
		global := true
		for i, a := range ax {
			outSp[i] = a.out
			tail := p.pads[len(ax)+i]
			if p.autoPad != "NOTSET" {
				tail = max(0, (a.out-1)*a.s+a.k-a.in-a.pad)
			}
			global = global && a.k == a.in && a.pad == 0 && tail == 0
		}
		out := ctx.Empty(x.DType, qlPoolOutShape(x.Shape, outSp, cl))
		if global {
			qlStore(out, qlGlobalAverage(x, cl, xs, xz, ys, yz))
			return one(out), nil
		}
		var deq [256]float32
		for i := range deq {
			v := int32(i)
			if x.DType == graph.Int8 {
				v = int32(int8(uint8(i)))
			}
			deq[i] = xs * float32(v-xz)
		}
		lo, hi, _ := QuantRange(x.DType)
		xv := qlCodes(x)
		outPlane := graph.Numel(outSp)
		oStride := qlPoolOutStrides(outSp, c, cl)
		res := make([]int32, out.Len())
		parallelFor(threadsFor(ctx, len(res)*graph.Numel(p.kernel), 1<<14), n*c, func(lo0, hi0 int) {
			st, en, pos := make([]int, len(ax)), make([]int, len(ax)), make([]int, len(ax))
			for plane := lo0; plane < hi0; plane++ {
				b, ch := plane/c, plane%c
				base := b*nStride + ch*cStride
				obase := b*c*outPlane + ch
				if !cl {
					obase = plane * outPlane
				}
				for o := 0; o < outPlane; o++ {
					// Window of output position o, clipped to the input.
					inside, full, rem, oi := 1, 1, o, obase
					for i := len(ax) - 1; i >= 0; i-- {
						a := ax[i]
						q := rem % a.out
						rem /= a.out
						oi += q * oStride[i]
						s := q*a.s - a.pad
						st[i], en[i] = max(s, 0), min(s+a.k, a.in)
						inside *= max(0, en[i]-st[i])
						full *= a.k
					}
					count := inside
					if p.countIncludePad {
						count = full
					}
					var sum float32
					if inside > 0 {
						copy(pos, st)
						for {
							at := base
							for i, v := range pos {
								at += v * sStride[i]
							}
							sum += deq[uint8(xv[at])]
							i := len(pos) - 1
							for ; i >= 0; i-- {
								if pos[i]++; pos[i] < en[i] {
									break
								}
								pos[i] = st[i]
							}
							if i < 0 {
								break
							}
						}
					}
					avg := float32(0)
					if count > 0 {
						avg = sum / float32(count)
					}
					res[oi] = qlRound(avg/ys+float32(yz), lo, hi)
				}
			}
		})
		qlStore(out, res)
		return one(out), nil
	}), nil
}

// qlPoolOutStrides are the output's element strides of each spatial axis.
func qlPoolOutStrides(outSp []int, c int, channelsLast bool) []int {
	st := make([]int, len(outSp))
	s := 1
	if channelsLast {
		s = c
	}
	for i := len(outSp) - 1; i >= 0; i-- {
		st[i] = s
		s *= outSp[i]
	}
	return st
}
