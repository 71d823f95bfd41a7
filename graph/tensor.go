package graph

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"unsafe"

	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Tensor is a dense tensor: element type, shape and row-major data.
//
// Data is held as one Go slice whose element type depends on DType:
//
//	Float []float32, Double []float64, Float16 []Float16Bits, BFloat16 []BFloat16Bits,
//	Int8 []int8, Uint8 []uint8, Int16 []int16, Uint16 []uint16, Int32 []int32,
//	Uint32 []uint32, Int64 []int64, Uint64 []uint64, Bool []bool, String [][]byte,
//	Complex64 []complex64, Complex128 []complex128,
//	Int4 []int8 and Uint4 []uint8 (one element per slot, unpacked),
//	the float8 types and Float4E2M1 []uint8 (bit patterns, one element per slot).
//
// A tensor loaded from a file keeps its protobuf form and decodes it on first
// use; an untouched tensor is saved back exactly as it was read. A tensor
// loaded lazily from external data stays backed by its bytes on disk: Data
// reads them on first use, and Release drops them again, so a model larger
// than memory can be worked through one tensor at a time.
type Tensor struct {
	Name  string
	DType DataType
	Shape []int

	data any                 // the elements; nil while external data is not read
	src  *onnxpb.TensorProto // the form it was loaded from, nil for tensors made in memory
	ext  *extRef             // the bytes on disk backing data (lazy loading), nil when memory holds the only copy
	mu   *sync.Mutex         // guards data while ext is set: concurrent readers load it once
	// aliasSrc: data shares memory with src's data field, so src reflects any
	// change made in place and can be saved as it is.
	aliasSrc bool
}

// Numel is the number of elements of a shape (1 for a scalar).
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Len is the number of elements.
func (t *Tensor) Len() int { return Numel(t.Shape) }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.Shape) }

// NewTensor makes a zero-filled tensor of the given type and shape.
func NewTensor(dt DataType, shape []int) *Tensor {
	return newShaped(dt, shape, makeSlice(dt, Numel(shape)))
}

// shapedTensor is a tensor and the dimensions of its shape, in one
// allocation: an executor makes a tensor for every op's output on every run,
// and a second allocation for each shape was a third of that garbage.
type shapedTensor struct {
	t    Tensor
	dims [6]int
}

// newShaped makes a tensor of data with a copy of shape (nil for a scalar,
// as append of nothing gives).
func newShaped(dt DataType, shape []int, data any) *Tensor {
	if len(shape) == 0 || len(shape) > len(shapedTensor{}.dims) {
		return &Tensor{DType: dt, Shape: append([]int(nil), shape...), data: data}
	}
	b := &shapedTensor{}
	n := copy(b.dims[:], shape)
	b.t = Tensor{DType: dt, Shape: b.dims[:n:n], data: data}
	return &b.t
}

// boxedTensor is shapedTensor with the data's slice header too, which the
// tensor's data interface points at (TensorAt): converting a slice to an
// interface allocates a box for its header, a third allocation per tensor.
type boxedTensor struct {
	t    Tensor
	dims [6]int
	hdr  struct {
		p    unsafe.Pointer // a pointer word, so the collector keeps the memory alive
		n, c int
	}
}

// sliceTypeWords is, per known element type, the type word of an interface
// holding its storage (makeSlice's slice type).
var sliceTypeWords = func() (ts [Float8E8M0 + 1]unsafe.Pointer) {
	for dt := range ts {
		if DataType(dt).Known() {
			v := makeSlice(DataType(dt), 0)
			ts[dt] = (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0]
		}
	}
	return ts
}()

