// Package dataset reads calibration samples: folders of .npy files (per-input
// subfolders for several inputs), QNN-style input lists, raw .bin files with a
// declared shape, and folders of PNG/JPEG images with preprocessing. Samples are
// read one at a time, so memory does not grow with their number; every file is
// checked against the model's inputs before anything runs.
package dataset

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
)

// Input is a model input a sample must provide.
type Input struct {
	Name  string
	DType graph.DataType
	Dims  []int64 // -1 where any size is accepted
	// Params names the symbolic dimensions ("batch", "past_seq"; "" for fixed
	// or unnamed ones): within one sample, every input must give a name one size.
	Params []string
}

// InputsOf lists the inputs a sample must provide for m: its graph inputs
// without an initializer default, with their declared types and shapes.
func InputsOf(m *graph.Model) []Input {
	var inputs []Input
	for _, in := range m.Graph.Inputs {
		if in.Const != nil {
			continue
		}
		di := Input{Name: in.Name, DType: in.ElemType()}
		if dims, ok := in.Shape(); ok {
			for _, d := range dims {
				if d.Known && d.Param == "" {
					di.Dims = append(di.Dims, d.Value)
				} else {
					di.Dims = append(di.Dims, -1)
				}
				di.Params = append(di.Params, d.Param)
			}
		}
		inputs = append(inputs, di)
	}
	return inputs
}

// Sample maps input names to tensors.
type Sample map[string]*graph.Tensor

// Source is an ordered set of samples. Sample is safe for concurrent use
// (the lanes of calibration and compare read side by side; the files'
// source keeps its read-ahead and image scratch under locks).
type Source interface {
	Len() int
	// Sample reads sample i from disk.
	Sample(i int) (Sample, error)
}

// Options say how to read the files.
type Options struct {
	// Limit caps the number of samples (0: all), taking the first in sorted order.
	Limit int
	// RawShape and RawType describe .bin/.raw files (required for them).
	RawShape []int
	RawType  graph.DataType
	// Image preprocessing for PNG/JPEG folders.
	Image ImageOptions
	// ReadAhead reads sample i+1 on a goroutine of its own while the
	// caller works on sample i (one sample ahead; a sample asked for out
	// of turn is read then): decoding a JPEG can take longer than a small
	// model's run, and a second core had nothing else to do there.
	ReadAhead bool
}

// file is one input's file of one sample.
type file struct {
	input, path string
}

type fileSource struct {
	inputs  []Input
	samples [][]file
	opt     Options

	// With ReadAhead: the samples being read ahead by index, the window
	// (how many after the one asked for; 1 unless KeepAhead widened it)
	// and the last index a read ahead was started for.
	mu     sync.Mutex
	ahead  map[int]*pending
	window int
	issued int
}

// pending is a sample being read ahead; done closes when s and err are set.
type pending struct {
	i    int
	done chan struct{}
	s    Sample
	err  error
}

func (s *fileSource) Len() int { return len(s.samples) }

func (s *fileSource) Sample(i int) (Sample, error) {
	if !s.opt.ReadAhead {
		return s.sample(i)
	}
	s.mu.Lock()
	if s.ahead == nil {
		s.ahead, s.window, s.issued = map[int]*pending{}, max(1, s.window), -1
	}
	if i+s.window < s.issued { // a new pass from an earlier sample
		clear(s.ahead) // reads still running are dropped when they end
		s.issued = i
	}
	p := s.ahead[i]
	delete(s.ahead, i)
	for j := range s.ahead {
		if j < i-2*s.window { // passed by every consumer: never asked for
			delete(s.ahead, j)
		}
	}
	for j := max(i+1, s.issued+1); j <= i+s.window && j < len(s.samples); j++ {
		n := &pending{i: j, done: make(chan struct{})}
		go func() {
			n.s, n.err = s.sample(n.i)
			close(n.done)
		}()
		s.ahead[j] = n
		s.issued = j
	}
	s.mu.Unlock()
	if p != nil {
		<-p.done
		return p.s, p.err
	}
	return s.sample(i)
}

