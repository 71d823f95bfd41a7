package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- Transformer normalizations ----
//
// com.microsoft SkipLayerNormalization: s = input + skip (+ bias), then
//   LayerNorm over the last axis: (s - mean) / sqrt(var + eps) * gamma (+ beta).
// com.microsoft SkipSimplifiedLayerNormalization: the same s, then RMS norm:
//   s / sqrt(mean(s^2) + eps) * gamma.
// Both may output mean and inv_std_var (one per row, shape [..., 1]; the RMS
// form's mean is 0) and the sum s itself (input_skip_bias_sum, output 3),
// which the next block's residual reads.
// SimplifiedLayerNormalization (ONNX Runtime registers it in the ONNX domain,
// version 1) and ONNX RMSNormalization (opset 23) are the RMS norm over the
// axes from axis on, scaled by a scale that broadcasts to them.
// com.microsoft EmbedLayerNormalization: word + position (+ segment) embedding
// lookups, summed and layer-normalized; see newEmbedLayerNorm.

func init() {
	Register("com.microsoft", "SkipLayerNormalization", 1, newSkipNorm(false))
	Register("com.microsoft", "SkipSimplifiedLayerNormalization", 1, newSkipNorm(true))
	Register("", "SimplifiedLayerNormalization", 1, newRMSNorm("SimplifiedLayerNormalization"))
	Register("", "RMSNormalization", 23, newRMSNorm("RMSNormalization"))
	Register("com.microsoft", "EmbedLayerNormalization", 1, newEmbedLayerNorm)
}

// rowNorm normalizes one row into dst, returning the statistics it used:
// for layer norm the mean and 1/sqrt(var + eps); for RMS norm 0 (nothing is
// subtracted; ONNX Runtime's mean output is 0 too) and 1/sqrt(mean(x^2) + eps).
func rowNorm(dst, x, gamma, beta []float32, eps float64, rms bool) (mean, inv float64) {
	// RMS norm subtracts nothing: adding -0 leaves every x as it is.
	neg := float32(math.Copysign(0, -1))
	if rms {
		inv = 1 / math.Sqrt(vec.SumSqDev(x, 0)/float64(len(x))+eps)
	} else {
		mean = vec.Sum(x) / float64(len(x))
		inv = 1 / math.Sqrt(vec.SumSqDev(x, mean)/float64(len(x))+eps)
		neg = -float32(mean)
	}
	vec.NormAffine(dst, x, gamma, beta, neg, float32(inv))
	return mean, inv
}

// optVec returns input i as a float32 vector of n values, or nil when omitted.
func optVec(in []*graph.Tensor, i, n int, op, what string) ([]float32, error) {
	if i >= len(in) || in[i] == nil {
		return nil, nil
	}
	t := in[i]
	if t.DType != graph.Float || t.Len() != n {
		return nil, fmt.Errorf("%s: %s is %s%v, want %d float32 values", op, what, t.DType.Short(), t.Shape, n)
	}
	return t.Float32s(), nil
}

func newSkipNorm(rms bool) Factory {
	op := "SkipLayerNormalization"
	if rms {
		op = "SkipSimplifiedLayerNormalization"
	}
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		eps := float64(a.Float("epsilon", 1e-12))
		if a.err != nil {
			return nil, a.err
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 3); err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			x, skip := in[0], in[1]
			if err := wantFloat(x, op+" input"); err != nil {
				return nil, err
			}
			if err := wantFloat(skip, op+" skip"); err != nil {
				return nil, err
			}
			if x.Rank() < 2 {
				return nil, fmt.Errorf("%s: input %v must have rank 2 or 3", op, x.Shape)
			}
			hidden := x.Shape[x.Rank()-1]
			rows := x.Len() / max(hidden, 1)
			// skip is the input's shape, or a trailing part of it that repeats
			// over the batch ((1, S, H) or (S, H)).
			skipRows := skip.Len() / max(hidden, 1)
			if skip.Rank() < 2 || skip.Shape[skip.Rank()-1] != hidden || skipRows == 0 || rows%skipRows != 0 ||
				!sameDims(skip.Shape[skip.Rank()-2:], x.Shape[x.Rank()-2:]...) {
				return nil, fmt.Errorf("%s: skip %v does not match input %v", op, skip.Shape, x.Shape)
			}
			gamma, err := optVec(in, 2, hidden, op, "gamma")
			if err != nil {
				return nil, err
			}
			var beta, bias []float32
			biasAt := 4
			if rms {
				biasAt = 3
			} else if beta, err = optVec(in, 3, hidden, op, "beta"); err != nil {
				return nil, err
			}
			if bias, err = optVec(in, biasAt, hidden, op, "bias"); err != nil {
				return nil, err
			}
			statShape := append(append([]int(nil), x.Shape[:x.Rank()-1]...), 1)
			out := ctx.Float32(x.Shape)
			meanT, invT := graph.NewTensor(graph.Float, statShape), graph.NewTensor(graph.Float, statShape)
			sum := ctx.Float32(x.Shape)
			xd, sd, od, md, id := x.Float32s(), skip.Float32s(), out.Float32s(), meanT.Float32s(), invT.Float32s()
			ssum := sum.Float32s()
			parallelFor(threadsFor(ctx, x.Len(), 1<<14), rows, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					s := ssum[r*hidden : (r+1)*hidden]
					sr := r % skipRows
					vec.Add(s, xd[r*hidden:(r+1)*hidden], sd[sr*hidden:(sr+1)*hidden])
					if bias != nil {
						vec.Add(s, s, bias)
					}
					mean, inv := rowNorm(od[r*hidden:(r+1)*hidden], s, gamma, beta, eps, rms)
					md[r], id[r] = float32(mean), float32(inv)
				}
			})
			return []*graph.Tensor{out, meanT, invT, sum}, nil
		}), nil
	}
}

