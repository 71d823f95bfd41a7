package kernels

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
)

// ---- Rotary position embedding (RoPE) ----
//
// Each head vector's first rd values are rotated as rd/2 pairs by the angles of
// the token's position: pair i is (x[i], x[i+rd/2]) in the half-split form, or
// (x[2i], x[2i+1]) interleaved, and becomes
//   (x1 cos_i - x2 sin_i, x2 cos_i + x1 sin_i)
// with cos_i, sin_i from the caches' row for the position. Values past rd pass
// through. com.microsoft RotaryEmbedding takes (input, position_ids, cos, sin);
// ONNX RotaryEmbedding (opset 23) takes (X, cos, sin [, position_ids]) and,
// without position ids, caches already gathered per token, (B, S, rd/2).

// rope rotates one head vector x into dst (which may be x) with one cache row.
func rope(dst, x, cos, sin []float32, interleaved bool) {
	half := len(cos)
	for i := 0; i < half; i++ {
		a, b := i, i+half
		if interleaved {
			a, b = 2*i, 2*i+1
		}
		x1, x2 := x[a], x[b]
		dst[a] = x1*cos[i] - x2*sin[i]
		dst[b] = x2*cos[i] + x1*sin[i]
	}
	rd := 2 * half
	if &dst[0] != &x[0] {
		copy(dst[rd:], x[rd:])
	}
}

// ropeLayout is where head vectors sit in a rotary input: (B, S, N*H) or (B, N, S, H).
type ropeLayout struct {
	b, s, n, h  int
	headsFirst  bool
	interleaved bool
}

func (l ropeLayout) at(b, s, n int) int {
	if l.headsFirst {
		return ((b*l.n+n)*l.s + s) * l.h
	}
	return ((b*l.s+s)*l.n + n) * l.h
}

// apply rotates every head vector of x into out; row(b, s) returns the cache
// offset (in rows of rd/2 values) of token (b, s) or an error.
func (l ropeLayout) apply(out, x, cos, sin []float32, half int, row func(b, s int) (int, error)) error {
	for b := 0; b < l.b; b++ {
		for s := 0; s < l.s; s++ {
			r, err := row(b, s)
			if err != nil {
				return err
			}
			c, sn := cos[r*half:(r+1)*half], sin[r*half:(r+1)*half]
			for n := 0; n < l.n; n++ {
				o := l.at(b, s, n)
				rope(out[o:o+l.h], x[o:o+l.h], c, sn, l.interleaved)
			}
		}
	}
	return nil
}

// ropeGeometry works out heads and head size for an input, given the
// num_heads and rotary_embedding_dim attributes (0: unset) and the caches'
// half width.
func ropeGeometry(op string, x *graph.Tensor, heads, rd, half int, interleaved bool) (ropeLayout, error) {
	l := ropeLayout{interleaved: interleaved}
	switch x.Rank() {
	case 4:
		l.b, l.n, l.s, l.h, l.headsFirst = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], true
	case 3:
		l.b, l.s = x.Shape[0], x.Shape[1]
		hidden := x.Shape[2]
		switch {
		case heads > 0:
			l.n = heads
		case rd > 0:
			return l, fmt.Errorf("%s: num_heads is required with rotary_embedding_dim on a 3-D input", op)
		default:
			if half == 0 {
				return l, fmt.Errorf("%s: empty cos cache", op)
			}
			l.n = hidden / (2 * half)
		}
		if l.n == 0 || hidden%l.n != 0 {
			return l, fmt.Errorf("%s: hidden size %d does not split into %d heads", op, hidden, l.n)
		}
		l.h = hidden / l.n
	default:
		return l, fmt.Errorf("%s: input %v must be 3-D (batch, sequence, hidden) or 4-D (batch, heads, sequence, head size)", op, x.Shape)
	}
	if rd == 0 {
		rd = l.h
	}
	if half == 0 || rd != 2*half || rd > l.h {
		return l, fmt.Errorf("%s: rotary dimension %d, head size %d and cos cache width %d do not fit (want width = dim/2, dim <= head size)", op, rd, l.h, half)
	}
	return l, nil
}

func checkCaches(op string, cos, sin *graph.Tensor, rank int) error {
	if cos.DType != graph.Float || sin.DType != graph.Float || cos.Rank() != rank || !sameDims(sin.Shape, cos.Shape...) {
		return fmt.Errorf("%s: cos and sin caches are %s%v and %s%v, want float32 of one rank-%d shape", op, cos.DType.Short(), cos.Shape, sin.DType.Short(), sin.Shape, rank)
	}
	return nil
}

