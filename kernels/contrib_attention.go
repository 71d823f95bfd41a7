package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/vec"
)

// ---- Scaled dot-product attention, shared by the attention ops ----
//
// Every attention op here reduces to: for each batch b and query head n,
//   P = softmax(prep(scale * Q[b,n] K[b,g]^T)),  O[b,n] = P V[b,g]
// where g = n / (Nq/Nkv) is the key/value head the query head reads (GQA
// shares each KV head among a group of query heads) and prep adds the op's
// masks and biases in the op's own order. Q, K and V are held head-major
// (B, N, S, H), the layout the KV caches use.

// sdpa is one attention computation over head-major Q, K and V.
type sdpa struct {
	b, nq, nkv, s, t, h, hv int
	q, k, v                 []float32
	scale                   float32
	// prep, when set, turns the scaled S x T scores of (b, n) into logits.
	prep func(b, n int, sc []float32)
	// sink, when set, is one more logit per head in the softmax denominator
	// only (smooth softmax: 0; GQA's head_sink: a learned value).
	sink func(n int) float32
	// qk, when set, receives the logits (before the softmax) as (B, Nq, S, T),
	// or the probabilities when qkSoftmax is set.
	qk        []float32
	qkSoftmax bool
	// visible, when set, is the end of the keys query i of batch b may see
	// (causal attention, with -Inf beyond it): only those are multiplied.
	visible func(b, i int) int
}

// causalChunk is how many query rows share one key range in causal attention.
const causalChunk = 32

// run writes O as (B, S, Nq, Hv) when bsnh is set, else as (B, Nq, S, Hv).
// The query heads that share a KV head are adjacent in Q, so each KV head's
// group is one (group*S) x T product: K and V are packed once per group.
func (a *sdpa) run(ctx *Context, out []float32, bsnh bool) {
	group := a.nq / a.nkv
	kvHeads := a.b * a.nkv
	rows := group * a.s
	inner := max(1, ctx.Threads/kvHeads) // few KV heads: the products split instead
	parallelFor(threadsFor(ctx, kvHeads*rows*a.t*(a.h+a.hv), 1<<15), kvHeads, func(lo, hi int) {
		sc := make([]float32, rows*a.t)
		o := make([]float32, rows*a.hv)
		for bg := lo; bg < hi; bg++ {
			b := bg / a.nkv
			bn0 := b*a.nq + (bg%a.nkv)*group // first query head of the group
			q := a.q[bn0*a.s*a.h : (bn0+group)*a.s*a.h]
			k := a.k[bg*a.t*a.h : (bg+1)*a.t*a.h]
			v := a.v[bg*a.t*a.hv : (bg+1)*a.t*a.hv]
			if a.visible == nil {
				gemm.Sgemm(rows, a.t, a.h, a.scale, gemm.Matrix{Data: q, Stride: a.h}, gemm.Matrix{Data: k, Stride: a.h, Trans: true}, 0, sc, a.t, inner)
			} else {
				for gi := 0; gi < group; gi++ {
					a.chunks(b, func(i0, i1, end int) {
						r0 := gi*a.s + i0
						gemm.Sgemm(i1-i0, end, a.h, a.scale, gemm.Matrix{Data: q[r0*a.h:], Stride: a.h}, gemm.Matrix{Data: k, Stride: a.h, Trans: true}, 0, sc[r0*a.t:], a.t, inner)
						for r := r0; r < r0+i1-i0; r++ {
							for j := r*a.t + end; j < (r+1)*a.t; j++ {
								sc[j] = negInf32
							}
						}
					})
				}
			}
			for gi := 0; gi < group; gi++ {
				bn := bn0 + gi
				n := bn % a.nq
				hs := sc[gi*a.s*a.t : (gi+1)*a.s*a.t]
				if a.prep != nil {
					a.prep(b, n, hs)
				}
				if a.qk != nil && !a.qkSoftmax {
					copy(a.qk[bn*a.s*a.t:], hs)
				}
				for i := 0; i < a.s; i++ {
					row := hs[i*a.t : (i+1)*a.t]
					if a.visible != nil { // past the chunk's end all is -Inf: probability 0
						end := a.chunkEnd(b, i)
						clear(row[end:])
						row = row[:end]
					}
					if a.sink != nil {
						sinkSoftmax(row, a.sink(n))
					} else {
						softmaxRow(row, row, false)
					}
				}
				if a.qk != nil && a.qkSoftmax {
					copy(a.qk[bn*a.s*a.t:], hs)
				}
			}
			if a.visible == nil {
				gemm.Sgemm(rows, a.hv, a.t, 1, gemm.Matrix{Data: sc, Stride: a.t}, gemm.Matrix{Data: v, Stride: a.hv}, 0, o, a.hv, inner)
			} else {
				for gi := 0; gi < group; gi++ {
					a.chunks(b, func(i0, i1, end int) {
						r0 := gi*a.s + i0
						gemm.Sgemm(i1-i0, a.hv, end, 1, gemm.Matrix{Data: sc[r0*a.t:], Stride: a.t}, gemm.Matrix{Data: v, Stride: a.hv}, 0, o[r0*a.hv:], a.hv, inner)
					})
				}
			}
			for gi := 0; gi < group; gi++ {
				bn := bn0 + gi
				n := bn % a.nq
				for i := 0; i < a.s; i++ {
					var dst []float32
					if bsnh {
						dst = out[((b*a.s+i)*a.nq+n)*a.hv:]
					} else {
						dst = out[(bn*a.s+i)*a.hv:]
					}
					copy(dst[:a.hv], o[(gi*a.s+i)*a.hv:(gi*a.s+i+1)*a.hv])
				}
			}
		}
	})
}

