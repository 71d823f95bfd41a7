// Package overrides reads and writes the user's per-tensor quantization settings
// in onnxq's JSON format. This first version carries explicit encodings (what
// `onnxq convert --encodings-out` writes and `--overrides` reads back); the rest
// of the format (op-type and node rules, skips, other tools' dialects) extends it.
package overrides

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Version is the format version this build reads and writes.
const Version = 1

// File is an overrides file.
type File struct {
	Version int `json:"version"`
	// Defaults replace the command line's types for every tensor.
	Defaults *Rule `json:"defaults,omitempty"`
	// OpTypes and Nodes set the types of a node's output activations and its
	// weights; node keys are names or globs (path.Match syntax).
	OpTypes map[string]*Rule `json:"op_types,omitempty"`
	Nodes   map[string]*Rule `json:"nodes,omitempty"`
	// Tensors keys are names or globs.
	Tensors map[string]*Tensor `json:"tensors,omitempty"`
	Skip    *Skip              `json:"skip,omitempty"`
}

// Rule sets types for the tensors a node (or op type, or the whole model) owns.
// "float" as a type keeps those tensors in float.
type Rule struct {
	ActivationDType     string `json:"activation_dtype,omitempty"`
	WeightDType         string `json:"weight_dtype,omitempty"`
	ActivationSymmetric *bool  `json:"activation_symmetric,omitempty"`
}

// Skip leaves nodes entirely in float (their outputs and weights), and small
// weights unquantized, as MindSpore's converter thresholds do.
type Skip struct {
	Nodes   []string `json:"nodes,omitempty"`
	OpTypes []string `json:"op_types,omitempty"`
	// Weights with fewer elements, or fewer output channels, stay float.
	WeightsSmallerThan       int `json:"weights_smaller_than,omitempty"`
	WeightsFewerChannelsThan int `json:"weights_fewer_channels_than,omitempty"`
}

// Tensor holds the settings of one tensor.
type Tensor struct {
	// Encoding, when set, is used as is: no calibration for this tensor.
	Encoding *Encoding `json:"encoding,omitempty"`
	// Float keeps the tensor in float: no Q/DQ pair is inserted on it.
	Float bool `json:"float,omitempty"`
	// DType sets this tensor's type (calibrated as usual); "float" keeps it float.
	DType string `json:"dtype,omitempty"`
	// Symmetric sets an activation's symmetry.
	Symmetric *bool `json:"symmetric,omitempty"`
	// Kind, when set, says whether the name is an activation or a weight; the
	// converter checks it against the model, AIMET export sorts by it.
	Kind string `json:"kind,omitempty"`
}

// Tensor kinds.
const (
	KindActivation = "activation"
	KindWeight     = "weight"
)

// Encoding is an explicit quantization: q = saturate(round(x/scale) + zero_point).
type Encoding struct {
	DType     string    `json:"dtype"`
	Scale     []float32 `json:"scale"`
	ZeroPoint []int64   `json:"zero_point"`
	// Axis is the channel (or blocked) axis when there are several scales.
	Axis      *int  `json:"axis,omitempty"`
	BlockSize int   `json:"block_size,omitempty"`
	Shape     []int `json:"scale_shape,omitempty"`
	// AxisFromModel is set for dialects that do not state the axis (AIMET):
	// the converter takes the weight's channel or blocked axis from the model.
	AxisFromModel bool `json:"-"`
}

