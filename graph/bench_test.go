package graph_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// benchModel writes the ResNet-50-shaped test model (about 100 MB) once per benchmark.
func benchModel(b *testing.B) (string, int64) {
	p := filepath.Join(b.TempDir(), "resnet50.onnx")
	if err := graph.Save(testmodels.ResNet50(1, 1, true), p); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(p)
	return p, st.Size()
}

func BenchmarkLoad100MB(b *testing.B) {
	p, size := benchModel(b)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := graph.Load(p)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Graph.Initializers) == 0 {
			b.Fatal("no initializers")
		}
	}
}

// BenchmarkLoadDecode100MB also decodes every initializer into typed data.
func BenchmarkLoadDecode100MB(b *testing.B) {
	p, size := benchModel(b)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := graph.Load(p)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range m.Graph.Initializers {
			v.Const.Data()
		}
	}
}

func BenchmarkSave100MB(b *testing.B) {
	p, size := benchModel(b)
	m, err := graph.Load(p)
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "out.onnx")
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := graph.Save(m, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSaveExternal100MB writes the weights to an external data file.
func BenchmarkSaveExternal100MB(b *testing.B) {
	p, size := benchModel(b)
	m, err := graph.Load(p)
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "out.onnx")
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := graph.SaveWith(m, out, graph.SaveOptions{ExternalThreshold: 1024}); err != nil {
			b.Fatal(err)
		}
	}
}
