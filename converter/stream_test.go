package converter

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/rss"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
	"google.golang.org/protobuf/proto"
)

var streamLlama = testmodels.LlamaConfig{Dim: 64, Hidden: 176, Layers: 2, Heads: 8, KVHeads: 2, Vocab: 300, Seq: 5, Seed: 3}

// nodeKey is what a node computes, for comparing models whose node and
// initializer order may differ.
func nodeKey(n *graph.Node) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s:%s:", n.Domain, n.OpType)
	for _, v := range n.Inputs {
		if v != nil {
			b.WriteString(v.Name)
		}
		b.WriteByte(',')
	}
	b.WriteString("->")
	for _, v := range n.Outputs {
		b.WriteString(v.Name + ",")
	}
	for _, a := range n.Attrs {
		ab, _ := proto.MarshalOptions{Deterministic: true}.Marshal(a)
		b.Write(ab)
	}
	return b.String()
}

// sameModel checks that two models have the same nodes and initializers
// (names, types, shapes, bytes), in any order.
func sameModel(t *testing.T, a, b *graph.Model) {
	t.Helper()
	nodes := func(m *graph.Model) map[string]string {
		out := map[string]string{}
		for _, n := range m.Graph.Nodes {
			out[n.Name] = nodeKey(n)
		}
		return out
	}
	if na, nb := nodes(a), nodes(b); !reflect.DeepEqual(na, nb) {
		for k, v := range na {
			if nb[k] != v {
				t.Errorf("node %q: %q vs %q", k, v, nb[k])
			}
		}
		t.Fatalf("%d vs %d nodes differ", len(na), len(nb))
	}
	inits := func(m *graph.Model) map[string]*graph.Tensor {
		out := map[string]*graph.Tensor{}
		for _, v := range m.Graph.Initializers {
			out[v.Name] = v.Const
		}
		return out
	}
	ia, ib := inits(a), inits(b)
	if len(ia) != len(ib) {
		t.Fatalf("%d vs %d initializers", len(ia), len(ib))
	}
	for name, x := range ia {
		y := ib[name]
		if y == nil || x.DType != y.DType || !reflect.DeepEqual(x.Shape, y.Shape) || !bytes.Equal(graph.RawBytes(x), graph.RawBytes(y)) {
			t.Errorf("initializer %q differs", name)
		}
	}
	if !reflect.DeepEqual(a.Opsets(), b.Opsets()) {
		t.Errorf("opsets %v vs %v", a.Opsets(), b.Opsets())
	}
}

// streamLlamaFiles writes the test Llama with external data into a fresh
// folder (src) and, when asked, the same model with every weight inline
// (inline, the in-memory conversion's reference).
func streamLlamaFiles(t *testing.T, withInline bool) (dir, src, inline string) {
	t.Helper()
	dir = t.TempDir()
	src = filepath.Join(dir, "llama.onnx")
	if err := testmodels.WriteLlama(src, streamLlama); err != nil {
		t.Fatal(err)
	}
	if !withInline {
		return dir, src, ""
	}
	m, err := graph.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	inline = filepath.Join(dir, "inline.onnx")
	if err := graph.SaveWith(m, inline, graph.SaveOptions{ExternalThreshold: -1}); err != nil {
		t.Fatal(err)
	}
	return dir, src, inline
}