var negInf32 = float32(math.Inf(-1))

// chunkEnd is the end of the keys the chunk of query row i multiplies: the
// visible end of its last row, at least 1 and at most T.
func (a *sdpa) chunkEnd(b, i int) int {
	last := min((i/causalChunk+1)*causalChunk, a.s) - 1
	return min(max(a.visible(b, last), 1), a.t)
}

// chunks calls f for each chunk of query rows [i0, i1) with its key end.
func (a *sdpa) chunks(b int, f func(i0, i1, end int)) {
	for i0 := 0; i0 < a.s; i0 += causalChunk {
		f(i0, min(i0+causalChunk, a.s), a.chunkEnd(b, i0))
	}
}

// sinkSoftmax is softmax over x with one more logit, sink, counted in the
// denominator only: exp(x_i) / (exp(sink) + sum_j exp(x_j)).
func sinkSoftmax(x []float32, sink float32) {
	m := vec.MaxOf(x)
	m = max(m, sink)
	s := vec.ExpSum(x, x, m) + math.Exp(float64(sink-m))
	vec.MulScalar(x, x, float32(1/s))
}

// toBNSH gathers (B, S, N, H) values into head-major dst (B, N, S, H); the
// element (b, s, n, d) is read at src[(b*S+s)*rowStride + off + n*headStride + d],
// which covers plain (B, S, N*H) tensors and heads inside packed QKV rows.
func toBNSH(dst, src []float32, b, s, n, h, rowStride, headStride, off int) {
	for bi := 0; bi < b; bi++ {
		for ni := 0; ni < n; ni++ {
			for si := 0; si < s; si++ {
				from := (bi*s+si)*rowStride + off + ni*headStride
				copy(dst[((bi*n+ni)*s+si)*h:][:h], src[from:from+h])
			}
		}
	}
}

// withPast returns the present cache (B, N, P+S, H): the past rows of each head
// followed by the new ones. past may be nil (P = 0).
func withPast(dst, past, cur []float32, b, n, p, s, h int) {
	for bn := 0; bn < b*n; bn++ {
		d := dst[bn*(p+s)*h:]
		copy(d[:p*h], past[bn*p*h:(bn+1)*p*h])
		copy(d[p*h:(p+s)*h], cur[bn*s*h:(bn+1)*s*h])
	}
}

