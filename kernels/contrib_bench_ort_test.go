//go:build ort

package kernels

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
)

// BenchmarkAttentionVsORT times a 256-token prompt through GroupQueryAttention
// (8 query heads, 4 KV heads of 64, rotary) and MultiHeadAttention (8 heads of
// 64, causal) in onnxq and ONNX Runtime, one thread each, interleaved, and
// reports the median ratio onnxq / ORT.
func BenchmarkAttentionVsORT(b *testing.B) {
	if err := ortref.Init(testdata.ORTLibrary(b)); err != nil {
		b.Fatal(err)
	}
	const s = 256
	cos, sin := ropeCache(512, 32)
	total := kin(int32Tensor(nil, []int32{s}))
	for _, c := range []opCase{
		{name: "GQA", domain: "com.microsoft", op: "GroupQueryAttention",
			attrs:   []*onnxpb.AttributeProto{ai("num_heads", 8), ai("kv_num_heads", 4), ai("do_rotary", 1)},
			inputs:  []opInput{fin(rnd(1, 1, s, 512)), fin(rnd(2, 1, s, 256)), fin(rnd(3, 1, s, 256)), none(), none(), fin(i32([]int{1}, s-1)), total, fin(cos), fin(sin)},
			outputs: []string{"Y", "pk", "pv"}},
		{name: "MHA", domain: "com.microsoft", op: "MultiHeadAttention",
			attrs:   []*onnxpb.AttributeProto{ai("num_heads", 8), ai("unidirectional", 1)},
			inputs:  []opInput{fin(rnd(4, 1, s, 512)), fin(rnd(5, 1, s, 512)), fin(rnd(6, 1, s, 512))},
			outputs: []string{"Y"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m, feeds := c.model()
			path := filepath.Join(b.TempDir(), "m.onnx")
			if err := graph.Save(m, path); err != nil {
				b.Fatal(err)
			}
			ours, err := NewSession(m, Options{Threads: 1})
			if err != nil {
				b.Fatal(err)
			}
			ref, err := ortref.NewSession(path, 1)
			if err != nil {
				b.Fatal(err)
			}
			defer ref.Close()
			timeIt := func(run func(map[string]*graph.Tensor) (map[string]*graph.Tensor, error)) float64 {
				start := time.Now()
				if _, err := run(feeds); err != nil {
					b.Fatal(err)
				}
				return time.Since(start).Seconds()
			}
			timeIt(ours.Run)
			timeIt(ref.Run)
			var a, r []float64
			for i := 0; i < b.N; i++ {
				a, r = append(a, timeIt(ours.Run)), append(r, timeIt(ref.Run))
			}
			sort.Float64s(a)
			sort.Float64s(r)
			b.ReportMetric(a[len(a)/2]*1e3, "onnxq-ms")
			b.ReportMetric(r[len(r)/2]*1e3, "ort-ms")
			b.ReportMetric(a[len(a)/2]/r[len(r)/2], "ratio")
		})
	}
}