// A streaming conversion writes the model the in-memory one does (with the
// same passes), in both weight formats, and the model runs to the same
// logits.
func TestStreamingMatchesInMemory(t *testing.T) {
	dir, src, inline := streamLlamaFiles(t, true)
	ids := graph.Int64Tensor([]int{1, streamLlama.Seq}, []int64{3, 1, 4, 1, 5})
	for _, format := range []string{FormatONNX, FormatMatMulNBits} {
		for _, wt := range []graph.DataType{graph.Int4, graph.Uint4} {
			t.Run(format+"/"+wt.Short(), func(t *testing.T) {
				opt := Options{Model: src, Output: filepath.Join(dir, format+wt.Short()+".onnx"), WeightOnly: true, WeightType: wt, WeightBlockSize: 32, WeightFormat: format, NoMeasure: true, Threads: 2}
				if wt == graph.Uint4 {
					opt.Overrides = asymmetricDefaults(t)
				}
				rep, err := Convert(context.Background(), opt)
				if err != nil {
					t.Fatal(err)
				}
				if !rep.Streamed {
					t.Fatal("a weight-only conversion of a model with external data did not stream")
				}
				ref := opt
				ref.Model, ref.Output, ref.Passes = inline, filepath.Join(dir, "ref.onnx"), streamPassList(opt)
				rrep, err := Convert(context.Background(), ref)
				if err != nil {
					t.Fatal(err)
				}
				if rrep.Streamed {
					t.Fatal("an inline model streamed")
				}
				got, err := graph.Load(opt.Output)
				if err != nil {
					t.Fatal(err)
				}
				want, err := graph.Load(ref.Output)
				if err != nil {
					t.Fatal(err)
				}
				sameModel(t, got, want)
				if len(got.ExternalFiles()) != 1 {
					t.Errorf("external files %v", got.ExternalFiles())
				}
				// The output's quantized weights are external; its float
				// embedding table was copied there without being read.
				for _, v := range got.Graph.Initializers {
					if v.Const.ByteSize() >= 4096 && len(v.Const.Name) > 0 && !isExternal(t, opt.Output, v.Name) {
						t.Errorf("%s (%d bytes) is inline", v.Name, v.Const.ByteSize())
					}
				}
				a, b := runLogits(t, got, ids), runLogits(t, want, ids)
				if !reflect.DeepEqual(a, b) {
					t.Error("logits differ")
				}
			})
		}
	}
}

// asymmetricDefaults makes every weight asymmetric (zero points in the output).
func asymmetricDefaults(*testing.T) *overrides.File {
	asym := false
	return &overrides.File{Version: 1, Defaults: &overrides.Rule{WeightSymmetric: &asym}}
}

// isExternal reports whether the saved model stores the initializer in an
// external file.
func isExternal(t *testing.T, path, name string) bool {
	t.Helper()
	m, err := graph.LoadWith(path, graph.LoadOptions{LazyExternal: true})
	if err != nil {
		t.Fatal(err)
	}
	return m.Graph.Value(name).Const.Lazy()
}

func runLogits(t *testing.T, m *graph.Model, ids *graph.Tensor) []float32 {
	t.Helper()
	s, err := kernels.NewSession(m, kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*graph.Tensor{"input_ids": ids})
	if err != nil {
		t.Fatal(err)
	}
	return out["logits"].Float32s()
}

// The fast range gathering gives passes.WeightEncoding's encodings exactly.
func TestWeightEncodingMatchesPasses(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ rows, cols, axis, block int }{
		{64, 48, 0, 32}, {70, 9, 0, 32}, {256, 70, 0, 16}, {40, 1100, 1, 0}, {1100, 3, 0, 0}, {9, 70, 1, 16}, {33, 5, 0, 0}, {5, 33, 1, 0}, {8, 8, -1, 0}, {16, 1, 0, 32}, {40, 24, 0, 128},
	} {
		x := make([]float32, c.rows*c.cols)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 0.1)
		}
		w := graph.Float32Tensor([]int{c.rows, c.cols}, x)
		for _, dt := range []graph.DataType{graph.Int4, graph.Uint8} {
			for _, sym := range []bool{true, false} {
				want, err := passes.WeightEncoding(w, c.axis, c.block, dt, sym)
				if err != nil {
					t.Fatal(err)
				}
				for _, workers := range []int{1, 3} {
					got, err := weightEncoding(w, c.axis, c.block, dt, sym, workers)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%+v %s sym=%v workers %d: %+v, want %+v", c, dt.Short(), sym, workers, got, want)
					}
				}
			}
		}
	}
	// A NaN weight is an error there as here.
	w := graph.Float32Tensor([]int{2, 2}, []float32{1, float32(math.NaN()), 0, 1})
	if _, err := weightEncoding(w, 1, 0, graph.Int8, true, 2); err == nil {
		t.Error("NaN weight accepted")
	}
}

