package kernels

import (
	"fmt"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/igemm"
	"github.com/onnxq/onnxq/kernels/vec"
)

// The 8-bit integer products (MatMulInteger, QLinearMatMul, and ORT's
// DynamicQuantizeMatMul and MatMulIntegerToFloat, the ops of the models
// ORT's quantize_dynamic writes; ConvInteger and QLinearConv) run on the
// float32 GEMM, exactly. With the zero points taken off, every operand is
// an integer of magnitude at most 255, and a float32 holds every integer up
// to 2^24 exactly. If the largest magnitudes in A and B are ma and mb, any
// partial sum of kc products is at most kc*ma*mb, so the K axis is cut into
// chunks of kc = 2^24 / (ma*mb) (intChunkFor): within one, every sum the
// GEMM forms, in whatever order and with FMA, is exact, and the chunks'
// results are added as int32. The result is the int32 product bit for bit,
// ONNX's arithmetic. Typical codes (activations about their zero point,
// symmetric int8 weights: 128 x 127) need one chunk up to K = 1032; the
// worst case (255 x 255) one per 258. A scalar int32 loop ran BERT-base's
// 128x768x768 product in 69 ms, 213x ORT's time.

// useIgemm sends 2-D products to igemm, where the CPU has VNNI (switched
// off by the tests that check the float path).
var useIgemm = igemm.Available()

// intChunkFor is the longest stretch of K whose float32 sums are exact for
// operands of largest magnitudes ma and mb (at least 258: both are at most
// 255).
func intChunkFor(ma, mb float32) int {
	return int(float32(1<<24) / max(1, ma*mb))
}

// maxAbs is the largest magnitude in x.
func maxAbs(x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	lo, hi := vec.MinMax(x)
	return max(-lo, hi)
}

// intMatMul multiplies 8-bit operands after taking off their zero points
// (A's per tensor or per row, B's per tensor or per column), with numpy
// batch broadcasting. When B and its zero point are constants, B is
// centered, converted and packed once, a pack per K chunk of the length
// that is exact for any A.
type intMatMul struct {
	bConst *graph.Tensor
	chunk  int
	packs  []*gemm.PackedB
	// On a CPU with AVX-512 VNNI, a 2-D B is multiplied as 8-bit codes
	// (igemm, ORT's arithmetic) instead: b8 is the constant B packed for
	// it, and zb8 its zero point(s) as igemm's signed codes see them.
	b8  *igemm.PackedB
	zb8 []int32
}

// newIntMatMul prepares the product of node ni, whose B is input bIn and
// B's zero point input bzpIn (-1: none).
func newIntMatMul(ni *NodeInfo, op string, bIn, bzpIn int) (*intMatMul, error) {
	im := &intMatMul{}
	if ni == nil {
		return im, nil
	}
	b := ni.Const(bIn)
	if b == nil || b.Rank() != 2 {
		return im, nil
	}
	var bzp *graph.Tensor
	if bzpIn >= 0 && bzpIn < len(ni.Node.Inputs) && ni.Node.Input(bzpIn) != nil {
		if bzp = ni.Const(bzpIn); bzp == nil {
			return im, nil // a zero point fed at run time
		}
	}
	im.bConst = b
	if useIgemm {
		var err error
		if im.b8, im.zb8, err = packB8(b, bzp); err != nil {
			return nil, fmt.Errorf("%s: B: %v", op, err)
		}
		return im, nil
	}
	k, n := b.Shape[0], b.Shape[1]
	bf := make([]float32, k*n)
	if err := centerInto(bf, b, bzp, func(i int) int { return i % n }); err != nil {
		return nil, fmt.Errorf("%s: B: %v", op, err)
	}
	im.chunk = intChunkFor(255, maxAbs(bf))
	for k0 := 0; k0 < k; k0 += im.chunk {
		kc := min(im.chunk, k-k0)
		im.packs = append(im.packs, gemm.PackB(kc, n, gemm.Matrix{Data: bf[k0*n:], Stride: n}))
	}
	return im, nil
}

// centerInto writes t's values minus their zero point(s) into dst as
// float32: zp is nil, one value, or one per index perIndex gives an element.
func centerInto(dst []float32, t, zp *graph.Tensor, perIndex func(i int) int) error {
	if t.DType != graph.Int8 && t.DType != graph.Uint8 {
		return fmt.Errorf("%s is not int8 or uint8", t.DType.Short())
	}
	if zp != nil && zp.DType != t.DType {
		return fmt.Errorf("zero point type %s differs from %s", zp.DType.Short(), t.DType.Short())
	}
	if zp == nil || zp.Len() <= 1 {
		z := int32(0)
		if zp != nil && zp.Len() == 1 {
			z = int32(readInt64s(zp)[0])
		}
		switch d := t.Data().(type) {
		case []uint8:
			vec.Dequantize(dst, d, z, 1)
		case []int8:
			vec.Dequantize(dst, d, z, 1)
		}
		return nil
	}
	z := readInt64s(zp)
	v := readInt64s(t)
	for i, x := range v {
		k := perIndex(i)
		if k >= len(z) {
			return fmt.Errorf("zero point has %d values, need more", len(z))
		}
		dst[i] = float32(x - z[k])
	}
	return nil
}

