package kernels

import (
	"fmt"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/igemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/kernels/vec"
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

// intConvB8 is intConvSums for one group on igemm; cw holds the weights
// packed when they are constants (else nil: packed here), addBias (nil or
// one a channel) is added to every sum. With q whose type is 8-bit, the
// result is the sums requantized (QLinearConv), else int32.
//
// The output pixels go in pieces (convB8Piece), each on one thread from
// its window rows to its stored output: the rows, the product, the
// zero-point terms, the transpose back to channels first and the store
// (or requantization) of one piece stay in that core's cache, where whole
// passes over the image's int32 sums (the product, then the transpose,
// then the requantization) went through memory three times.
func intConvB8(ctx *Context, g convGeom, n, m int, x, w, xzp, wzp *graph.Tensor, cw *convB8Weights, addBias []int32, shape []int, q *requantSpec) (*graph.Tensor, error) {
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
	// the rows; other windows lay their rows out piece by piece.
	direct := kh == 1 && kw == 1 && g.sh == 1 && g.sw == 1 && hp == g.h && wp == g.w
	if q != nil && q.dt != graph.Uint8 && q.dt != graph.Int8 {
		q = nil // wider codes: int32 sums, requantized by the caller
	}
	dt := graph.Int32
	if q != nil {
		dt = q.dt
	}
	out := ctx.Empty(dt, shape)
	threads := 1
	if ctx != nil {
		threads = ctx.Threads
	}
	seats := parallel.Split(threads, pix*k*m, 1<<20)
	piece := convB8Piece(pix, k, m, seats)
	pieces := (pix + piece - 1) / piece
	seats = min(seats, pieces)
	// Each seat's buffers: its piece's rows, sums and transposed sums.
	type seatBufs struct {
		rows      []uint8
		acc, sums []float32 // int32s in float32's room (moved, never computed on)
	}
	bufs := make([]seatBufs, seats)
	for i := range bufs {
		if !direct {
			rt := ctx.Empty(graph.Uint8, []int{piece * k})
			defer recycleTemp(ctx, rt)
			bufs[i].rows = graph.Elems[uint8](rt)
		}
		bufs[i].acc, bufs[i].sums = ctx.Scratch(piece*m), ctx.Scratch(piece*m)
		defer ctx.Release(bufs[i].acc)
		defer ctx.Release(bufs[i].sums)
	}
	xb := rawBytes(x)
	zp := newZPExpansion(k, []int32{za}, cw.zb, cw.p.ColSums, addBias)
	// store puts channel ch's sums for pixels [p0, p0+len(sums)) of image
	// b in out.
	var store func(b, ch, p0 int, sums []int32)
	switch d := out.Data().(type) {
	case []int32:
		store = func(b, ch, p0 int, sums []int32) { copy(d[(b*m+ch)*pix+p0:], sums) }
	case []uint8:
		store = func(b, ch, p0 int, sums []int32) {
			requantChannel(d[(b*m+ch)*pix+p0:], sums, q, ch)
		}
	case []int8:
		store = func(b, ch, p0 int, sums []int32) {
			requantChannel(d[(b*m+ch)*pix+p0:], sums, q, ch)
		}
	}
	for b := range n {
		if b == 0 {
			padBorder(xp, uint8(za), c, wp, hp, g)
		}
		// Line by line: a line's channels (rows of the source) become its
		// pixels' rows.
		src, hw := xb[b*c*g.h*g.w:(b+1)*c*g.h*g.w], g.h*g.w
		for y := range g.h {
			transposeBytes(xp[((y+g.pt)*wp+g.pl)*c:], c, src[y*g.w:], hw, c, g.w, flip)
		}
		parallel.ForSeat(seats, pieces, func(seat, pi int) {
			p0 := pi * piece
			np := min(piece, pix-p0)
			sb := &bufs[seat]
			var a []uint8
			if direct {
				a = xp[p0*k : (p0+np)*k]
			} else {
				a = sb.rows[:np*k]
				g.buildRows(a, xp, wp, p0, p0+np)
			}
			accF := sb.acc[:np*m]
			acc := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(accF))), len(accF))
			igemm.Mul(np, a, k, cw.p, acc, m, zp.bias, 1)
			zp.finish(acc, a, np, k, m, np)
			// Back to channels first: a transpose of 4-byte values (bits
			// moved, not computed on).
			sumsF := sb.sums[:np*m]
			transposeBlocked(sumsF, accF, np, m, 0, m)
			sums := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(sumsF))), len(sumsF))
			for ch := range m {
				store(b, ch, p0, sums[ch*np:(ch+1)*np])
			}
		})
	}
	return out, nil
}

// padBorder fills the border of the channels-last image xp (hp x wp
// pixels of c bytes), where no input pixel goes, with code v (the input's
// zero point: padding adds nothing once it is taken off).
func padBorder(xp []uint8, v uint8, c, wp, hp int, g convGeom) {
	fill := func(b []uint8) {
		if len(b) == 0 {
			return
		}
		b[0] = v
		for n := 1; n < len(b); n *= 2 {
			copy(b[n:], b[:n])
		}
	}
	line := wp * c
	fill(xp[:g.pt*line])
	fill(xp[(g.pt+g.h)*line:])
	for y := g.pt; y < g.pt+g.h; y++ {
		fill(xp[y*line : (y*wp+g.pl)*c])
		fill(xp[(y*wp+g.pl+g.w)*c : (y+1)*line])
	}
}

// requantChannel requantizes channel ch's sums into dst by q.
func requantChannel[T uint8 | int8](dst []T, sums []int32, q *requantSpec, ch int) {
	j := ch % len(q.mult)
	vec.Requant8(dst[:len(sums)], sums, q.mult[j:j+1], float32(q.z), float32(q.lo), float32(q.hi))
}

// convB8Piece is how many output pixels a piece of intConvB8 takes: a
// multiple of igemm's row block whose rows (k bytes a pixel) and two
// copies of sums (m int32s a pixel) fill about 192 KiB, within the core's
// L2 cache beside the packed weights; on more than one seat, small enough
// that each seat gets two pieces or more (a small image with many
// channels still splits).
func convB8Piece(pix, k, m, seats int) int {
	rb := igemm.RowBlock
	p := max(rb, (192<<10)/(k+8*m)/rb*rb)
	if seats > 1 {
		p = min(p, max(rb, (pix+2*seats-1)/(2*seats)+rb-1)/rb*rb)
	}
	return min(p, pix)
}

// buildRows lays out the window of each output pixel in [p0, p1) of the
// channels-last image xp (rows wp pixels wide, c channels a pixel) as a
// row of rows (from its start): kh x kw taps of c bytes each, a tap row's
// kw taps in one copy when they are adjacent.
func (g convGeom) buildRows(rows, xp []uint8, wp, p0, p1 int) {
	c, kh, kw, k := g.c, g.kh, g.kw, g.kh*g.kw*g.c
	for p := p0; p < p1; p++ {
		oy, ox := p/g.ow, p%g.ow
		dst := rows[(p-p0)*k:]
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
