package kernels

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// castTensor converts x to element type to. Integers convert exactly through
// int64 (uint64 through uint64), floats through float64; float to integer
// truncates toward zero; strings parse and format numbers.
func castTensor(x *graph.Tensor, to graph.DataType) (*graph.Tensor, error) {
	return castTensorIn(nil, x, to)
}

// castTensorIn is castTensor with the output from ctx's pool, uncleared
// (every path below writes every element; strings, which the pool does not
// hold, get a new tensor): a Cast of a feature map allocated its output
// from the Go heap each run, cleared it, and left it to the collector.
func castTensorIn(ctx *Context, x *graph.Tensor, to graph.DataType) (*graph.Tensor, error) {
	if x.DType == to {
		return x, nil
	}
	out := ctx.Empty(to, x.Shape)
	if to == graph.String {
		return out, castToString(x, out)
	}
	if x.DType == graph.String {
		return out, castFromString(x, out)
	}
	if !castable(x.DType) || !castable(to) {
		return nil, fmt.Errorf("Cast from %s to %s is not supported", x.DType.Short(), to.Short())
	}
	if !noCastDirect && castDirect(x, out) {
		return out, nil
	}
	intLike := func(t graph.DataType) bool { return t.IsInteger() || t == graph.Bool }
	if intLike(x.DType) && intLike(to) {
		if x.DType == graph.Uint64 {
			u := graph.Elems[uint64](x)
			v := make([]int64, len(u))
			for i, e := range u {
				v[i] = int64(e) // wraps like a C cast
			}
			StoreInt64s(out, v)
			return out, nil
		}
		StoreInt64s(out, readInt64s(x))
		return out, nil
	}
	if to == graph.Bool {
		vals, err := asFloat64s(x)
		if err != nil {
			return nil, err
		}
		d := out.Data().([]bool)
		for i, v := range vals {
			d[i] = v != 0
		}
		return out, nil
	}
	var vals []float64
	if x.DType == graph.Bool {
		for _, b := range x.Data().([]bool) {
			if b {
				vals = append(vals, 1)
			} else {
				vals = append(vals, 0)
			}
		}
	} else {
		var err error
		if vals, err = asFloat64s(x); err != nil {
			return nil, err
		}
	}
	if to.IsInteger() {
		for i, v := range vals {
			vals[i] = math.Trunc(v)
		}
	}
	return out, storeFloat64s(out, vals)
}

// castDirect converts the common pairs element by element with Go's
// conversions, which are the general path's arithmetic without its float64
// copy: float to integer truncates toward zero, integer to float rounds
// once to nearest (the general path rounds an int64 beyond 2^53 twice),
// float32 widens exactly and float64 narrows to nearest, bool is 0 or 1 and
// nonzero is true. It reports false for the other pairs.
func castDirect(x, out *graph.Tensor) bool {
	switch src := x.Data().(type) {
	case []float32:
		switch dst := out.Data().(type) {
		case []int64:
			vec.F32ToI64(dst, src)
		case []int32:
			convert(dst, src)
		case []float64:
			convert(dst, src)
		case []bool:
			for i, v := range src {
				dst[i] = v != 0
			}
		default:
			return false
		}
	case []int64:
		switch dst := out.Data().(type) {
		case []float32:
			vec.I64ToF32(dst, src)
		case []float64:
			convert(dst, src)
		default:
			return false
		}
	case []int32:
		switch dst := out.Data().(type) {
		case []float32:
			vec.I32ToF32(dst, src)
		default:
			return false
		}
	case []float64:
		switch dst := out.Data().(type) {
		case []float32:
			convert(dst, src)
		default:
			return false
		}
	case []bool:
		switch dst := out.Data().(type) {
		case []float32:
			vec.BoolToF32(dst, src)
		default:
			return false
		}
	default:
		return false
	}
	return true
}

// noCastDirect sends every Cast through the general path, for the tests
// that compare.
var noCastDirect = false

// convert sets dst[i] = D(src[i]).
func convert[D, S int32 | int64 | float32 | float64](dst []D, src []S) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = D(v)
	}
}

func castable(t graph.DataType) bool {
	switch t {
	case graph.Float, graph.Double, graph.Float16, graph.BFloat16, graph.Bool,
		graph.Int8, graph.Uint8, graph.Int16, graph.Uint16, graph.Int32, graph.Uint32, graph.Int64, graph.Uint64:
		return true
	}
	return false
}

