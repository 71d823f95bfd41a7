// Package npy reads and writes NumPy .npy files (format versions 1.0 to 3.0) as
// graph tensors: the calibration inputs and run outputs users exchange with Python.
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
)

const magic = "\x93NUMPY"

// maxHeader bounds the header a reader accepts, so a corrupt length cannot make it
// allocate without limit.
const maxHeader = 1 << 20

// dtypes maps numpy type codes (without byte order) to ONNX element types.
var dtypes = map[string]graph.DataType{
	"f4": graph.Float, "f8": graph.Double, "f2": graph.Float16,
	"i1": graph.Int8, "u1": graph.Uint8, "i2": graph.Int16, "u2": graph.Uint16,
	"i4": graph.Int32, "u4": graph.Uint32, "i8": graph.Int64, "u8": graph.Uint64,
	"b1": graph.Bool, "c8": graph.Complex64, "c16": graph.Complex128,
}

// Header is what a .npy header declares.
type Header struct {
	DType        graph.DataType
	BigEndian    bool
	FortranOrder bool
	Shape        []int
}

// ReadFile reads a .npy file into a tensor.
func ReadFile(path string) (*graph.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ReadHeader reads only the header of a .npy file (for checking shapes early).
func ReadHeaderFile(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	// No bufio: the header is three small reads, and checking a folder of
	// samples would otherwise make 4 KiB of garbage per file at once.
	h, err := ReadHeader(f)
	if err != nil {
		return h, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// ReadHeader parses the magic, version and header dictionary.
func ReadHeader(r io.Reader) (Header, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Header{}, errors.New("not a .npy file (too short)")
	}
	if string(pre[:6]) != magic {
		return Header{}, errors.New("not a .npy file (no \\x93NUMPY magic)")
	}
	var n int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, errors.New("truncated .npy header")
		}
		n = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, errors.New("truncated .npy header")
		}
		n = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return Header{}, fmt.Errorf(".npy format version %d.%d is not supported", pre[6], pre[7])
	}
	if n > maxHeader {
		return Header{}, fmt.Errorf(".npy header of %d bytes is too large", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Header{}, errors.New("truncated .npy header")
	}
	return parseHeader(string(buf))
}

// parseHeader reads the Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
func parseHeader(s string) (Header, error) {
	var h Header
	get := func(key string) (string, error) {
		i := strings.Index(s, "'"+key+"'")
		if i < 0 {
			i = strings.Index(s, `"`+key+`"`)
		}
		if i < 0 {
			return "", fmt.Errorf(".npy header has no %q", key)
		}
		rest := strings.TrimLeftFunc(s[i+len(key)+2:], unicode.IsSpace)
		if !strings.HasPrefix(rest, ":") {
			return "", fmt.Errorf(".npy header: malformed %q", key)
		}
		return strings.TrimLeftFunc(rest[1:], unicode.IsSpace), nil
	}
	descr, err := get("descr")
	if err != nil {
		return h, err
	}
	if len(descr) < 2 || (descr[0] != '\'' && descr[0] != '"') {
		return h, errors.New(".npy header: descr is not a simple type string (structured arrays are not supported)")
	}
	end := strings.IndexByte(descr[1:], descr[0])
	if end < 0 {
		return h, errors.New(".npy header: unterminated descr")
	}
	d := descr[1 : 1+end]
	if d != "" && strings.ContainsRune("<>|=", rune(d[0])) {
		h.BigEndian = d[0] == '>'
		d = d[1:]
	}
	dt, ok := dtypes[d]
	if !ok {
		return h, fmt.Errorf(".npy dtype %q is not supported", descr[1:1+end])
	}
	h.DType = dt
	fo, err := get("fortran_order")
	if err != nil {
		return h, err
	}
	switch {
	case strings.HasPrefix(fo, "True"):
		h.FortranOrder = true
	case strings.HasPrefix(fo, "False"):
	default:
		return h, errors.New(".npy header: fortran_order is not True or False")
	}
	sh, err := get("shape")
	if err != nil {
		return h, err
	}
	if !strings.HasPrefix(sh, "(") {
		return h, errors.New(".npy header: shape is not a tuple")
	}
	close := strings.IndexByte(sh, ')')
	if close < 0 {
		return h, errors.New(".npy header: unterminated shape")
	}
	h.Shape = []int{}
	total := 1
	for _, part := range strings.Split(sh[1:close], ",") {
		part = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), "L"))
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(part)
		if err != nil || v < 0 {
			return h, fmt.Errorf(".npy header: bad dimension %q", part)
		}
		if v > 0 && total > (1<<40)/v {
			return h, errors.New(".npy header: shape too large")
		}
		total *= v
		h.Shape = append(h.Shape, v)
	}
	return h, nil
}

