package converter

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/testmodels"
)

// TestRangeCache: a second conversion with the cache writes the same bytes
// without calibrating again; a tensor raised to 16 bits under the entropy
// observer (whose range depends on the type) is calibrated anew, the rest
// come from the cache.
func TestRangeCache(t *testing.T) {
	for _, kind := range []string{"minmax", "entropy"} {
		dir, model, cal := withSamples(t, testmodels.ConvBNReLU(2), 8, []int{1, 3, 32, 32}, 1)
		cache := &RangeCache{}
		conv := func(name string, f *overrides.File) ([]byte, *Report) {
			out := filepath.Join(dir, name)
			rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Observer: calib.Config{Kind: kind}, Overrides: f, RangeCache: cache, NoMeasure: true})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(out)
			return b, rep
		}
		first, _ := conv("a.onnx", nil)
		n := len(cache.m)
		if n < 5 {
			t.Fatalf("%s: %d ranges cached", kind, n)
		}
		again, _ := conv("b.onnx", nil)
		if !bytes.Equal(first, again) {
			t.Errorf("%s: the cached conversion differs", kind)
		}
		// A changed cache entry shows in the model: the range was reused.
		saved := maps.Clone(cache.m)
		for k := range cache.m {
			cache.m[k] = [2]float32{-100, 100}
			break
		}
		if poisoned, _ := conv("p.onnx", nil); bytes.Equal(first, poisoned) {
			t.Errorf("%s: the cache was not used", kind)
		}
		cache.m = saved
		raised := &overrides.File{Version: overrides.Version, Tensors: map[string]*overrides.Tensor{"Relu_2_out": {DType: "uint16"}}}
		conv("c.onnx", raised)
		want := n
		if kind == "entropy" {
			want = n + 1 // Relu_2_out at 65536 levels is another range
		}
		if len(cache.m) != want {
			t.Errorf("%s: %d ranges cached after raising one tensor, want %d", kind, len(cache.m), want)
		}
	}
}

// TestReduceRange: int8 weight codes stay within [-64, 64], so no pair of
// uint8 x int8 products can overflow int16; without it they span [-127, 127].
// Weights that meet 16-bit activations keep their full range: no u8 x s8
// pair exists there.
func TestReduceRange(t *testing.T) {
	for _, c := range []struct {
		rr  bool
		act graph.DataType
	}{{false, graph.Uint8}, {true, graph.Uint8}, {true, graph.Uint16}} {
		rr := c.rr && c.act == graph.Uint8
		dir, model, cal := withSamples(t, testmodels.ConvBNReLU(2), 4, []int{1, 3, 32, 32}, 1)
		out := filepath.Join(dir, "q.onnx")
		if _, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, ReduceRange: c.rr, ActType: c.act, NoMeasure: true}); err != nil {
			t.Fatal(err)
		}
		m, err := graph.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := 0, 0
		for _, v := range m.Graph.Initializers {
			if v.Const.DType != graph.Int8 || !strings.HasSuffix(v.Name, "_quantized") {
				continue
			}
			for _, q := range v.Const.Data().([]int8) {
				lo, hi = min(lo, int(q)), max(hi, int(q))
			}
		}
		if rr && (lo < -64 || hi > 64) || !rr && (lo > -120 && hi < 120) {
			t.Errorf("reduce range %v, %s activations: weight codes in [%d, %d]", c.rr, c.act.Short(), lo, hi)
		}
	}
}

// TestRangeCacheFollowsSmoothing: with the default smoothing of 8-bit MatMul
// inputs, raising such an input to 16 bits leaves that MatMul unsmoothed,
// which changes the float values of the tensors before it (a LayerNorm's
// scale took 1/s): ranges cached under the smoothed model must not serve
// the unsmoothed one. A conversion through the cache writes the bytes one
// without it writes. (The cache served them: tune's candidates on a ViT
// fell from cosine 0.998 to 0.25 as they raised its LayerNorm outputs.)
func TestRangeCacheFollowsSmoothing(t *testing.T) {
	m := testmodels.ViT(1)
	dir, model, cal := withSamples(t, m, 8, []int{1, 3, 64, 64}, 1)
	cache := &RangeCache{}
	conv := func(name string, f *overrides.File, rc *RangeCache) []byte {
		out := filepath.Join(dir, name)
		if _, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, SmoothQuantDefault: true, Overrides: f, RangeCache: rc, NoMeasure: true}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	conv("base.onnx", nil, cache)
	raised := &overrides.File{Version: overrides.Version, Tensors: map[string]*overrides.Tensor{}}
	for _, n := range m.Graph.Nodes {
		if n.OpType != "LayerNormalization" {
			continue
		}
		for _, r := range n.Output().Consumers {
			if r.OpType == "MatMul" { // a block's LayerNorm, read by its Q, K, V or FFN MatMuls
				raised.Tensors[n.Output().Name] = &overrides.Tensor{DType: "uint16", Kind: overrides.KindActivation}
			}
		}
	}
	if len(raised.Tensors) == 0 {
		t.Fatal("no LayerNormalization in the ViT")
	}
	if !bytes.Equal(conv("cached.onnx", raised, cache), conv("fresh.onnx", raised, nil)) {
		t.Error("raised LayerNorm outputs: the conversion through the range cache differs from one without it")
	}
}