// Streaming keeps memory near the largest weight: converting a ~50 MB model
// raises the peak RSS by well under the model's size (an in-memory
// conversion holds the float model and its quantized copy).
func TestStreamingBoundedRSS(t *testing.T) {
	if !rss.ResetPeak() {
		t.Skip("no resettable peak RSS on this system")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "llama.onnx")
	c := testmodels.LlamaForSize(testmodels.LlamaConfig{Dim: 512, Hidden: 1408, Heads: 8, KVHeads: 2, Vocab: 4096, Seq: 4, Seed: 1}, 50<<20)
	if err := testmodels.WriteLlama(src, c); err != nil {
		t.Fatal(err)
	}
	size := c.WeightBytes()
	largest := int64(4 * c.Vocab * c.Dim)
	for _, format := range []string{FormatONNX, FormatMatMulNBits} {
		debug.FreeOSMemory()
		rss.ResetPeak()
		base := rss.Peak()
		rep, err := Convert(context.Background(), Options{Model: src, Output: filepath.Join(dir, "q.onnx"), WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, WeightFormat: format, NoMeasure: true})
		if err != nil {
			t.Fatal(err)
		}
		grew := rep.PeakRSSBytes - base
		t.Logf("%s: %d MB model (largest weight %d MB): peak RSS grew by %.1f MB", format, size>>20, largest>>20, float64(grew)/(1<<20))
		if grew > size*3/4 {
			t.Errorf("%s: peak RSS grew by %d MB converting a %d MB model: not streaming", format, grew>>20, size>>20)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "q.onnx.data")); err != nil {
		t.Error(err)
	}
}

// --external-data-chunk splits the output's data into files of at most the
// chunk size, and the model loads and runs from them.
func TestStreamingChunks(t *testing.T) {
	dir, src, _ := streamLlamaFiles(t, false)
	out := filepath.Join(dir, "q.onnx")
	const chunk = 64 << 10
	if _, err := Convert(context.Background(), Options{Model: src, Output: out, WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, NoMeasure: true, ExternalDataChunk: chunk}); err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	files := m.ExternalFiles()
	if len(files) < 2 {
		t.Fatalf("external files %v: not chunked", files)
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		// A tensor larger than the chunk gets a file of its own.
		if st.Size() > chunk && st.Size() < 4*int64(streamLlama.Vocab*streamLlama.Dim) {
			t.Errorf("%s is %d bytes, over the %d-byte chunk", f, st.Size(), chunk)
		}
	}
	if _, err := os.Stat(out + ".data"); !os.IsNotExist(err) {
		t.Errorf("unchunked data file written too: %v", err)
	}
	ids := graph.Int64Tensor([]int{1, streamLlama.Seq}, []int64{3, 1, 4, 1, 5})
	runLogits(t, m, ids)
}