// addAttnBias adds attention_bias (B or 1, N or 1, S, T) for (b, n) to sc.
func addAttnBias(sc []float32, bias *graph.Tensor, b, n int) {
	bb, bn := bias.Shape[0], bias.Shape[1]
	st := len(sc)
	off := ((b%bb)*bn + n%bn) * st
	vec.Add(sc, sc, bias.Float32s()[off:off+st])
}

// checkAttnBias checks attention_bias against (B, N, S, T).
func checkAttnBias(op string, t *graph.Tensor, b, n, s, tot int) error {
	if t.DType != graph.Float || t.Rank() != 4 || (t.Shape[0] != b && t.Shape[0] != 1) || (t.Shape[1] != n && t.Shape[1] != 1) || t.Shape[2] != s || t.Shape[3] != tot {
		return fmt.Errorf("%s: attention_bias is %s%v, want float32 [%d or 1, %d or 1, %d, %d]", op, t.DType.Short(), t.Shape, b, n, s, tot)
	}
	return nil
}

// keyMask is ONNX Runtime's additive mask for Attention and MultiHeadAttention:
// a (B, S, T) buffer of 0 for attended keys and maskFilter for masked ones,
// built from mask_index in one of its forms, plus maskFilter again above the
// causal diagonal (offset by the past length) when causal. Masked logits are
// a large negative number, not -Inf, so a fully masked row stays finite.
func keyMask(op string, mask *graph.Tensor, causal bool, b, s, past, tot int, maskFilter float32) ([]float32, error) {
	if mask == nil && !causal {
		return nil, nil
	}
	m := make([]float32, b*s*tot)
	if mask != nil {
		if mask.DType != graph.Int32 {
			return nil, fmt.Errorf("%s: mask_index is %s, want int32", op, mask.DType.Short())
		}
		md := mask.Data().([]int32)
		switch {
		case sameDims(mask.Shape, b, tot): // raw 0/1 mask over all keys
			for bi := 0; bi < b; bi++ {
				for si := 0; si < s; si++ {
					for j := 0; j < tot; j++ {
						if md[bi*tot+j] <= 0 {
							m[(bi*s+si)*tot+j] = maskFilter
						}
					}
				}
			}
		case sameDims(mask.Shape, b, s, tot): // raw 0/1 mask per query
			for i, v := range md {
				if v <= 0 {
					m[i] = maskFilter
				}
			}
		case sameDims(mask.Shape, b) || sameDims(mask.Shape, 2*b): // key end (and start) positions
			for bi := 0; bi < b; bi++ {
				end, start := int(md[bi]), 0
				if len(md) == 2*b {
					start = min(int(md[b+bi]), tot)
				}
				for si := 0; si < s; si++ {
					row := m[(bi*s+si)*tot : (bi*s+si+1)*tot]
					for j := range row {
						if j >= end || j < start {
							row[j] = maskFilter
						}
					}
				}
			}
		default:
			return nil, fmt.Errorf("%s: mask_index %v is not supported (want [%d], [%d], [%d, %d] or [%d, %d, %d])", op, mask.Shape, b, 2*b, b, tot, b, s, tot)
		}
	}
	if causal {
		for bi := 0; bi < b; bi++ {
			for si := 0; si < s; si++ {
				row := m[(bi*s+si)*tot : (bi*s+si+1)*tot]
				for j := past + si + 1; j < tot; j++ {
					row[j] += maskFilter
				}
			}
		}
	}
	return m, nil
}

func defaultScale(scale float32, h int) float32 {
	if scale == 0 {
		return float32(1 / math.Sqrt(float64(h)))
	}
	return scale
}

// ---- com.microsoft Attention ----
//
// Self attention with the Q, K and V projections fused: input (B, S, D) times
// weights (D, q + k + v hidden) plus bias gives Q, K and V; an optional past
// (2, B, N, P, H) is prepended to K and V and returned as present
// (2, B, N, P+S, H). unidirectional masks keys after the query's position.

