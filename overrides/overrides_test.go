package overrides

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAndWrite(t *testing.T) {
	ax := 0
	f := &File{Tensors: map[string]*Tensor{
		"x": {Encoding: &Encoding{DType: "uint8", Scale: []float32{0.0123}, ZeroPoint: []int64{128}}},
		"w": {Encoding: &Encoding{DType: "int8", Scale: []float32{0.5, 0.25}, ZeroPoint: []int64{0, 0}, Axis: &ax}},
	}}
	p := filepath.Join(t.TempDir(), "o.json")
	if err := f.Write(p); err != nil {
		t.Fatal(err)
	}
	g, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if g.Tensors["x"].Encoding.Scale[0] != 0.0123 || *g.Tensors["w"].Encoding.Axis != 0 || g.Tensors["w"].Encoding.Type().Short() != "int8" {
		t.Errorf("read back %+v", g.Tensors)
	}
}

func TestErrors(t *testing.T) {
	cases := map[string]string{
		`{"version": 2}`: "version: 2 is not supported",
		`{"version": 1, "tensors": {"a": {"encoding": {"dtype": "int5", "scale": [1], "zero_point": [0]}}}}`:                   `tensors["a"].encoding.dtype: "int5" is not supported`,
		`{"version": 1, "tensors": {"a": {"encoding": {"dtype": "int8", "scale": [0], "zero_point": [0]}}}}`:                   `tensors["a"].encoding.scale[0]: 0 must be positive`,
		`{"version": 1, "tensors": {"a": {"encoding": {"dtype": "int8", "scale": [1, 2], "zero_point": [0]}}}}`:                `zero_point: 1 values for 2 scales`,
		`{"version": 1, "tensors": {"a": {"encoding": {"dtype": "int8", "scale": [1, 2], "zero_point": [0, 0], "axis": -1}}}}`: `axis: -1 must not be negative`,
		`{"version": 1, "tensors": {"a": {"encodings": {}}}}`:                                                                  `tensors["a"].encodings: unknown key`,
		`{"version": 1} {}`:                      "line 1, column 16: invalid character",
		`{"version": 1, "tensors": {"a": null}}`: `tensors["a"]: null`,
	}
	for in, want := range cases {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`{"version": 1, "tensors": {"x": {"encoding": {"dtype": "uint8", "scale": [0.1], "zero_point": [3]}}}}`)
	f.Add(`{"version": 1, "tensors": {"w": {"encoding": {"dtype": "int4", "scale": [1, 2], "zero_point": [0, 0], "axis": 1, "block_size": 2, "scale_shape": [2, 1]}}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		file, err := Parse([]byte(s))
		if err != nil {
			return
		}
		for _, n := range file.Names() {
			if e := file.Tensors[n].Encoding; e != nil && len(e.Scale) != len(e.ZeroPoint) {
				t.Fatalf("accepted mismatched encoding %+v", e)
			}
		}
	})
}