// TensorAt wraps n elements of dt's Go type at p, memory the caller owns and
// keeps (an executor's buffer pool), as a tensor of shape, in one allocation
// with its shape and slice header. The interface that holds the data points
// at the header inside that allocation, as a boxed slice would; nothing
// writes the header afterwards, as nothing writes a box. It fails when n does
// not fill shape or the pool could not hold dt.
func TensorAt(dt DataType, shape []int, p unsafe.Pointer, n int) (*Tensor, error) {
	if !dt.Known() || dt == String { // strings' elements hold pointers
		return nil, fmt.Errorf("graph: no slice of %s elements at a pointer", dt)
	}
	if n != Numel(shape) || p == nil {
		// A copy in the message: shape itself then stays off the heap
		// (a caller's array on its stack).
		return nil, fmt.Errorf("graph: %d elements do not fill shape %v", n, slices.Clone(shape))
	}
	b := &boxedTensor{}
	b.set(dt, shape, p, n)
	return &b.t, nil
}

// set makes b the tensor TensorAt describes.
func (b *boxedTensor) set(dt DataType, shape []int, p unsafe.Pointer, n int) {
	b.t = Tensor{DType: dt}
	switch k := len(shape); {
	case k > len(b.dims):
		b.t.Shape = append([]int(nil), shape...)
	case k > 0:
		copy(b.dims[:], shape)
		b.t.Shape = b.dims[:k:k]
	}
	b.hdr.p, b.hdr.n, b.hdr.c = p, n, n
	*(*[2]unsafe.Pointer)(unsafe.Pointer(&b.t.data)) = [2]unsafe.Pointer{sliceTypeWords[dt], unsafe.Pointer(&b.hdr)}
}

// ReuseAt makes t, which TensorAt made and which nothing uses any more (an
// executor's intermediate whose buffer went back to its pool), into what
// TensorAt(dt, shape, p, n) would return, in place: an executor then makes
// no garbage for the tensors of its runs. It reports false, leaving t as it
// was, where TensorAt would fail or t is not TensorAt's. Slices read from t
// before (Float32s and the like) keep the old memory and shape.
func ReuseAt(t *Tensor, dt DataType, shape []int, p unsafe.Pointer, n int) bool {
	if t == nil || !dt.Known() || dt == String || n != Numel(shape) || p == nil {
		return false
	}
	// TensorAt's tensors hold their data interface's header at hdr, in the
	// same allocation: compared as integers, the pointer is not converted
	// to a boxedTensor before it is known to be one.
	w := (*[2]unsafe.Pointer)(unsafe.Pointer(&t.data))[1]
	if uintptr(w) != uintptr(unsafe.Pointer(t))+unsafe.Offsetof(boxedTensor{}.hdr) {
		return false
	}
	(*boxedTensor)(unsafe.Pointer(t)).set(dt, shape, p, n)
	return true
}

// TensorOf wraps data (a slice of the Go type that DType uses) without copying.
// It fails when the slice type or length does not fit dt and shape.
func TensorOf(dt DataType, shape []int, data any) (*Tensor, error) {
	n, ok := sliceLen(dt, data)
	if !ok {
		return nil, fmt.Errorf("graph: %T cannot hold %s elements", data, dt)
	}
	if n != Numel(shape) {
		return nil, fmt.Errorf("graph: %d elements do not fill shape %v (%d)", n, slices.Clone(shape), Numel(shape))
	}
	return newShaped(dt, shape, data), nil
}

// Float32Tensor wraps a float32 slice; it panics when len(data) does not fill shape,
// which is a programming error, not bad input.
func Float32Tensor(shape []int, data []float32) *Tensor {
	t, err := TensorOf(Float, shape, data)
	if err != nil {
		panic(err)
	}
	return t
}

// Int64Tensor wraps an int64 slice; it panics when len(data) does not fill shape.
func Int64Tensor(shape []int, data []int64) *Tensor {
	t, err := TensorOf(Int64, shape, data)
	if err != nil {
		panic(err)
	}
	return t
}

// Data returns the element slice (see the type comment for its Go type). The slice
// is shared: writing to it changes the tensor. External data not read yet is
// read now (call Load first where a read error must be an error rather than a
// panic); concurrent readers are safe.
func (t *Tensor) Data() any {
	if t.ext != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if err := t.loadLocked(); err != nil {
			panic(fmt.Sprintf("graph: %v", err))
		}
		return t.data
	}
	if t.data == nil {
		panic(fmt.Sprintf("graph: tensor %q has no data", t.Name))
	}
	return t.data
}