// Read reads a whole .npy stream into a tensor (C order, host types).
func Read(r io.Reader) (*graph.Tensor, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	n := graph.Numel(h.Shape)
	size := int(h.DType.ByteSize(int64(n)))
	// Read straight into the buffer, growing it at most 16 MiB at a time, so a
	// header that overstates the data fails without a huge allocation and a
	// calibration sample costs one buffer, not a fixed-size chunk besides.
	buf := make([]byte, 0, min(size, 1<<24))
	for len(buf) < size {
		want := min(1<<24, size-len(buf))
		buf = slices.Grow(buf, want)
		got, err := io.ReadFull(r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+got]
		if err != nil {
			return nil, fmt.Errorf(".npy data is %d bytes, the header promises %d", len(buf), size)
		}
	}
	if h.BigEndian {
		w := h.DType.BitWidth() / 8
		if h.DType == graph.Complex64 || h.DType == graph.Complex128 {
			w /= 2
		}
		for i := 0; i+w <= len(buf); i += w {
			for a, b := i, i+w-1; a < b; a, b = a+1, b-1 {
				buf[a], buf[b] = buf[b], buf[a]
			}
		}
	}
	if h.FortranOrder && len(h.Shape) > 1 {
		buf = fortranToC(buf, h.Shape, h.DType.BitWidth()/8)
	}
	return fromRaw(h.DType, h.Shape, buf)
}

// fromRaw builds a tensor from little-endian bytes via the ONNX raw encoding.
func fromRaw(dt graph.DataType, shape []int, b []byte) (*graph.Tensor, error) {
	if dt == graph.Bool {
		d := make([]bool, len(b))
		for i, v := range b {
			d[i] = v != 0
		}
		return graph.TensorOf(dt, shape, d)
	}
	return graph.RawTensor(dt, shape, b)
}

// fortranToC reorders column-major elements of es bytes into row-major order.
func fortranToC(b []byte, shape []int, es int) []byte {
	out := make([]byte, len(b))
	n := graph.Numel(shape)
	idx := make([]int, len(shape))
	for i := 0; i < n; i++ { // i walks the output in row-major order
		src, stride := 0, 1
		for d := 0; d < len(shape); d++ { // column-major: first axis fastest
			src += idx[d] * stride
			stride *= shape[d]
		}
		copy(out[i*es:(i+1)*es], b[src*es:(src+1)*es])
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// WriteFile writes a tensor as a .npy (version 1.0, C order, little-endian),
// atomically.
func WriteFile(path string, t *graph.Tensor) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if err := Write(bw, t); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// Write encodes a tensor as .npy.
func Write(w io.Writer, t *graph.Tensor) error {
	code := ""
	for c, dt := range dtypes {
		if dt == t.DType {
			code = c
		}
	}
	if code == "" {
		return fmt.Errorf("%s tensors cannot be written as .npy", t.DType.Short())
	}
	order := "<"
	if t.DType.BitWidth() == 8 {
		order = "|"
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	hdr := fmt.Sprintf("{'descr': '%s%s', 'fortran_order': False, 'shape': (%s), }", order, code, shape)
	// Pad with spaces so the data starts on a 64-byte boundary; end with a newline.
	total := len(magic) + 2 + 2 + len(hdr) + 1
	hdr += strings.Repeat(" ", (64-total%64)%64) + "\n"
	if len(hdr) > 65535 {
		return errors.New("shape too long for a .npy 1.0 header")
	}
	var pre [10]byte
	copy(pre[:], magic)
	pre[6], pre[7] = 1, 0
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(hdr)))
	if _, err := w.Write(pre[:]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, hdr); err != nil {
		return err
	}
	_, err := w.Write(graph.RawBytes(t))
	return err
}
