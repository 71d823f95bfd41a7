package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- MatMul (numpy semantics) ----

type matmulKernel struct {
	bConst  *graph.Tensor
	bPacked *gemm.PackedB // when B is a constant matrix
}

func newMatMul(ni *NodeInfo) (Kernel, error) {
	k := &matmulKernel{bConst: ni.Const(1)}
	if b := k.bConst; b != nil && b.DType == graph.Float && b.Rank() == 2 {
		k.bPacked = ni.packs.packB(b.Shape[0], b.Shape[1], b.Float32s(), false)
	}
	return k, nil
}

// matmulShapes promotes 1-D operands and broadcasts batch dimensions.
func matmulShapes(as, bs []int, buf []int) (batch []int, m, k, n int, outShape []int, err error) {
	if len(as) == 0 || len(bs) == 0 {
		return nil, 0, 0, 0, nil, fmt.Errorf("MatMul operands must have rank >= 1, got %v and %v", as, bs)
	}
	a, b := as, bs
	if len(a) == 1 {
		a = []int{1, a[0]}
	}
	if len(b) == 1 {
		b = []int{b[0], 1}
	}
	m, k = a[len(a)-2], a[len(a)-1]
	if b[len(b)-2] != k {
		return nil, 0, 0, 0, nil, fmt.Errorf("MatMul shapes %v and %v do not match (%d != %d)", as, bs, k, b[len(b)-2])
	}
	n = b[len(b)-1]
	half := len(buf) / 2
	batch, err = broadcastShapeInto(buf[:0:half], a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return nil, 0, 0, 0, nil, err
	}
	outShape = append(buf[half:half], batch...)
	if len(as) > 1 {
		outShape = append(outShape, m)
	}
	if len(bs) > 1 {
		outShape = append(outShape, n)
	}
	return batch, m, k, n, outShape, nil
}

// shapeBuf is a call's room for computed shapes on its stack (matmulShapes
// takes two of rank up to 8 from it; longer ones go to the heap).
type shapeBuf [16]int

func (mk *matmulKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.DType != graph.Float || b.DType != graph.Float {
		return nil, fmt.Errorf("MatMul on %s x %s is not supported (float32 only)", a.DType.Short(), b.DType.Short())
	}
	var sb shapeBuf
	batch, m, k, n, outShape, err := matmulShapes(a.Shape, b.Shape, sb[:])
	if err != nil {
		return nil, err
	}
	out := ctx.Float32(outShape) // the GEMMs store every element (beta 0)
	ad, bd, od := a.Float32s(), b.Float32s(), out.Float32s()
	// A constant 2-D B: every batch row block is one GEMM with the packed B.
	if mk.bPacked != nil && b == mk.bConst {
		rows := graph.Numel(batch) * m
		gemm.MulPackedB(rows, 1, gemm.Matrix{Data: ad, Stride: k}, mk.bPacked, 0, od, n, ctx.Threads)
		return one(out), nil
	}
	// Batch offsets through the broadcast of the leading dimensions (the
	// closures below take what they read to the heap: a copy, so sb stays
	// on the stack on the paths above).
	hb := slices.Clone(batch)
	aStr, bStr := batchStrides(a.Shape, b.Shape, hb)
	nb := graph.Numel(hb)
	// mul computes batch entry i, with its operands found through the
	// broadcast of the leading dimensions.
	mul := func(i, threads int) {
		ao, bo := batchOffsets(i, hb, aStr, bStr)
		gemm.Sgemm(m, n, k, 1, gemm.Matrix{Data: ad[ao*m*k:], Stride: k}, gemm.Matrix{Data: bd[bo*k*n:], Stride: n}, 0, od[i*m*n:], n, threads)
	}
	// Many small products (attention heads): one thread per product, rather
	// than a parallel region inside each.
	if workers := threadsFor(ctx, nb*m*n*k, minBatchMACs); nb >= 2*workers && workers > 1 {
		parallel.For(workers, nb, func(i int) { mul(i, 1) })
		return one(out), nil
	}
	for i := 0; i < nb; i++ {
		mul(i, ctx.Threads)
	}
	return one(out), nil
}

// batchStrides returns the strides (in matrices) of MatMul operands of
// shapes as and bs along the broadcast batch axes (1-D operands promoted).
func batchStrides(as, bs, batch []int) (aStr, bStr []int) {
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	return bcastStrides(as[:len(as)-2], batch), bcastStrides(bs[:len(bs)-2], batch)
}

// batchOffsets returns the offsets (in matrices) of batch entry i's
// operands, through the broadcast strides aStr and bStr of the batch axes.
func batchOffsets(i int, batch, aStr, bStr []int) (ao, bo int) {
	for d, rest := len(batch)-1, i; d >= 0; d-- {
		ao += rest % batch[d] * aStr[d]
		bo += rest % batch[d] * bStr[d]
		rest /= batch[d]
	}
	return ao, bo
}

