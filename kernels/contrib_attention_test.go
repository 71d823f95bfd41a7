package kernels

import (
	"math"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// runNode builds a one-node model (inputs fed, omitted ones nil) and runs it.
func runNode(t *testing.T, domain, op string, opset int64, attrs []*onnxpb.AttributeProto, outs []string, in ...*graph.Tensor) (map[string]*graph.Tensor, error) {
	t.Helper()
	m := graph.NewModel(graph.Opset{Version: opset}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := m.Graph
	feeds := map[string]*graph.Tensor{}
	var vals []*graph.Value
	for i, x := range in {
		if x == nil {
			vals = append(vals, nil)
			continue
		}
		name := string(rune('a' + i))
		dims := make([]int64, len(x.Shape))
		for j, d := range x.Shape {
			dims[j] = int64(d)
		}
		vals = append(vals, g.AddInput(name, x.DType, dims))
		feeds[name] = x
	}
	nd := g.AddNode(op, "n", vals, outs, attrs...)
	nd.Domain = domain
	for _, v := range nd.Outputs {
		if v != nil {
			g.AddOutput(v)
		}
	}
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		return nil, err
	}
	return s.Run(feeds)
}

func seeded(seed uint64, shape ...int) *graph.Tensor {
	return graph.Float32Tensor(shape, seededFloats(graph.Numel(shape), seed))
}

// naiveAttention is softmax(scale q k^T + bias) v for one head in float64.
func naiveAttention(q, k, v [][]float64, scale float64, bias func(i, j int) float64) [][]float64 {
	out := make([][]float64, len(q))
	for i := range q {
		logits := make([]float64, len(k))
		m := math.Inf(-1)
		for j := range k {
			var d float64
			for x := range q[i] {
				d += q[i][x] * k[j][x]
			}
			logits[j] = scale*d + bias(i, j)
			m = math.Max(m, logits[j])
		}
		var sum float64
		for j := range logits {
			logits[j] = math.Exp(logits[j] - m)
			sum += logits[j]
		}
		out[i] = make([]float64, len(v[0]))
		for j := range logits {
			for x := range v[j] {
				out[i][x] += logits[j] / sum * v[j][x]
			}
		}
	}
	return out
}

// TestMultiHeadAttentionNaive: MultiHeadAttention with bias, a past cache and
// the causal mask equals attention written out per head in float64, and the
// packed QKV and packed KV layouts give the same outputs as separate inputs.
func TestMultiHeadAttentionNaive(t *testing.T) {
	const b, s, n, h, p = 2, 3, 2, 4, 2
	d := n * h
	q, k, v, bias := seeded(1, b, s, d), seeded(2, b, s, d), seeded(3, b, s, d), seeded(4, 3*d)
	pk, pv := seeded(5, b, n, p, h), seeded(6, b, n, p, h)
	attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("num_heads", n), graph.AttrIntOf("unidirectional", 1)}
	got, err := runNode(t, "com.microsoft", "MultiHeadAttention", 17, attrs, []string{"Y", "pk", "pv"}, q, k, v, bias, nil, nil, pk, pv)
	if err != nil {
		t.Fatal(err)
	}
	y := got["Y"].Float32s()
	qd, kd, vd, bd := q.Float32s(), k.Float32s(), v.Float32s(), bias.Float32s()
	var worst float64
	for bi := 0; bi < b; bi++ {
		for ni := 0; ni < n; ni++ {
			var qs, ks, vs [][]float64
			row := func(src []float32, pos, boff int) []float64 {
				r := make([]float64, h)
				for x := range r {
					r[x] = float64(src[(bi*s+pos)*d+ni*h+x]) + float64(bd[boff+ni*h+x])
				}
				return r
			}
			cache := func(src []float32, j int) []float64 {
				r := make([]float64, h)
				for x := range r {
					r[x] = float64(src[((bi*n+ni)*p+j)*h+x])
				}
				return r
			}
			for j := 0; j < p; j++ {
				ks, vs = append(ks, cache(pk.Float32s(), j)), append(vs, cache(pv.Float32s(), j))
			}
			for i := 0; i < s; i++ {
				qs, ks, vs = append(qs, row(qd, i, 0)), append(ks, row(kd, i, d)), append(vs, row(vd, i, 2*d))
			}
			want := naiveAttention(qs, ks, vs, 1/math.Sqrt(h), func(i, j int) float64 {
				if j > p+i {
					return -10000
				}
				return 0
			})
			for i := range want {
				for x := range want[i] {
					worst = math.Max(worst, math.Abs(want[i][x]-float64(y[(bi*s+i)*d+ni*h+x])))
				}
			}
		}
	}
	if worst > 1e-5 {
		t.Errorf("MultiHeadAttention differs from the float64 reference by %.3g", worst)
	}
	if got["pk"].Shape[2] != p+s || got["pk"].Float32s()[0] != pk.Float32s()[0] {
		t.Errorf("present_key %v does not start with the past", got["pk"].Shape)
	}

	// Packed QKV (B, S, N, 3, H) and packed KV (B, S, N, 2, H) hold the same numbers.
	plain, err := runNode(t, "com.microsoft", "MultiHeadAttention", 17, attrs[:1], []string{"Y"}, q, k, v)
	if err != nil {
		t.Fatal(err)
	}
	qkv, kv := graph.NewTensor(graph.Float, []int{b, s, n, 3, h}), graph.NewTensor(graph.Float, []int{b, s, n, 2, h})
	for r := 0; r < b*s; r++ {
		for ni := 0; ni < n; ni++ {
			for x := 0; x < h; x++ {
				src := r*d + ni*h + x
				qkv.Float32s()[((r*n+ni)*3+0)*h+x] = qd[src]
				qkv.Float32s()[((r*n+ni)*3+1)*h+x] = kd[src]
				qkv.Float32s()[((r*n+ni)*3+2)*h+x] = vd[src]
				kv.Float32s()[((r*n+ni)*2+0)*h+x] = kd[src]
				kv.Float32s()[((r*n+ni)*2+1)*h+x] = vd[src]
			}
		}
	}
	packed, err := runNode(t, "com.microsoft", "MultiHeadAttention", 17, attrs[:1], []string{"Y"}, qkv)
	if err != nil {
		t.Fatal(err)
	}
	packedKV, err := runNode(t, "com.microsoft", "MultiHeadAttention", 17, attrs[:1], []string{"Y"}, q, kv)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]*graph.Tensor{"packed QKV": packed["Y"], "packed KV": packedKV["Y"]} {
		for i, w := range plain["Y"].Float32s() {
			if math.Abs(float64(o.Float32s()[i]-w)) > 1e-6 {
				t.Fatalf("%s output %d: %g, separate inputs give %g", name, i, o.Float32s()[i], w)
			}
		}
	}
}