func newMSRotary(ni *NodeInfo) (Kernel, error) {
	const op = "RotaryEmbedding"
	a := attrsOf(ni.Node)
	interleaved := a.Int("interleaved", 0) != 0
	heads := int(a.Int("num_heads", 0))
	rd := int(a.Int("rotary_embedding_dim", 0))
	packed := a.Int("is_packed_batching", 0)
	a.Float("scale", 1) // read for validation; ONNX Runtime does not scale either (checked)
	if a.err != nil {
		return nil, a.err
	}
	if packed != 0 {
		return nil, fmt.Errorf("%s: is_packed_batching is not supported", op)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 4); err != nil {
			return nil, fmt.Errorf("%s: %v", op, err)
		}
		x, pos, cos, sin := in[0], in[1], in[2], in[3]
		if err := wantFloat(x, op+" input"); err != nil {
			return nil, err
		}
		if err := checkCaches(op, cos, sin, 2); err != nil {
			return nil, err
		}
		l, err := ropeGeometry(op, x, heads, rd, cos.Shape[1], interleaved)
		if err != nil {
			return nil, err
		}
		if pos.DType != graph.Int64 || !(pos.Len() == 1 || sameDims(pos.Shape, l.b, l.s)) {
			return nil, fmt.Errorf("%s: position_ids are %s%v, want int64 [1] or [%d, %d]", op, pos.DType.Short(), pos.Shape, l.b, l.s)
		}
		pd := pos.Int64s()
		rows := cos.Shape[0]
		out := ctx.Float32(x.Shape)
		err = l.apply(out.Float32s(), x.Float32s(), cos.Float32s(), sin.Float32s(), cos.Shape[1], func(b, s int) (int, error) {
			var p int64
			if len(pd) == 1 {
				p = pd[0] + int64(s) // one start position for every sequence
			} else {
				p = pd[b*l.s+s]
			}
			if p < 0 || p >= int64(rows) {
				return 0, fmt.Errorf("%s: position %d is outside the caches' %d rows", op, p, rows)
			}
			return int(p), nil
		})
		if err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

func newONNXRotary(ni *NodeInfo) (Kernel, error) {
	const op = "RotaryEmbedding"
	a := attrsOf(ni.Node)
	interleaved := a.Int("interleaved", 0) != 0
	heads := int(a.Int("num_heads", 0))
	rd := int(a.Int("rotary_embedding_dim", 0))
	if a.err != nil {
		return nil, a.err
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 3); err != nil {
			return nil, fmt.Errorf("%s: %v", op, err)
		}
		x, cos, sin := in[0], in[1], in[2]
		var pos *graph.Tensor
		if len(in) > 3 {
			pos = in[3]
		}
		if err := wantFloat(x, op+" input"); err != nil {
			return nil, err
		}
		rank := 3 // caches per token (B, S, rd/2)
		if pos != nil {
			rank = 2 // caches per position (P, rd/2)
		}
		if err := checkCaches(op, cos, sin, rank); err != nil {
			return nil, err
		}
		half := cos.Shape[rank-1]
		l, err := ropeGeometry(op, x, heads, rd, half, interleaved)
		if err != nil {
			return nil, err
		}
		var row func(b, s int) (int, error)
		if pos != nil {
			if pos.DType != graph.Int64 || !sameDims(pos.Shape, l.b, l.s) {
				return nil, fmt.Errorf("%s: position_ids are %s%v, want int64 [%d, %d]", op, pos.DType.Short(), pos.Shape, l.b, l.s)
			}
			pd, rows := pos.Int64s(), cos.Shape[0]
			row = func(b, s int) (int, error) {
				p := pd[b*l.s+s]
				if p < 0 || p >= int64(rows) {
					return 0, fmt.Errorf("%s: position %d is outside the caches' %d rows", op, p, rows)
				}
				return int(p), nil
			}
		} else {
			if !sameDims(cos.Shape, l.b, l.s, half) {
				return nil, fmt.Errorf("%s: without position_ids the caches must be [%d, %d, %d], got %v", op, l.b, l.s, half, cos.Shape)
			}
			row = func(b, s int) (int, error) { return b*l.s + s, nil }
		}
		out := ctx.Float32(x.Shape)
		if err := l.apply(out.Float32s(), x.Float32s(), cos.Float32s(), sin.Float32s(), half, row); err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

func init() {
	Register("com.microsoft", "RotaryEmbedding", 1, newMSRotary)
	Register("", "RotaryEmbedding", 23, newONNXRotary)
}