// KeepAhead asks src, when it reads ahead (Options.ReadAhead), to keep n
// samples after the one asked for in flight: for a consumer that runs n
// samples side by side (compare's and calibration's lanes), whose next
// samples a window of one would decode one at a time.
func KeepAhead(src Source, n int) {
	if s, ok := src.(*fileSource); ok {
		s.mu.Lock()
		s.window = max(s.window, n)
		s.mu.Unlock()
	}
}

func (s *fileSource) sample(i int) (Sample, error) {
	out := Sample{}
	for _, f := range s.samples[i] {
		t, err := s.read(f)
		if err != nil {
			return nil, err
		}
		out[f.input] = t
	}
	return out, nil
}

func (s *fileSource) read(f file) (*graph.Tensor, error) {
	switch kindOf(f.path) {
	case kindNpy:
		return npy.ReadFile(f.path)
	case kindPB:
		return graph.ReadTensorFile(f.path)
	case kindRaw:
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		t, err := graph.RawTensor(s.opt.RawType, s.opt.RawShape, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %d bytes do not hold the declared %s%v", f.path, len(b), s.opt.RawType.Short(), s.opt.RawShape)
		}
		return t, nil
	case kindImage:
		return loadImage(f.path, s.inputFor(f.input), s.opt.Image)
	}
	return nil, fmt.Errorf("%s: not a .npy, .pb, .bin/.raw, .png or .jpg file", f.path)
}

func (s *fileSource) inputFor(name string) Input {
	for _, in := range s.inputs {
		if in.Name == name {
			return in
		}
	}
	return Input{Name: name}
}

type kind int

const (
	kindOther kind = iota
	kindNpy
	kindPB // a serialized TensorProto: the ONNX test data's input_N.pb
	kindRaw
	kindImage
)

func kindOf(path string) kind {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		return kindNpy
	case ".pb":
		return kindPB
	case ".bin", ".raw":
		return kindRaw
	case ".png", ".jpg", ".jpeg":
		return kindImage
	}
	return kindOther
}

// Open finds the samples at path for a model with these inputs and checks every
// file's type and shape against them.
func Open(path string, inputs []Input, opt Options) (Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("calibration data %s: %w", path, unwrap(err))
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("the model has no inputs to calibrate")
	}
	s := &fileSource{inputs: inputs, opt: opt}
	if st.IsDir() {
		err = s.fromDir(path)
	} else if kindOf(path) == kindOther {
		err = s.fromList(path)
	} else {
		if len(inputs) != 1 {
			return nil, fmt.Errorf("calibration data %s is one file, but the model has %d inputs: use a folder with one subfolder per input, or a list file", path, len(inputs))
		}
		s.samples = [][]file{{{inputs[0].Name, path}}}
	}
	if err != nil {
		return nil, err
	}
	if len(s.samples) == 0 {
		return nil, fmt.Errorf("calibration data %s holds no samples (.npy, .pb, .bin/.raw, .png, .jpg)", path)
	}
	if opt.Limit > 0 && len(s.samples) > opt.Limit {
		s.samples = s.samples[:opt.Limit]
	}
	return s, s.check()
}

