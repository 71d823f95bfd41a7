package graph

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/graph/onnxpb"
)

// extRef says where a tensor's bytes live outside the model file.
type extRef struct {
	Location string // as written in the model, relative to its folder
	Path     string // resolved path on disk
	Offset   int64
	Length   int64
	owner    *DataWriter // set for tensors streamed out with DataWriter.Put
}

// parseExternal reads a tensor's external_data entries and checks them against
// the file on disk: the location must stay inside dir, the file must exist, and
// offset and length must lie within it and match the tensor's byte size.
func parseExternal(p *onnxpb.TensorProto, dir string, want int64) (*extRef, error) {
	ref := &extRef{Offset: 0, Length: -1}
	for _, kv := range p.ExternalData {
		var err error
		switch kv.GetKey() {
		case "location":
			ref.Location = kv.GetValue()
		case "offset":
			ref.Offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			ref.Length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "checksum":
			// SHA1 of the whole file; optional, and not verified (it would mean
			// reading the file twice).
		default:
			return nil, fmt.Errorf("external_data: unknown key %q", kv.GetKey())
		}
		if err != nil {
			return nil, fmt.Errorf("external_data: %s %q is not an integer", kv.GetKey(), kv.GetValue())
		}
	}
	if ref.Location == "" {
		return nil, fmt.Errorf("external_data has no location")
	}
	path, err := resolveLocation(dir, ref.Location)
	if err != nil {
		return nil, err
	}
	ref.Path = path
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("external data file %q: %w", ref.Location, unwrapPathErr(err))
	}
	if ref.Offset < 0 || ref.Offset > st.Size() {
		return nil, fmt.Errorf("external data offset %d is outside %q (%d bytes)", ref.Offset, ref.Location, st.Size())
	}
	if ref.Length < 0 {
		ref.Length = st.Size() - ref.Offset
	}
	if ref.Offset+ref.Length > st.Size() {
		return nil, fmt.Errorf("external data offset %d + length %d runs past the end of %q (%d bytes)", ref.Offset, ref.Length, ref.Location, st.Size())
	}
	if ref.Length != want {
		return nil, fmt.Errorf("dims %v of %s need %d bytes, external data length is %d", p.Dims, DataType(p.GetDataType()), want, ref.Length)
	}
	return ref, nil
}

// resolveLocation joins a relative external-data location to the model folder and
// refuses anything that would read outside it.
func resolveLocation(dir, loc string) (string, error) {
	if filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, `\`) || filepath.VolumeName(loc) != "" {
		return "", fmt.Errorf("external data location %q is absolute; it must be relative to the model's folder", loc)
	}
	clean := filepath.Clean(filepath.FromSlash(loc))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("external data location %q leaves the model's folder", loc)
	}
	path := filepath.Join(dir, clean)
	// A symlink inside the folder may still point outside it.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		realDir, derr := filepath.EvalSymlinks(dir)
		if derr != nil {
			realDir = dir
		}
		if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", fmt.Errorf("external data location %q is a link that leaves the model's folder", loc)
		}
	}
	return path, nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Materialize reads external data into memory and detaches the tensor from its
// file: from then on memory holds the only copy (Release does nothing), so
// changes made in place are kept. It does nothing for in-memory tensors.
func (t *Tensor) Materialize() error {
	if t.ext == nil {
		return nil
	}
	if err := t.Load(); err != nil {
		return err
	}
	t.ext, t.mu = nil, nil
	return nil
}

// Load reads a lazily loaded tensor's external data into memory now, if it is
// not there yet; the tensor stays backed by its file, so Release can drop the
// data again. It does nothing for in-memory tensors.
func (t *Tensor) Load() error {
	if t.ext == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.loadLocked()
}

// loadLocked reads the external data if it is not in memory; t.mu is held.
func (t *Tensor) loadLocked() error {
	if t.data != nil {
		return nil
	}
	b, err := t.ext.read()
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	t.data = decodeRaw(t.DType, b, t.Len())
	return nil
}

// Release drops the data of a tensor backed by external data from memory (it
// is read again from the file when next needed) and reports whether it did.
// It is for readers: a change made in place to the released data is lost.
// In-memory and materialized tensors are left as they are.
func (t *Tensor) Release() bool {
	if t.ext == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.data = nil
	return true
}

func (r *extRef) read() ([]byte, error) {
	f, err := os.Open(r.Path)
	if err != nil {
		return nil, fmt.Errorf("external data file %q: %w", r.Location, unwrapPathErr(err))
	}
	defer f.Close()
	b := make([]byte, r.Length)
	if _, err := f.ReadAt(b, r.Offset); err != nil {
		if err == io.EOF {
			err = fmt.Errorf("the file is shorter than at load (%d bytes expected)", r.Offset+r.Length)
		}
		return nil, fmt.Errorf("reading %d bytes at offset %d of %q: %w", r.Length, r.Offset, r.Location, err)
	}
	return b, nil
}

// copyTo streams the external bytes into w without holding them in memory.
func (r *extRef) copyTo(w io.Writer) error {
	f, err := os.Open(r.Path)
	if err != nil {
		return fmt.Errorf("external data file %q: %w", r.Location, unwrapPathErr(err))
	}
	defer f.Close()
	n, err := io.Copy(w, io.NewSectionReader(f, r.Offset, r.Length))
	if err == nil && n != r.Length {
		err = fmt.Errorf("%q ended after %d of %d bytes", r.Location, n, r.Length)
	}
	return err
}

// ExternalFiles lists the external-data locations the model's tensors refer to,
// in first-use order.
func (m *Model) ExternalFiles() []string {
	seen := map[string]bool{}
	var out []string
	m.walkTensors(func(t *Tensor) {
		if ref := t.externalRef(); ref != nil && !seen[ref.Location] {
			seen[ref.Location] = true
			out = append(out, ref.Location)
		}
	})
	return out
}

// externalRef is where the tensor came from when it was loaded from external data.
func (t *Tensor) externalRef() *extRef {
	if t.ext != nil {
		return t.ext
	}
	if t.src != nil && t.src.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		r := &extRef{}
		for _, kv := range t.src.ExternalData {
			if kv.GetKey() == "location" {
				r.Location = kv.GetValue()
			}
		}
		return r
	}
	return nil
}