type msAttention struct {
	heads          int
	causal         bool
	maskFilter     float32
	scale          float32
	sizes          []int64
	w              *gemm.PackedB
	wConst         *graph.Tensor
	doRotary, pshb int64
}

func newMSAttention(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	k := &msAttention{
		sizes:    a.Ints("qkv_hidden_sizes", nil),
		doRotary: a.Int("do_rotary", 0),
		pshb:     a.Int("past_present_share_buffer", 0),
	}
	var err error
	if k.heads, k.causal, k.maskFilter, k.scale, err = headAttrs("Attention", a); err != nil {
		return nil, err
	}
	switch {
	case k.doRotary != 0:
		return nil, fmt.Errorf("Attention: do_rotary is not supported (ONNX Runtime's CPU kernel has no rotary path either)")
	case k.pshb != 0:
		return nil, fmt.Errorf("Attention: past_present_share_buffer is not supported")
	case k.sizes != nil && len(k.sizes) != 3:
		return nil, fmt.Errorf("Attention: qkv_hidden_sizes has %d values, want 3", len(k.sizes))
	}
	if w := ni.Const(1); w != nil && w.DType == graph.Float && w.Rank() == 2 {
		k.w, k.wConst = ni.packs.packB(w.Shape[0], w.Shape[1], w.Float32s(), false), w
	}
	return k, nil
}

func (k *msAttention) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	const op = "Attention"
	if err := need(in, 2); err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	x, w := in[0], in[1]
	if x.DType != graph.Float || x.Rank() != 3 {
		return nil, fmt.Errorf("%s: input is %s%v, want float32 (batch, sequence, hidden)", op, x.DType.Short(), x.Shape)
	}
	b, s, d := x.Shape[0], x.Shape[1], x.Shape[2]
	if w.DType != graph.Float || w.Rank() != 2 || w.Shape[0] != d {
		return nil, fmt.Errorf("%s: weights are %s%v, want float32 [%d, q+k+v hidden]", op, w.DType.Short(), w.Shape, d)
	}
	cols := w.Shape[1]
	if _, _, _, err := k.hiddenSizes(op, cols); err != nil {
		return nil, err
	}
	proj := make([]float32, b*s*cols)
	if len(in) > 2 && in[2] != nil {
		bias := in[2]
		if bias.DType != graph.Float || bias.Len() != cols {
			return nil, fmt.Errorf("%s: bias is %s%v, want %d float32 values", op, bias.DType.Short(), bias.Shape, cols)
		}
		for r := 0; r < b*s; r++ {
			copy(proj[r*cols:(r+1)*cols], bias.Float32s())
		}
	}
	if k.w != nil && w == k.wConst {
		gemm.MulPackedB(b*s, 1, gemm.Matrix{Data: x.Float32s(), Stride: d}, k.w, 1, proj, cols, ctx.Threads)
	} else {
		gemm.Sgemm(b*s, cols, d, 1, gemm.Matrix{Data: x.Float32s(), Stride: d}, gemm.Matrix{Data: w.Float32s(), Stride: cols}, 1, proj, cols, ctx.Threads)
	}
	opt := func(i int) *graph.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	if opt(6) != nil {
		return nil, fmt.Errorf("%s: past_sequence_length is only used with past_present_share_buffer, which is not supported", op)
	}
	return k.attend(ctx, op, proj, b, s, cols, opt(3), opt(4), opt(5))
}

// hiddenSizes splits the projection's cols columns into the q, k and v
// hidden sizes (qkv_hidden_sizes, or thirds).
func (k *msAttention) hiddenSizes(op string, cols int) (qh, kh, vh int, err error) {
	qh, kh, vh = cols/3, cols/3, cols/3
	if k.sizes != nil {
		qh, kh, vh = int(k.sizes[0]), int(k.sizes[1]), int(k.sizes[2])
	}
	if qh+kh+vh != cols || qh != kh || qh%k.heads != 0 || vh%k.heads != 0 || qh == 0 {
		return 0, 0, 0, fmt.Errorf("%s: weights have %d columns; q, k, v hidden sizes %d, %d, %d must add up to it, q = k, each divisible by num_heads %d", op, cols, qh, kh, vh, k.heads)
	}
	return qh, kh, vh, nil
}