// Elems returns the data of t as []E; it panics when E is not the Go type of t.DType.
func Elems[E any](t *Tensor) []E {
	d, ok := t.Data().([]E)
	if !ok {
		panic(fmt.Sprintf("graph: tensor %q is %s (%T), not %T", t.Name, t.DType, t.Data(), []E(nil)))
	}
	return d
}

// Float32s is Elems[float32].
func (t *Tensor) Float32s() []float32 { return Elems[float32](t) }

// Int64s is Elems[int64].
func (t *Tensor) Int64s() []int64 { return Elems[int64](t) }

// Loaded reports whether the data is in memory (false for external data not read
// yet or released).
func (t *Tensor) Loaded() bool {
	if t.ext == nil {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.data != nil
}

// Lazy reports whether the tensor is backed by external data on disk, so that
// Release can drop it from memory.
func (t *Tensor) Lazy() bool { return t.ext != nil }

// ByteSize is the number of bytes the data takes in raw form (packed for 4-bit types;
// for strings the sum of their lengths).
func (t *Tensor) ByteSize() int64 {
	if t.DType == String {
		var n int64
		if t.ext == nil { // strings are never external
			for _, s := range t.Data().([][]byte) {
				n += int64(len(s))
			}
		}
		return n
	}
	return t.DType.ByteSize(int64(t.Len()))
}

// Clone returns a deep copy that shares nothing with t.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{Name: t.Name, DType: t.DType, Shape: append([]int(nil), t.Shape...)}
	switch d := t.Data().(type) {
	case *Sequence:
		items := make([]*Tensor, len(d.Items))
		for i, it := range d.Items {
			items[i] = it.Clone()
		}
		c.data = &Sequence{Elem: d.Elem, Items: items}
	case *Optional:
		o := &Optional{}
		if d.Value != nil {
			o.Value = d.Value.Clone()
		}
		c.data = o
	case [][]byte:
		cp := make([][]byte, len(d))
		for i, s := range d {
			cp[i] = append([]byte(nil), s...)
		}
		c.data = cp
	default:
		c.data = cloneSlice(d)
	}
	return c
}

// AsFloat64 converts any real numeric tensor to float64 values, always a copy:
// float64 and 32- and 64-bit integers exactly, other types through AsFloat32.
func (t *Tensor) AsFloat64() ([]float64, error) {
	out := make([]float64, t.Len())
	switch d := t.Data().(type) {
	case []float64:
		copy(out, d)
	case []int64:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []int32:
		for i, v := range d {
			out[i] = float64(v)
		}
	default:
		f, err := t.AsFloat32()
		if err != nil {
			return nil, err
		}
		for i, v := range f {
			out[i] = float64(v)
		}
	}
	return out, nil
}

// AsFloat32 converts any real numeric tensor to float32 values (a copy, except for
// float32 tensors, whose data is returned as is).
func (t *Tensor) AsFloat32() ([]float32, error) {
	if t.DType == Float {
		return t.Float32s(), nil
	}
	out := make([]float32, t.Len())
	switch d := t.Data().(type) {
	case []float64:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []Float16Bits:
		for i, v := range d {
			out[i] = v.Float32()
		}
	case []BFloat16Bits:
		for i, v := range d {
			out[i] = v.Float32()
		}
	case []int8:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []uint8:
		if !t.DType.IsInteger() {
			return nil, fmt.Errorf("graph: tensor %q: converting %s to float32 is not supported", t.Name, t.DType)
		}
		for i, v := range d {
			out[i] = float32(v)
		}
	case []int16:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []uint16:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []int32:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []uint32:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []int64:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []uint64:
		for i, v := range d {
			out[i] = float32(v)
		}
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("graph: tensor %q: converting %s to float32 is not supported", t.Name, t.DType)
	}
	return out, nil
}

