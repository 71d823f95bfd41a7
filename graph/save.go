package graph

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// maxProtoSize is protobuf's hard limit on one serialized message (2 GiB - 1).
const maxProtoSize = 1<<31 - 1

// extAlign is the offset alignment of tensors in external data files: a page,
// so that runtimes can mmap them.
const extAlign = 4096

// SaveOptions tune Save.
type SaveOptions struct {
	// ExternalThreshold: initializers of at least this many bytes go to an external
	// data file. 0 keeps initializers that were loaded from external data external
	// and the rest inline; a negative value writes everything inline.
	ExternalThreshold int64
	// ExternalFile is the data file's name, beside the model; by default the model
	// file's name + ".data".
	ExternalFile string
}

// Save writes the model to path atomically (see SaveWith).
func Save(m *Model, path string) error { return SaveWith(m, path, SaveOptions{}) }

// SaveWith writes the model to path: everything goes to temporary files in the
// target folder that are renamed into place only when complete, so a failed save
// leaves any earlier file untouched.
func SaveWith(m *Model, path string, opt SaveOptions) error {
	if path == "" {
		return errors.New("no output path given")
	}
	dir := filepath.Dir(path)
	if opt.ExternalFile == "" {
		opt.ExternalFile = filepath.Base(path) + ".data"
	}
	if _, err := resolveLocation(dir, opt.ExternalFile); err != nil || filepath.Base(opt.ExternalFile) != opt.ExternalFile {
		return fmt.Errorf("external data file %q must be a plain file name", opt.ExternalFile)
	}
	dataPath := filepath.Join(dir, opt.ExternalFile)

	var ext *extWriter
	defer func() {
		if ext != nil {
			ext.abort()
		}
	}()
	external := func(t *Tensor) bool {
		if opt.ExternalThreshold < 0 || t.DType == String {
			return false
		}
		if opt.ExternalThreshold == 0 {
			return t.externalRef() != nil
		}
		return t.ByteSize() >= opt.ExternalThreshold
	}
	place := func(t *Tensor) (*onnxpb.TensorProto, error) {
		if !external(t) {
			if err := t.Materialize(); err != nil {
				return nil, err
			}
			return t.ToProto(), nil
		}
		if ext == nil {
			var err error
			if ext, err = newExtWriter(dataPath, opt.ExternalFile); err != nil {
				return nil, err
			}
		}
		return ext.write(t)
	}
	mp, err := m.toProto(place)
	if err != nil {
		return err
	}
	b, err := marshal(mp)
	if err != nil {
		return err
	}
	if ext != nil {
		if err := ext.commit(); err != nil {
			return err
		}
	}
	if err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	if ext != nil {
		ext.repoint()
		ext = nil
	}
	return nil
}

// Marshal serializes the model with every tensor inline (for tests, hashing, and
// models that fit in one protobuf message).
func Marshal(m *Model) ([]byte, error) {
	mp, err := m.toProto(func(t *Tensor) (*onnxpb.TensorProto, error) {
		if err := t.Materialize(); err != nil {
			return nil, err
		}
		return t.ToProto(), nil
	})
	if err != nil {
		return nil, err
	}
	return marshal(mp)
}

func marshal(mp *onnxpb.ModelProto) ([]byte, error) {
	opts := proto.MarshalOptions{Deterministic: true}
	if n := opts.Size(mp); n > maxProtoSize {
		return nil, fmt.Errorf("the model is %d bytes, over protobuf's 2 GiB limit: save its weights as external data (an external-data threshold)", n)
	}
	return opts.Marshal(mp)
}

// toProto assembles a ModelProto from the IR; place encodes each initializer.
// The model is not changed, except that node protos take the IR's current fields.
func (m *Model) toProto(place func(*Tensor) (*onnxpb.TensorProto, error)) (*onnxpb.ModelProto, error) {
	g := m.Graph
	if err := g.TopoSort(); err != nil {
		return nil, err
	}
	gp := &onnxpb.GraphProto{}
	// Copy the fields the IR does not model, unknown fields included, without
	// touching g.Proto.
	proto.Merge(gp, g.Proto)
	for _, n := range g.Nodes {
		gp.Node = append(gp.Node, n.toProto())
	}
	for _, v := range g.Initializers {
		v.Const.Name = v.Name
		tp, err := place(v.Const)
		if err != nil {
			return nil, err
		}
		gp.Initializer = append(gp.Initializer, tp)
	}
	for _, v := range g.Inputs {
		gp.Input = append(gp.Input, v.infoProto())
	}
	for _, v := range g.Outputs {
		gp.Output = append(gp.Output, v.infoProto())
	}
	for _, v := range g.ValueInfo {
		if g.values[v.Name] == v {
			gp.ValueInfo = append(gp.ValueInfo, v.infoProto())
		}
	}
	mp := &onnxpb.ModelProto{}
	proto.Merge(mp, m.Proto)
	mp.Graph = gp
	return mp, nil
}

