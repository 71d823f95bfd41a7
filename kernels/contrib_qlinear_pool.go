package kernels

import (
	"encoding/binary"
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
		qlGlobalAverage(out, x, cl, xs, xz, ys, yz)
		return one(out), nil
	}), nil
}

// qlGlobalAverage averages each plane of x into out as MLAS does, in
// integers: the sum of the codes minus zero point x size, times x_scale /
// (y_scale * size) in float32, rounded, plus y's zero point. Codes come out
// in N, C order (the layout of a [N, C, 1...] or [N, 1..., C] output
// alike).
func qlGlobalAverage(out, x *graph.Tensor, channelsLast bool, xs float32, xz int32, ys float32, yz int32) {
	n, c, spatial, _, nStride, cStride := qlPoolLayout(x.Shape, channelsLast)
	size := graph.Numel(spatial)
	step := 1
	if channelsLast {
		step = c
	}
	scale := xs / (ys * float32(size))
	lo, hi, _ := QuantRange(x.DType)
	// int8 codes as uint8 ones 128 higher (the top bit flipped), the 128s
	// taken off the sum.
	xb, od := rawBytes(x), rawBytes(out)
	var flip byte
	shift := int64(0)
	if x.DType == graph.Int8 {
		flip, shift = 0x80, 128
	}
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			base := b*nStride + ch*cStride
			var sum int64
			if step == 1 {
				sum = sumBytes(xb[base:base+size], flip)
			} else {
				for i := 0; i < size; i++ {
					sum += int64(xb[base+i*step] ^ flip)
				}
			}
			acc := int32(sum-shift*int64(size)) - xz*int32(size)
			od[b*c+ch] = byte(qlRound(float32(acc)*scale, lo-float64(yz), hi-float64(yz)) + yz)
		}
	}
}

// sumBytes is the sum of the bytes of b, each xored with flip first: eight
// at a time in a 64-bit word (the even and odd bytes in 16-bit lanes,
// emptied before they can overflow), the rest one by one.
func sumBytes(b []byte, flip byte) int64 {
	const lanes = 0x00ff00ff00ff00ff
	f := uint64(flip) * 0x0101010101010101
	var total int64
	i := 0
	for i+8 <= len(b) {
		// 128 words add at most 2 x 128 x 255 to a 16-bit lane.
		var acc uint64
		for k := 0; k < 128 && i+8 <= len(b); k++ {
			v := binary.LittleEndian.Uint64(b[i:]) ^ f
			acc += v&lanes + (v>>8)&lanes
			i += 8
		}
		for ; acc != 0; acc >>= 16 {
			total += int64(acc & 0xffff)
		}
	}
	for ; i < len(b); i++ {
		total += int64(b[i] ^ flip)
	}
	return total
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
			qlGlobalAverage(out, x, cl, xs, xz, ys, yz)
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
		xb, od := rawBytes(x), rawBytes(out)
		outPlane := graph.Numel(outSp)
		oStride := qlPoolOutStrides(outSp, c, cl)
		// code is y for a window's sum of count values.
		code := func(sum float32, count int) byte {
			avg := float32(0)
			if count > 0 {
				avg = sum / float32(count)
			}
			return byte(qlRound(avg/ys+float32(yz), lo, hi))
		}
		parallelFor(threadsFor(ctx, out.Len()*graph.Numel(p.kernel), 1<<14), n*c, func(lo0, hi0 int) {
			st, en, pos := make([]int, len(ax)), make([]int, len(ax)), make([]int, len(ax))
			for plane := lo0; plane < hi0; plane++ {
				b, ch := plane/c, plane%c
				base := b*nStride + ch*cStride
				obase := b*c*outPlane + ch
				if !cl {
					obase = plane * outPlane
				}
				if len(ax) == 2 && !cl {
					qlAveragePlane2D(od[obase:obase+outPlane], xb[base:], &deq, ax[0], ax[1], p.countIncludePad, code)
					continue
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
							sum += deq[xb[at]]
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
					od[oi] = code(sum, count)
				}
			}
		})
		return one(out), nil
	}), nil
}

// qlAveragePlane2D is QLinearAveragePool over one NCHW plane x (rows ay.in
// of ax.in codes) into its output plane out: each window's dequantized
// values (deq) summed row by row, in the order of the general loop.
func qlAveragePlane2D(out, x []byte, deq *[256]float32, ay, ax poolNDAxis, includePad bool, code func(float32, int) byte) {
	for oy := 0; oy < ay.out; oy++ {
		sy := oy*ay.s - ay.pad
		y0, y1 := max(sy, 0), min(sy+ay.k, ay.in)
		for ox := 0; ox < ax.out; ox++ {
			sx := ox*ax.s - ax.pad
			x0, x1 := max(sx, 0), min(sx+ax.k, ax.in)
			count := max(0, y1-y0) * max(0, x1-x0)
			if includePad {
				count = ay.k * ax.k
			}
			var sum float32
			for y := y0; y < y1 && x0 < x1; y++ {
				for _, v := range x[y*ax.in+x0 : y*ax.in+x1] {
					sum += deq[v]
				}
			}
			out[oy*ax.out+ox] = code(sum, count)
		}
	}
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