// newRMSNorm: Y = X / sqrt(mean(X^2 over the axes from axis on) + eps) * scale;
// SimplifiedLayerNormalization may also output inv_std_var.
func newRMSNorm(op string) Factory {
	return func(ni *NodeInfo) (Kernel, error) {
		a := attrsOf(ni.Node)
		axis := a.Int("axis", -1)
		eps := float64(a.Float("epsilon", 1e-5))
		stash := a.Int("stash_type", 1)
		if a.err != nil {
			return nil, a.err
		}
		if stash != 1 {
			return nil, fmt.Errorf("%s: stash_type %d is not supported (1: float32)", op, stash)
		}
		return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
			if err := need(in, 2); err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			x := in[0]
			if err := wantFloat(x, op+" input"); err != nil {
				return nil, err
			}
			if err := wantFloat(in[1], op+" scale"); err != nil {
				return nil, err
			}
			ax, err := normAxis(axis, x.Rank())
			if err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			norm := x.Shape[ax:]
			rows, cols := graph.Numel(x.Shape[:ax]), graph.Numel(norm)
			if !broadcastsTo(in[1].Shape, norm) {
				return nil, fmt.Errorf("%s: scale %v does not broadcast to the normalized shape %v", op, in[1].Shape, norm)
			}
			scale, scratch := normParam(ctx, in[1], norm)
			if scratch {
				defer ctx.Release(scale)
			}
			out := ctx.Float32(x.Shape)
			statShape := append([]int(nil), x.Shape...)
			for i := ax; i < len(statShape); i++ {
				statShape[i] = 1
			}
			invT := graph.NewTensor(graph.Float, statShape)
			xd, od, id := x.Float32s(), out.Float32s(), invT.Float32s()
			parallelFor(threadsFor(ctx, x.Len(), 1<<14), rows, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					_, inv := rowNorm(od[r*cols:(r+1)*cols], xd[r*cols:(r+1)*cols], scale, nil, eps, true)
					id[r] = float32(inv)
				}
			})
			return []*graph.Tensor{out, invT}, nil
		}), nil
	}
}

