package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- com.microsoft GroupQueryAttention ----
//
// Decoder self attention with a KV cache and fewer KV heads than query heads.
// query (B, S, N*H) with key and value (B, S, Nkv*H), or packed QKV
// (B, S, (N + 2 Nkv) H) without them. seqlens_k[b] + 1 is sequence b's total
// length T_b (past + new) and total_sequence_length the longest; the call is
// the first prompt when S equals total_sequence_length, else the new tokens
// follow T_b - S cached ones. past_key/past_value (B, Nkv, P, H) hold the
// cache; present_key/present_value are the cache with the new keys appended,
// max(total_sequence_length, P) long. Each query attends causally (keys up to
// its own position), within the last local_window_size keys when that is set,
// or, with causal 0, to all of its sequence's T_b keys.
// With do_rotary the new queries and keys are rotated first by their
// positions (position_ids, or their place in the sequence) using cos_cache
// and sin_cache. softcap squashes the scaled logits to softcap tanh(x/softcap)
// before attention_bias is added; smooth_softmax and head_sink add one more
// logit (0, or the head's sink) to the softmax denominator.

type gqaKernel struct {
	heads, kvHeads   int
	scale, softcap   float32
	window           int
	rotary, rotInter bool
	smooth, causal   bool
	qkOut            int64
	quantK, quantV   string
	slidingCache     int64
}

func newGQA(ni *NodeInfo) (Kernel, error) {
	const op = "GroupQueryAttention"
	a := attrsOf(ni.Node)
	k := &gqaKernel{
		heads:        int(a.Int("num_heads", 0)),
		kvHeads:      int(a.Int("kv_num_heads", 0)),
		scale:        a.Float("scale", 0),
		softcap:      a.Float("softcap", 0),
		window:       int(a.Int("local_window_size", -1)),
		rotary:       a.Int("do_rotary", 0) != 0,
		rotInter:     a.Int("rotary_interleaved", 0) != 0,
		smooth:       a.Int("smooth_softmax", 0) != 0,
		causal:       a.Int("causal", 1) != 0,
		qkOut:        a.Int("qk_output", 0),
		quantK:       a.String("k_quant_type", "NONE"),
		quantV:       a.String("v_quant_type", "NONE"),
		slidingCache: a.Int("sliding_window_cache", 0),
	}
	if a.err != nil {
		return nil, a.err
	}
	switch {
	case k.heads <= 0 || k.kvHeads <= 0 || k.heads%k.kvHeads != 0:
		return nil, fmt.Errorf("%s: num_heads %d must be a positive multiple of kv_num_heads %d", op, k.heads, k.kvHeads)
	case !k.causal && k.window != -1:
		return nil, fmt.Errorf("%s: local_window_size must be -1 when causal is 0", op)
	case k.qkOut != 0:
		return nil, fmt.Errorf("%s: qk_output is not supported", op)
	case k.quantK != "NONE" || k.quantV != "NONE":
		return nil, fmt.Errorf("%s: quantized KV caches (%s, %s) are not supported", op, k.quantK, k.quantV)
	case k.slidingCache != 0:
		return nil, fmt.Errorf("%s: sliding_window_cache is not supported", op)
	case k.softcap < 0:
		return nil, fmt.Errorf("%s: softcap %g must not be negative", op, k.softcap)
	}
	return k, nil
}

