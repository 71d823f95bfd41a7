package kernels

import (
	"fmt"
	"math/bits"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
)

// ---- com.microsoft MatMulNBits: Y = A x dequant(B)^T (+ bias) ----
//
// ONNX Runtime's weight-only quantized MatMul. B holds the weight transposed,
// [N][k_blocks][blob]: each output column n is cut along K into blocks of
// block_size values, each block packed into blob = block_size*bits/8 bytes,
// lowest bits first (for 4 bits: element 2j in the low nibble of byte j,
// 2j+1 in the high one). Block b of column n dequantizes as
// (q - zp) * scales[n*k_blocks + b]. Zero points are optional: packed the same
// way per column ([N][ceil(k_blocks*bits/8)] bytes, a column's last byte
// padded), or of A's type, one per block; without them zp is 2^(bits-1)
// (8 for 4 bits). When K is not a multiple of block_size the last block's
// values past K are padding. accuracy_level lets ORT quantize A to int8 for
// its integer kernels; onnxq computes in float32 as level 0 does, so it is
// read and ignored.

type matMulNBits struct {
	k, n, bits, block, kBlocks, blob int
	w                                *gemm.PackedB // dequantized B^T, when B, scales and zero points are constants
	bias                             []float32
}

func newMatMulNBits(ni *NodeInfo) (Kernel, error) {
	nd := ni.Node
	attr := func(name string, def int64, required bool) (int, error) {
		if required && !nd.HasAttr(name) {
			return 0, fmt.Errorf("MatMulNBits: attribute %s is required", name)
		}
		v, err := nd.AttrInt(name, def)
		return int(v), err
	}
	k := &matMulNBits{}
	var err error
	if k.k, err = attr("K", 0, true); err != nil {
		return nil, err
	}
	if k.n, err = attr("N", 0, true); err != nil {
		return nil, err
	}
	if k.bits, err = attr("bits", 4, false); err != nil {
		return nil, err
	}
	if k.block, err = attr("block_size", 0, true); err != nil {
		return nil, err
	}
	if _, err = attr("accuracy_level", 0, false); err != nil {
		return nil, err
	}
	switch {
	case k.k <= 0 || k.n <= 0:
		return nil, fmt.Errorf("MatMulNBits: K %d and N %d must be positive", k.k, k.n)
	case k.bits != 4 && k.bits != 8:
		return nil, fmt.Errorf("MatMulNBits: bits %d is not supported (4 or 8)", k.bits)
	case k.block < 16 || bits.OnesCount(uint(k.block)) != 1:
		return nil, fmt.Errorf("MatMulNBits: block_size %d must be a power of two, at least 16", k.block)
	}
	k.kBlocks = (k.k + k.block - 1) / k.block
	k.blob = k.block * k.bits / 8
	if g := ni.Const(4); g != nil && g.Len() > 0 {
		return nil, fmt.Errorf("MatMulNBits: g_idx (act-order) is not supported")
	}
	if b, s := ni.Const(1), ni.Const(2); b != nil && s != nil && (len(nd.Inputs) < 4 || nd.Input(3) == nil || ni.Const(3) != nil) {
		w, err := k.dequantize(b, s, ni.Const(3))
		if err != nil {
			return nil, err
		}
		k.w = gemm.PackB(k.k, k.n, gemm.Matrix{Data: w, Stride: k.k, Trans: true})
	}
	if b := ni.Const(5); b != nil {
		if k.bias, err = k.checkBias(b); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// dequantize returns B as float32 [N][K] (row n is output column n).
func (k *matMulNBits) dequantize(b, scales, zp *graph.Tensor) ([]float32, error) {
	if b.DType != graph.Uint8 || !sameDims(b.Shape, k.n, k.kBlocks, k.blob) {
		return nil, fmt.Errorf("MatMulNBits: B is %s %v, want uint8 [%d, %d, %d] (N, k_blocks, block_size*bits/8)", b.DType.Short(), b.Shape, k.n, k.kBlocks, k.blob)
	}
	nScales := k.n * k.kBlocks
	if scales.DType != graph.Float || scales.Len() != nScales || !(sameDims(scales.Shape, nScales) || sameDims(scales.Shape, k.n, k.kBlocks)) {
		return nil, fmt.Errorf("MatMulNBits: scales are %s %v, want float32 [%d] or [%d, %d]", scales.DType.Short(), scales.Shape, nScales, k.n, k.kBlocks)
	}
	// One zero point per block, as a float.
	zps := make([]float32, nScales)
	def := float32(int(1) << (k.bits - 1))
	switch {
	case zp == nil:
		for i := range zps {
			zps[i] = def
		}
	case zp.DType == graph.Uint8:
		perCol := (k.kBlocks*k.bits + 7) / 8
		if !(sameDims(zp.Shape, k.n*perCol) || sameDims(zp.Shape, k.n, perCol)) {
			return nil, fmt.Errorf("MatMulNBits: packed zero points are %v, want [%d] or [%d, %d]", zp.Shape, k.n*perCol, k.n, perCol)
		}
		zd := zp.Data().([]uint8)
		for n := 0; n < k.n; n++ {
			for blk := 0; blk < k.kBlocks; blk++ {
				zps[n*k.kBlocks+blk] = float32(unpack(zd[n*perCol:], blk, k.bits))
			}
		}
	case zp.DType == graph.Float:
		if zp.Len() != nScales || !(sameDims(zp.Shape, nScales) || sameDims(zp.Shape, k.n, k.kBlocks)) {
			return nil, fmt.Errorf("MatMulNBits: zero points are %v, want [%d] or [%d, %d]", zp.Shape, nScales, k.n, k.kBlocks)
		}
		copy(zps, zp.Float32s())
	default:
		return nil, fmt.Errorf("MatMulNBits: zero points of type %s are not supported (uint8 packed, or float32)", zp.DType.Short())
	}
	bd, sd := b.Data().([]uint8), scales.Float32s()
	w := make([]float32, k.n*k.k)
	for n := 0; n < k.n; n++ {
		for blk := 0; blk < k.kBlocks; blk++ {
			blob := bd[(n*k.kBlocks+blk)*k.blob:]
			s, z := sd[n*k.kBlocks+blk], zps[n*k.kBlocks+blk]
			lo := blk * k.block
			for i := 0; i < k.block && lo+i < k.k; i++ {
				w[n*k.k+lo+i] = (float32(unpack(blob, i, k.bits)) - z) * s
			}
		}
	}
	return w, nil
}

// unpack returns the i-th bits-wide value of p, lowest bits first.
func unpack(p []uint8, i, bits int) uint8 {
	if bits == 8 {
		return p[i]
	}
	return (p[i/2] >> (4 * (i % 2))) & 0xF
}

func sameDims(shape []int, dims ...int) bool {
	if len(shape) != len(dims) {
		return false
	}
	for i := range dims {
		if shape[i] != dims[i] {
			return false
		}
	}
	return true
}

func (k *matMulNBits) checkBias(b *graph.Tensor) ([]float32, error) {
	if b.DType != graph.Float || !sameDims(b.Shape, k.n) {
		return nil, fmt.Errorf("MatMulNBits: bias is %s %v, want float32 [%d]", b.DType.Short(), b.Shape, k.n)
	}
	return b.Float32s(), nil
}

func (k *matMulNBits) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	if err := need(in, 3); err != nil {
		return nil, err
	}
	if len(in) > 4 && in[4] != nil && in[4].Len() > 0 {
		return nil, fmt.Errorf("MatMulNBits: g_idx (act-order) is not supported")
	}
	a := in[0]
	if a.DType != graph.Float {
		return nil, fmt.Errorf("MatMulNBits on %s input is not supported (float32 only)", a.DType.Short())
	}
	if a.Rank() < 1 || a.Shape[a.Rank()-1] != k.k {
		return nil, fmt.Errorf("MatMulNBits: A is %v, its last dimension must be K = %d", a.Shape, k.k)
	}
	w := k.w
	if w == nil { // B, scales or zero points computed at run time
		var zp *graph.Tensor
		if len(in) > 3 {
			zp = in[3]
		}
		wd, err := k.dequantize(in[1], in[2], zp)
		if err != nil {
			return nil, err
		}
		w = gemm.PackB(k.k, k.n, gemm.Matrix{Data: wd, Stride: k.k, Trans: true})
	}
	bias := k.bias
	if bias == nil && len(in) > 5 && in[5] != nil {
		var err error
		if bias, err = k.checkBias(in[5]); err != nil {
			return nil, err
		}
	}
	shape := append(append([]int(nil), a.Shape[:a.Rank()-1]...), k.n)
	out := graph.NewTensor(graph.Float, shape)
	rows := a.Len() / k.k
	od := out.Float32s()
	gemm.MulPackedB(rows, 1, gemm.Matrix{Data: a.Float32s(), Stride: k.k}, w, 0, od, k.n, ctx.Threads)
	if bias != nil {
		for r := 0; r < rows; r++ {
			row := od[r*k.n : (r+1)*k.n]
			for j, b := range bias {
				row[j] += b
			}
		}
	}
	return one(out), nil
}

func init() {
	Register("com.microsoft", "MatMulNBits", 1, newMatMulNBits)
}
