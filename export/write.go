package export

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nlpodyssey/safetensors"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/npy"
)

// Format is how the tensors are written.
type Format string

const (
	// Safetensors writes one .safetensors file (msModelSlim's format).
	Safetensors Format = "safetensors"
	// NPY writes one .npy file per tensor into a folder.
	NPY Format = "npy"
)

// Formats lists the formats, for messages.
var Formats = []Format{Safetensors, NPY}

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("format %q is not safetensors or npy", s)
}

// File names inside an output folder, as msModelSlim names them.
const (
	WeightsFile     = "quant_model_weight.safetensors"
	DescriptionFile = "quant_model_description.json"
)

// Paths says where Write puts the tensors and the description for out: a
// path ending in .safetensors is the weights file itself, with the
// description beside it as NAME.json; any other path is a folder holding
// WeightsFile (or one NAME.npy per tensor) and DescriptionFile.
func Paths(format Format, out string) (dir, weights, description string) {
	if format == Safetensors && strings.HasSuffix(out, ".safetensors") {
		return filepath.Dir(out), out, strings.TrimSuffix(out, ".safetensors") + ".json"
	}
	if format == Safetensors {
		return out, filepath.Join(out, WeightsFile), filepath.Join(out, DescriptionFile)
	}
	return out, "", filepath.Join(out, DescriptionFile)
}

// Write writes the export. Nothing is written unless everything encodes:
// the files are made in a temporary folder beside the output and moved into
// place at the end (a new folder in one rename; into an existing folder, each
// file replaced whole, other files there left alone).
func Write(e *Export, format Format, out string) error {
	files := map[string]func(io.Writer) error{}
	dir, weights, desc := Paths(format, out)
	switch format {
	case Safetensors:
		views := map[string]safetensors.TensorView{}
		for _, t := range e.Tensors {
			v, err := view(t.Data)
			if err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
			views[t.Name] = v
		}
		files[filepath.Base(weights)] = func(w io.Writer) error {
			return safetensors.SerializeToWriter(views, map[string]string{"format": "pt"}, w)
		}
	case NPY:
		for _, t := range e.Tensors {
			t := t
			name := NPYFileName(t.Name)
			if len(name) > 255 {
				return fmt.Errorf("tensor %q: its .npy file name would be longer than 255 bytes", t.Name)
			}
			if _, dup := files[name]; dup {
				return fmt.Errorf("tensor %q: file name %s is taken", t.Name, name)
			}
			files[name] = func(w io.Writer) error { return npy.Write(w, t.Data) }
		}
	default:
		return fmt.Errorf("format %q is not safetensors or npy", format)
	}
	d, err := json.MarshalIndent(e.Description(), "", "  ")
	if err != nil {
		return err
	}
	files[filepath.Base(desc)] = func(w io.Writer) error {
		_, err := w.Write(append(d, '\n'))
		return err
	}
	return writeFiles(dir, files)
}

// writeFiles writes the files into dir through a temporary folder.
func writeFiles(dir string, files map[string]func(io.Writer) error) error {
	parent := filepath.Dir(filepath.Clean(dir))
	info, statErr := os.Stat(dir)
	exists := statErr == nil
	if exists && !info.IsDir() {
		return fmt.Errorf("%s exists and is not a folder", dir)
	}
	stageIn := parent
	if exists { // stage inside it: the same file system for the renames
		stageIn = dir
	}
	stage, err := os.MkdirTemp(stageIn, "."+filepath.Base(dir)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write to %s: %w", stageIn, unwrapPath(err))
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(stage)
		}
	}()
	for name, write := range files {
		if err := writeOne(filepath.Join(stage, name), write); err != nil {
			return fmt.Errorf("writing %s: %w", name, unwrapPath(err))
		}
	}
	if !exists {
		if err := os.Chmod(stage, 0o755); err != nil {
			return err
		}
		if err := os.Rename(stage, dir); err != nil {
			return fmt.Errorf("cannot create %s: %w", dir, unwrapPath(err))
		}
		done = true
		return nil
	}
	for name := range files {
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("cannot write %s: %w", filepath.Join(dir, name), unwrapPath(err))
		}
	}
	return nil
}

func writeOne(path string, write func(io.Writer) error) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// unwrapPath drops the operation and path of a *PathError (the message
// names the path already).
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// NPYFileName is the .npy file of a tensor: its name with every byte
// outside [A-Za-z0-9._-] (and a leading '.') written as %XX, so names with
// '/' or ':' (ONNX node names) stay one file.
func NPYFileName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || (c == '.' && i > 0)
		if ok {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String() + ".npy"
}

// stDTypes maps element types to safetensors' dtypes.
var stDTypes = map[graph.DataType]safetensors.DType{
	graph.Bool: safetensors.BOOL, graph.Uint8: safetensors.U8, graph.Int8: safetensors.I8,
	graph.Int16: safetensors.I16, graph.Uint16: safetensors.U16, graph.Float16: safetensors.F16,
	graph.BFloat16: safetensors.BF16, graph.Int32: safetensors.I32, graph.Uint32: safetensors.U32,
	graph.Float: safetensors.F32, graph.Double: safetensors.F64, graph.Int64: safetensors.I64,
	graph.Uint64: safetensors.U64,
}

// view wraps a tensor's little-endian bytes for the safetensors writer.
func view(t *graph.Tensor) (safetensors.TensorView, error) {
	dt, ok := stDTypes[t.DType]
	if !ok {
		return safetensors.TensorView{}, fmt.Errorf("%s has no safetensors type", t.DType.Short())
	}
	shape := make([]uint64, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = uint64(d)
	}
	return safetensors.NewTensorView(dt, shape, graph.RawBytes(t))
}

// ExportFile reads a model and writes its export.
func ExportFile(model string, format Format, out string) (*Export, error) {
	m, err := graph.Load(model)
	if err != nil {
		return nil, err
	}
	e, err := Collect(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", model, err)
	}
	if err := Write(e, format, out); err != nil {
		return nil, err
	}
	return e, nil
}
