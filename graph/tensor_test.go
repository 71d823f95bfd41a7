package graph

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

func TestFloat16Conversions(t *testing.T) {
	cases := []struct {
		f    float32
		bits Float16Bits
	}{
		{0, 0x0000}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {0.5, 0x3800},
		{float32(math.Inf(1)), 0x7c00}, {1e6, 0x7c00}, // overflow saturates to inf
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{6.103515625e-05, 0x0400},        // smallest normal
		{2.9802322387695312e-08, 0x0000}, // exactly half the smallest subnormal: ties to even (0)
		{8.940696716308594e-08, 0x0002},  // 1.5 subnormal steps: ties to even (2)
		{1.0009765625, 0x3c01},
		{1.00048828125, 0x3c00}, // halfway between 0x3c00 and 0x3c01: even
		{1.00146484375, 0x3c02}, // halfway between 0x3c01 and 0x3c02: even
	}
	for _, c := range cases {
		if got := ToFloat16(c.f); got != c.bits {
			t.Errorf("ToFloat16(%g) = %#04x, want %#04x", c.f, got, c.bits)
		}
	}
	// Every finite half widens and narrows back to itself.
	for b := 0; b < 1<<16; b++ {
		h := Float16Bits(b)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if f := h.Float32(); f == f {
				t.Fatalf("%#04x should widen to NaN", b)
			}
			continue
		}
		if got := ToFloat16(h.Float32()); got != h {
			t.Fatalf("half %#04x -> %g -> %#04x", b, h.Float32(), got)
		}
	}
}

func TestBFloat16Conversions(t *testing.T) {
	if got := ToBFloat16(1); got != 0x3f80 {
		t.Errorf("ToBFloat16(1) = %#x", got)
	}
	// 1 + 2^-8 is halfway between 1 and the next bfloat16: ties to even (1).
	if got := ToBFloat16(1 + 1.0/256); got != 0x3f80 {
		t.Errorf("ToBFloat16(1+2^-8) = %#x, want 0x3f80", got)
	}
	if got := ToBFloat16(1 + 3.0/256); got != 0x3f82 {
		t.Errorf("ToBFloat16(1+3*2^-8) = %#x, want 0x3f82", got)
	}
	if f := ToBFloat16(float32(math.NaN())).Float32(); f == f {
		t.Error("NaN did not stay NaN")
	}
	if got := BFloat16Bits(0xc040).Float32(); got != -3 {
		t.Errorf("0xc040 = %g", got)
	}
}

// TestTensorEncodings encodes one tensor of every element type both as raw_data
// and as the typed field, decodes each, and compares with the original values.
func TestTensorEncodings(t *testing.T) {
	shape := []int{5}
	values := map[DataType]any{
		Float:          []float32{1.5, -2, 0, float32(math.Inf(-1)), 3e-8},
		Double:         []float64{1.5, -2, 0, 1e300, -1e-300},
		Float16:        []Float16Bits{0x3c00, 0xc000, 0, 0x7bff, 1},
		BFloat16:       []BFloat16Bits{0x3f80, 0xc040, 0, 0x7f7f, 1},
		Int8:           []int8{-128, -1, 0, 1, 127},
		Uint8:          []uint8{0, 1, 128, 254, 255},
		Int16:          []int16{-32768, -1, 0, 1, 32767},
		Uint16:         []uint16{0, 1, 32768, 65534, 65535},
		Int32:          []int32{math.MinInt32, -1, 0, 1, math.MaxInt32},
		Uint32:         []uint32{0, 1, 1 << 31, math.MaxUint32 - 1, math.MaxUint32},
		Int64:          []int64{math.MinInt64, -1, 0, 1, math.MaxInt64},
		Uint64:         []uint64{0, 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64},
		Bool:           []bool{true, false, true, true, false},
		String:         [][]byte{[]byte("a"), {}, []byte("héllo"), []byte("x y"), {0, 1}},
		Complex64:      []complex64{1 + 2i, -3i, 0, 4, -1 - 1i},
		Complex128:     []complex128{1 + 2i, -3i, 0, 4, -1 - 1i},
		Int4:           []int8{-8, -1, 0, 1, 7}, // odd count: last byte half filled
		Uint4:          []uint8{0, 1, 8, 14, 15},
		Float4E2M1:     []uint8{0, 1, 7, 8, 15},
		Float8E4M3FN:   []uint8{0, 0x38, 0x7e, 0xb8, 0xff},
		Float8E4M3FNUZ: []uint8{0, 1, 2, 3, 4},
		Float8E5M2:     []uint8{0, 0x3c, 0x7b, 0xbc, 0x7f},
		Float8E5M2FNUZ: []uint8{9, 8, 7, 6, 5},
		Float8E8M0:     []uint8{127, 0, 254, 255, 1},
	}
	for dt := Float; dt <= Float8E8M0; dt++ {
		want, ok := values[dt]
		if !ok {
			t.Fatalf("no test values for %s", dt)
		}
		orig, err := TensorOf(dt, shape, want)
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		orig.Name = "t"
		forms := map[string]*onnxpb.TensorProto{"new": orig.ToProto()}
		typed := &onnxpb.TensorProto{Dims: []int64{5}, DataType: proto.Int32(int32(dt)), Name: proto.String("t")}
		encodeTyped(typed, dt, want)
		forms["typed"] = typed
		for form, p := range forms {
			b, err := proto.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			p2 := &onnxpb.TensorProto{}
			if err := proto.Unmarshal(b, p2); err != nil {
				t.Fatal(err)
			}
			got, err := TensorFromProto(p2, "", false)
			if err != nil {
				t.Fatalf("%s %s: %v", dt, form, err)
			}
			if !reflect.DeepEqual(got.Data(), want) {
				t.Errorf("%s %s: got %v, want %v", dt, form, got.Data(), want)
			}
		}
	}
	// 4-bit packing follows the spec: first element in the low nibble.
	i4, _ := TensorOf(Int4, []int{3}, []int8{-8, 7, -1})
	if got := i4.ToProto().RawData; !reflect.DeepEqual(got, []byte{0x78, 0x0f}) {
		t.Errorf("int4 raw = % x, want 78 0f", got)
	}
	u4, _ := TensorOf(Uint4, []int{2}, []uint8{1, 2})
	if got := u4.ToProto().RawData; !reflect.DeepEqual(got, []byte{0x21}) {
		t.Errorf("uint4 raw = % x, want 21", got)
	}
}