// newEmbedLayerNorm is BERT/GPT-2's fused embedding layer. Inputs: input_ids
// (B, S) int32, segment_ids (optional), word_embedding (V, H),
// position_embedding (P, H), segment_embedding (optional), gamma, beta, mask
// (optional, (B, S) int32) and position_ids (optional, (B, S) or (1, S) int32;
// positions 0..S-1 when absent). Outputs: the layer-normalized sum (B, S, H),
// mask_index (B) int32 (the number of ones in each mask row, 0 without a
// mask) and, optionally, the sum before normalization.
func newEmbedLayerNorm(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	eps := float64(a.Float("epsilon", 1e-12))
	if a.err != nil {
		return nil, a.err
	}
	const op = "EmbedLayerNormalization"
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if len(in) < 7 || in[0] == nil || in[2] == nil || in[3] == nil || in[5] == nil || in[6] == nil {
			return nil, fmt.Errorf("%s: input_ids, word_embedding, position_embedding, gamma and beta are required", op)
		}
		ids := in[0]
		if ids.DType != graph.Int32 || ids.Rank() != 2 {
			return nil, fmt.Errorf("%s: input_ids are %s%v, want int32 (batch, sequence)", op, ids.DType.Short(), ids.Shape)
		}
		b, s := ids.Shape[0], ids.Shape[1]
		table := func(i int, what string) (*graph.Tensor, error) {
			t := in[i]
			if t.DType != graph.Float || t.Rank() != 2 {
				return nil, fmt.Errorf("%s: %s is %s%v, want float32 (rows, hidden)", op, what, t.DType.Short(), t.Shape)
			}
			return t, nil
		}
		word, err := table(2, "word_embedding")
		if err != nil {
			return nil, err
		}
		hidden := word.Shape[1]
		pos, err := table(3, "position_embedding")
		if err != nil {
			return nil, err
		}
		var seg *graph.Tensor
		var segIDs []int32
		if len(in) > 4 && in[4] != nil {
			if seg, err = table(4, "segment_embedding"); err != nil {
				return nil, err
			}
			if in[1] == nil || in[1].DType != graph.Int32 || !sameDims(in[1].Shape, b, s) {
				return nil, fmt.Errorf("%s: segment_embedding needs segment_ids int32 [%d, %d]", op, b, s)
			}
			segIDs = in[1].Data().([]int32)
		}
		for _, t := range []*graph.Tensor{pos, seg} {
			if t != nil && t.Shape[1] != hidden {
				return nil, fmt.Errorf("%s: embeddings have hidden sizes %d and %d", op, hidden, t.Shape[1])
			}
		}
		gamma, err := optVec(in, 5, hidden, op, "gamma")
		if err != nil {
			return nil, err
		}
		beta, err := optVec(in, 6, hidden, op, "beta")
		if err != nil {
			return nil, err
		}
		var posIDs []int32
		posBatch := false
		if len(in) > 8 && in[8] != nil {
			p := in[8]
			if p.DType != graph.Int32 || !(sameDims(p.Shape, b, s) || sameDims(p.Shape, 1, s)) {
				return nil, fmt.Errorf("%s: position_ids are %s%v, want int32 [%d, %d] or [1, %d]", op, p.DType.Short(), p.Shape, b, s, s)
			}
			posIDs, posBatch = p.Data().([]int32), p.Shape[0] == b && b > 1
		}
		maskIndex := graph.NewTensor(graph.Int32, []int{b})
		if len(in) > 7 && in[7] != nil {
			m := in[7]
			if m.DType != graph.Int32 || !sameDims(m.Shape, b, s) {
				return nil, fmt.Errorf("%s: mask is %s%v, want int32 [%d, %d]", op, m.DType.Short(), m.Shape, b, s)
			}
			md, mi := m.Data().([]int32), maskIndex.Data().([]int32)
			for i := 0; i < b; i++ {
				for _, v := range md[i*s : (i+1)*s] {
					if v != 0 {
						mi[i]++
					}
				}
			}
		}
		idd := ids.Data().([]int32)
		wd, pd := word.Float32s(), pos.Float32s()
		lookup := func(what string, id int32, rows int) (int, error) {
			if id < 0 || int(id) >= rows {
				return 0, fmt.Errorf("%s: %s %d is out of range [0, %d)", op, what, id, rows)
			}
			return int(id) * hidden, nil
		}
		out, sum := ctx.Float32([]int{b, s, hidden}), ctx.Float32([]int{b, s, hidden})
		od, sd := out.Float32s(), sum.Float32s()
		for r := 0; r < b*s; r++ {
			dst := sd[r*hidden : (r+1)*hidden]
			wo, err := lookup("input id", idd[r], word.Shape[0])
			if err != nil {
				return nil, err
			}
			p := int32(r % s)
			if posIDs != nil {
				if posBatch {
					p = posIDs[r]
				} else {
					p = posIDs[r%s]
				}
			}
			po, err := lookup("position id", p, pos.Shape[0])
			if err != nil {
				return nil, err
			}
			vec.Add(dst, wd[wo:wo+hidden], pd[po:po+hidden])
			if seg != nil {
				so, err := lookup("segment id", segIDs[r], seg.Shape[0])
				if err != nil {
					return nil, err
				}
				vec.Add(dst, dst, seg.Float32s()[so:so+hidden])
			}
			rowNorm(od[r*hidden:(r+1)*hidden], dst, gamma, beta, eps, false)
		}
		return []*graph.Tensor{out, maskIndex, sum}, nil
	}), nil
}