// makeSlice allocates the Go slice that holds n elements of dt.
func makeSlice(dt DataType, n int) any {
	switch dt {
	case Float:
		return make([]float32, n)
	case Double:
		return make([]float64, n)
	case Float16:
		return make([]Float16Bits, n)
	case BFloat16:
		return make([]BFloat16Bits, n)
	case Int8, Int4:
		return make([]int8, n)
	case Uint8, Uint4, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float4E2M1, Float8E8M0:
		return make([]uint8, n)
	case Int16:
		return make([]int16, n)
	case Uint16:
		return make([]uint16, n)
	case Int32:
		return make([]int32, n)
	case Uint32:
		return make([]uint32, n)
	case Int64:
		return make([]int64, n)
	case Uint64:
		return make([]uint64, n)
	case Bool:
		return make([]bool, n)
	case String:
		return make([][]byte, n)
	case Complex64:
		return make([]complex64, n)
	case Complex128:
		return make([]complex128, n)
	}
	panic(fmt.Sprintf("graph: no storage for element type %s", dt))
}

// sliceTypes is the Go type of each known element type's storage
// (makeSlice's), looked up once: every tensor a kernel makes is checked
// against it (formatting both types per check was most of a small model's
// allocations).
var sliceTypes = func() (t [Float8E8M0 + 1]reflect.Type) {
	for dt := range t {
		if DataType(dt).Known() {
			t[dt] = reflect.TypeOf(makeSlice(DataType(dt), 0))
		}
	}
	return t
}()

// sliceLen returns the length of data when its Go type is the one dt uses.
func sliceLen(dt DataType, data any) (int, bool) {
	if !dt.Known() || reflect.TypeOf(data) != sliceTypes[dt] {
		return 0, false
	}
	switch d := data.(type) {
	case []float32:
		return len(d), true
	case []float64:
		return len(d), true
	case []Float16Bits:
		return len(d), true
	case []BFloat16Bits:
		return len(d), true
	case []int8:
		return len(d), true
	case []uint8:
		return len(d), true
	case []int16:
		return len(d), true
	case []uint16:
		return len(d), true
	case []int32:
		return len(d), true
	case []uint32:
		return len(d), true
	case []int64:
		return len(d), true
	case []uint64:
		return len(d), true
	case []bool:
		return len(d), true
	case [][]byte:
		return len(d), true
	case []complex64:
		return len(d), true
	case []complex128:
		return len(d), true
	}
	return 0, false
}

func cloneSlice(d any) any {
	switch s := d.(type) {
	case []float32:
		return append([]float32(nil), s...)
	case []float64:
		return append([]float64(nil), s...)
	case []Float16Bits:
		return append([]Float16Bits(nil), s...)
	case []BFloat16Bits:
		return append([]BFloat16Bits(nil), s...)
	case []int8:
		return append([]int8(nil), s...)
	case []uint8:
		return append([]uint8(nil), s...)
	case []int16:
		return append([]int16(nil), s...)
	case []uint16:
		return append([]uint16(nil), s...)
	case []int32:
		return append([]int32(nil), s...)
	case []uint32:
		return append([]uint32(nil), s...)
	case []int64:
		return append([]int64(nil), s...)
	case []uint64:
		return append([]uint64(nil), s...)
	case []bool:
		return append([]bool(nil), s...)
	case []complex64:
		return append([]complex64(nil), s...)
	case []complex128:
		return append([]complex128(nil), s...)
	}
	panic(fmt.Sprintf("graph: cannot clone %T", d))
}

// RawTensor decodes little-endian raw bytes (the TensorProto raw_data layout) into
// a tensor, checking the byte count against the shape.
func RawTensor(dt DataType, shape []int, b []byte) (*Tensor, error) {
	if !dt.Known() || dt == String {
		return nil, fmt.Errorf("graph: no raw layout for %s", dt)
	}
	n := Numel(shape)
	if int64(len(b)) != dt.ByteSize(int64(n)) {
		return nil, fmt.Errorf("graph: %d bytes do not hold %v %s (%d bytes)", len(b), shape, dt, dt.ByteSize(int64(n)))
	}
	return &Tensor{DType: dt, Shape: append([]int(nil), shape...), data: decodeRaw(dt, b, n)}, nil
}

