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
