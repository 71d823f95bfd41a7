package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- ONNX Attention (opset 23) ----
//
// Scaled dot-product attention on Q (B, Nq, S, H), K (B, Nkv, L, H) and
// V (B, Nkv, L, Hv), or their 3-D forms (B, S, Nq*H) with q_num_heads and
// kv_num_heads given. past_key/past_value (B, Nkv, P, H) are prepended along
// the sequence and returned as present_key/present_value. The logits are
//   scale * Q K^T                      (qk_matmul_output_mode 0)
//   + attn_mask, + the causal mask     (mode 1)
//   softcap * tanh(x / softcap)        (mode 2, when softcap > 0)
//   softmax                            (mode 3)
// except that ONNX Runtime, whose results we match, caps scale * Q K^T before
// it adds the masks: its mode 1 output is the capped logits without the
// masks, mode 2 the capped logits plus the masks (the softmax input).
// A boolean attn_mask keeps keys where it is true (-Inf elsewhere); a float
// one is added; both broadcast to (B, Nq, S, P+L). is_causal hides keys after
// each query's position, the queries being the last S of the P+L positions.
// nonpad_kv_seqlen (opset 24) hides the keys of sequence b from nonpad[b] on.
// Y is (B, Nq, S, Hv), or (B, S, Nq*Hv) for 3-D inputs.

type onnxAttention struct {
	causal          bool
	qHeads, kvHeads int
	qkMode          int64
	scale, softcap  float32
	wantQK          bool
}

func newONNXAttention(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	k := &onnxAttention{
		causal:  a.Int("is_causal", 0) != 0,
		qHeads:  int(a.Int("q_num_heads", 0)),
		kvHeads: int(a.Int("kv_num_heads", 0)),
		qkMode:  a.Int("qk_matmul_output_mode", 0),
		scale:   a.Float("scale", 0),
		softcap: a.Float("softcap", 0),
	}
	a.Int("softmax_precision", 1) // float32 throughout, whatever it asks
	if a.err != nil {
		return nil, a.err
	}
	k.wantQK = len(ni.Node.Outputs) > 3 && ni.Node.Outputs[3] != nil
	if k.qkMode < 0 || k.qkMode > 3 {
		return nil, fmt.Errorf("Attention: qk_matmul_output_mode %d must be 0..3", k.qkMode)
	}
	return k, nil
}

// heads4 returns a 3- or 4-D Q/K/V as head-major data with its (batch, heads,
// sequence, head size).
func heads4(t *graph.Tensor, heads int, what string) ([]float32, [4]int, error) {
	var d [4]int
	if t.DType != graph.Float {
		return nil, d, fmt.Errorf("Attention: %s is %s, want float32", what, t.DType.Short())
	}
	switch t.Rank() {
	case 4:
		copy(d[:], t.Shape)
		return t.Float32s(), d, nil
	case 3:
		if heads <= 0 || t.Shape[2]%heads != 0 {
			return nil, d, fmt.Errorf("Attention: 3-D %s %v needs a num_heads attribute that divides its hidden size", what, t.Shape)
		}
		d = [4]int{t.Shape[0], heads, t.Shape[1], t.Shape[2] / heads}
		out := make([]float32, t.Len())
		toBNSH(out, t.Float32s(), d[0], d[2], d[1], d[3], t.Shape[2], d[3], 0)
		return out, d, nil
	}
	return nil, d, fmt.Errorf("Attention: %s %v must be 3-D or 4-D", what, t.Shape)
}

