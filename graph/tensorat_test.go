package graph

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestTensorAt: a tensor over memory at a pointer reads and writes that
// memory as its typed slice, keeps the memory alive on its own through
// garbage collections, copies its shape, and refuses what it cannot wrap.
func TestTensorAt(t *testing.T) {
	var kept []*Tensor
	for i := range 64 {
		buf := make([]int64, 12)
		for j := range buf {
			buf[j] = int64(i*100 + j)
		}
		shape := []int{3, 4}
		x, err := TensorAt(Int64, shape, unsafe.Pointer(&buf[0]), 12)
		if err != nil {
			t.Fatal(err)
		}
		shape[0] = 99 // the tensor holds its own copy
		kept = append(kept, x)
	}
	runtime.GC()
	runtime.GC()
	for i, x := range kept {
		d := x.Int64s()
		if len(d) != 12 || cap(d) != 12 || x.Shape[0] != 3 || x.Shape[1] != 4 {
			t.Fatalf("tensor %d: %d values (cap %d), shape %v", i, len(d), cap(d), x.Shape)
		}
		for j, v := range d {
			if v != int64(i*100+j) {
				t.Fatalf("tensor %d [%d] = %d after GC", i, j, v)
			}
		}
	}
	f := []float32{1.5}
	s, err := TensorAt(Float, nil, unsafe.Pointer(&f[0]), 1)
	if err != nil || s.Shape != nil || s.Float32s()[0] != 1.5 || s.Len() != 1 {
		t.Fatalf("scalar: %v %v", s, err)
	}
	s.Float32s()[0] = 2 // writes land in the memory
	if f[0] != 2 {
		t.Errorf("a write through the tensor did not reach the memory")
	}
	if r7, err := TensorAt(Float, []int{1, 1, 1, 1, 1, 1, 1}, unsafe.Pointer(&f[0]), 1); err != nil || r7.Rank() != 7 {
		t.Errorf("rank 7: %v", err)
	}
	if _, ok := s.Data().([]float32); !ok {
		t.Errorf("Data is %T, want []float32", s.Data())
	}
	for _, c := range []struct {
		dt    DataType
		shape []int
		n     int
	}{{String, []int{1}, 1}, {Float, []int{2, 2}, 3}, {DataType(99), []int{1}, 1}} {
		if _, err := TensorAt(c.dt, c.shape, unsafe.Pointer(&f[0]), c.n); err == nil {
			t.Errorf("TensorAt(%v, %v, %d) made a tensor", c.dt, c.shape, c.n)
		}
	}
}

// TestReuseAt: a tensor TensorAt made takes another type, shape and memory
// in place, as TensorAt would give them (a rank-7 shape, then a scalar, a
// name set in between cleared); tensors TensorAt did not make (NewTensor's,
// TensorOf's) and arguments TensorAt refuses leave it false and the tensor
// as it was.
func TestReuseAt(t *testing.T) {
	f := []float32{1, 2, 3, 4, 5, 6}
	x, err := TensorAt(Float, []int{2, 3}, unsafe.Pointer(&f[0]), 6)
	if err != nil {
		t.Fatal(err)
	}
	x.Name = "old"
	old := x.Float32s()
	ints := make([]int64, 4)
	for i := range ints {
		ints[i] = int64(10 + i)
	}
	if !ReuseAt(x, Int64, []int{1, 1, 1, 1, 1, 1, 4}, unsafe.Pointer(&ints[0]), 4) {
		t.Fatal("ReuseAt refused TensorAt's tensor")
	}
	runtime.GC()
	if d := x.Int64s(); x.Name != "" || x.DType != Int64 || x.Rank() != 7 || len(d) != 4 || cap(d) != 4 || d[3] != 13 {
		t.Fatalf("reused: name %q, %s, shape %v, data %v", x.Name, x.DType, x.Shape, d)
	}
	if len(old) != 6 || old[5] != 6 { // a slice read before keeps its memory
		t.Fatalf("a slice read before ReuseAt: %v", old)
	}
	if !ReuseAt(x, Float, nil, unsafe.Pointer(&f[2]), 1) || x.Shape != nil || x.Float32s()[0] != 3 {
		t.Fatalf("scalar: shape %v, %v", x.Shape, x.Data())
	}
	for _, bad := range []struct {
		dt    DataType
		shape []int
		n     int
	}{{Float, []int{2}, 3}, {String, []int{1}, 1}, {Undefined, []int{1}, 1}} {
		if ReuseAt(x, bad.dt, bad.shape, unsafe.Pointer(&f[0]), bad.n) {
			t.Errorf("ReuseAt(%s, %v, %d elements) took it", bad.dt, bad.shape, bad.n)
		}
	}
	if x.Shape != nil || x.Float32s()[0] != 3 {
		t.Fatalf("a refused ReuseAt changed the tensor: %v %v", x.Shape, x.Data())
	}
	for _, other := range []*Tensor{NewTensor(Float, []int{6}), Float32Tensor([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6}), Float32Tensor(nil, []float32{7})} {
		before := other.Float32s()
		if ReuseAt(other, Float, []int{6}, unsafe.Pointer(&f[0]), 6) {
			t.Fatalf("ReuseAt took a tensor TensorAt did not make (%v)", other.Shape)
		}
		if &other.Float32s()[0] != &before[0] {
			t.Fatal("a refused ReuseAt changed the tensor's data")
		}
	}
}
