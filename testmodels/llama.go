package testmodels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
)

// LlamaConfig is the shape of a Llama-style decoder (pre-norm RMSNorm blocks,
// grouped-query attention with a causal mask, SwiGLU MLP, untied lm_head; no
// rotary embedding, which has no weights) run on one sequence of Seq tokens.
type LlamaConfig struct {
	Dim, Hidden, Layers int
	Heads, KVHeads      int
	Vocab, Seq          int
	Seed                uint64
}

// WeightBytes is the size of the float32 weights.
func (c LlamaConfig) WeightBytes() int64 {
	return 4 * (2*int64(c.Vocab)*int64(c.Dim) + int64(c.Layers)*c.layerParams() + int64(c.Dim)*int64(c.Layers*2+1))
}

// layerParams counts one block's matrix weights.
func (c LlamaConfig) layerParams() int64 {
	d, kv := int64(c.Dim), int64(c.Dim/c.Heads*c.KVHeads)
	return 2*d*d + 2*d*kv + 3*d*int64(c.Hidden)
}

// TinyLlamaWidths are TinyLlama-1.1B's widths: dim 2048, MLP 5632, 32 query
// and 4 key/value heads, vocabulary 32000.
var TinyLlamaWidths = LlamaConfig{Dim: 2048, Hidden: 5632, Heads: 32, KVHeads: 4, Vocab: 32000, Seq: 8, Seed: 1}

// LlamaForSize gives c as many layers as fit in bytes of float32 weights (at
// least one).
func LlamaForSize(c LlamaConfig, bytes int64) LlamaConfig {
	c.Layers = 1
	for {
		next := c
		next.Layers++
		if next.WeightBytes() > bytes {
			return c
		}
		c = next
	}
}

func (c LlamaConfig) check() error {
	switch {
	case c.Dim <= 0 || c.Hidden <= 0 || c.Layers <= 0 || c.Vocab <= 0 || c.Seq <= 0:
		return fmt.Errorf("llama config %+v: every size must be positive", c)
	case c.Heads <= 0 || c.KVHeads <= 0 || c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("llama config %+v: heads must divide dim, and key/value heads the heads", c)
	}
	return nil
}

// WriteLlama writes a Llama-shaped decoder with seeded random weights to path,
// every weight in one external data file beside it (path + ".data"). Each
// weight is drawn and written out before the next is drawn, so memory holds
// one weight, never the model: a model of several GB needs a few hundred MB.
// Input "input_ids" int64 [1, Seq]; output "logits" [1, Seq, Vocab].
func WriteLlama(path string, c LlamaConfig) error {
	if err := c.check(); err != nil {
		return err
	}
	data, err := graph.NewDataWriter(path, graph.SaveOptions{})
	if err != nil {
		return err
	}
	b := NewBuilder(c.Seed, 21)
	var putErr error
	// weight adds a drawn initializer and streams it out at once.
	weight := func(name string, shape []int, mean, std float64) *graph.Value {
		v := b.Const(name, shape, b.Normal(graph.Numel(shape), mean, std))
		if putErr == nil {
			putErr = data.Put(v.Const)
		}
		return v
	}
	d, hd := c.Dim, c.Dim/c.Heads
	kvDim, group := hd*c.KVHeads, c.Heads/c.KVHeads
	ids := b.G.AddInput("input_ids", graph.Int64, []int64{1, int64(c.Seq)})
	b.shapes[ids] = []int{1, c.Seq}
	embed := weight("embed_tokens.weight", []int{c.Vocab, d}, 0, 1)
	x := b.node("Gather", []*graph.Value{embed, ids}, []int{1, c.Seq, d})

	eps := b.Scalar("rms_eps", 1e-5)
	axes := b.Int64Const("reduce_axes", -1)
	rmsNorm := func(x *graph.Value, name string) *graph.Value {
		w := weight(name, []int{d}, 1, 0.05)
		ms := b.node("ReduceMean", []*graph.Value{b.Binary("Mul", x, x), axes}, []int{1, c.Seq, 1})
		r := b.Unary("Reciprocal", b.Unary("Sqrt", b.Binary("Add", ms, eps)))
		return b.Binary("Mul", b.Binary("Mul", x, r), w)
	}
	linear := func(x *graph.Value, name string, in, out int) *graph.Value {
		return b.MatMul(x, weight(name, []int{in, out}, 0, 1/math.Sqrt(float64(in))))
	}
	// heads turns [1, S, n*hd] into [1, Heads, S, hd], repeating each of n
	// key/value heads for its group of query heads.
	expandShape := b.Int64Const("kv_expand", 1, int64(c.KVHeads), int64(group), int64(c.Seq), int64(hd))
	heads := func(x *graph.Value, n int) *graph.Value {
		h := b.Transpose(b.Reshape(x, 1, c.Seq, n, hd), 0, 2, 1, 3)
		if n == c.Heads {
			return h
		}
		h = b.Reshape(h, 1, n, 1, c.Seq, hd)
		h = b.node("Expand", []*graph.Value{h, expandShape}, []int{1, n, group, c.Seq, hd})
		return b.Reshape(h, 1, c.Heads, c.Seq, hd)
	}
	mask := make([]float32, c.Seq*c.Seq)
	for i := 0; i < c.Seq; i++ {
		for j := i + 1; j < c.Seq; j++ {
			mask[i*c.Seq+j] = -math.MaxFloat32
		}
	}
	causal := b.Const("causal_mask", []int{c.Seq, c.Seq}, mask)
	scale := b.Scalar("attn_scale", float32(1/math.Sqrt(float64(hd))))

	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		h := rmsNorm(x, p+"input_layernorm.weight")
		q := heads(linear(h, p+"self_attn.q_proj.weight", d, d), c.Heads)
		k := heads(linear(h, p+"self_attn.k_proj.weight", d, kvDim), c.KVHeads)
		v := heads(linear(h, p+"self_attn.v_proj.weight", d, kvDim), c.KVHeads)
		s := b.Binary("Mul", b.MatMul(q, b.Transpose(k, 0, 1, 3, 2)), scale)
		a := b.MatMul(b.node("Softmax", []*graph.Value{b.Binary("Add", s, causal)}, b.shapes[s], graph.AttrIntOf("axis", -1)), v)
		a = b.Reshape(b.Transpose(a, 0, 2, 1, 3), 1, c.Seq, d)
		x = b.Binary("Add", x, linear(a, p+"self_attn.o_proj.weight", d, d))

		h = rmsNorm(x, p+"post_attention_layernorm.weight")
		g := linear(h, p+"mlp.gate_proj.weight", d, c.Hidden)
		u := linear(h, p+"mlp.up_proj.weight", d, c.Hidden)
		x = b.Binary("Add", x, linear(b.Binary("Mul", b.SiLU(g), u), p+"mlp.down_proj.weight", c.Hidden, d))
	}
	logits := linear(rmsNorm(x, "norm.weight"), "lm_head.weight", d, c.Vocab)
	renameOutput(b, logits, "logits")
	if putErr != nil {
		data.Abort()
		return putErr
	}
	return graph.SaveWith(b.Finish(), path, graph.SaveOptions{Data: data})
}