// RawBytes is the tensor's data in the raw_data layout; it may share memory with t.
func RawBytes(t *Tensor) []byte { return rawBytes(t.DType, t.Data()) }

// ---- protobuf <-> Tensor ----

// errNoData marks a tensor proto with elements but no data field.
var errNoData = errors.New("has no data")

// TensorFromProto makes a tensor from its protobuf form, checking that the data
// fits the declared type and dims. Data in an external file is resolved against
// dir (the model's folder); it is read now unless lazy is true.
func TensorFromProto(p *onnxpb.TensorProto, dir string, lazy bool) (*Tensor, error) {
	dt := DataType(p.GetDataType())
	if !dt.Known() {
		return nil, fmt.Errorf("tensor %q: unknown data_type %d", p.GetName(), p.GetDataType())
	}
	if p.Segment != nil {
		return nil, fmt.Errorf("tensor %q: segmented tensors are not supported", p.GetName())
	}
	shape := make([]int, len(p.Dims))
	n := int64(1)
	for i, d := range p.Dims {
		if d < 0 {
			return nil, fmt.Errorf("tensor %q: negative dimension %d in dims %v", p.GetName(), d, p.Dims)
		}
		// Refuse element counts that cannot be allocated rather than overflow.
		if d > 0 && n > (1<<50)/d {
			return nil, fmt.Errorf("tensor %q: dims %v are too large", p.GetName(), p.Dims)
		}
		n *= d
		shape[i] = int(d)
	}
	t := &Tensor{Name: p.GetName(), DType: dt, Shape: shape, src: p}
	if p.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		if dt == String {
			return nil, fmt.Errorf("tensor %q: string tensors cannot use external data", t.Name)
		}
		ref, err := parseExternal(p, dir, dt.ByteSize(n))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		t.ext, t.mu = ref, &sync.Mutex{}
		if !lazy {
			if err := t.Materialize(); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	if err := checkProtoData(p, dt, n); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	t.data, t.aliasSrc = decodeProto(p, dt, int(n))
	return t, nil
}

// checkProtoData verifies that exactly one data field holds n elements of dt.
func checkProtoData(p *onnxpb.TensorProto, dt DataType, n int64) error {
	type field struct {
		name string
		len  int64
	}
	fields := []field{
		{"raw_data", int64(len(p.RawData))}, {"float_data", int64(len(p.FloatData))},
		{"int32_data", int64(len(p.Int32Data))}, {"string_data", int64(len(p.StringData))},
		{"int64_data", int64(len(p.Int64Data))}, {"double_data", int64(len(p.DoubleData))},
		{"uint64_data", int64(len(p.Uint64Data))},
	}
	var used []field
	for _, f := range fields {
		if f.len > 0 {
			used = append(used, f)
		}
	}
	if len(used) > 1 {
		return fmt.Errorf("has data in both %s and %s", used[0].name, used[1].name)
	}
	if len(used) == 0 {
		if n == 0 {
			return nil
		}
		return errNoData
	}
	f := used[0]
	want, wantField := expectedField(dt, n)
	if f.name == "raw_data" {
		if dt == String {
			return fmt.Errorf("STRING data must be in string_data, not raw_data")
		}
		if f.len != dt.ByteSize(n) {
			return fmt.Errorf("dims %v of %s need %d bytes of raw_data, found %d", p.Dims, dt, dt.ByteSize(n), f.len)
		}
		return nil
	}
	if f.name != wantField {
		return fmt.Errorf("%s data cannot be stored in %s (use %s or raw_data)", dt, f.name, wantField)
	}
	if f.len != want {
		return fmt.Errorf("dims %v of %s need %d entries in %s, found %d", p.Dims, dt, want, f.name, f.len)
	}
	return nil
}

// expectedField names the typed field that holds dt and how many entries n elements take.
func expectedField(dt DataType, n int64) (int64, string) {
	switch dt {
	case Float:
		return n, "float_data"
	case Complex64:
		return 2 * n, "float_data"
	case Double:
		return n, "double_data"
	case Complex128:
		return 2 * n, "double_data"
	case Int64:
		return n, "int64_data"
	case Uint32, Uint64:
		return n, "uint64_data"
	case String:
		return n, "string_data"
	case Int4, Uint4, Float4E2M1:
		return (n + 1) / 2, "int32_data"
	}
	return n, "int32_data"
}

// decodeProto decodes checked proto data; aliased reports whether the result
// shares memory with p's data field.
func decodeProto(p *onnxpb.TensorProto, dt DataType, n int) (data any, aliased bool) {
	if n == 0 {
		return makeSlice(dt, 0), false
	}
	if len(p.RawData) > 0 {
		d := decodeRaw(dt, p.RawData, n)
		return d, sharesMemory(d, p.RawData)
	}
	switch dt {
	case Float, Double, Int64, Uint64, Int32, String:
		return decodeTyped(dt, p, n), true
	}
	return decodeTyped(dt, p, n), false
}

// sharesMemory reports whether a decoded slice starts at the raw bytes.
func sharesMemory(d any, raw []byte) bool {
	b := rawBytesOrNil(d)
	return len(b) > 0 && len(raw) > 0 && &b[0] == &raw[0]
}

func rawBytesOrNil(d any) []byte {
	switch s := d.(type) {
	case []float32:
		return asBytes(s)
	case []float64:
		return asBytes(s)
	case []Float16Bits:
		return asBytes(s)
	case []BFloat16Bits:
		return asBytes(s)
	case []int8:
		return asBytes(s)
	case []uint8:
		return s
	case []int16:
		return asBytes(s)
	case []uint16:
		return asBytes(s)
	case []int32:
		return asBytes(s)
	case []uint32:
		return asBytes(s)
	case []int64:
		return asBytes(s)
	case []uint64:
		return asBytes(s)
	case []complex64:
		return asBytes(s)
	case []complex128:
		return asBytes(s)
	}
	return nil
}

// decodeRaw turns little-endian bytes into the Go slice for dt, sharing memory where it can.
func decodeRaw(dt DataType, b []byte, n int) any {
	switch dt {
	case Float:
		return castSlice[float32](b, n)
	case Double:
		return castSlice[float64](b, n)
	case Float16:
		return castSlice[Float16Bits](b, n)
	case BFloat16:
		return castSlice[BFloat16Bits](b, n)
	case Int8:
		return castSlice[int8](b, n)
	case Uint8, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return b[:n:n]
	case Int16:
		return castSlice[int16](b, n)
	case Uint16:
		return castSlice[uint16](b, n)
	case Int32:
		return castSlice[int32](b, n)
	case Uint32:
		return castSlice[uint32](b, n)
	case Int64:
		return castSlice[int64](b, n)
	case Uint64:
		return castSlice[uint64](b, n)
	case Complex64:
		return castSlice[complex64](b, n)
	case Complex128:
		return castSlice[complex128](b, n)
	case Bool:
		out := make([]bool, n)
		for i := range out {
			out[i] = b[i] != 0
		}
		return out
	case Int4:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(nibble(b, i)<<4) >> 4
		}
		return out
	case Uint4, Float4E2M1:
		out := make([]uint8, n)
		for i := range out {
			out[i] = nibble(b, i)
		}
		return out
	}
	panic(fmt.Sprintf("graph: cannot decode raw %s", dt))
}

