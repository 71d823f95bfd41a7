package kernels

import (
	"fmt"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/igemm"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// ConvInteger and QLinearConv on igemm (the CPU's VNNI), for one group:
// the convolution transposed, out^T[pixel][oc] = sum over k of
// rows[pixel][k] x W^T[k][oc], with the input's codes as the unsigned rows
// igemm broadcasts and the weights as its packed signed B. Each pixel's
// row is its kh x kw window of the input laid out channels last, so a tap
// is C contiguous bytes (one copy); the padding holds the input's zero
// point, which the zero-point expansion (intMatMul.runB8) takes off as it
// does every other code. The result is transposed back to channels first.

// convB8Weights are constant weights packed for igemm: W^T with K in (ki,
// kj, c) order, and the zero points as igemm's signed codes see them.
type convB8Weights struct {
	w  *graph.Tensor
	p  *igemm.PackedB
	zb []int32
}

// packConvB8 packs weights w [m, c, kh, kw] (8-bit) and their zero points.
func packConvB8(w, wzp *graph.Tensor, m, c, kh, kw int) (*convB8Weights, error) {
	shift, flip := int32(0), int8(0)
	if w.DType == graph.Uint8 {
		shift, flip = -128, -128 // uint8 codes less 128, as int8: the top bit flipped
	}
	zb, err := codeZeroPoints(w, wzp, m, shift)
	if err != nil {
		return nil, err
	}
	k := kh * kw * c
	bt := make([]int8, k*m)
	wb := rawBytes(w)
	raw := unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(wb))), len(wb))
	for oc := range m {
		for ci := range c {
			for t := range kh * kw {
				bt[(t*c+ci)*m+oc] = raw[(oc*c+ci)*kh*kw+t] ^ flip
			}
		}
	}
	return &convB8Weights{w: w, p: igemm.PackB(k, m, bt, m), zb: zb}, nil
}

// rawBytes views an int8 or uint8 tensor's codes as bytes.
func rawBytes(t *graph.Tensor) []uint8 {
	if d, ok := t.Data().([]uint8); ok {
		return d
	}
	d := t.Data().([]int8)
	return unsafe.Slice((*uint8)(unsafe.Pointer(unsafe.SliceData(d))), len(d))
}

// intConvB8 is intConv for one group on igemm; cw holds the weights packed
// when they are constants (else nil: packed here), addBias (nil or one a
// channel) is added to every sum.
func intConvB8(ctx *Context, g convGeom, n, m int, x, w, xzp, wzp *graph.Tensor, cw *convB8Weights, addBias []int32, shape []int) (*graph.Tensor, error) {
	c, kh, kw := g.c, g.kh, g.kw
	if cw == nil || cw.w != w {
		var err error
		if cw, err = packConvB8(w, wzp, m, c, kh, kw); err != nil {
			return nil, fmt.Errorf("w: %v", err)
		}
	}
	flip, shift := uint8(0), int32(0)
	if x.DType == graph.Int8 {
		flip, shift = 0x80, 128 // int8 codes plus 128, as uint8
	}
	zs, err := codeZeroPoints(x, xzp, 1, shift)
	if err != nil {
		return nil, fmt.Errorf("x: %v", err)
	}
	za := zs[0]
	// The input channels last, padded with the zero point's code on every
	// side a window reaches.
	hp := max(g.h+g.pt, (g.oh-1)*g.sh+(kh-1)*g.dh+1)
	wp := max(g.w+g.pl, (g.ow-1)*g.sw+(kw-1)*g.dw+1)
	k, pix := kh*kw*c, g.oh*g.ow
	padded := ctx.Empty(graph.Uint8, []int{hp * wp * c})
	defer recycleTemp(ctx, padded)
	xp := graph.Elems[uint8](padded)
	// A 1x1 window of stride 1 without padding: the channels-last image is
	// the rows; other windows lay their rows out in rows.
	rows, direct := xp, kh == 1 && kw == 1 && g.sh == 1 && g.sw == 1 && hp == g.h && wp == g.w
	if !direct {
		rowsT := ctx.Empty(graph.Uint8, []int{pix * k})
		defer recycleTemp(ctx, rowsT)
		rows = graph.Elems[uint8](rowsT)
	}
	accT := ctx.Scratch(pix * m) // out^T, int32 in float32's room (moved, never computed on)
	defer ctx.Release(accT)
	acc := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(accT))), len(accT))
	xb := rawBytes(x)
	out := ctx.Empty(graph.Int32, shape)
	od := graph.Elems[int32](out)
	zp := newZPExpansion(k, []int32{za}, cw.zb, cw.p.ColSums, addBias)
	threads := 1
	if ctx != nil {
		threads = ctx.Threads
	}
	for b := range n {
		if hp != g.h || wp != g.w {
			for i := range xp {
				xp[i] = uint8(za) // the zero point's code, as the flipped codes see it
			}
		}
		// Pixel by pixel, each pixel's channels written in a row: the
		// channels' reads share their cache lines with the next pixels'.
		src, hw := xb[b*c*g.h*g.w:(b+1)*c*g.h*g.w], g.h*g.w
		for y := range g.h {
			row := xp[((y+g.pt)*wp+g.pl)*c : ((y+g.pt)*wp+g.pl+g.w)*c]
			for xx := range g.w {
				px, at := row[xx*c:(xx+1)*c], y*g.w+xx
				for ci := range px {
					px[ci] = src[ci*hw+at] ^ flip
				}
			}
		}
		if !direct {
			g.buildRows(rows, xp, wp, threads)
		}
		igemm.Mul(pix, rows, k, cw.p, acc, m, zp.bias, threads)
		zp.finish(acc, rows, pix, k, m, pix)
		// Back to channels first: a transpose of 4-byte values (bits moved,
		// not computed on).
		o := od[b*m*pix : (b+1)*m*pix]
		transposeBlocked(unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(o))), len(o)), accT[:pix*m], pix, m, 0, m)
	}
	return out, nil
}

// buildRows lays out each output pixel's window of the channels-last
// image xp (rows wp pixels wide, c channels a pixel) as one row of rows:
// kh x kw taps of c bytes each, a tap row's kw taps in one copy when they
// are adjacent.
func (g convGeom) buildRows(rows, xp []uint8, wp, threads int) {
	c, kh, kw, k := g.c, g.kh, g.kw, g.kh*g.kw*g.c
	parallelFor(parallel.Split(threads, g.oh*g.ow*k, 1<<16), g.oh, func(lo, hi int) {
		for oy := lo; oy < hi; oy++ {
			for ox := range g.ow {
				dst := rows[(oy*g.ow+ox)*k:]
				for ki := range kh {
					at := ((oy*g.sh+ki*g.dh)*wp + ox*g.sw) * c
					if g.dw == 1 {
						copy(dst[ki*kw*c:(ki+1)*kw*c], xp[at:])
						continue
					}
					for kj := range kw {
						copy(dst[(ki*kw+kj)*c:(ki*kw+kj+1)*c], xp[at+kj*g.dw*c:])
					}
				}
			}
		}
	})
}
