package testmodels

import (
	"math"

	"github.com/onnxq/onnxq/graph"
)

// Swin is a small Swin Transformer (Liu et al., 2021) as PyTorch exports
// it: a 4x4 stride-4 patch embedding to 48 channels and LayerNorm, two
// stages of two blocks (16x16 tokens of 48 channels and 3 heads, then 8x8
// of 96 and 6 heads) with a patch merging between them (four strided
// Slices, a channel Concat, LayerNorm, a Linear from 192 to 96), then
// LayerNorm, a mean over the tokens and a Linear to 100 classes.
//
// A block attends within 4x4 windows: LayerNorm, the window partition
// (Reshape, Transpose, Reshape to [windows, 16, C]), one Linear to q, k and
// v split by Gather, scaled q k^T plus a relative position bias (a Gather
// of a learned table by a constant index, as the export leaves it),
// Softmax, the heads merged and projected, the windows put back, and the
// residual; then the MLP (LayerNorm, Linear to 4C, Gelu in the Erf form,
// Linear back). Every second block shifts the windows by 2 tokens, a roll
// written as Slices and Concats on both axes before and after, and adds
// the shift's -100 mask between tokens from different regions. Input
// "input" 1x3x64x64, output "logits" 1x100.
func Swin(seed uint64) *graph.Model {
	const win, classes = 4, 100
	b := NewBuilder(seed, 17)
	x := b.Input("input", 1, 3, 64, 64)
	c := 48
	t := b.LayerNorm(b.Transpose(b.Reshape(b.Conv(x, c, 4, ConvOpts{Stride: 4}), 1, c, 256), 0, 2, 1))
	res := 16
	for stage, heads := range []int{3, 6} {
		if stage > 0 {
			t = swinMerge(b, t, res, c)
			res, c = res/2, c*2
		}
		for blk := range 2 {
			shift := 0
			if blk == 1 && res > win {
				shift = win / 2
			}
			t = swinBlock(b, t, res, c, heads, win, shift)
		}
	}
	t = b.LayerNorm(t)
	pooled := b.node("ReduceMean", []*graph.Value{t}, []int{1, c}, graph.AttrIntsOf("axes", 1), graph.AttrIntOf("keepdims", 0))
	renameOutput(b, b.Linear(pooled, classes, 1), "logits")
	return b.Finish()
}

// swinBlock is one Swin block on tokens t [1, res*res, c] (see Swin).
func swinBlock(b *Builder, t *graph.Value, res, c, heads, win, shift int) *graph.Value {
	n, nw, hd := win*win, (res/win)*(res/win), c/heads
	h := b.Reshape(b.LayerNorm(t), 1, res, res, c)
	if shift > 0 {
		h = swinRoll(b, swinRoll(b, h, 1, shift), 2, shift)
	}
	// Windows: [1, res/win, win, res/win, win, c] -> [windows, n, c].
	h = b.Reshape(b.Transpose(b.Reshape(h, 1, res/win, win, res/win, win, c), 0, 1, 3, 2, 4, 5), nw, n, c)
	qkv := b.Transpose(b.Reshape(b.Linear(h, 3*c, 1), nw, n, 3, heads, hd), 2, 0, 3, 1, 4)
	q, k, v := b.Gather(qkv, 0, 0), b.Gather(qkv, 0, 1), b.Gather(qkv, 0, 2)
	q = b.Binary("Mul", q, b.Scalar("attn_scale", float32(1/math.Sqrt(float64(hd)))))
	a := b.MatMul(q, b.Transpose(k, 0, 1, 3, 2))
	a = b.Add(a, swinPositionBias(b, heads, win))
	if shift > 0 {
		a = b.Reshape(b.Add(b.Reshape(a, 1, nw, heads, n, n), b.Const("shift_mask", []int{1, nw, 1, n, n}, swinShiftMask(res, win, shift))), nw, heads, n, n)
	}
	o := b.MatMul(b.Softmax(a), v)
	o = b.Linear(b.Reshape(b.Transpose(o, 0, 2, 1, 3), nw, n, c), c, 1)
	// The windows put back: [1, res/win, res/win, win, win, c] -> [1, res, res, c].
	o = b.Reshape(b.Transpose(b.Reshape(o, 1, res/win, res/win, win, win, c), 0, 1, 3, 2, 4, 5), 1, res, res, c)
	if shift > 0 {
		o = swinRoll(b, swinRoll(b, o, 1, res-shift), 2, res-shift)
	}
	t = b.Add(t, b.Reshape(o, 1, res*res, c))
	return b.Add(t, b.Linear(b.GeluErf(b.Linear(b.LayerNorm(t), 4*c, 1)), c, 1))
}