func (k *gqaKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	const op = "GroupQueryAttention"
	get := func(i int) *graph.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	query, key, value := get(0), get(1), get(2)
	pastK, pastV, seqlens, totalT := get(3), get(4), get(5), get(6)
	if query == nil || seqlens == nil || totalT == nil {
		return nil, fmt.Errorf("%s: query, seqlens_k and total_sequence_length are required", op)
	}
	for i := 12; i < 16; i++ {
		if get(i) != nil {
			return nil, fmt.Errorf("%s: input %d (KV cache scales, Q/K norm weights) is not supported", op, i)
		}
	}
	if query.DType != graph.Float || query.Rank() != 3 {
		return nil, fmt.Errorf("%s: query is %s%v, want float32 (batch, sequence, hidden)", op, query.DType.Short(), query.Shape)
	}
	n, nkv := k.heads, k.kvHeads
	b, s, width := query.Shape[0], query.Shape[1], query.Shape[2]
	var h int
	var q, newK, newV []float32
	if key == nil && value == nil {
		if width%(n+2*nkv) != 0 {
			return nil, fmt.Errorf("%s: packed QKV width %d is not (num_heads + 2 kv_num_heads) x head size", op, width)
		}
		h = width / (n + 2*nkv)
		q, newK, newV = make([]float32, b*n*s*h), make([]float32, b*nkv*s*h), make([]float32, b*nkv*s*h)
		toBNSH(q, query.Float32s(), b, s, n, h, width, h, 0)
		toBNSH(newK, query.Float32s(), b, s, nkv, h, width, h, n*h)
		toBNSH(newV, query.Float32s(), b, s, nkv, h, width, h, (n+nkv)*h)
	} else {
		if key == nil || value == nil || width%n != 0 {
			return nil, fmt.Errorf("%s: key and value go together, and the query width %d must split into %d heads", op, width, n)
		}
		h = width / n
		for _, t := range []*graph.Tensor{key, value} {
			if t.DType != graph.Float || !sameDims(t.Shape, b, s, nkv*h) {
				return nil, fmt.Errorf("%s: key/value is %s%v, want float32 [%d, %d, %d]", op, t.DType.Short(), t.Shape, b, s, nkv*h)
			}
		}
		q, newK, newV = make([]float32, b*n*s*h), make([]float32, b*nkv*s*h), make([]float32, b*nkv*s*h)
		toBNSH(q, query.Float32s(), b, s, n, h, width, h, 0)
		toBNSH(newK, key.Float32s(), b, s, nkv, h, nkv*h, h, 0)
		toBNSH(newV, value.Float32s(), b, s, nkv, h, nkv*h, h, 0)
	}
	if seqlens.DType != graph.Int32 || seqlens.Len() != b || totalT.DType != graph.Int32 || totalT.Len() != 1 {
		return nil, fmt.Errorf("%s: seqlens_k (%s%v) must be int32 [%d] and total_sequence_length (%s%v) one int32", op, seqlens.DType.Short(), seqlens.Shape, b, totalT.DType.Short(), totalT.Shape)
	}
	lens, total := seqlens.Data().([]int32), int(totalT.Data().([]int32)[0])
	pastLen := 0
	if (pastK == nil) != (pastV == nil) {
		return nil, fmt.Errorf("%s: past_key and past_value go together", op)
	}
	if pastK != nil {
		pastLen = pastK.Shape[2]
		if pastK.DType != graph.Float || pastK.Rank() != 4 || !sameDims(pastK.Shape, b, nkv, pastLen, h) || !sameDims(pastV.Shape, pastK.Shape...) || pastV.DType != graph.Float {
			return nil, fmt.Errorf("%s: past_key %v and past_value %v, want float32 [%d, %d, past, %d]", op, pastK.Shape, pastV.Shape, b, nkv, h)
		}
	}
	first := s == total
	cacheLen := max(total, pastLen)
	// past[b]: how many cached keys sequence b keeps before its new ones.
	past := make([]int, b)
	for bi, l := range lens {
		tb := int(l) + 1
		if tb < 1 || tb > cacheLen || (!first && tb < s) {
			return nil, fmt.Errorf("%s: seqlens_k[%d] = %d does not fit %d new tokens and a cache of %d", op, bi, l, s, cacheLen)
		}
		if !first {
			past[bi] = tb - s
			if past[bi] > pastLen {
				return nil, fmt.Errorf("%s: sequence %d needs %d cached keys, past_key holds %d", op, bi, past[bi], pastLen)
			}
		}
	}
	if k.rotary {
		if err := k.rotate(q, newK, get(7), get(8), get(9), b, s, h, past, first); err != nil {
			return nil, err
		}
	}
	presentK, presentV := ctx.New(graph.Float, []int{b, nkv, cacheLen, h}), ctx.New(graph.Float, []int{b, nkv, cacheLen, h})
	pkd, pvd := presentK.Float32s(), presentV.Float32s()
	for bi := 0; bi < b; bi++ {
		for g := 0; g < nkv; g++ {
			bg := bi*nkv + g
			dk, dv := pkd[bg*cacheLen*h:], pvd[bg*cacheLen*h:]
			if pastK != nil && past[bi] > 0 {
				copy(dk[:past[bi]*h], pastK.Float32s()[bg*pastLen*h:])
				copy(dv[:past[bi]*h], pastV.Float32s()[bg*pastLen*h:])
			}
			copy(dk[past[bi]*h:(past[bi]+s)*h], newK[bg*s*h:(bg+1)*s*h])
			copy(dv[past[bi]*h:(past[bi]+s)*h], newV[bg*s*h:(bg+1)*s*h])
		}
	}
	abias := get(10)
	if abias != nil {
		if err := checkAttnBias(op, abias, b, n, s, cacheLen); err != nil {
			return nil, err
		}
	}
	sink := get(11)
	if sink != nil && (sink.DType != graph.Float || sink.Len() != n) {
		return nil, fmt.Errorf("%s: head_sink is %s%v, want %d float32 values", op, sink.DType.Short(), sink.Shape, n)
	}
	negInf := float32(math.Inf(-1))
	at := &sdpa{b: b, nq: n, nkv: nkv, s: s, t: cacheLen, h: h, hv: h, q: q, k: pkd, v: pvd, scale: defaultScale(k.scale, h)}
	at.prep = func(bi, ni int, sc []float32) {
		if k.softcap > 0 {
			vec.MulScalar(sc, sc, 1/k.softcap)
			vec.Tanh(sc, sc)
			vec.MulScalar(sc, sc, k.softcap)
		}
		if abias != nil {
			addAttnBias(sc, abias, bi, ni)
		}
		tb := int(lens[bi]) + 1
		for i := 0; i < s; i++ {
			row := sc[i*cacheLen : (i+1)*cacheLen]
			end := tb // keys [start, end) are visible
			if k.causal {
				end = min(past[bi]+i+1, tb)
			}
			start := 0
			if k.window >= 0 && end > k.window {
				start = end - k.window
			}
			for j := range row {
				if j < start || j >= end {
					row[j] = negInf
				}
			}
		}
	}
	at.visible = func(bi, i int) int {
		if !k.causal {
			return int(lens[bi]) + 1
		}
		return min(past[bi]+i+1, int(lens[bi])+1)
	}
	switch {
	case sink != nil:
		sd := sink.Float32s()
		at.sink = func(ni int) float32 { return sd[ni] }
	case k.smooth:
		at.sink = func(int) float32 { return 0 }
	}
	out := ctx.Float32([]int{b, s, n * h})
	at.run(ctx, out.Float32s(), true)
	return []*graph.Tensor{out, presentK, presentV}, nil
}

