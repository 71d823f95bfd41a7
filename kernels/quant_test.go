package kernels

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// runOp compiles a one-node graph at opset 21 and runs it on the given inputs.
func runOp(t *testing.T, op string, attrs []*onnxpb.AttributeProto, in ...*graph.Tensor) []*graph.Tensor {
	t.Helper()
	out, err := runOpThreads(1, op, attrs, in...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runOpThreads runs op alone in a session of threads threads, returning
// its error.
func runOpThreads(threads int, op string, attrs []*onnxpb.AttributeProto, in ...*graph.Tensor) ([]*graph.Tensor, error) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 21})
	g := m.Graph
	var vals []*graph.Value
	feed := map[string]*graph.Tensor{}
	for i, x := range in {
		if x == nil {
			vals = append(vals, nil)
			continue
		}
		name := string(rune('a' + i))
		v := g.AddInput(name, x.DType, nil)
		vals = append(vals, v)
		feed[name] = x
	}
	n := g.AddNode(op, "op", vals, []string{"y"}, attrs...)
	g.AddOutput(n.Output())
	s, err := NewSession(m, Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	out, err := s.Run(feed)
	if err != nil {
		return nil, err
	}
	return []*graph.Tensor{out["y"]}, nil
}

func tensorOf(t *testing.T, dt graph.DataType, shape []int, data any) *graph.Tensor {
	x, err := graph.TensorOf(dt, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestQuantizeLinearRoundingAndSaturation(t *testing.T) {
	x := graph.Float32Tensor([]int{8}, []float32{0.5, 1.5, 2.5, -0.5, -1.5, 300, -300, 0.49})
	scale := graph.Float32Tensor(nil, []float32{1})
	// int8: halves go to even; out of range saturates.
	zp8 := tensorOf(t, graph.Int8, nil, []int8{0})
	got := runOp(t, "QuantizeLinear", nil, x, scale, zp8)[0].Data()
	if want := []int8{0, 2, 2, 0, -2, 127, -128, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("int8: %v, want %v", got, want)
	}
	// uint8 with zero point 128.
	zpu := tensorOf(t, graph.Uint8, nil, []uint8{128})
	got = runOp(t, "QuantizeLinear", nil, x, scale, zpu)[0].Data()
	if want := []uint8{128, 130, 130, 128, 126, 255, 0, 128}; !reflect.DeepEqual(got, want) {
		t.Errorf("uint8: %v, want %v", got, want)
	}
	// int4 and uint4 saturate to their 4-bit ranges; int16 holds more.
	got = runOp(t, "QuantizeLinear", nil, x, scale, tensorOf(t, graph.Int4, nil, []int8{0}))[0].Data()
	if want := []int8{0, 2, 2, 0, -2, 7, -8, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("int4: %v, want %v", got, want)
	}
	got = runOp(t, "QuantizeLinear", nil, x, scale, tensorOf(t, graph.Uint4, nil, []uint8{8}))[0].Data()
	if want := []uint8{8, 10, 10, 8, 6, 15, 0, 8}; !reflect.DeepEqual(got, want) {
		t.Errorf("uint4: %v, want %v", got, want)
	}
	got = runOp(t, "QuantizeLinear", nil, x, scale, tensorOf(t, graph.Int16, nil, []int16{0}))[0].Data()
	if want := []int16{0, 2, 2, 0, -2, 300, -300, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("int16: %v, want %v", got, want)
	}
	// Without a zero point the output is uint8.
	got = runOp(t, "QuantizeLinear", nil, x, graph.Float32Tensor(nil, []float32{2}))[0].Data()
	if want := []uint8{0, 1, 1, 0, 0, 150, 0, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("default uint8: %v, want %v", got, want)
	}
}

func TestQuantizeDequantizePerAxisAndBlocked(t *testing.T) {
	// x is 2 x 4; per-axis over axis 0, blocked with block 2 over axis 1.
	x := graph.Float32Tensor([]int{2, 4}, []float32{1, 2, 3, 4, -1, -2, -3, -4})
	scale := graph.Float32Tensor([]int{2}, []float32{1, 0.5})
	zp := tensorOf(t, graph.Int8, []int{2}, []int8{0, 1})
	q := runOp(t, "QuantizeLinear", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 0)}, x, scale, zp)[0]
	if want := []int8{1, 2, 3, 4, -1, -3, -5, -7}; !reflect.DeepEqual(q.Data(), want) {
		t.Errorf("per-axis Q: %v, want %v", q.Data(), want)
	}
	dq := runOp(t, "DequantizeLinear", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 0)}, q, scale, zp)[0]
	if !reflect.DeepEqual(dq.Float32s(), x.Float32s()) {
		t.Errorf("per-axis DQ: %v", dq.Float32s())
	}
	bscale := graph.Float32Tensor([]int{2, 2}, []float32{1, 2, 0.5, 4})
	bzp := tensorOf(t, graph.Int4, []int{2, 2}, []int8{0, 0, 0, 0})
	attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("axis", 1), graph.AttrIntOf("block_size", 2)}
	q = runOp(t, "QuantizeLinear", attrs, x, bscale, bzp)[0]
	// row 0: [1,2]/1, [3,4]/2 -> 1,2,2(1.5 even),2 ; row 1: [-1,-2]/0.5 -> -2,-4 ; [-3,-4]/4 -> -1(-0.75),-1
	if want := []int8{1, 2, 2, 2, -2, -4, -1, -1}; !reflect.DeepEqual(q.Data(), want) {
		t.Errorf("blocked Q: %v, want %v", q.Data(), want)
	}
	dq = runOp(t, "DequantizeLinear", attrs, q, bscale, bzp)[0]
	if want := []float32{1, 2, 4, 4, -1, -2, -4, -4}; !reflect.DeepEqual(dq.Float32s(), want) {
		t.Errorf("blocked DQ: %v, want %v", dq.Float32s(), want)
	}
	// int32 DQ (bias) without a zero point.
	b := runOp(t, "DequantizeLinear", nil, tensorOf(t, graph.Int32, []int{2}, []int32{-7, 100000}), graph.Float32Tensor(nil, []float32{0.25}))[0]
	if want := []float32{-1.75, 25000}; !reflect.DeepEqual(b.Float32s(), want) {
		t.Errorf("int32 DQ: %v", b.Float32s())
	}
}

