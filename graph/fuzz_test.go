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

// FuzzReadTensorFile feeds arbitrary bytes to the .pb tensor reader (run's
// and calibration's ONNX test data input): it must never panic, and a
// tensor it returns must hold as many values as its shape says.
func FuzzReadTensorFile(f *testing.F) {
	for _, name := range []string{"node/test_conv_with_strides_padding", "node/test_cast_FLOAT_to_FLOAT16", "node/test_gather_0", "pytorch-operator/test_operator_add_broadcast"} {
		if b, err := os.ReadFile(filepath.Join("/usr/share/libonnx-testdata/data", name, "test_data_set_0", "input_0.pb")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("\x08\x01\x10\x07\x42\x04abcd"))
	path := filepath.Join(f.TempDir(), "input_0.pb")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		x, err := ReadTensorFile(path)
		if err != nil {
			if x != nil {
				t.Fatal("tensor returned with an error")
			}
			return
		}
		if x.Materialize() == nil && x.Len() != Numel(x.Shape) {
			t.Fatalf("%d values for shape %v", x.Len(), x.Shape)
		}
	})
}