// readInt64s reads an integer or bool tensor as int64.
func readInt64s(t *graph.Tensor) []int64 {
	out := make([]int64, t.Len())
	switch d := t.Data().(type) {
	case []int64:
		copy(out, d)
	case []int32:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []int16:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []int8:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []uint8:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []uint16:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []uint32:
		for i, v := range d {
			out[i] = int64(v)
		}
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	}
	return out
}

// LoadInt64s reads an integer or bool tensor's values as int64.
func LoadInt64s(t *graph.Tensor) []int64 { return readInt64s(t) }

// StoreInt64s writes int64 values into an integer or bool tensor, wrapping like a C cast.
func StoreInt64s(t *graph.Tensor, v []int64) { storeNumbers(t, v) }

// storeNumbers converts v into t's element type with Go's conversions (bool:
// nonzero); false for types it does not hold (float16s, strings).
func storeNumbers[S int64 | float64](t *graph.Tensor, v []S) bool {
	switch d := t.Data().(type) {
	case []float32:
		convertInto(d, v)
	case []float64:
		convertInto(d, v)
	case []int64:
		convertInto(d, v)
	case []int32:
		convertInto(d, v)
	case []int16:
		convertInto(d, v)
	case []int8:
		convertInto(d, v)
	case []uint64:
		convertInto(d, v)
	case []uint32:
		convertInto(d, v)
	case []uint16:
		convertInto(d, v)
	case []uint8:
		convertInto(d, v)
	case []bool:
		for i := range d {
			d[i] = v[i] != 0
		}
	default:
		return false
	}
	return true
}

func convertInto[D, S number](d []D, v []S) {
	for i := range d {
		d[i] = D(v[i])
	}
}

func castToString(x, out *graph.Tensor) error {
	d := out.Data().([][]byte)
	switch x.DType {
	case graph.Float, graph.Float16, graph.BFloat16:
		f, err := x.AsFloat32()
		if err != nil {
			return err
		}
		for i, v := range f {
			d[i] = []byte(formatFloat(float64(v), 32))
		}
	case graph.Double:
		for i, v := range graph.Elems[float64](x) {
			d[i] = []byte(formatFloat(v, 64))
		}
	case graph.Bool:
		for i, v := range x.Data().([]bool) {
			d[i] = []byte(strconv.FormatBool(v))
		}
	default:
		if !x.DType.IsInteger() {
			return fmt.Errorf("Cast from %s to string is not supported", x.DType.Short())
		}
		for i, v := range readInt64s(x) {
			d[i] = []byte(strconv.FormatInt(v, 10))
		}
	}
	return nil
}

// formatFloat writes the shortest form that reads back to the same value.
func formatFloat(v float64, bits int) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "INF"
	case math.IsInf(v, -1):
		return "-INF"
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}

func castFromString(x, out *graph.Tensor) error {
	src := x.Data().([][]byte)
	vals := make([]float64, len(src))
	for i, s := range src {
		str := strings.TrimSpace(string(s))
		switch strings.ToLower(str) {
		case "inf", "+inf", "infinity":
			vals[i] = math.Inf(1)
			continue
		case "-inf", "-infinity":
			vals[i] = math.Inf(-1)
			continue
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return fmt.Errorf("Cast: %q is not a number", str)
		}
		vals[i] = v
	}
	if out.DType == graph.Bool {
		d := out.Data().([]bool)
		for i, v := range vals {
			d[i] = v != 0
		}
		return nil
	}
	return storeFloat64s(out, vals)
}

func newCast(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	to := graph.DataType(a.Int("to", 0))
	if a.err != nil {
		return nil, a.err
	}
	if !to.Known() {
		return nil, fmt.Errorf("Cast to unknown type %d", to)
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 1); err != nil {
			return nil, err
		}
		t, err := castTensorIn(ctx, in[0], to)
		if err != nil {
			return nil, err
		}
		return one(t), nil
	}), nil
}

func newCastLike(*NodeInfo) (Kernel, error) {
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		t, err := castTensorIn(ctx, in[0], in[1].DType)
		if err != nil {
			return nil, err
		}
		return one(t), nil
	}), nil
}

func init() {
	Register("", "Cast", 1, newCast)
	Register("", "CastLike", 15, newCastLike)
}