// TestQuantizeLinearPerTensorMatchesQuantizeValue runs per-tensor
// QuantizeLinear (the vector path) on 3000 values with ties, saturation,
// ±Inf and NaN, for each 8- and 16-bit type and a few zero points, against
// QuantizeValue element by element.
func TestQuantizeLinearPerTensorMatchesQuantizeValue(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	const n = 3000 // several 1024-value blocks and a ragged last one
	xs := make([]float32, n)
	special := []float32{0.5, -0.5, 2.5, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e30, -1e30}
	for _, sc := range []float32{0.02, 0.37, 3} {
		for i := range xs {
			xs[i] = float32(r.NormFloat64()) * sc * 150
			if r.IntN(20) == 0 {
				xs[i] = special[r.IntN(len(special))] * sc
			}
		}
		for _, tc := range []struct {
			dt  graph.DataType
			zps []int64
		}{{graph.Uint8, []int64{0, 128, 255}}, {graph.Int8, []int64{-128, 0, 5}}, {graph.Uint16, []int64{0, 32768}}, {graph.Int16, []int64{-3, 0}}} {
			lo, hi, _ := QuantRange(tc.dt)
			for _, zp := range tc.zps {
				zpt := graph.NewTensor(tc.dt, nil)
				StoreInt64s(zpt, []int64{zp})
				y := runOp(t, "QuantizeLinear", nil, graph.Float32Tensor([]int{n}, xs), graph.Float32Tensor(nil, []float32{sc}), zpt)[0]
				got := readInt64s(y)
				for i, x := range xs {
					if want := int64(QuantizeValue(x, sc, int32(zp), lo, hi)); int64(int32(want)) != want || got[i] != int64(castTo(tc.dt, want)) {
						t.Fatalf("%s scale %g zp %d: Q(%g) = %d, want %d", tc.dt.Short(), sc, zp, x, got[i], castTo(tc.dt, want))
					}
				}
			}
		}
	}
}

// castTo wraps v to dt's width as a Go conversion does (QuantizeValue's
// int32 of a NaN wraps to 0 in each of these types).
func castTo(dt graph.DataType, v int64) int64 {
	switch dt {
	case graph.Uint8:
		return int64(uint8(v))
	case graph.Int8:
		return int64(int8(v))
	case graph.Uint16:
		return int64(uint16(v))
	}
	return int64(int16(v))
}

// TestDequantizePerAxisRuns: per-axis DequantizeLinear, taken a run of
// inner elements at a time, gives the bits of the per-element formula on
// every axis of a tensor large enough to split at 2 threads (chunks end
// inside runs), for 8- and 16-bit and int32 inputs.
func TestDequantizePerAxisRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	shape := []int{67, 33, 31} // 8 chunks at 2 threads, none ending on a run
	for _, dt := range []graph.DataType{graph.Int8, graph.Uint8, graph.Int16, graph.Int32} {
		x := graph.NewTensor(dt, shape)
		q := make([]int64, x.Len())
		for i := range q {
			q[i] = int64(r.IntN(200)) - 100
			if dt == graph.Uint8 {
				q[i] += 100
			}
		}
		StoreInt64s(x, q)
		for axis := range shape {
			n := shape[axis]
			scale := make([]float32, n)
			zps := make([]int64, n)
			for i := range scale {
				scale[i] = 0.01 + r.Float32()
				zps[i] = int64(r.IntN(7)) - 3
				if dt == graph.Uint8 {
					zps[i] += 3
				}
				if dt == graph.Int32 {
					zps[i] = 0
				}
			}
			zp := graph.NewTensor(dt, []int{n})
			StoreInt64s(zp, zps)
			out, err := runOpThreads(2, "DequantizeLinear", []*onnxpb.AttributeProto{graph.AttrIntOf("axis", int64(axis))}, x, graph.Float32Tensor([]int{n}, scale), zp)
			if err != nil {
				t.Fatal(err)
			}
			inner := 1
			for _, d := range shape[axis+1:] {
				inner *= d
			}
			got := out[0].Float32s()
			for i, v := range q {
				k := i / inner % n
				if want := float32(int32(v)-int32(zps[k])) * scale[k]; got[i] != want {
					t.Fatalf("%s axis %d: y[%d] = %g, want %g", dt.Short(), axis, i, got[i], want)
				}
			}
		}
	}
}
