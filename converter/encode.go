package converter

import (
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
)

// weightEncoding is symmetric quantization, per channel along axis (or per tensor).
func weightEncoding(t *graph.Tensor, axis int, dt graph.DataType) (*passes.Encoding, error) {
	w, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	if axis < 0 {
		lo, hi := minMax(w)
		return passes.ComputeEncoding(lo, hi, dt, true)
	}
	inner, dim := graph.Numel(t.Shape[axis+1:]), t.Shape[axis]
	amax := make([]float64, dim)
	for i, v := range w {
		c := (i / inner) % dim
		amax[c] = math.Max(amax[c], math.Abs(float64(v)))
	}
	enc := &passes.Encoding{DType: dt, Axis: axis}
	for _, a := range amax {
		e, err := passes.ComputeEncoding(float32(-a), float32(a), dt, true)
		if err != nil {
			return nil, err
		}
		enc.Scale = append(enc.Scale, e.Scale[0])
		enc.ZeroPoint = append(enc.ZeroPoint, e.ZeroPoint[0])
	}
	return enc, nil
}

func minMax(v []float32) (float32, float32) {
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// blockedEncoding is symmetric quantization with one scale per block of size
// values along axis.
func blockedEncoding(t *graph.Tensor, axis, size int, dt graph.DataType) (*passes.Encoding, error) {
	w, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	dim := t.Shape[axis]
	blocks := (dim + size - 1) / size
	shape := append([]int(nil), t.Shape...)
	shape[axis] = blocks
	enc := &passes.Encoding{DType: dt, Axis: axis, BlockSize: size, ScaleShape: shape,
		Scale: make([]float32, graph.Numel(shape)), ZeroPoint: make([]int64, graph.Numel(shape))}
	inner := graph.Numel(t.Shape[axis+1:])
	amax := make([]float64, len(enc.Scale))
	for i, v := range w {
		outer, a, in := i/(inner*dim), (i/inner)%dim, i%inner
		k := (outer*blocks+a/size)*inner + in
		amax[k] = math.Max(amax[k], math.Abs(float64(v)))
	}
	for k, a := range amax {
		e, err := passes.ComputeEncoding(float32(-a), float32(a), dt, true)
		if err != nil {
			return nil, err
		}
		enc.Scale[k], enc.ZeroPoint[k] = e.Scale[0], e.ZeroPoint[0]
	}
	return enc, nil
}