// run returns the int32 product of a and b as a tensor from ctx's pool.
func (im *intMatMul) run(ctx *Context, a, azp, b, bzp *graph.Tensor) (*graph.Tensor, error) {
	if a.Rank() == 0 || b.Rank() == 0 {
		return nil, fmt.Errorf("operands must have rank >= 1")
	}
	batch, m, k, n, outShape, err := matmulShapes(a.Shape, b.Shape, make([]int, 16))
	if err != nil {
		return nil, err
	}
	if useIgemm && b.Rank() == 2 {
		return im.runB8(ctx, a, azp, b, bzp, graph.Numel(batch)*m, m, k, n, outShape)
	}
	ac := ctx.Scratch(a.Len())
	defer ctx.Release(ac)
	rows := a.Shape[max(0, a.Rank()-2)]
	if a.Rank() == 1 {
		rows = 1
	}
	if err := centerInto(ac, a, azp, func(i int) int { return (i / k) % rows }); err != nil {
		return nil, fmt.Errorf("A: %v", err)
	}
	packed := im.packs != nil && b == im.bConst
	var bc []float32
	chunk := im.chunk
	if !packed {
		bc = ctx.Scratch(b.Len())
		defer ctx.Release(bc)
		if err := centerInto(bc, b, bzp, func(i int) int { return i % n }); err != nil {
			return nil, fmt.Errorf("B: %v", err)
		}
		chunk = intChunkFor(maxAbs(ac), maxAbs(bc))
	}
	out := ctx.Empty(graph.Int32, outShape)
	acc := graph.Elems[int32](out)
	// A 2-D B: the batch's rows are one product, as in MatMul.
	if b.Rank() == 2 {
		B := bc
		if packed {
			B = nil
		}
		intGemm(ctx, graph.Numel(batch)*m, n, k, chunk, ac, B, im.packs, acc)
		return out, nil
	}
	aStr, bStr := batchStrides(a.Shape, b.Shape, batch)
	for i := range graph.Numel(batch) {
		ao, bo := batchOffsets(i, batch, aStr, bStr)
		intGemm(ctx, m, n, k, chunk, ac[ao*m*k:], bc[bo*k*n:], nil, acc[i*m*n:(i+1)*m*n])
	}
	return out, nil
}

// intGemm sets c (m x n, int32) to the product of a (m x k) and b (k x n),
// row-major float32 holding integers, or of a and packs (b packed a chunk
// of K at a time) when b is nil, exactly: chunk is intChunkFor the
// operands' largest magnitudes (the packs' own chunk with packs).
func intGemm(ctx *Context, m, n, k, chunk int, a, b []float32, packs []*gemm.PackedB, c []int32) {
	if k == 0 {
		clear(c)
		return
	}
	threads := 1
	if ctx != nil {
		threads = ctx.Threads
	}
	chunks := (k + chunk - 1) / chunk
	// One chunk: the GEMM writes its float sums over the int32 output,
	// converted in place; more: a chunk at a time into part.
	part := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(c))), len(c))
	if chunks > 1 {
		part = ctx.Scratch(m * n)
		defer ctx.Release(part)
	}
	for ch := range chunks {
		k0 := ch * chunk
		kc := min(chunk, k-k0)
		am := gemm.Matrix{Data: a[k0:], Stride: k}
		if b == nil {
			gemm.MulPackedB(m, 1, am, packs[ch], 0, part, n, threads)
		} else {
			gemm.Sgemm(m, n, kc, 1, am, gemm.Matrix{Data: b[k0*n:], Stride: n}, 0, part, n, threads)
		}
		if ch == 0 {
			for i, v := range part[:m*n] {
				c[i] = int32(v)
			}
			continue
		}
		for i, v := range part[:m*n] {
			c[i] += int32(v)
		}
	}
}

// packB8 packs the 2-D 8-bit B for igemm, as signed codes: uint8 codes less
// 128 (their zero points too), which keeps every difference b - zb. It
// returns the zero points (one, or one per column; 0 without).
func packB8(b, bzp *graph.Tensor) (*igemm.PackedB, []int32, error) {
	k, n := b.Shape[0], b.Shape[1]
	shift := int32(0)
	if b.DType == graph.Uint8 {
		shift = -128
	}
	zb, err := codeZeroPoints(b, bzp, n, shift)
	if err != nil {
		return nil, nil, err
	}
	codes, ok := b.Data().([]int8)
	if !ok {
		u := b.Data().([]uint8)
		codes = make([]int8, len(u))
		for i, v := range u {
			codes[i] = int8(v ^ 0x80) // v - 128
		}
	}
	return igemm.PackB(k, n, codes, n), zb, nil
}

