package kernels

import (
	"fmt"
	"slices"

	"github.com/onnxq/onnxq/graph"
)

// newGatherBlockQuantized is ONNX Runtime's GatherBlockQuantized: Gather
// from a table quantized in blocks along quantize_axis (the int4 embedding
// tables of ORT GenAI's models), each gathered value dequantized as
// (q - zero_point) * scale. uint8 data packs 8/bits codes per byte along
// its last axis, low bits first (MatMulNBits' layout; zero points packed
// the same way, 2^(bits-1) when absent), and then gathers on axis 0 only;
// int4 and uint4 data (zero point 0 when absent) take any two axes. An
// index outside the table is an error, as in ONNX Runtime 1.30.
func newGatherBlockQuantized(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	gatherAxis := a.Int("gather_axis", 0)
	quantAxis := a.Int("quantize_axis", 1)
	block := int(a.Int("block_size", 128))
	bits := int(a.Int("bits", 4))
	if a.err != nil {
		return nil, a.err
	}
	if block < 16 || block&(block-1) != 0 {
		return nil, fmt.Errorf("GatherBlockQuantized block_size %d is not a power of 2 of at least 16", block)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, err
		}
		data, idxT, scales := in[0], in[1], in[2]
		var zps *graph.Tensor
		if len(in) > 3 {
			zps = in[3]
		}
		r := data.Rank()
		g, err := normAxis(gatherAxis, r)
		if err != nil {
			return nil, fmt.Errorf("gather_axis: %v", err)
		}
		q, err := normAxis(quantAxis, r)
		if err != nil {
			return nil, fmt.Errorf("quantize_axis: %v", err)
		}
		if g == q {
			return nil, fmt.Errorf("gather_axis and quantize_axis are both %d", g)
		}
		comps := 1 // codes per stored element
		switch data.DType {
		case graph.Uint8:
			if bits != 2 && bits != 4 && bits != 8 {
				return nil, fmt.Errorf("GatherBlockQuantized of uint8 takes bits 2, 4 or 8, got %d", bits)
			}
			if g != 0 || q != r-1 {
				return nil, fmt.Errorf("GatherBlockQuantized of uint8 gathers on axis 0 and quantizes the last axis (got %d and %d)", g, q)
			}
			comps = 8 / bits
		case graph.Int4, graph.Uint4:
			if bits != 4 {
				return nil, fmt.Errorf("GatherBlockQuantized of %s takes bits 4, got %d", data.DType.Short(), bits)
			}
		default:
			return nil, fmt.Errorf("GatherBlockQuantized of %s is not supported (uint8, int4, uint4)", data.DType.Short())
		}
		if scales.DType != graph.Float {
			return nil, fmt.Errorf("GatherBlockQuantized scales of %s are not supported (float32)", scales.DType.Short())
		}
		// The codes' logical shape and the scales' shape it implies.
		dims := append([]int(nil), data.Shape...)
		dims[r-1] *= comps
		if scales.Rank() != r {
			return nil, fmt.Errorf("scales %v do not fit data %v", scales.Shape, data.Shape)
		}
		for i, d := range dims {
			want := d
			if i == q {
				want = (d + block - 1) / block
			}
			if scales.Shape[i] != want {
				return nil, fmt.Errorf("scales %v do not fit %v codes in blocks of %d along axis %d", scales.Shape, dims, block, q)
			}
		}
		if zps != nil {
			want := append([]int(nil), scales.Shape...)
			want[q] = (want[q] + comps - 1) / comps
			if zps.DType != data.DType || !slices.Equal(zps.Shape, want) {
				return nil, fmt.Errorf("zero points %s%v do not fit scales %v (want %s%v)", zps.DType.Short(), zps.Shape, scales.Shape, data.DType.Short(), want)
			}
		}
		idx, err := ints(idxT)
		if err != nil {
			return nil, fmt.Errorf("indices must be int32 or int64, got %s", idxT.DType.Short())
		}
		gDim := dims[g]
		for _, k := range idx {
			if k < -gDim || k >= gDim {
				return nil, fmt.Errorf("index %d is outside [%d, %d]", k, -gDim, gDim-1)
			}
		}
		code := codeReader(data, bits, comps)
		zpAt := func(int) int32 { return 0 }
		switch {
		case zps == nil && data.DType == graph.Uint8:
			def := int32(1) << (bits - 1)
			zpAt = func(int) int32 { return def }
		case zps != nil:
			// A scale row's zero points are packed along the quantized axis
			// like the codes (the last axis for uint8).
			zc, rowLen := codeReader(zps, bits, comps), scales.Shape[q]
			packedRow := zps.Shape[q] * comps
			zpAt = func(s int) int32 {
				if comps == 1 {
					return zc(s)
				}
				return zc(s/rowLen*packedRow + s%rowLen)
			}
		}
		gM, gBlock := graph.Numel(dims[:g]), graph.Numel(dims[g+1:])
		qDim, qN := dims[q], graph.Numel(dims[q+1:])
		sRow := scales.Shape[q] * qN
		shape := append(append(append([]int(nil), dims[:g]...), idxT.Shape...), dims[g+1:]...)
		out := ctx.Float32(shape)
		od, sd := out.Float32s(), scales.Float32s()
		n := len(idx)
		parallelFor(threadsFor(ctx, len(od), minStreamWork), gM*n, func(lo, hi int) {
			for mn := lo; mn < hi; mn++ {
				dst := od[mn*gBlock : (mn+1)*gBlock]
				k := idx[mn%n]
				if k < 0 {
					k += gDim
				}
				base := (mn/n*gDim + k) * gBlock
				for b := range dst {
					d := base + b
					s := d/(qDim*qN)*sRow + d%(qDim*qN)/qN/block*qN + d%qN
					dst[b] = float32(code(d)-zpAt(s)) * sd[s]
				}
			}
		})
		return one(out), nil
	}), nil
}

// codeReader reads code i of t: comps codes of bits packed per uint8 byte,
// low bits first, or one code per element of an unpacked type.
func codeReader(t *graph.Tensor, bits, comps int) func(i int) int32 {
	switch d := t.Data().(type) {
	case []uint8:
		if comps == 1 {
			return func(i int) int32 { return int32(d[i]) }
		}
		mask := byte(1)<<bits - 1
		return func(i int) int32 { return int32(d[i/comps] >> (i % comps * bits) & mask) }
	case []int8:
		return func(i int) int32 { return int32(d[i]) }
	}
	return func(int) int32 { return 0 }
}

func init() { Register("com.microsoft", "GatherBlockQuantized", 1, newGatherBlockQuantized) }
