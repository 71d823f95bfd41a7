package graph

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

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
	// and the rest inline, unless that would make the protobuf larger than its
	// 2 GiB limit: then every initializer of autoThreshold bytes or more goes
	// external. A negative value writes everything inline.
	ExternalThreshold int64
	// ExternalFile is the data file's name, beside the model; by default the model
	// file's name + ".data".
	ExternalFile string
	// ChunkSize > 0 splits the external data into files of at most this many
	// bytes, named ExternalFile + ".0", ".1", ...; a tensor is never split, and
	// one larger than ChunkSize gets a file of its own.
	ChunkSize int64
	// Data is the writer that tensors were streamed into (DataWriter.Put) while
	// the model was built; Save completes its files. ExternalFile and ChunkSize
	// are then the writer's.
	Data *DataWriter
}

// autoThreshold is the size from which initializers go external when a model
// would not fit in one protobuf (ONNX's own converter uses 1 KiB too).
const autoThreshold = 1024

// inlineLimit is how many bytes of tensors a default save keeps inline: the
// protobuf limit less room for the graph itself (a variable for tests).
var inlineLimit int64 = maxProtoSize - 64<<20

// Save writes the model to path atomically (see SaveWith).
func Save(m *Model, path string) error { return SaveWith(m, path, SaveOptions{}) }

// SaveWith writes the model to path: everything goes to temporary files in the
// target folder that are renamed into place only when complete, so a failed save
// leaves any earlier file untouched.
func SaveWith(m *Model, path string, opt SaveOptions) error {
	if path == "" {
		return errors.New("no output path given")
	}
	ext := opt.Data
	if ext != nil && ext.modelPath != path {
		return fmt.Errorf("the data writer was made for %s, not %s", ext.modelPath, path)
	}
	if ext == nil {
		var err error
		if ext, err = NewDataWriter(path, opt); err != nil { // no file until a tensor goes external
			return err
		}
	}
	defer func() {
		if ext != nil {
			ext.Abort()
		}
	}()
	threshold := opt.ExternalThreshold
	if threshold == 0 && inlineBytes(m, ext) > inlineLimit {
		threshold = autoThreshold
	}
	external := func(t *Tensor) bool {
		if ext.owns(t) {
			return true
		}
		if threshold < 0 || t.DType == String {
			return false
		}
		if threshold == 0 {
			return t.externalRef() != nil
		}
		return t.ByteSize() >= threshold
	}
	place := func(t *Tensor) (*onnxpb.TensorProto, error) {
		if !external(t) {
			if err := t.Materialize(); err != nil {
				return nil, err
			}
			return t.ToProto(), nil
		}
		if ext.owns(t) {
			return ext.proto(t), nil
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
	if err := ext.commit(); err != nil {
		return err
	}
	if err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	ext.repoint()
	if len(ext.files) > 0 {
		ext.removeStale()
	}
	ext = nil
	return nil
}

// inlineBytes is what the initializers that would stay inline by default take.
func inlineBytes(m *Model, ext *DataWriter) int64 {
	var n int64
	for _, v := range m.Graph.Initializers {
		if t := v.Const; t.externalRef() == nil && !ext.owns(t) {
			n += t.ByteSize()
		}
	}
	return n
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
		if v.Const.Name != v.Name { // no write to a shared tensor (CloneShared)
			v.Const.Name = v.Name
		}
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

// DataWriter writes a model's external data files: during a save, or before
// it, while a large model is built one tensor at a time (Put). Its files are
// temporary until the Save that takes it renames them into place.
type DataWriter struct {
	modelPath string
	dir       string
	location  string // ExternalFile
	chunk     int64
	files     []*dataFile
	written   []extPlaced
}

// dataFile is one data file being written.
type dataFile struct {
	location, path string
	f              *os.File
	w              *bufio.Writer
	off            int64
}

type extPlaced struct {
	t    *Tensor
	file *dataFile
	ref  extRef
}

// NewDataWriter starts the external data files of the model that SaveWith will
// write to modelPath with opt (opt.ExternalFile and opt.ChunkSize).
func NewDataWriter(modelPath string, opt SaveOptions) (*DataWriter, error) {
	if modelPath == "" {
		return nil, errors.New("no output path given")
	}
	dir := filepath.Dir(modelPath)
	loc := opt.ExternalFile
	if loc == "" {
		loc = filepath.Base(modelPath) + ".data"
	}
	if _, err := resolveLocation(dir, loc); err != nil || filepath.Base(loc) != loc {
		return nil, fmt.Errorf("external data file %q must be a plain file name", loc)
	}
	if opt.ChunkSize < 0 {
		return nil, fmt.Errorf("external data chunk size %d is negative", opt.ChunkSize)
	}
	return &DataWriter{modelPath: modelPath, dir: dir, location: loc, chunk: opt.ChunkSize}, nil
}

// chunkName is the location of the i-th data file.
func (e *DataWriter) chunkName(i int) string {
	if e.chunk == 0 {
		return e.location
	}
	return e.location + "." + strconv.Itoa(i)
}

// fileFor returns the file the next n bytes go to, starting a new chunk when
// the current one would grow past the chunk size.
func (e *DataWriter) fileFor(n int64) (*dataFile, error) {
	if len(e.files) > 0 {
		cur := e.files[len(e.files)-1]
		if e.chunk == 0 || cur.off == 0 || alignUp(cur.off)+n <= e.chunk {
			return cur, nil
		}
	}
	loc := e.chunkName(len(e.files))
	path := filepath.Join(e.dir, loc)
	f, err := os.CreateTemp(e.dir, "."+loc+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, unwrapPathErr(err))
	}
	df := &dataFile{location: loc, path: path, f: f, w: bufio.NewWriterSize(f, 1<<20)}
	e.files = append(e.files, df)
	return df, nil
}

func alignUp(off int64) int64 { return (off + extAlign - 1) / extAlign * extAlign }

// owns reports whether t was streamed into e with Put.
func (e *DataWriter) owns(t *Tensor) bool {
	return e != nil && t.ext != nil && t.ext.owner == e
}

// Put writes t's data now and makes t read it back from the new file when
// next asked, so that its memory can go: a model larger than memory is written
// as it is built. t must not change afterwards (Save refers to the bytes
// written here), and Save must receive e (SaveOptions.Data).
func (e *DataWriter) Put(t *Tensor) error {
	if t.DType == String {
		return fmt.Errorf("tensor %q: string tensors cannot use external data", t.Name)
	}
	if e.owns(t) {
		return nil
	}
	if _, err := e.write(t); err != nil {
		return err
	}
	p := e.written[len(e.written)-1]
	if err := p.file.w.Flush(); err != nil { // the tensor reads its bytes back from the file
		return fmt.Errorf("writing %s: %w", p.file.path, err)
	}
	ref := p.ref
	ref.Path = p.file.f.Name() // the temp file, until commit renames it
	ref.owner = e
	t.ext, t.mu, t.data, t.aliasSrc = &ref, &sync.Mutex{}, nil, false
	return nil
}

// write appends t's raw bytes at the next aligned offset and returns its proto.
func (e *DataWriter) write(t *Tensor) (*onnxpb.TensorProto, error) {
	length := t.ByteSize()
	df, err := e.fileFor(length)
	if err != nil {
		return nil, err
	}
	if pad := alignUp(df.off) - df.off; pad > 0 {
		if _, err := df.w.Write(make([]byte, pad)); err != nil {
			return nil, fmt.Errorf("writing %s: %w", df.path, err)
		}
		df.off += pad
	}
	if t.Loaded() {
		_, err = df.w.Write(rawBytes(t.DType, t.Data()))
	} else {
		err = t.ext.copyTo(df.w)
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %q: writing %s: %w", t.Name, df.path, err)
	}
	e.written = append(e.written, extPlaced{t, df, extRef{Location: df.location, Path: df.path, Offset: df.off, Length: length}})
	df.off += length
	return e.proto(t), nil
}

// proto is the TensorProto of a tensor e wrote last, pointing at its bytes.
func (e *DataWriter) proto(t *Tensor) *onnxpb.TensorProto {
	var ref extRef
	for i := len(e.written) - 1; i >= 0; i-- {
		if e.written[i].t == t {
			ref = e.written[i].ref
			break
		}
	}
	p := &onnxpb.TensorProto{
		Dims:         make([]int64, len(t.Shape)),
		DataType:     proto.Int32(int32(t.DType)),
		Name:         proto.String(t.Name),
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(ref.Location)},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(ref.Offset, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.FormatInt(ref.Length, 10))},
		},
	}
	for i, d := range t.Shape {
		p.Dims[i] = int64(d)
	}
	if t.src != nil {
		p.DocString = t.src.DocString
		p.MetadataProps = t.src.MetadataProps
	}
	return p
}