func TestTensorDataMismatch(t *testing.T) {
	cases := []struct {
		name string
		p    *onnxpb.TensorProto
		want string
	}{
		{"raw too short", &onnxpb.TensorProto{Dims: []int64{2, 3}, DataType: proto.Int32(1), RawData: make([]byte, 20)}, "need 24 bytes of raw_data, found 20"},
		{"typed too long", &onnxpb.TensorProto{Dims: []int64{2}, DataType: proto.Int32(1), FloatData: []float32{1, 2, 3}}, "need 2 entries in float_data, found 3"},
		{"wrong field", &onnxpb.TensorProto{Dims: []int64{1}, DataType: proto.Int32(1), Int64Data: []int64{1}}, "FLOAT data cannot be stored in int64_data"},
		{"no data", &onnxpb.TensorProto{Dims: []int64{4}, DataType: proto.Int32(1)}, "has no data"},
		{"two fields", &onnxpb.TensorProto{Dims: []int64{1}, DataType: proto.Int32(1), FloatData: []float32{1}, RawData: make([]byte, 4)}, "both raw_data and float_data"},
		{"negative dim", &onnxpb.TensorProto{Dims: []int64{-1}, DataType: proto.Int32(1)}, "negative dimension"},
		{"unknown type", &onnxpb.TensorProto{Dims: []int64{1}, DataType: proto.Int32(99), RawData: []byte{1}}, "unknown data_type 99"},
		{"huge dims", &onnxpb.TensorProto{Dims: []int64{1 << 40, 1 << 40}, DataType: proto.Int32(1)}, "too large"},
		{"int4 entries", &onnxpb.TensorProto{Dims: []int64{3}, DataType: proto.Int32(int32(Int4)), Int32Data: []int32{1}}, "need 2 entries in int32_data, found 1"},
	}
	for _, c := range cases {
		_, err := TensorFromProto(c.p, "", false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.name, err, c.want)
		}
	}
	// An empty tensor needs no data.
	if _, err := TensorFromProto(&onnxpb.TensorProto{Dims: []int64{0, 3}, DataType: proto.Int32(1)}, "", false); err != nil {
		t.Errorf("empty tensor: %v", err)
	}
}

func TestAsFloat32AndClone(t *testing.T) {
	x, _ := TensorOf(Float16, []int{3}, []Float16Bits{ToFloat16(1.5), ToFloat16(-2), 0})
	f, err := x.AsFloat32()
	if err != nil || !reflect.DeepEqual(f, []float32{1.5, -2, 0}) {
		t.Errorf("AsFloat32 = %v, %v", f, err)
	}
	y := Float32Tensor([]int{2}, []float32{1, 2})
	c := y.Clone()
	c.Float32s()[0] = 9
	if y.Float32s()[0] != 1 {
		t.Error("Clone shares data")
	}
	if _, err := TensorOf(Float, []int{3}, []float32{1}); err == nil {
		t.Error("TensorOf accepted a short slice")
	}
	if _, err := TensorOf(Int8, []int{1}, []uint8{1}); err == nil {
		t.Error("TensorOf accepted []uint8 for INT8")
	}
}

func TestParseDataType(t *testing.T) {
	for in, want := range map[string]DataType{"FLOAT": Float, "float32": Float, "int4": Int4, "UINT16": Uint16, "bfloat16": BFloat16} {
		if got, err := ParseDataType(in); err != nil || got != want {
			t.Errorf("ParseDataType(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDataType("int5"); err == nil {
		t.Error("int5 accepted")
	}
}
