//go:build ort

package kernels

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
)

func int32Tensor(shape []int, v []int32) *graph.Tensor {
	t := graph.NewTensor(graph.Int32, shape)
	copy(t.Data().([]int32), v)
	return t
}

// gpt2Inputs is a GPT-2 step of batch b: tokens from id, positions from past
// on, an attention mask over past + new keys (the first masked of the second
// row, when b = 2, is padding), and the past caches.
func gpt2Inputs(b, s, past int, ids []int32, pasts map[string]*graph.Tensor) map[string]*graph.Tensor {
	tot := past + s
	pos, mask := make([]int32, b*s), make([]int32, b*tot)
	for i := range pos {
		pos[i] = int32(past + i%s)
	}
	for i := range mask {
		mask[i] = 1
	}
	if b > 1 {
		mask[tot] = 0 // left padding on the second sequence
	}
	in := map[string]*graph.Tensor{
		"input_ids":      int32Tensor([]int{b, s}, ids),
		"position_ids":   int32Tensor([]int{b, s}, pos),
		"attention_mask": int32Tensor([]int{b, tot}, mask),
	}
	for i := 0; i < 5; i++ {
		name := "past_" + string(rune('0'+i))
		if p, ok := pasts[name]; ok {
			in[name] = p
		} else {
			in[name] = graph.NewTensor(graph.Float, []int{2, b, 4, 0, 8})
		}
	}
	return in
}

// TestGPT2MatchesORT runs tiny-random-gpt2 (Attention with past and mask,
// SkipLayerNormalization, FastGelu, EmbedLayerNormalization) as a prefill and
// then a one-token step fed with the presents, in onnxq and in ONNX Runtime:
// logits and presents agree to 1e-4 absolute.
func TestGPT2MatchesORT(t *testing.T) {
	path := testdata.SharedModel(t, "tiny-random-gpt2", "past.onnx")
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewSession(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ortref.NewSession(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, b := range []int{1, 2} {
		steps := []struct {
			s   int
			ids []int32
		}{{5, []int32{98, 7, 311, 42, 999, 5, 17, 600, 3, 250}}, {1, []int32{77, 123}}}
		var pasts map[string]*graph.Tensor
		past := 0
		for k, st := range steps {
			in := gpt2Inputs(b, st.s, past, st.ids[:b*st.s], pasts)
			got, err := sess.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				d := maxAbsDiff(t, got[name], w)
				t.Logf("batch %d step %d %s %v: max abs diff %.2e", b, k, name, w.Shape, d)
				if d > 1e-4 {
					t.Errorf("batch %d step %d: %s differs from ONNX Runtime by %.3e > 1e-4", b, k, name, d)
				}
			}
			pasts = map[string]*graph.Tensor{}
			for i := 0; i < 5; i++ {
				pasts["past_"+string(rune('0'+i))] = want["present_"+string(rune('0'+i))]
			}
			past += st.s
		}
	}
}
