// Package graph is onnxq's in-memory form of an ONNX model: a graph of nodes
// joined by named values, typed tensor data for every ONNX element type, and
// lossless loading and saving of the protobuf file with its external data.
package graph

import (
	"fmt"

	"github.com/onnxq/onnxq/graph/onnxpb"
)

// DataType is an ONNX tensor element type (TensorProto.DataType).
type DataType int32

// The ONNX element types.
const (
	Undefined      DataType = 0
	Float          DataType = 1
	Uint8          DataType = 2
	Int8           DataType = 3
	Uint16         DataType = 4
	Int16          DataType = 5
	Int32          DataType = 6
	Int64          DataType = 7
	String         DataType = 8
	Bool           DataType = 9
	Float16        DataType = 10
	Double         DataType = 11
	Uint32         DataType = 12
	Uint64         DataType = 13
	Complex64      DataType = 14
	Complex128     DataType = 15
	BFloat16       DataType = 16
	Float8E4M3FN   DataType = 17
	Float8E4M3FNUZ DataType = 18
	Float8E5M2     DataType = 19
	Float8E5M2FNUZ DataType = 20
	Uint4          DataType = 21
	Int4           DataType = 22
	Float4E2M1     DataType = 23
	Float8E8M0     DataType = 24
)

// Known reports whether t is an element type this build understands.
func (t DataType) Known() bool { return t > Undefined && t <= Float8E8M0 }

// String is the ONNX spelling of the type, e.g. "FLOAT" or "INT4".
func (t DataType) String() string {
	switch t {
	case SequenceOf:
		return "SEQUENCE"
	case OptionalOf:
		return "OPTIONAL"
	}
	if n, ok := onnxpb.TensorProto_DataType_name[int32(t)]; ok {
		return n
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// Short is the lower-case numpy-like name used in reports: float32, int8, uint4, ...
func (t DataType) Short() string {
	switch t {
	case Float:
		return "float32"
	case Double:
		return "float64"
	case Float16:
		return "float16"
	case BFloat16:
		return "bfloat16"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Uint16:
		return "uint16"
	case Int16:
		return "int16"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Uint32:
		return "uint32"
	case Uint64:
		return "uint64"
	case Bool:
		return "bool"
	case String:
		return "string"
	case Complex64:
		return "complex64"
	case Complex128:
		return "complex128"
	case Uint4:
		return "uint4"
	case Int4:
		return "int4"
	case Float8E4M3FN:
		return "float8e4m3fn"
	case Float8E4M3FNUZ:
		return "float8e4m3fnuz"
	case Float8E5M2:
		return "float8e5m2"
	case Float8E5M2FNUZ:
		return "float8e5m2fnuz"
	case Float4E2M1:
		return "float4e2m1"
	case Float8E8M0:
		return "float8e8m0"
	case SequenceOf:
		return "sequence"
	case OptionalOf:
		return "optional"
	}
	return t.String()
}

// BitWidth is the storage width of one element in bits (0 for strings and unknown types).
func (t DataType) BitWidth() int {
	switch t {
	case Uint4, Int4, Float4E2M1:
		return 4
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return 8
	case Uint16, Int16, Float16, BFloat16:
		return 16
	case Float, Int32, Uint32:
		return 32
	case Double, Int64, Uint64, Complex64:
		return 64
	case Complex128:
		return 128
	}
	return 0
}

// IsPacked4 reports whether elements are 4-bit and stored two per byte.
func (t DataType) IsPacked4() bool { return t.BitWidth() == 4 }

// IsFloat reports whether t is a real floating-point type of any width.
func (t DataType) IsFloat() bool {
	switch t {
	case Float, Double, Float16, BFloat16, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float4E2M1, Float8E8M0:
		return true
	}
	return false
}

// IsInteger reports whether t is a signed or unsigned integer type of any width.
func (t DataType) IsInteger() bool {
	switch t {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Uint32, Uint64, Uint4, Int4:
		return true
	}
	return false
}

// ByteSize is the number of bytes n elements occupy in raw_data.
func (t DataType) ByteSize(n int64) int64 {
	w := int64(t.BitWidth())
	if w == 4 {
		return (n + 1) / 2
	}
	return n * w / 8
}

// ParseDataType accepts the ONNX names (FLOAT, INT4) and the short names
// (float32, int4), case-insensitively.
func ParseDataType(s string) (DataType, error) {
	for t := Float; t <= Float8E8M0; t++ {
		if eqFold(s, t.String()) || eqFold(s, t.Short()) {
			return t, nil
		}
	}
	return Undefined, fmt.Errorf("unknown element type %q", s)
}

func eqFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