func (k *onnxAttention) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	const op = "Attention"
	if err := need(in, 3); err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	get := func(i int) *graph.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	q, qd, err := heads4(in[0], k.qHeads, "Q")
	if err != nil {
		return nil, err
	}
	kk, kd, err := heads4(in[1], k.kvHeads, "K")
	if err != nil {
		return nil, err
	}
	v, vd, err := heads4(in[2], k.kvHeads, "V")
	if err != nil {
		return nil, err
	}
	b, nq, s, h := qd[0], qd[1], qd[2], qd[3]
	nkv, l, hv := kd[1], kd[2], vd[3]
	if kd[0] != b || vd[0] != b || kd[3] != h || vd[1] != nkv || vd[2] != l || nkv == 0 || nq%nkv != 0 {
		return nil, fmt.Errorf("%s: Q %v, K %v and V %v do not fit (same batch, head size of Q and K, query heads a multiple of KV heads)", op, in[0].Shape, in[1].Shape, in[2].Shape)
	}
	pastK, pastV := get(4), get(5)
	if (pastK == nil) != (pastV == nil) {
		return nil, fmt.Errorf("%s: past_key and past_value go together", op)
	}
	p := 0
	var pk, pv []float32
	if pastK != nil {
		p = pastK.Shape[2]
		if pastK.DType != graph.Float || pastV.DType != graph.Float || !sameDims(pastK.Shape, b, nkv, p, h) || !sameDims(pastV.Shape, b, nkv, p, hv) {
			return nil, fmt.Errorf("%s: past_key %v and past_value %v, want float32 [%d, %d, past, %d] and [..., %d]", op, pastK.Shape, pastV.Shape, b, nkv, h, hv)
		}
		pk, pv = pastK.Float32s(), pastV.Float32s()
	}
	tot := p + l
	// nonpad_kv_seqlen (opset 24): keys at or past nonpad[b] are padding.
	var nonpad []int64
	if t := get(6); t != nil {
		if t.DType != graph.Int64 || !sameDims(t.Shape, b) {
			return nil, fmt.Errorf("%s: nonpad_kv_seqlen is %s%v, want int64 [%d]", op, t.DType.Short(), t.Shape, b)
		}
		nonpad = t.Int64s()
	}
	presentK, presentV := ctx.Float32([]int{b, nkv, tot, h}), ctx.Float32([]int{b, nkv, tot, hv})
	withPast(presentK.Float32s(), pk, kk, b, nkv, p, l, h)
	withPast(presentV.Float32s(), pv, v, b, nkv, p, l, hv)
	// The mask as float logits broadcast to (B or 1, Nq or 1, S, T).
	var mask []float32
	var mb, mn int
	if m := get(3); m != nil {
		full := []int{b, nq, s, tot}
		if m.Rank() > 4 || !broadcastsTo(m.Shape, full) {
			return nil, fmt.Errorf("%s: attn_mask %v does not broadcast to %v", op, m.Shape, full)
		}
		shape := append([]int{1, 1, 1, 1}[:4-m.Rank()], m.Shape...)
		mb, mn = shape[0], shape[1]
		bt := broadcastTo(m, []int{mb, mn, s, tot})
		switch m.DType {
		case graph.Bool:
			bd := bt.Data().([]bool)
			mask = make([]float32, len(bd))
			for i, keep := range bd {
				if !keep {
					mask[i] = float32(math.Inf(-1))
				}
			}
		case graph.Float:
			mask = bt.Float32s()
		default:
			return nil, fmt.Errorf("%s: attn_mask is %s, want bool or float32", op, m.DType.Short())
		}
	}
	var qk *graph.Tensor
	var qkd []float32
	at := &sdpa{b: b, nq: nq, nkv: nkv, s: s, t: tot, h: h, hv: hv, q: q, k: presentK.Float32s(), v: presentV.Float32s(), scale: defaultScale(k.scale, h)}
	if k.wantQK {
		qk = ctx.Float32([]int{b, nq, s, tot})
		qkd = qk.Float32s()
	}
	negInf := float32(math.Inf(-1))
	addMask := func(bi, ni int, sc []float32) {
		if mask != nil {
			off := ((bi%mb)*mn + ni%mn) * s * tot
			vec.Add(sc, sc, mask[off:off+s*tot])
		}
		if k.causal {
			for i := 0; i < s; i++ {
				for j := tot - s + i + 1; j < tot; j++ {
					sc[i*tot+j] = negInf
				}
			}
		}
		if nonpad != nil {
			for i := 0; i < s; i++ {
				for j := max(0, int(min(nonpad[bi], int64(tot)))); j < tot; j++ {
					sc[i*tot+j] = negInf
				}
			}
		}
	}
	at.prep = func(bi, ni int, sc []float32) {
		var dst []float32
		if qkd != nil {
			dst = qkd[(bi*nq+ni)*s*tot : (bi*nq+ni+1)*s*tot]
		}
		if dst != nil && k.qkMode == 0 {
			copy(dst, sc)
		}
		// ONNX Runtime caps the logits before it adds the mask (the spec's
		// function caps after); we follow the runtime the models are checked on.
		if k.softcap > 0 {
			vec.MulScalar(sc, sc, 1/k.softcap)
			vec.Tanh(sc, sc)
			vec.MulScalar(sc, sc, k.softcap)
		}
		if dst != nil && k.qkMode == 1 {
			copy(dst, sc)
		}
		addMask(bi, ni, sc)
		if dst != nil && k.qkMode == 2 {
			copy(dst, sc)
		}
	}
	if k.causal && qkd == nil {
		at.visible = func(_, i int) int { return tot - s + i + 1 }
	}
	if qkd != nil && k.qkMode == 3 {
		at.qk, at.qkSoftmax = qkd, true
	}
	var out *graph.Tensor
	if in[0].Rank() == 3 {
		out = ctx.Float32([]int{b, s, nq * hv})
	} else {
		out = ctx.Float32([]int{b, nq, s, hv})
	}
	at.run(ctx, out.Float32s(), in[0].Rank() == 3)
	return []*graph.Tensor{out, presentK, presentV, qk}, nil
}

// broadcastsTo reports whether shape broadcasts (numpy-style) to full.
func broadcastsTo(shape, full []int) bool {
	if len(shape) > len(full) {
		return false
	}
	for i := range shape {
		d, f := shape[len(shape)-1-i], full[len(full)-1-i]
		if d != f && d != 1 {
			return false
		}
	}
	return true
}

func init() {
	Register("", "Attention", 23, newONNXAttention)
}