// rotate applies RoPE to the new queries and keys (head-major) at their
// positions: past[b].. (0.. on the first prompt), or from position_ids when
// given (of which the first prompt reads only the first element, counting
// on from it for every sequence).
func (k *gqaKernel) rotate(q, newK []float32, cos, sin, pos *graph.Tensor, b, s, h int, past []int, first bool) error {
	const op = "GroupQueryAttention"
	if cos == nil || sin == nil {
		return fmt.Errorf("%s: do_rotary needs cos_cache and sin_cache", op)
	}
	if err := checkCaches(op, cos, sin, 2); err != nil {
		return err
	}
	half := cos.Shape[1]
	if 2*half > h {
		return fmt.Errorf("%s: cos cache width %d is more than half the head size %d", op, half, h)
	}
	var pd []int64
	if pos != nil {
		if pos.DType != graph.Int64 || !sameDims(pos.Shape, b, s) {
			return fmt.Errorf("%s: position_ids are %s%v, want int64 [%d, %d]", op, pos.DType.Short(), pos.Shape, b, s)
		}
		pd = pos.Int64s()
	}
	rows := cos.Shape[0]
	row := func(bi, si int) (int, error) {
		p := int64(past[bi] + si)
		switch {
		case pd != nil && first:
			p = pd[0] + int64(si) // the first prompt reads only the first position id
		case pd != nil:
			p = pd[bi*s+si]
		}
		if p < 0 || p >= int64(rows) {
			return 0, fmt.Errorf("%s: position %d is outside the rotary caches' %d rows", op, p, rows)
		}
		return int(p), nil
	}
	cd, sd := cos.Float32s(), sin.Float32s()
	if err := (ropeLayout{b: b, s: s, n: k.heads, h: h, headsFirst: true, interleaved: k.rotInter}).apply(q, q, cd, sd, half, row); err != nil {
		return err
	}
	return ropeLayout{b: b, s: s, n: k.kvHeads, h: h, headsFirst: true, interleaved: k.rotInter}.apply(newK, newK, cd, sd, half, row)
}

func init() {
	Register("com.microsoft", "GroupQueryAttention", 1, newGQA)
}