// infoProto is the ValueInfoProto to write for v.
func (v *Value) infoProto() *onnxpb.ValueInfoProto {
	if v.Info == nil {
		return &onnxpb.ValueInfoProto{Name: proto.String(v.Name)}
	}
	if v.Info.GetName() != v.Name {
		v.Info.Name = proto.String(v.Name)
	}
	return v.Info
}

// toProto writes the IR fields into the node's proto and returns it.
func (n *Node) toProto() *onnxpb.NodeProto {
	p := n.Proto
	if p == nil {
		p = &onnxpb.NodeProto{}
		n.Proto = p
	}
	p.Input = p.Input[:0]
	for _, v := range n.Inputs {
		if v == nil {
			p.Input = append(p.Input, "")
		} else {
			p.Input = append(p.Input, v.Name)
		}
	}
	p.Output = p.Output[:0]
	for _, v := range n.Outputs {
		if v == nil {
			p.Output = append(p.Output, "")
		} else {
			p.Output = append(p.Output, v.Name)
		}
	}
	p.Attribute = n.Attrs
	if n.Name != "" || p.Name != nil {
		p.Name = proto.String(n.Name)
	}
	p.OpType = proto.String(n.OpType)
	if n.Domain != "" || p.Domain != nil {
		p.Domain = proto.String(n.Domain)
	}
	return p
}

// writeAtomic writes a file through a temp file in the same folder and a rename.
func writeAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPathErr(err))
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	ok = true
	return nil
}

// extWriter streams tensors into a temp external-data file.
type extWriter struct {
	path, location string
	f              *os.File
	w              *bufio.Writer
	off            int64
	written        []extPlaced
}

type extPlaced struct {
	t      *Tensor
	offset int64
	length int64
}

func newExtWriter(path, location string) (*extWriter, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, unwrapPathErr(err))
	}
	return &extWriter{path: path, location: location, f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// write appends t's raw bytes at the next aligned offset and returns its proto.
func (e *extWriter) write(t *Tensor) (*onnxpb.TensorProto, error) {
	if pad := (extAlign - e.off%extAlign) % extAlign; pad > 0 {
		if _, err := e.w.Write(make([]byte, pad)); err != nil {
			return nil, fmt.Errorf("writing %s: %w", e.path, err)
		}
		e.off += pad
	}
	length := t.ByteSize()
	var err error
	if t.ext != nil {
		err = t.ext.copyTo(e.w)
	} else {
		_, err = e.w.Write(rawBytes(t.DType, t.Data()))
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %q: writing %s: %w", t.Name, e.path, err)
	}
	p := &onnxpb.TensorProto{
		Dims:         make([]int64, len(t.Shape)),
		DataType:     proto.Int32(int32(t.DType)),
		Name:         proto.String(t.Name),
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(e.location)},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(e.off, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.FormatInt(length, 10))},
		},
	}
	for i, d := range t.Shape {
		p.Dims[i] = int64(d)
	}
	if t.src != nil {
		p.DocString = t.src.DocString
		p.MetadataProps = t.src.MetadataProps
	}
	e.written = append(e.written, extPlaced{t, e.off, length})
	e.off += length
	return p, nil
}

// commit flushes and renames the data file into place.
func (e *extWriter) commit() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", e.path, err)
	}
	if err := e.f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", e.path, err)
	}
	if err := e.f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", e.path, err)
	}
	os.Chmod(e.f.Name(), 0o644)
	if err := os.Rename(e.f.Name(), e.path); err != nil {
		return fmt.Errorf("writing %s: %w", e.path, err)
	}
	e.f = nil
	return nil
}

// repoint makes lazily loaded tensors read from the file just written: the file
// they were read from may have been the one replaced.
func (e *extWriter) repoint() {
	for _, w := range e.written {
		if w.t.ext != nil {
			w.t.ext = &extRef{Location: e.location, Path: e.path, Offset: w.offset, Length: w.length}
		}
	}
}

func (e *extWriter) abort() {
	if e.f != nil {
		e.f.Close()
		os.Remove(e.f.Name())
	}
}
