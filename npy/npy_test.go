package npy

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

func TestRoundTrip(t *testing.T) {
	cases := []*graph.Tensor{
		graph.Float32Tensor([]int{2, 3}, []float32{1, 2, 3, 4, 5, -6.5}),
		graph.Float32Tensor(nil, []float32{7}),
		graph.Int64Tensor([]int{3}, []int64{-1, 0, 1 << 40}),
		must(graph.TensorOf(graph.Uint8, []int{2, 2}, []uint8{0, 1, 254, 255})),
		must(graph.TensorOf(graph.Bool, []int{2}, []bool{true, false})),
		graph.Float32Tensor([]int{0, 4}, []float32{}),
	}
	dir := t.TempDir()
	for i, want := range cases {
		p := filepath.Join(dir, "t.npy")
		if err := WriteFile(p, want); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(p)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || !reflect.DeepEqual(got.Data(), want.Data()) {
			t.Errorf("case %d: got %s%v %v, want %s%v %v", i, got.DType, got.Shape, got.Data(), want.DType, want.Shape, want.Data())
		}
	}
}

func must(t *graph.Tensor, err error) *graph.Tensor {
	if err != nil {
		panic(err)
	}
	return t
}

// npyBytes builds a file from a header string and data, as numpy would.
func npyBytes(header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	b.Write([]byte{1, 0})
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestNumpyVariants(t *testing.T) {
	// Big-endian int16 and Fortran order: [[1, 2, 3], [4, 5, 6]] stored column-major.
	be := npyBytes("{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }\n", []byte{0, 1, 0, 4, 0, 2, 0, 5, 0, 3, 0, 6})
	got, err := Read(bytes.NewReader(be))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int16{1, 2, 3, 4, 5, 6}; !reflect.DeepEqual(got.Data(), want) || !reflect.DeepEqual(got.Shape, []int{2, 3}) {
		t.Errorf("got %v %v", got.Shape, got.Data())
	}
	// numpy 1.x writes 'shape': (3,) for 1-D and may use "L" suffixes in old files.
	old := npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }\n", make([]byte, 16))
	if got, err := Read(bytes.NewReader(old)); err != nil || got.DType != graph.Double || got.Len() != 2 {
		t.Errorf("old header: %v %v", got, err)
	}
}

func TestBadFiles(t *testing.T) {
	cases := map[string][]byte{
		"too short":              []byte("\x93NU"),
		"no \\x93NUMPY magic":    []byte("PK\x03\x04 this is a zip file"),
		"is not supported":       npyBytes("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }\n", nil),
		"the header promises 24": npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", make([]byte, 8)),
		"structured arrays":      npyBytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", nil),
		"bad dimension":          npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", nil),
		"shape too large":        npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 100000000), }\n", nil),
		"version 9.0":            append([]byte(magic), 9, 0, 0, 0),
		"has no \"shape\"":       npyBytes("{'descr': '<f4', 'fortran_order': False, }\n", nil),
	}
	for want, b := range cases {
		_, err := Read(bytes.NewReader(b))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v", want, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	Write(&b, graph.Float32Tensor([]int{2, 2}, []float32{1, 2, 3, 4}))
	f.Add(b.Bytes())
	f.Add(npyBytes("{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }\n", make([]byte, 12)))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Write(&out, x); err != nil {
			t.Fatal(err)
		}
		y, err := Read(&out)
		if err != nil || !reflect.DeepEqual(x.Shape, y.Shape) {
			t.Fatalf("re-read failed: %v", err)
		}
	})
}
