package graph_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
)

// realModels is every backend test model plus the three PaddleOCR models.
func realModels(t *testing.T) []string {
	files := testdata.BackendModels(t)
	for _, k := range []string{"det", "rec", "cls"} {
		files = append(files, testdata.OCRModel(t, k))
	}
	return files
}

// TestRoundTripByteIdentical loads and saves every real model unmodified and
// requires the output to equal the input byte for byte.
func TestRoundTripByteIdentical(t *testing.T) {
	files := realModels(t)
	if len(files) < 1000 {
		t.Fatalf("expected over 1000 real models, found %d", len(files))
	}
	out := filepath.Join(t.TempDir(), "out.onnx")
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := graph.Load(f)
		if err != nil {
			t.Errorf("%s: load: %v", f, err)
			continue
		}
		if err := graph.Save(m, out); err != nil {
			t.Errorf("%s: save: %v", f, err)
			continue
		}
		got, _ := os.ReadFile(out)
		if !bytes.Equal(in, got) {
			t.Errorf("%s: round trip differs (%d bytes in, %d out)", f, len(in), len(got))
		}
	}
	t.Logf("%d models round-tripped byte-identically", len(files))
}

// TestRoundTripAfterDecoding forces every initializer and Constant tensor through
// decode and re-encode, which must still give identical bytes.
func TestRoundTripAfterDecoding(t *testing.T) {
	decoded := 0
	for _, f := range realModels(t) {
		in, _ := os.ReadFile(f)
		m, err := graph.Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range m.Graph.Initializers {
			v.Const.Data()
			decoded++
		}
		got, err := graph.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(in, got) {
			t.Errorf("%s: decoded round trip differs", strings.TrimPrefix(f, testdata.ONNXBackendDir))
		}
	}
	if decoded == 0 {
		t.Fatal("no initializers decoded")
	}
}