func unwrap(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// dataFiles lists the sample files of a folder, sorted.
func dataFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && kindOf(e.Name()) != kindOther {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *fileSource) fromDir(dir string) error {
	if len(s.inputs) == 1 {
		files, err := dataFiles(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			s.samples = append(s.samples, []file{{s.inputs[0].Name, f}})
		}
		if len(files) > 0 {
			return nil
		}
		if st, err := os.Stat(filepath.Join(dir, s.inputs[0].Name)); err != nil || !st.IsDir() {
			// A folder of sample folders (the ONNX test data's
			// test_data_set_N), or an empty one: Open reports that.
			_, err := s.fromSampleDirs(dir)
			return err
		}
	}
	if ok, err := s.fromSampleDirs(dir); ok || err != nil {
		return err
	}
	// One subfolder per input; the i-th files of each form sample i.
	var per [][]string
	for _, in := range s.inputs {
		sub := filepath.Join(dir, in.Name)
		files, err := dataFiles(sub)
		if err != nil {
			return fmt.Errorf("calibration data %s: the model has inputs %s; expected a subfolder %q for each (%v)", dir, names(s.inputs), in.Name, unwrap(err))
		}
		if len(per) > 0 && len(files) != len(per[0]) {
			return fmt.Errorf("calibration data %s: subfolder %q has %d files, %q has %d", dir, in.Name, len(files), s.inputs[0].Name, len(per[0]))
		}
		per = append(per, files)
	}
	for i := range per[0] {
		var smp []file
		for k, in := range s.inputs {
			smp = append(smp, file{in.Name, per[k][i]})
		}
		s.samples = append(s.samples, smp)
	}
	return nil
}

// fromSampleDirs reads the layout of one subfolder per sample, each holding
// one file per input named after it (sample_000/input_ids.npy,
// sample_000/past_key_values.0.key.npy, ...), the usual export of sequence
// models with many inputs. It reports false when dir is not laid out so.
func (s *fileSource) fromSampleDirs(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	var subs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if s.isInput(e.Name()) {
			return false, nil // the per-input layout
		}
		subs = append(subs, e.Name())
	}
	sort.Strings(subs)
	for i, sub := range subs {
		files, err := dataFiles(filepath.Join(dir, sub))
		if err != nil {
			return false, err
		}
		byInput := map[string]string{}
		for _, f := range files {
			base := filepath.Base(f)
			name := strings.TrimSuffix(base, filepath.Ext(base))
			if kindOf(f) == kindPB {
				// The ONNX test data's layout (test_data_set_0/input_0.pb,
				// output_0.pb): input_K is the model's K-th input, the
				// expected outputs are not samples.
				if k, ok := testDataIndex(name, "input_"); ok && k < len(s.inputs) && !s.isInput(name) {
					name = s.inputs[k].Name
				} else if _, ok := testDataIndex(name, "output_"); ok && !s.isInput(name) {
					continue
				}
			}
			byInput[name] = f
		}
		if i == 0 && len(files) == 0 {
			return false, nil // sub holds no data files: not this layout
		}
		var smp []file
		for _, in := range s.inputs {
			f, ok := byInput[in.Name]
			if !ok {
				return false, fmt.Errorf("calibration data %s: sample folder %q has no file for input %q (want %s.npy beside the other inputs' files)", dir, sub, in.Name, in.Name)
			}
			smp = append(smp, file{in.Name, f})
			delete(byInput, in.Name)
		}
		if len(byInput) > 0 {
			var extra []string
			for _, f := range byInput {
				extra = append(extra, filepath.Base(f))
			}
			sort.Strings(extra)
			return false, fmt.Errorf("calibration data %s: sample folder %q has %q, which is not a model input (inputs: %s)", dir, sub, extra[0], names(s.inputs))
		}
		s.samples = append(s.samples, smp)
	}
	return len(s.samples) > 0, nil
}

// testDataIndex reads K from a test data file's base name prefixK.
func testDataIndex(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return 0, false
	}
	k, err := strconv.Atoi(rest)
	return k, err == nil && k >= 0
}