// Load reads and validates an overrides file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("overrides %s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and validates overrides JSON; unknown keys are errors.
func Parse(b []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	if f.Version != Version {
		return nil, fmt.Errorf("version: %d is not supported (this build reads version %d)", f.Version, Version)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks every entry; errors name the entry's JSON path.
func (f *File) Validate() error {
	if err := f.validateRules(); err != nil {
		return err
	}
	for _, name := range f.Names() {
		t := f.Tensors[name]
		path := fmt.Sprintf("tensors[%q]", name)
		if t == nil {
			return fmt.Errorf("%s: null", path)
		}
		if t.Float && t.Encoding != nil {
			return fmt.Errorf("%s: float and encoding conflict (a float tensor has no encoding)", path)
		}
		if t.Encoding != nil && strings.ContainsAny(name, "*?[") {
			return fmt.Errorf("%s.encoding: an explicit encoding names one tensor, not a glob", path)
		}
		if t.DType != "" && t.Encoding != nil {
			return fmt.Errorf("%s.dtype: conflicts with the explicit encoding (its dtype is the type)", path)
		}
		if t.DType != "" {
			if err := checkDType(t.DType, path+".dtype"); err != nil {
				return err
			}
		}
		if t.Kind != "" && t.Kind != KindActivation && t.Kind != KindWeight {
			return fmt.Errorf("%s.kind: %q is not \"activation\" or \"weight\"", path, t.Kind)
		}
		if t.Encoding != nil {
			if err := t.Encoding.validate(path + ".encoding"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *File) validateRules() error {
	check := func(r *Rule, path string) error {
		if r == nil {
			return fmt.Errorf("%s: null", path)
		}
		if r.ActivationDType != "" {
			if err := checkDType(r.ActivationDType, path+".activation_dtype"); err != nil {
				return err
			}
		}
		if r.WeightDType != "" {
			if err := checkDType(r.WeightDType, path+".weight_dtype"); err != nil {
				return err
			}
		}
		return nil
	}
	if f.Defaults != nil {
		if err := check(f.Defaults, "defaults"); err != nil {
			return err
		}
	}
	for _, k := range sortedNames(f.OpTypes) {
		if err := check(f.OpTypes[k], fmt.Sprintf("op_types[%q]", k)); err != nil {
			return err
		}
	}
	for _, k := range sortedNames(f.Nodes) {
		if err := check(f.Nodes[k], fmt.Sprintf("nodes[%q]", k)); err != nil {
			return err
		}
	}
	for _, k := range append(sortedNames(f.Nodes), sortedNames(f.Tensors)...) {
		if _, err := path.Match(k, ""); err != nil {
			return fmt.Errorf("%q: a malformed glob", k)
		}
	}
	if s := f.Skip; s != nil {
		if s.WeightsSmallerThan < 0 || s.WeightsFewerChannelsThan < 0 {
			return fmt.Errorf("skip: thresholds must not be negative")
		}
		for i, n := range s.Nodes {
			if _, err := path.Match(n, ""); err != nil {
				return fmt.Errorf("skip.nodes[%d]: %q is a malformed glob", i, n)
			}
		}
	}
	return nil
}

// checkDType accepts the quantized types onnxq writes, and "float".
func checkDType(s, path string) error {
	if s == "float" {
		return nil
	}
	dt, err := graph.ParseDataType(s)
	if _, ok := ranges[dt]; err != nil || !ok || dt == graph.Int32 {
		return fmt.Errorf("%s: %q is not supported (use uint8, int8, uint16, int16, uint4, int4 or float)", path, s)
	}
	return nil
}

// Names lists the tensors with settings, sorted.
func (f *File) Names() []string {
	out := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Type returns the element type of the encoding.
func (e *Encoding) Type() graph.DataType {
	dt, _ := graph.ParseDataType(e.DType)
	return dt
}

var ranges = map[graph.DataType][2]int64{
	graph.Uint8: {0, 255}, graph.Int8: {-128, 127}, graph.Uint16: {0, 65535}, graph.Int16: {-32768, 32767},
	graph.Uint4: {0, 15}, graph.Int4: {-8, 7}, graph.Int32: {math.MinInt32, math.MaxInt32},
}

func (e *Encoding) validate(path string) error {
	dt, err := graph.ParseDataType(e.DType)
	r, ok := ranges[dt]
	if err != nil || !ok {
		return fmt.Errorf("%s.dtype: %q is not supported (use uint8, int8, uint16, int16, uint4, int4 or int32)", path, e.DType)
	}
	if len(e.Scale) == 0 {
		return fmt.Errorf("%s.scale: at least one scale is needed", path)
	}
	if len(e.ZeroPoint) != len(e.Scale) {
		return fmt.Errorf("%s.zero_point: %d values for %d scales", path, len(e.ZeroPoint), len(e.Scale))
	}
	for i, s := range e.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("%s.scale[%d]: %v must be positive and finite", path, i, s)
		}
	}
	for i, z := range e.ZeroPoint {
		if z < r[0] || z > r[1] {
			return fmt.Errorf("%s.zero_point[%d]: %d is outside %s's range [%d, %d]", path, i, z, dt.Short(), r[0], r[1])
		}
	}
	if len(e.Scale) > 1 && e.Axis == nil && !e.AxisFromModel {
		return fmt.Errorf("%s.axis: several scales need the axis they run along", path)
	}
	if e.BlockSize < 0 {
		return fmt.Errorf("%s.block_size: %d must be positive", path, e.BlockSize)
	}
	if e.BlockSize > 0 && !e.AxisFromModel && graph.Numel(e.Shape) != len(e.Scale) {
		return fmt.Errorf("%s.scale_shape: %v does not hold %d scales", path, e.Shape, len(e.Scale))
	}
	return nil
}

// Write writes the file in onnxq's format.
func (f *File) Write(path string) error { return f.WriteAs(path, ONNXQ) }

// WriteAs writes the file in a dialect through a temp file and a rename, so a
// failed write leaves no partial file.
func (f *File) WriteAs(path string, d Dialect) error {
	b, err := f.Export(d)
	if err != nil {
		return err
	}
	dir := "."
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		dir = path[:i+1]
	}
	tmp, err := os.CreateTemp(dir, ".overrides-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