// minBatchMACs is the least work per thread worth spreading the products of
// a batched MatMul over threads (as in the GEMM itself: about 10 us).
const minBatchMACs = 1 << 18

// ---- Gemm: Y = alpha * A' * B' + beta * C ----

type gemmKernel struct {
	transA, transB bool
	alpha, beta    float32
	bConst         *graph.Tensor
	bPacked        *gemm.PackedB
	// wholeC: before opset 7, C broadcasts only with the broadcast
	// attribute set; without it C must be M x N.
	wholeC bool
}

func newGemm(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	k := &gemmKernel{
		transA: a.Int("transA", 0) != 0, transB: a.Int("transB", 0) != 0,
		alpha: a.Float("alpha", 1), beta: a.Float("beta", 1), bConst: ni.Const(1),
	}
	if a.err != nil {
		return nil, a.err
	}
	if ni.Opset < 7 {
		k.wholeC = a.Int("broadcast", 0) == 0
	}
	if b := k.bConst; b != nil && b.DType == graph.Float && b.Rank() == 2 {
		kk, n := b.Shape[0], b.Shape[1]
		if k.transB {
			kk, n = n, kk
		}
		k.bPacked = ni.packs.packB(kk, n, b.Float32s(), k.transB)
	}
	return k, nil
}

func (gk *gemmKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.DType != graph.Float || b.DType != graph.Float {
		return nil, fmt.Errorf("Gemm on %s is not supported (float32 only)", a.DType.Short())
	}
	if a.Rank() != 2 || b.Rank() != 2 {
		return nil, fmt.Errorf("Gemm needs 2-D operands, got %v and %v", a.Shape, b.Shape)
	}
	m, k := a.Shape[0], a.Shape[1]
	if gk.transA {
		m, k = k, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if gk.transB {
		kb, n = n, kb
	}
	if kb != k {
		return nil, fmt.Errorf("Gemm shapes %v and %v do not match", a.Shape, b.Shape)
	}
	// Every element is written: C's rows (beta 1), or the product alone.
	out := ctx.Float32([]int{m, n})
	od := out.Float32s()
	beta := float32(0)
	if len(in) > 2 && in[2] != nil && gk.beta != 0 {
		c := in[2]
		if err := wantFloat(c, "Gemm C"); err != nil {
			return nil, err
		}
		if gk.wholeC && !slices.Equal(c.Shape, []int{m, n}) {
			return nil, fmt.Errorf("Gemm C of shape %v is not [%d %d] and the broadcast attribute is not set (opset < 7)", c.Shape, m, n)
		}
		st, ok := gemmCStrides(c.Shape, m, n)
		if !ok {
			return nil, fmt.Errorf("Gemm C of shape %v does not broadcast to [%d %d]", c.Shape, m, n)
		}
		cd := c.Float32s()
		for i := 0; i < m; i++ {
			row := od[i*n : (i+1)*n]
			switch {
			case st[1] == 1 && gk.beta == 1: // a bias row, or C whole: copied
				copy(row, cd[i*st[0]:i*st[0]+n])
			case st[1] == 1:
				vec.MulScalar(row, cd[i*st[0]:i*st[0]+n], gk.beta)
			default: // one value a row, or one for all
				for j := range row {
					row[j] = gk.beta * cd[i*st[0]+j*st[1]]
				}
			}
		}
		beta = 1
	}
	am := gemm.Matrix{Data: a.Float32s(), Stride: a.Shape[1], Trans: gk.transA}
	if gk.bPacked != nil && b == gk.bConst {
		gemm.MulPackedB(m, gk.alpha, am, gk.bPacked, beta, od, n, ctx.Threads)
	} else {
		bm := gemm.Matrix{Data: b.Float32s(), Stride: b.Shape[1], Trans: gk.transB}
		gemm.Sgemm(m, n, k, gk.alpha, am, bm, beta, od, n, ctx.Threads)
	}
	return one(out), nil
}

// gemmCStrides checks that a Gemm's C of shape cs broadcasts to [m, n]
// (unidirectionally: rank 2 at most, each dimension 1 or the output's) and
// returns its strides along the output's rows and columns, 0 where it
// broadcasts.
func gemmCStrides(cs []int, m, n int) (st [2]int, ok bool) {
	if len(cs) > 2 {
		return st, false
	}
	full := [2]int{m, n}
	dims := [2]int{1, 1}
	copy(dims[2-len(cs):], cs)
	if dims[1] != 1 {
		st[1] = 1
	}
	if dims[0] != 1 {
		st[0] = dims[1]
	}
	for i, d := range dims {
		if d != 1 && d != full[i] {
			return st, false
		}
	}
	return st, true
}

func init() {
	Register("", "MatMul", 1, newMatMul)
	Register("", "Gemm", 1, newGemm)
}