// TestEmbedLayerNormMaskIndex: mask_index counts each row's ones.
func TestEmbedLayerNormMaskIndex(t *testing.T) {
	ids := int32s([]int{2, 4}, 1, 2, 3, 0, 4, 4, 1, 1)
	mask := int32s([]int{2, 4}, 1, 1, 1, 0, 1, 1, 0, 0)
	got, err := runNode(t, "com.microsoft", "EmbedLayerNormalization", 17, nil, []string{"Y", "mi"},
		ids, nil, seeded(1, 5, 8), seeded(2, 6, 8), nil, seeded(3, 8), seeded(4, 8), mask)
	if err != nil {
		t.Fatal(err)
	}
	if mi := got["mi"].Data().([]int32); mi[0] != 3 || mi[1] != 2 {
		t.Errorf("mask_index %v, want [3 2]", mi)
	}
}

func int32s(shape []int, v ...int32) *graph.Tensor {
	t := graph.NewTensor(graph.Int32, shape)
	copy(t.Data().([]int32), v)
	return t
}

// TestTransformerOpErrors: bad shapes, ids and attributes give one-line
// errors that name the op and the input, never a panic.
func TestTransformerOpErrors(t *testing.T) {
	ms := "com.microsoft"
	heads := []*onnxpb.AttributeProto{graph.AttrIntOf("num_heads", 2)}
	for _, c := range []struct {
		name, domain, op string
		attrs            []*onnxpb.AttributeProto
		outs             []string
		in               []*graph.Tensor
		want             string
	}{
		{"weights", ms, "Attention", heads, []string{"Y"}, []*graph.Tensor{seeded(1, 1, 3, 8), seeded(2, 6, 24)}, "weights are float32[6 24], want float32 [8"},
		{"heads", ms, "Attention", heads, []string{"Y"}, []*graph.Tensor{seeded(1, 1, 3, 8), seeded(2, 8, 21)}, "divisible by num_heads"},
		{"mask", ms, "Attention", heads, []string{"Y"}, []*graph.Tensor{seeded(1, 1, 3, 8), seeded(2, 8, 24), nil, int32s([]int{1, 5}, 1, 1, 1, 1, 1)}, "mask_index [1 5] is not supported"},
		{"token id", ms, "EmbedLayerNormalization", nil, []string{"Y"}, []*graph.Tensor{int32s([]int{1, 2}, 1, 9), nil, seeded(1, 5, 8), seeded(2, 6, 8), nil, seeded(3, 8), seeded(4, 8)}, "input id 9 is out of range [0, 5)"},
		{"skip", ms, "SkipLayerNormalization", nil, []string{"Y"}, []*graph.Tensor{seeded(1, 2, 3, 8), seeded(2, 2, 8), seeded(3, 8)}, "skip [2 8] does not match input [2 3 8]"},
		{"gamma", ms, "SkipSimplifiedLayerNormalization", nil, []string{"Y"}, []*graph.Tensor{seeded(1, 2, 3, 8), seeded(2, 2, 3, 8), seeded(3, 7)}, "gamma is float32[7], want 8 float32 values"},
		{"rope position", ms, "RotaryEmbedding", nil, []string{"Y"}, []*graph.Tensor{seeded(1, 1, 2, 8), graph.Int64Tensor([]int{1, 2}, []int64{0, 40}), seeded(2, 4, 4), seeded(3, 4, 4)}, "position 40 is outside the caches' 4 rows"},
		{"gqa heads", ms, "GroupQueryAttention", []*onnxpb.AttributeProto{graph.AttrIntOf("num_heads", 3), graph.AttrIntOf("kv_num_heads", 2)}, []string{"Y"}, []*graph.Tensor{seeded(1, 1, 2, 12)}, "positive multiple of kv_num_heads"},
		{"bias gelu", ms, "BiasGelu", nil, []string{"Y"}, []*graph.Tensor{seeded(1, 2, 8)}, "bias) is required"},
		{"onnx attention", "", "Attention", nil, []string{"Y"}, []*graph.Tensor{seeded(1, 1, 2, 3, 8), seeded(2, 1, 3, 4, 8), seeded(3, 1, 3, 4, 8)}, "query heads a multiple of KV heads"},
	} {
		opset := int64(17)
		if c.domain == "" {
			opset = 23
		}
		_, err := runNode(t, c.domain, c.op, opset, c.attrs, c.outs, c.in...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line containing %q", c.name, err, c.want)
		}
	}
}
