package converter

import (
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
)

// weightEncodingFor computes a planned weight's encoding from its values (or
// its pinned ranges) with the granularity the overrides or the command line
// chose: per output channel by default, per tensor, or per block for
// MatMul/Gemm weights.
func weightEncodingFor(g *graph.Graph, pl *plan, st *settings, opt Options, name string) (*passes.Encoding, error) {
	c := st.weight[name]
	w := g.Value(name).Const
	dt, sym := st.weightType(name, opt)
	where := fmt.Sprintf("weight %q", name)
	if src := c.Source(); src != "" {
		where = fmt.Sprintf("overrides: %s: weight %q", src, name)
	}
	axis := pl.weights[name]
	if c.Axis != nil && *c.Axis != axis {
		return nil, fmt.Errorf("%s: axis %d, but the op's output channels are %s", where, *c.Axis, describeAxis(axis, w))
	}
	if (c.Min == nil) != (c.Max == nil) {
		return nil, fmt.Errorf("%s: a weight's range needs both min and max", where)
	}
	gran, block := c.Granularity, c.BlockSize
	if gran == "" && block > 0 {
		gran = overrides.PerBlock
	}
	if gran == "" {
		switch _, blockable := pl.blocked[name]; {
		case opt.WeightBlockSize > 0 && blockable:
			gran = overrides.PerBlock
		case opt.WeightPerTensor || axis < 0:
			gran = overrides.PerTensor
		default:
			gran = overrides.PerChannel
		}
	}
	switch gran {
	case overrides.PerTensor:
		axis, block = -1, 0
	case overrides.PerChannel:
		if axis < 0 {
			return nil, fmt.Errorf("%s: per_channel needs an output-channel axis, and this %v weight has none", where, w.Shape)
		}
		block = 0
	case overrides.PerBlock:
		bax, ok := pl.blocked[name]
		if !ok {
			return nil, fmt.Errorf("%s: per_block is for 2-D MatMul and Gemm weights", where)
		}
		if block == 0 {
			block = opt.WeightBlockSize
		}
		if block <= 0 {
			return nil, fmt.Errorf("%s: per_block needs a block size (weight_block_size or --weight-block-size)", where)
		}
		if bits.OnesCount(uint(block)) != 1 {
			return nil, fmt.Errorf("%s: block size %d is not a power of two", where, block)
		}
		// A block size given for this weight by name (its tensor or its
		// node) larger than K is a mistake; broad ones (the flag, defaults,
		// op types, globs) are checked over all their weights in checkBlockSizes.
		if k := w.Shape[bax]; namedBlock(opt.Overrides, g.Value(name)) && block > k {
			return nil, fmt.Errorf("%s: block size %d is larger than K = %d (axis %d of %v); one group per column is per_channel", where, block, k, bax, w.Shape)
		}
		axis = bax
	}
	if c.Min == nil {
		enc, err := weightEncoding(w, axis, block, dt, sym, opt.Threads)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		return reduceRange(enc, opt, pairsWithUint8(g, pl, st, opt, name)), nil
	}
	// Pinned ranges: one for the tensor, or one per output channel.
	if block > 0 {
		return nil, fmt.Errorf("%s: pinned ranges do not go with per_block", where)
	}
	lo, hi := make([]float32, len(c.Min)), make([]float32, len(c.Max))
	for i := range c.Min {
		lo[i], hi[i] = float32(c.Min[i]), float32(c.Max[i])
	}
	if len(lo) > 1 && (axis < 0 || w.Shape[axis] != len(lo)) {
		return nil, fmt.Errorf("%s: %d ranges, but the weight %v has %s", where, len(lo), w.Shape, describeAxis(axis, w))
	}
	if len(lo) == 1 {
		axis = -1 // one range is one scale
	}
	enc, err := passes.RangeEncoding(lo, hi, axis, dt, sym)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	return reduceRange(enc, opt, pairsWithUint8(g, pl, st, opt, name)), nil
}

// reduceRange gives int8 weights 7 bits of range (codes within [-64, 64]),
// when asked: ONNX Runtime's x86 kernels without AVX-VNNI add pairs of
// uint8 x int8 products in saturating int16 (vpmaddubsw), and 255 x 127 x 2
// overflows it; with weights halved in range no pair can (255 x 64 x 2 =
// 32640). It costs one bit of weight resolution on every runtime, so it
// applies only where the weight meets a uint8 activation (u8 is true): a
// weight whose input is 16-bit or float keeps its full range.
func reduceRange(enc *passes.Encoding, opt Options, u8 bool) *passes.Encoding {
	if !opt.ReduceRange || !u8 || enc.DType != graph.Int8 {
		return enc
	}
	for k := range enc.Scale {
		enc.Scale[k] *= 255.0 / 127.0
	}
	return enc
}

func describeAxis(axis int, w *graph.Tensor) string {
	if axis < 0 {
		return "not an axis (it has none)"
	}
	return fmt.Sprintf("%d channels along axis %d", w.Shape[axis], axis)
}

// Limits past which a calibrated range is a sentinel or an overflow, not data:
// no trained network computes values near 1e30, and a scale of 1e10 leaves
// every ordinary value at the zero point.
const (
	absurdValue = 1e30
	absurdScale = 1e10
)

// rangeProblem says why a calibrated range must not become an encoding
// ("" when it may): the tensor then stays float, with the reason in the report.
func rangeProblem(lo, hi float32) string {
	l, h := float64(lo), float64(hi)
	switch {
	case math.IsNaN(l) || math.IsNaN(h) || math.IsInf(l, 0) || math.IsInf(h, 0):
		return fmt.Sprintf("calibrated range [%.3g, %.3g] is not finite", lo, hi)
	case math.Abs(l) > absurdValue || math.Abs(h) > absurdValue:
		return fmt.Sprintf("calibrated range [%.3g, %.3g] reaches beyond %.0e (a sentinel or an overflow, not data)", lo, hi, absurdValue)
	}
	return ""
}

// scaleProblem says why an encoding's scale is unusable ("" when it is not).
func scaleProblem(enc *passes.Encoding, lo, hi float32) string {
	for _, s := range enc.Scale {
		if float64(s) > absurdScale || math.IsInf(float64(s), 0) || s != s {
			return fmt.Sprintf("range [%.3g, %.3g] gives scale %.3g, above %.0e", lo, hi, s, absurdScale)
		}
	}
	return ""
}

// pairsWithUint8 reports whether weight name's Conv/Gemm/MatMul reads a
// uint8 activation: the pair ONNX Runtime's non-VNNI kernels saturate.
// Dynamic quantization always quantizes activations to uint8.
func pairsWithUint8(g *graph.Graph, pl *plan, st *settings, opt Options, name string) bool {
	if opt.Dynamic {
		return true
	}
	if opt.WeightOnly {
		return false
	}
	for _, c := range g.Value(name).Consumers {
		if _, ok := weightOps[c.OpType]; !ok || c.Input(0) == nil {
			continue
		}
		in := c.Input(0).Name
		if _, shared := pl.shared[in]; shared {
			in = rootOf(pl.shared, in)
		}
		if !slices.Contains(pl.observe, in) {
			continue // float input: DequantizeLinear then a float op
		}
		if dt, _ := st.actType(in, opt); dt == graph.Uint8 {
			return true
		}
	}
	return false
}