// codeZeroPoints checks an 8-bit operand t and its zero point zp (none,
// one, or one per index of n) and returns the zero points as int32 plus
// shift, the shift of t's codes to the signedness igemm takes.
func codeZeroPoints(t, zp *graph.Tensor, n int, shift int32) ([]int32, error) {
	if t.DType != graph.Int8 && t.DType != graph.Uint8 {
		return nil, fmt.Errorf("%s is not int8 or uint8", t.DType.Short())
	}
	if zp != nil && zp.DType != t.DType {
		return nil, fmt.Errorf("zero point type %s differs from %s", zp.DType.Short(), t.DType.Short())
	}
	z := []int32{0}
	if zp != nil && zp.Len() > 0 {
		zs := readInt64s(zp)
		if len(zs) > 1 && len(zs) < n {
			return nil, fmt.Errorf("zero point has %d values, need more", len(zs))
		}
		z = make([]int32, len(zs))
		for i, v := range zs {
			z[i] = int32(v)
		}
	}
	for i := range z {
		z[i] += shift
	}
	return z, nil
}

// runB8 is run on igemm: the raw products of the unsigned codes of A (int8
// codes plus 128, their zero points too) and the signed codes of B, then
// the zero points taken off by the expansion
//
//	sum (a - za)(b - zb) = sum ab - zb sum a - za sum b + k za zb
//
// in int32 (exact, or wrapping as the int32 product itself would). rows is
// A's rows over the batch, m those of one matrix (per-row zero points).
func (im *intMatMul) runB8(ctx *Context, a, azp, b, bzp *graph.Tensor, rows, m, k, n int, outShape []int) (*graph.Tensor, error) {
	p, zb := im.b8, im.zb8
	if p == nil || b != im.bConst {
		var err error
		if p, zb, err = packB8(b, bzp); err != nil {
			return nil, fmt.Errorf("B: %v", err)
		}
	}
	shift := int32(0)
	if a.DType == graph.Int8 {
		shift = 128
	}
	za, err := codeZeroPoints(a, azp, m, shift)
	if err != nil {
		return nil, fmt.Errorf("A: %v", err)
	}
	codes, ok := a.Data().([]uint8)
	if !ok {
		s := a.Data().([]int8)
		buf := ctx.Empty(graph.Uint8, a.Shape)
		defer recycleTemp(ctx, buf)
		codes = graph.Elems[uint8](buf)
		for i, v := range s {
			codes[i] = uint8(v) ^ 0x80 // v + 128
		}
	}
	out := ctx.Empty(graph.Int32, outShape)
	acc := graph.Elems[int32](out)
	threads := 1
	if ctx != nil {
		threads = ctx.Threads
	}
	zp := newZPExpansion(k, za, zb, p.ColSums, nil)
	igemm.Mul(rows, codes, k, p, acc, n, zp.bias, threads)
	zp.finish(acc, codes, rows, k, n, m)
	return out, nil
}

// zpExpansion takes the zero points off an igemm product of k-long rows:
//
//	sum (a - za)(b - zb) = sum ab - zb sum a - za sum b + k za zb
//
// so with t[j] = k zb[j] - the sum of B's column j, row i adds
// za[i] t[j] - zb[j] sum a_i. With one za its part is the same for every
// row and goes into bias, which the tiles add as they store (with extra,
// a bias of the op's own, when given); finish adds the rest.
type zpExpansion struct {
	za, zb, t, bias []int32
	zaInBias        bool
	zbAll0          bool
}

func newZPExpansion(k int, za, zb, colSums, extra []int32) *zpExpansion {
	e := &zpExpansion{za: za, zb: zb, t: make([]int32, len(colSums)), zaInBias: len(za) == 1, zbAll0: true}
	for j := range e.t {
		z := zb[min(j, len(zb)-1)]
		e.t[j] = int32(k)*z - colSums[j]
		e.zbAll0 = e.zbAll0 && z == 0
	}
	if e.zaInBias || extra != nil {
		e.bias = make([]int32, len(e.t))
		for j, tj := range e.t {
			if e.zaInBias {
				e.bias[j] = za[0] * tj
			}
			if extra != nil {
				e.bias[j] += extra[j]
			}
		}
	}
	return e
}

// finish adds what the tiles did not to acc (rows of n), whose rows of A
// are codes (k each); m is the rows of one matrix (za's period).
func (e *zpExpansion) finish(acc []int32, codes []uint8, rows, k, n, m int) {
	if e.zaInBias && e.zbAll0 {
		return
	}
	for i := range rows {
		var zi int32
		if !e.zaInBias {
			zi = e.za[min(i%m, len(e.za)-1)]
		}
		var sa int32
		if !e.zbAll0 {
			for _, v := range codes[i*k : (i+1)*k] {
				sa += int32(v)
			}
		}
		c := acc[i*n : (i+1)*n]
		for j, tj := range e.t {
			c[j] += zi*tj - e.zb[min(j, len(e.zb)-1)]*sa
		}
	}
}