// A pass named by the user that rewrites weights in memory turns streaming
// off (with a warning) rather than being skipped; the model is still right.
func TestStreamingOffForWeightPasses(t *testing.T) {
	dir, src, inline := streamLlamaFiles(t, true)
	opt := Options{Model: src, Output: filepath.Join(dir, "q.onnx"), WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, NoMeasure: true, Passes: "eliminate-identity,fold-constants"}
	rep, err := Convert(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Streamed || !strings.Contains(strings.Join(rep.Warnings, "\n"), "not streamed: pass fold-constants") {
		t.Errorf("streamed %v, warnings %q", rep.Streamed, rep.Warnings)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	ref := opt
	ref.Model, ref.Output = inline, filepath.Join(dir, "ref.onnx")
	if _, err := Convert(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	got, _ := graph.Load(opt.Output)
	want, _ := graph.Load(ref.Output)
	sameModel(t, got, want)
}

// Odd and padded K, 4 and 8 bits, with and without zero points: the packed
// MatMulNBits weights of a streaming conversion are ToMatMulNBits' bytes.
func TestStreamingPacksLikeToMatMulNBits(t *testing.T) {
	for _, k := range []int{37, 64, 100} {
		for _, wt := range []graph.DataType{graph.Int4, graph.Uint4, graph.Int8} {
			dir := t.TempDir()
			m := llmTestModel(k, 5, true)
			ext := filepath.Join(dir, "ext.onnx")
			if err := graph.SaveWith(m, ext, graph.SaveOptions{ExternalThreshold: 64}); err != nil {
				t.Fatal(err)
			}
			inline := saveModel(t, m, dir)
			opt := Options{Model: ext, Output: filepath.Join(dir, "s.onnx"), WeightOnly: true, WeightType: wt, WeightBlockSize: 16, WeightFormat: FormatMatMulNBits, NoMeasure: true, Threads: 3}
			if wt == graph.Uint4 {
				opt.Overrides = asymmetricDefaults(t)
			}
			rep, err := Convert(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Streamed {
				t.Fatal("not streamed")
			}
			ref := opt
			ref.Model, ref.Output, ref.Passes = inline, filepath.Join(dir, "r.onnx"), streamPassList(opt)
			if _, err := Convert(context.Background(), ref); err != nil {
				t.Fatal(err)
			}
			got, _ := graph.Load(opt.Output)
			want, _ := graph.Load(ref.Output)
			t.Run(fmt.Sprintf("K%d/%s", k, wt.Short()), func(t *testing.T) { sameModel(t, got, want) })
		}
	}
}

// Conv weights (4-D, per output channel) and a Gemm stream through the
// general quantizer; the model is the in-memory one.
func TestStreamingConvWeights(t *testing.T) {
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext.onnx")
	m := testmodels.ConvBNReLU(2)
	if err := graph.SaveWith(m, ext, graph.SaveOptions{ExternalThreshold: 256}); err != nil {
		t.Fatal(err)
	}
	inline := saveModel(t, testmodels.ConvBNReLU(2), dir)
	for _, wt := range []graph.DataType{graph.Int8, graph.Uint8} {
		opt := Options{Model: ext, Output: filepath.Join(dir, "s.onnx"), WeightOnly: true, WeightType: wt, NoMeasure: true}
		rep, err := Convert(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Streamed || len(rep.Tensors) == 0 {
			t.Fatalf("streamed %v, %d tensors", rep.Streamed, len(rep.Tensors))
		}
		ref := opt
		ref.Model, ref.Output, ref.Passes = inline, filepath.Join(dir, "r.onnx"), streamPassList(opt)
		if _, err := Convert(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
		got, _ := graph.Load(opt.Output)
		want, _ := graph.Load(ref.Output)
		sameModel(t, got, want)
	}
}

// Weight rounding picks codes after the encodings: such a conversion is not
// streamed, and gives the in-memory model.
func TestStreamingOffForWeightRounding(t *testing.T) {
	dir, src, inline := streamLlamaFiles(t, true)
	opt := Options{Model: src, Output: filepath.Join(dir, "q.onnx"), WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, NoMeasure: true, WeightRounding: "hqq"}
	rep, err := Convert(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Streamed || !strings.Contains(strings.Join(rep.Warnings, "\n"), "not streamed: weight rounding") {
		t.Fatalf("streamed %v, warnings %q", rep.Streamed, rep.Warnings)
	}
	ref := opt
	ref.Model, ref.Output = inline, filepath.Join(dir, "ref.onnx")
	if _, err := Convert(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	got, _ := graph.Load(opt.Output)
	want, _ := graph.Load(ref.Output)
	sameModel(t, got, want)
}

// A cancelled streaming conversion stops and leaves no temporary file.
func TestStreamingCancelled(t *testing.T) {
	dir, src, _ := streamLlamaFiles(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Convert(ctx, Options{Model: src, Output: filepath.Join(dir, "q.onnx"), WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, NoMeasure: true})
	if err == nil {
		t.Fatal("a cancelled conversion completed")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files %v, want the model and its data only", names)
	}
}