// commit flushes the data files and renames them into place.
func (e *DataWriter) commit() error {
	for _, df := range e.files {
		if err := df.w.Flush(); err != nil {
			return fmt.Errorf("writing %s: %w", df.path, err)
		}
		if err := df.f.Sync(); err != nil {
			return fmt.Errorf("writing %s: %w", df.path, err)
		}
		if err := df.f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", df.path, err)
		}
	}
	for _, df := range e.files {
		if err := os.Chmod(df.f.Name(), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", df.path, err)
		}
		if err := os.Rename(df.f.Name(), df.path); err != nil {
			return fmt.Errorf("writing %s: %w", df.path, err)
		}
		df.f = nil
	}
	return nil
}

// repoint makes lazily loaded tensors read from the files just written: the
// file they were read from may have been one replaced, or a temp file.
func (e *DataWriter) repoint() {
	for _, w := range e.written {
		if w.t.ext != nil {
			ref := w.ref
			w.t.ext = &ref
		}
	}
}

// removeStale deletes the chunk files an earlier save of the same model wrote
// beyond the ones this save did: the model no longer refers to them.
func (e *DataWriter) removeStale() {
	first := len(e.files)
	if e.chunk == 0 {
		first = 0
	}
	for i := first; ; i++ {
		p := filepath.Join(e.dir, e.location+"."+strconv.Itoa(i))
		if _, err := os.Stat(p); err != nil || os.Remove(p) != nil {
			return
		}
	}
}

// Abort removes the temporary files of a save that did not complete. Tensors
// streamed into them with Put can no longer be read.
func (e *DataWriter) Abort() {
	for _, df := range e.files {
		if df.f != nil {
			df.f.Close()
			os.Remove(df.f.Name())
			df.f = nil
		}
	}
}