func nibble(b []byte, i int) uint8 {
	if i%2 == 0 {
		return b[i/2] & 0x0f
	}
	return b[i/2] >> 4
}

// decodeTyped reads the type-specific repeated field of p.
func decodeTyped(dt DataType, p *onnxpb.TensorProto, n int) any {
	switch dt {
	case Float:
		return p.FloatData[:n:n]
	case Complex64:
		out := make([]complex64, n)
		for i := range out {
			out[i] = complex(p.FloatData[2*i], p.FloatData[2*i+1])
		}
		return out
	case Double:
		return p.DoubleData[:n:n]
	case Complex128:
		out := make([]complex128, n)
		for i := range out {
			out[i] = complex(p.DoubleData[2*i], p.DoubleData[2*i+1])
		}
		return out
	case Int64:
		return p.Int64Data[:n:n]
	case Uint64:
		return p.Uint64Data[:n:n]
	case Uint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = uint32(p.Uint64Data[i])
		}
		return out
	case String:
		return p.StringData[:n:n]
	case Int32:
		return p.Int32Data[:n:n]
	case Int4, Uint4, Float4E2M1:
		b := make([]byte, (n+1)/2)
		for i := range b {
			b[i] = byte(p.Int32Data[i])
		}
		return decodeRaw(dt, b, n)
	}
	// Every other type keeps one element per int32 entry.
	out := makeSlice(dt, n)
	v := p.Int32Data
	switch o := out.(type) {
	case []int8:
		for i := range o {
			o[i] = int8(v[i])
		}
	case []uint8:
		for i := range o {
			o[i] = uint8(v[i])
		}
	case []int16:
		for i := range o {
			o[i] = int16(v[i])
		}
	case []uint16:
		for i := range o {
			o[i] = uint16(v[i])
		}
	case []Float16Bits:
		for i := range o {
			o[i] = Float16Bits(v[i])
		}
	case []BFloat16Bits:
		for i := range o {
			o[i] = BFloat16Bits(v[i])
		}
	case []bool:
		for i := range o {
			o[i] = v[i] != 0
		}
	}
	return out
}

