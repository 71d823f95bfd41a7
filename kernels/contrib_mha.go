package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

// ---- com.microsoft MultiHeadAttention ----
//
// Attention on already projected Q, K and V, in one of the layouts ONNX
// Runtime's fusions write:
//   query (B, S, D), key (B, L, D), value (B, L, Dv)     separate projections
//   query (B, S, N, 3, H), no key or value               packed QKV
//   query (B, S, D), key (B, L, N, 2, H), no value       packed KV
//   query (B, S, D), key and value (B, N, L, H)          precomputed cross-attention K/V
// bias (D + D + Dv) is added to the projections (not to precomputed K/V).
// past_key/past_value (B, N, P, H) are prepended to K and V, and the results
// are present_key/present_value (B, N, P+L, H). key_padding_mask takes the
// Attention mask forms over the P+L keys; unidirectional masks keys after
// each query's position (the queries being the last S of the P+L).

type mhaKernel struct {
	heads      int
	causal     bool
	maskFilter float32
	scale      float32
}

// headAttrs reads the attributes the com.microsoft attention ops share:
// num_heads (required, positive), unidirectional, mask_filter_value and
// scale.
func headAttrs(op string, a *attrs) (heads int, causal bool, maskFilter, scale float32, err error) {
	heads, causal = int(a.Int("num_heads", 0)), a.Int("unidirectional", 0) != 0
	maskFilter, scale = a.Float("mask_filter_value", -10000), a.Float("scale", 0)
	if a.err != nil {
		return 0, false, 0, 0, a.err
	}
	if heads <= 0 {
		return 0, false, 0, 0, fmt.Errorf("%s: num_heads must be a positive integer", op)
	}
	return heads, causal, maskFilter, scale, nil
}

func newMHA(ni *NodeInfo) (Kernel, error) {
	k := &mhaKernel{}
	var err error
	if k.heads, k.causal, k.maskFilter, k.scale, err = headAttrs("MultiHeadAttention", attrsOf(ni.Node)); err != nil {
		return nil, err
	}
	if len(ni.Node.Outputs) > 3 && ni.Node.Outputs[3] != nil {
		return nil, fmt.Errorf("MultiHeadAttention: the qk output is not supported")
	}
	return k, nil
}

