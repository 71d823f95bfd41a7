package kernels

import (
	"os"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
)

func BenchmarkZZAlloc(b *testing.B) {
	m, _ := graph.Load(os.Getenv("ZZF") + ".onnx")
	x, _ := npy.ReadFile(os.Getenv("ZZF") + ".npy")
	s, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	in := map[string]*graph.Tensor{s.Inputs()[0].Name: x}
	var outs map[string]*graph.Tensor
	for i := 0; i < 5; i++ {
		s.Recycle(outs)
		outs, _ = s.Run(in)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Recycle(outs)
		outs, _ = s.Run(in)
	}
}