// ToProto returns the protobuf form of t. An untouched loaded tensor returns the
// proto it came from (renamed if its name changed); otherwise the data is encoded
// in the field the loaded form used (raw_data for new tensors). The result may
// share memory with t.
func (t *Tensor) ToProto() *onnxpb.TensorProto {
	src := t.src
	if t.aliasSrc && src != nil && src.GetName() == t.Name && shapeMatches(src.Dims, t.Shape) && DataType(src.GetDataType()) == t.DType {
		return src
	}
	p := &onnxpb.TensorProto{}
	if src != nil {
		p.DocString = src.DocString
		p.MetadataProps = src.MetadataProps
	}
	p.Dims = make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		p.Dims[i] = int64(d)
	}
	p.DataType = proto.Int32(int32(t.DType))
	if t.Name != "" || (src != nil && src.Name != nil) {
		p.Name = proto.String(t.Name)
	}
	typed := src != nil && len(src.RawData) == 0 && src.GetDataLocation() != onnxpb.TensorProto_EXTERNAL
	if t.DType == String || typed {
		encodeTyped(p, t.DType, t.Data())
	} else {
		p.RawData = rawBytes(t.DType, t.Data())
	}
	return p
}

func shapeMatches(dims []int64, shape []int) bool {
	if len(dims) != len(shape) {
		return false
	}
	for i := range dims {
		if dims[i] != int64(shape[i]) {
			return false
		}
	}
	return true
}

// rawBytes returns the little-endian raw form of data, sharing memory where it can.
func rawBytes(dt DataType, data any) []byte {
	switch d := data.(type) {
	case []float32:
		return asBytes(d)
	case []float64:
		return asBytes(d)
	case []Float16Bits:
		return asBytes(d)
	case []BFloat16Bits:
		return asBytes(d)
	case []int16:
		return asBytes(d)
	case []uint16:
		return asBytes(d)
	case []int32:
		return asBytes(d)
	case []uint32:
		return asBytes(d)
	case []int64:
		return asBytes(d)
	case []uint64:
		return asBytes(d)
	case []complex64:
		return asBytes(d)
	case []complex128:
		return asBytes(d)
	case []bool:
		b := make([]byte, len(d))
		for i, v := range d {
			if v {
				b[i] = 1
			}
		}
		return b
	case []int8:
		if dt == Int4 {
			return pack4(len(d), func(i int) uint8 { return uint8(d[i]) & 0x0f })
		}
		return asBytes(d)
	case []uint8:
		if dt.IsPacked4() {
			return pack4(len(d), func(i int) uint8 { return d[i] & 0x0f })
		}
		return d
	}
	panic(fmt.Sprintf("graph: cannot encode %T as raw data", data))
}