// swinRoll rolls x by -s along axis (torch.roll(x, -s, axis) as the export
// writes it: the tail from s, then the head up to s).
func swinRoll(b *Builder, x *graph.Value, axis, s int) *graph.Value {
	shape := b.Shape(x)
	size := shape[axis]
	part := func(from, to int) *graph.Value {
		ps := append([]int(nil), shape...)
		ps[axis] = to - from
		return b.node("Slice", []*graph.Value{x, b.Int64Const("starts", int64(from)), b.Int64Const("ends", int64(to)), b.Int64Const("axes", int64(axis))}, ps)
	}
	return b.Concat(axis, part(s, size), part(0, s))
}

// swinMerge is the patch merging of tokens t [1, res*res, c]: the four
// tokens of each 2x2 block side by side in channels (strided Slices and a
// Concat), LayerNorm, and a Linear to 2c.
func swinMerge(b *Builder, t *graph.Value, res, c int) *graph.Value {
	g := b.Reshape(t, 1, res, res, c)
	part := func(r0, c0 int) *graph.Value {
		return b.node("Slice", []*graph.Value{g, b.Int64Const("starts", int64(r0), int64(c0)), b.Int64Const("ends", int64(res), int64(res)),
			b.Int64Const("axes", 1, 2), b.Int64Const("steps", 2, 2)}, []int{1, res / 2, res / 2, c})
	}
	m := b.Concat(3, part(0, 0), part(1, 0), part(0, 1), part(1, 1))
	return b.Linear(b.LayerNorm(b.Reshape(m, 1, res*res/4, 4*c)), 2*c, 1)
}

// swinPositionBias is the relative position bias [1, heads, n, n] of a
// win x win window: a learned table of (2 win - 1)^2 x heads, gathered by
// each token pair's relative offset, reshaped and transposed.
func swinPositionBias(b *Builder, heads, win int) *graph.Value {
	n, side := win*win, 2*win-1
	table := b.Const("rel_pos_table", []int{side * side, heads}, b.Normal(side*side*heads, 0, 0.5))
	idx := make([]int64, n*n)
	for i := range n {
		for j := range n {
			dy, dx := i/win-j/win+win-1, i%win-j%win+win-1
			idx[i*n+j] = int64(dy*side + dx)
		}
	}
	iv := b.G.AddInitializer(b.G.UniqueName("rel_pos_index"), graph.Int64Tensor([]int{n * n}, idx))
	b.shapes[iv] = []int{n * n}
	bias := b.node("Gather", []*graph.Value{table, iv}, []int{n * n, heads}, graph.AttrIntOf("axis", 0))
	return b.Reshape(b.Transpose(b.Reshape(bias, n, n, heads), 2, 0, 1), 1, heads, n, n)
}

// swinShiftMask is the attention mask of shifted windows on a res x res
// map: after the roll, a window can hold tokens of up to four regions of
// the unrolled map; pairs from different regions get -100, the rest 0.
// Laid out [windows, n, n].
func swinShiftMask(res, win, shift int) []float32 {
	region := func(p int) int {
		switch {
		case p < res-win:
			return 0
		case p < res-shift:
			return 1
		}
		return 2
	}
	n, per := win*win, res/win
	mask := make([]float32, per*per*n*n)
	for w := range per * per {
		wy, wx := w/per, w%per
		label := func(i int) int { return region(wy*win+i/win)*3 + region(wx*win+i%win) }
		for i := range n {
			for j := range n {
				if label(i) != label(j) {
					mask[(w*n+i)*n+j] = -100
				}
			}
		}
	}
	return mask
}
