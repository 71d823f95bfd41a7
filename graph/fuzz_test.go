package graph

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the loader. It must never panic; a model it
// accepts must validate, encode, and decode again without panicking, and every
// tensor it accepted must decode.
func FuzzDecode(f *testing.F) {
	b, err := Marshal(smallModel())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Add([]byte("\x08\x07\x3a\x00"))
	// A few real models of different shapes, when the test data is installed.
	for _, name := range []string{"node/test_conv_with_strides_padding", "node/test_if", "node/test_loop11", "simple/test_sign_model", "node/test_cast_FLOAT_to_FLOAT16"} {
		if b, err := os.ReadFile(filepath.Join("/usr/share/libonnx-testdata/data", name, "model.onnx")); err == nil {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lazy := range []bool{false, true} {
			m, err := Decode(data, dir, LoadOptions{LazyExternal: lazy})
			if err != nil {
				if m != nil {
					t.Fatal("model returned with an error")
				}
				continue
			}
			_ = m.Graph.Validate()
			for _, v := range m.Graph.Initializers {
				if v.Const.Materialize() == nil {
					_ = v.Const.Data()
				}
			}
			m.walkTensors(func(t *Tensor) {
				if t.Materialize() == nil {
					_ = t.Data()
				}
			})
			out, err := Marshal(m)
			if err != nil {
				continue // e.g. a cycle: refused cleanly
			}
			if _, err := Decode(out, dir, LoadOptions{}); err != nil {
				t.Fatalf("re-decoding our own output failed: %v", err)
			}
		}
	})
}