// isInput reports whether the model has an input of that name.
func (s *fileSource) isInput(name string) bool {
	for _, in := range s.inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

func names(in []Input) string {
	var n []string
	for _, i := range in {
		n = append(n, i.Name)
	}
	return strings.Join(n, ", ")
}

// fromList reads a QNN-style input list: one sample per line, either a single
// path (one-input models) or name:path pairs separated by spaces. Paths are
// relative to the list's folder; # starts a comment.
func (s *fileSource) fromList(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	base := filepath.Dir(path)
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var smp []file
		seen := map[string]bool{}
		for _, field := range strings.Fields(text) {
			name, p, ok := strings.Cut(field, ":")
			if !ok {
				if len(s.inputs) != 1 {
					return fmt.Errorf("%s:%d: %q has no input name; the model has inputs %s (write name:path)", path, line, field, names(s.inputs))
				}
				name, p = s.inputs[0].Name, field
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			if seen[name] {
				return fmt.Errorf("%s:%d: input %q given twice", path, line, name)
			}
			seen[name] = true
			smp = append(smp, file{name, p})
		}
		for _, in := range s.inputs {
			if !seen[in.Name] {
				return fmt.Errorf("%s:%d: no file for input %q", path, line, in.Name)
			}
		}
		if len(seen) != len(s.inputs) {
			return fmt.Errorf("%s:%d: names an input the model does not have (inputs: %s)", path, line, names(s.inputs))
		}
		s.samples = append(s.samples, smp)
	}
	return sc.Err()
}

// check verifies every file's element type and shape without reading the data,
// and that the inputs of one sample agree on each named dimension (one batch
// size, one past length across all the KV-cache inputs).
func (s *fileSource) check() error {
	type seen struct {
		size        int
		input, path string
	}
	for _, smp := range s.samples {
		params := map[string]seen{}
		for _, f := range smp {
			in := s.inputFor(f.input)
			var dt graph.DataType
			var shape []int
			switch kindOf(f.path) {
			case kindNpy:
				h, err := npy.ReadHeaderFile(f.path)
				if err != nil {
					return err
				}
				dt, shape = h.DType, h.Shape
			case kindPB:
				t, err := graph.ReadTensorFile(f.path) // no header to read alone: the whole message
				if err != nil {
					return err
				}
				dt, shape = t.DType, t.Shape
			case kindRaw:
				if s.opt.RawType == graph.Undefined || s.opt.RawShape == nil {
					return fmt.Errorf("%s: raw files need a declared shape and type", f.path)
				}
				st, err := os.Stat(f.path)
				if err != nil {
					return fmt.Errorf("%s: %v", f.path, unwrap(err))
				}
				if want := s.opt.RawType.ByteSize(int64(graph.Numel(s.opt.RawShape))); st.Size() != want {
					return fmt.Errorf("%s: %d bytes, but %s%v needs %d", f.path, st.Size(), s.opt.RawType.Short(), s.opt.RawShape, want)
				}
				dt, shape = s.opt.RawType, s.opt.RawShape
			case kindImage:
				var err error
				if shape, err = imageShape(f.path, in, s.opt.Image); err != nil {
					return err
				}
				dt = graph.Float
			default:
				return fmt.Errorf("%s: not a .npy, .pb, .bin/.raw, .png or .jpg file", f.path)
			}
			if err := fits(f.path, in, dt, shape); err != nil {
				return err
			}
			for i, p := range in.Params {
				if p == "" || i >= len(shape) {
					continue
				}
				if prev, ok := params[p]; ok && prev.size != shape[i] {
					return fmt.Errorf("%s: input %q has %s = %d (dimension %d), but %s gives input %q %s = %d: one sample's inputs must agree", f.path, in.Name, p, shape[i], i, prev.path, prev.input, p, prev.size)
				}
				params[p] = seen{shape[i], in.Name, f.path}
			}
		}
	}
	return nil
}

// fits checks a file's type and shape against an input.
func fits(path string, in Input, dt graph.DataType, shape []int) error {
	// A half-precision input also takes float32 data (images, or .npy, which
	// has no bfloat16): the executor rounds it to the input's precision.
	halfIn := in.DType == graph.Float16 || in.DType == graph.BFloat16
	if in.DType != graph.Undefined && dt != in.DType && !(halfIn && dt == graph.Float) {
		return fmt.Errorf("%s: input %q expects %s, the file holds %s (write it as %s)", path, in.Name, in.DType.Short(), dt.Short(), in.DType.Short())
	}
	if in.Dims == nil {
		return nil
	}
	if len(shape) != len(in.Dims) {
		return fmt.Errorf("%s: input %q expects rank %d %s, the file holds rank %d %v", path, in.Name, len(in.Dims), in.shapeString(), len(shape), shape)
	}
	for i := range shape {
		if in.Dims[i] >= 0 && in.Dims[i] != int64(shape[i]) {
			return fmt.Errorf("%s: input %q expects shape %s, the file holds %v", path, in.Name, in.shapeString(), shape)
		}
	}
	return nil
}

// shapeString shows the declared shape with symbolic dimensions by name.
func (in Input) shapeString() string {
	parts := make([]string, len(in.Dims))
	for i, d := range in.Dims {
		switch {
		case i < len(in.Params) && in.Params[i] != "":
			parts[i] = in.Params[i]
		case d < 0:
			parts[i] = "?"
		default:
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}