func pack4(n int, at func(int) uint8) []byte {
	b := make([]byte, (n+1)/2)
	for i := 0; i < n; i++ {
		b[i/2] |= at(i) << (4 * (i % 2))
	}
	return b
}

// encodeTyped writes data into the type-specific repeated field of p.
func encodeTyped(p *onnxpb.TensorProto, dt DataType, data any) {
	switch d := data.(type) {
	case []float32:
		p.FloatData = d
	case []complex64:
		p.FloatData = make([]float32, 0, 2*len(d))
		for _, v := range d {
			p.FloatData = append(p.FloatData, real(v), imag(v))
		}
	case []float64:
		p.DoubleData = d
	case []complex128:
		p.DoubleData = make([]float64, 0, 2*len(d))
		for _, v := range d {
			p.DoubleData = append(p.DoubleData, real(v), imag(v))
		}
	case []int64:
		p.Int64Data = d
	case []uint64:
		p.Uint64Data = d
	case []uint32:
		p.Uint64Data = make([]uint64, len(d))
		for i, v := range d {
			p.Uint64Data[i] = uint64(v)
		}
	case [][]byte:
		p.StringData = d
	case []int32:
		p.Int32Data = d
	default:
		if dt.IsPacked4() {
			for _, b := range rawBytes(dt, data) {
				p.Int32Data = append(p.Int32Data, int32(b))
			}
			return
		}
		p.Int32Data = widenToInt32(data)
	}
}

func widenToInt32(data any) []int32 {
	var out []int32
	switch d := data.(type) {
	case []int8:
		out = make([]int32, len(d))
		for i, v := range d {
			out[i] = int32(v)
		}
	case []uint8:
		out = make([]int32, len(d))
		for i, v := range d {
			out[i] = int32(v)
		}
	case []int16:
		out = make([]int32, len(d))
		for i, v := range d {
			out[i] = int32(v)
		}
	case []uint16:
		out = make([]int32, len(d))
		for i, v := range d {
			out[i] = int32(v)
		}
	case []Float16Bits:
		out = make([]int32, len(d))
		for i, v := range d {
			out[i] = int32(v)
		}
	case []BFloat16Bits:
		out = make([]int32, len(d))
		for i, v := range d {
			out[i] = int32(v)
		}
	case []bool:
		out = make([]int32, len(d))
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	default:
		panic(fmt.Sprintf("graph: cannot store %T in int32_data", data))
	}
	return out
}

// ---- memory views (the machine is little-endian; see littleEndian) ----

var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// castSlice views b as n elements of E when the host is little-endian and b is
// aligned for E; otherwise it copies.
func castSlice[E any](b []byte, n int) []E {
	var zero E
	size := int(unsafe.Sizeof(zero))
	if n == 0 {
		return []E{}
	}
	if littleEndian && uintptr(unsafe.Pointer(&b[0]))%uintptr(unsafe.Alignof(zero)) == 0 {
		return unsafe.Slice((*E)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]E, n)
	dst := unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), n*size)
	if littleEndian {
		copy(dst, b)
		return out
	}
	for i := 0; i < n; i++ { // big-endian host: reverse each element's bytes
		for j := 0; j < size; j++ {
			dst[i*size+j] = b[i*size+size-1-j]
		}
	}
	return out
}

// asBytes views a numeric slice as its little-endian bytes.
func asBytes[E any](d []E) []byte {
	if len(d) == 0 {
		return []byte{}
	}
	var zero E
	size := int(unsafe.Sizeof(zero))
	b := unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), len(d)*size)
	if littleEndian {
		return b
	}
	out := make([]byte, len(b))
	for i := 0; i < len(d); i++ {
		for j := 0; j < size; j++ {
			out[i*size+j] = b[i*size+size-1-j]
		}
	}
	return out
}

// ReadTensorFile reads a file that holds one serialized TensorProto (the ONNX
// test data's input_N.pb and output_N.pb); external data is found beside it.
func ReadTensorFile(path string) (*Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return TensorFromProto(p, filepath.Dir(path), false)
}