// attend is Attention after the projection: proj (B*S rows of cols) holds
// Q, K and V side by side; mask (mask_index), pastT and abias
// (attention_bias) may be nil.
func (k *msAttention) attend(ctx *Context, op string, proj []float32, b, s, cols int, mask, pastT, abias *graph.Tensor) ([]*graph.Tensor, error) {
	qh, kh, vh, err := k.hiddenSizes(op, cols)
	if err != nil {
		return nil, err
	}
	n, h, hv := k.heads, qh/k.heads, vh/k.heads
	var past []float32
	p := 0
	if pt := pastT; pt != nil {
		if pt.DType != graph.Float || pt.Rank() != 5 || pt.Shape[0] != 2 || pt.Shape[1] != b || pt.Shape[2] != n || pt.Shape[4] != h {
			return nil, fmt.Errorf("%s: past is %s%v, want float32 [2, %d, %d, past length, %d]", op, pt.DType.Short(), pt.Shape, b, n, h)
		}
		if h != hv {
			return nil, fmt.Errorf("%s: a past state needs equal q, k and v hidden sizes", op)
		}
		past, p = pt.Float32s(), pt.Shape[3]
	}
	tot := p + s
	q := make([]float32, b*n*s*h)
	toBNSH(q, proj, b, s, n, h, cols, h, 0)
	newK, newV := make([]float32, b*n*s*h), make([]float32, b*n*s*hv)
	toBNSH(newK, proj, b, s, n, h, cols, h, qh)
	toBNSH(newV, proj, b, s, n, hv, cols, hv, qh+kh)
	var present *graph.Tensor // (2, B, N, T, H): only when K and V heads have one size
	kAll, vAll := newK, newV
	if h == hv {
		present = ctx.Float32([]int{2, b, n, tot, h})
		pd := present.Float32s()
		half := b * n * tot * h
		var pk, pv []float32
		if past != nil {
			pk, pv = past[:b*n*p*h], past[b*n*p*h:]
		}
		withPast(pd[:half], pk, newK, b, n, p, s, h)
		withPast(pd[half:], pv, newV, b, n, p, s, h)
		kAll, vAll = pd[:half], pd[half:]
	}
	m, err := keyMask(op, mask, k.causal, b, s, p, tot, k.maskFilter)
	if err != nil {
		return nil, err
	}
	if abias != nil {
		if err := checkAttnBias(op, abias, b, n, s, tot); err != nil {
			return nil, err
		}
	}
	at := &sdpa{b: b, nq: n, nkv: n, s: s, t: tot, h: h, hv: hv, q: q, k: kAll, v: vAll, scale: defaultScale(k.scale, h)}
	at.prep = maskAndBias(m, abias, s*tot)
	if k.causal && mask == nil && abias == nil && k.maskFilter <= -1e4 {
		// Keys after the diagonal only get mask_filter_value, whose
		// exponential underflows to 0: multiplying them changes nothing.
		at.visible = func(_, i int) int { return tot - s + i + 1 }
	}
	out := ctx.Float32([]int{b, s, n * hv})
	at.run(ctx, out.Float32s(), true)
	return []*graph.Tensor{out, present}, nil
}

// maskAndBias adds a (B, S, T) additive mask and then attention_bias.
func maskAndBias(m []float32, abias *graph.Tensor, st int) func(b, n int, sc []float32) {
	if m == nil && abias == nil {
		return nil
	}
	return func(b, n int, sc []float32) {
		if m != nil {
			vec.Add(sc, sc, m[b*st:(b+1)*st])
		}
		if abias != nil {
			addAttnBias(sc, abias, b, n)
		}
	}
}

func init() {
	Register("com.microsoft", "Attention", 1, newMSAttention)
}