func (k *mhaKernel) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	const op = "MultiHeadAttention"
	if err := need(in, 1); err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	get := func(i int) *graph.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	query, key, value, bias := get(0), get(1), get(2), get(3)
	for i, t := range []*graph.Tensor{query, key, value, bias, get(5), get(6), get(7)} {
		if t != nil && t.DType != graph.Float {
			return nil, fmt.Errorf("%s: input %d is %s, want float32", op, []int{0, 1, 2, 3, 5, 6, 7}[i], t.DType.Short())
		}
	}
	if get(8) != nil || get(9) != nil {
		return nil, fmt.Errorf("%s: past_sequence_length and cache_indirection (shared KV buffers, beam search) are not supported", op)
	}
	n := k.heads
	var b, s, l, h, hv int
	var q, newK, newV []float32
	precomputed := false
	biasOf := func(off, width int) []float32 {
		if bias == nil {
			return nil
		}
		return bias.Float32s()[off : off+width]
	}
	switch {
	case query.Rank() == 5 && key == nil && value == nil: // packed QKV (B, S, N, 3, H)
		if query.Shape[2] != n || query.Shape[3] != 3 {
			return nil, fmt.Errorf("%s: packed QKV %v, want (batch, sequence, %d, 3, head size)", op, query.Shape, n)
		}
		b, s, h = query.Shape[0], query.Shape[1], query.Shape[4]
		l, hv = s, h
		if bias != nil && bias.Len() != 3*n*h {
			return nil, fmt.Errorf("%s: bias has %d values, want %d", op, bias.Len(), 3*n*h)
		}
		src := query.Float32s()
		q, newK, newV = make([]float32, b*n*s*h), make([]float32, b*n*s*h), make([]float32, b*n*s*h)
		toBNSH(q, src, b, s, n, h, n*3*h, 3*h, 0)
		toBNSH(newK, src, b, s, n, h, n*3*h, 3*h, h)
		toBNSH(newV, src, b, s, n, h, n*3*h, 3*h, 2*h)
		addHeadBias(q, biasOf(0, n*h), b, n, s, h)
		addHeadBias(newK, biasOf(n*h, n*h), b, n, s, h)
		addHeadBias(newV, biasOf(2*n*h, n*h), b, n, s, h)
	case query.Rank() == 3 && key != nil:
		b, s = query.Shape[0], query.Shape[1]
		d := query.Shape[2]
		if d%n != 0 {
			return nil, fmt.Errorf("%s: query hidden size %d is not divisible by num_heads %d", op, d, n)
		}
		h = d / n
		q = make([]float32, b*n*s*h)
		toBNSH(q, query.Float32s(), b, s, n, h, d, h, 0)
		switch {
		case key.Rank() == 5 && value == nil: // packed KV (B, L, N, 2, H)
			if key.Shape[0] != b || key.Shape[2] != n || key.Shape[3] != 2 || key.Shape[4] != h {
				return nil, fmt.Errorf("%s: packed KV %v, want (%d, kv sequence, %d, 2, %d)", op, key.Shape, b, n, h)
			}
			l, hv = key.Shape[1], h
			newK, newV = make([]float32, b*n*l*h), make([]float32, b*n*l*h)
			toBNSH(newK, key.Float32s(), b, l, n, h, n*2*h, 2*h, 0)
			toBNSH(newV, key.Float32s(), b, l, n, h, n*2*h, 2*h, h)
		case key.Rank() == 3 && value != nil && value.Rank() == 3:
			if key.Shape[0] != b || key.Shape[2] != d || value.Shape[0] != b || value.Shape[1] != key.Shape[1] || value.Shape[2]%n != 0 {
				return nil, fmt.Errorf("%s: key %v and value %v do not fit query %v", op, key.Shape, value.Shape, query.Shape)
			}
			l, hv = key.Shape[1], value.Shape[2]/n
			newK, newV = make([]float32, b*n*l*h), make([]float32, b*n*l*hv)
			toBNSH(newK, key.Float32s(), b, l, n, h, d, h, 0)
			toBNSH(newV, value.Float32s(), b, l, n, hv, n*hv, hv, 0)
		case key.Rank() == 4 && value != nil && value.Rank() == 4:
			if !sameDims(key.Shape[:2], b, n) || key.Shape[3] != h || !sameDims(value.Shape[:3], key.Shape[:3]...) {
				return nil, fmt.Errorf("%s: precomputed key %v and value %v, want (%d, %d, kv sequence, %d)", op, key.Shape, value.Shape, b, n, h)
			}
			l, hv = key.Shape[2], value.Shape[3]
			newK, newV = key.Float32s(), value.Float32s()
			precomputed = true
		default:
			return nil, fmt.Errorf("%s: key %v / value shapes are not a supported layout", op, key.Shape)
		}
		if bias != nil {
			if bias.Len() != 2*d+n*hv {
				return nil, fmt.Errorf("%s: bias has %d values, want %d", op, bias.Len(), 2*d+n*hv)
			}
			addHeadBias(q, biasOf(0, d), b, n, s, h)
			if !precomputed {
				addHeadBias(newK, biasOf(d, d), b, n, l, h)
				addHeadBias(newV, biasOf(2*d, n*hv), b, n, l, hv)
			}
		}
	default:
		return nil, fmt.Errorf("%s: query %v is neither (batch, sequence, hidden) with a key nor packed QKV (batch, sequence, heads, 3, head size)", op, query.Shape)
	}
	pastK, pastV := get(6), get(7)
	p := 0
	if (pastK == nil) != (pastV == nil) {
		return nil, fmt.Errorf("%s: past_key and past_value go together", op)
	}
	if pastK != nil {
		if precomputed {
			return nil, fmt.Errorf("%s: a past state with precomputed (4-D) key and value is not supported", op)
		}
		p = pastK.Shape[2]
		if pastK.Rank() != 4 || !sameDims(pastK.Shape, b, n, p, h) || !sameDims(pastV.Shape, b, n, p, hv) {
			return nil, fmt.Errorf("%s: past_key %v and past_value %v, want (%d, %d, past, %d) and (..., %d)", op, pastK.Shape, pastV.Shape, b, n, h, hv)
		}
	}
	tot := p + l
	presentK, presentV := ctx.Float32([]int{b, n, tot, h}), ctx.Float32([]int{b, n, tot, hv})
	var pk, pv []float32
	if pastK != nil {
		pk, pv = pastK.Float32s(), pastV.Float32s()
	}
	withPast(presentK.Float32s(), pk, newK, b, n, p, l, h)
	withPast(presentV.Float32s(), pv, newV, b, n, p, l, hv)
	kAll, vAll := presentK.Float32s(), presentV.Float32s()
	m, err := keyMask(op, get(4), k.causal, b, s, tot-s, tot, k.maskFilter)
	if err != nil {
		return nil, err
	}
	abias := get(5)
	if abias != nil {
		if err := checkAttnBias(op, abias, b, n, s, tot); err != nil {
			return nil, err
		}
	}
	at := &sdpa{b: b, nq: n, nkv: n, s: s, t: tot, h: h, hv: hv, q: q, k: kAll, v: vAll, scale: defaultScale(k.scale, h)}
	at.prep = maskAndBias(m, abias, s*tot)
	if k.causal && get(4) == nil && abias == nil && k.maskFilter <= -1e4 {
		// Keys after the diagonal only get mask_filter_value, whose
		// exponential underflows to 0: multiplying them changes nothing.
		at.visible = func(_, i int) int { return tot - s + i + 1 }
	}
	out := ctx.Float32([]int{b, s, n * hv})
	at.run(ctx, out.Float32s(), true)
	return []*graph.Tensor{out, presentK, presentV}, nil
}

// addHeadBias adds a per-hidden-unit bias (N*H values) to head-major (B, N, S, H) x.
func addHeadBias(x, bias []float32, b, n, s, h int) {
	if bias == nil {
		return
	}
	for bn := 0; bn < b*n; bn++ {
		hb := bias[(bn%n)*h : (bn%n+1)*h]
		for si := 0; si < s; si++ {
			row := x[(bn*s+si)*h : (bn*s+si+1)*h]
			for i := range row {
				row[i] += hb[i]
			}
		}
	}
}

func init() {
	Register("com.microsoft", "MultiHeadAttention", 1, newMHA)
}
