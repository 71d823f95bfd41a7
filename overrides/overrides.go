// Package overrides reads and writes the user's per-tensor quantization settings
// in onnxq's JSON format. This first version carries explicit encodings (what
// `onnxq convert --encodings-out` writes and `--overrides` reads back); the rest
// of the format (op-type and node rules, skips, other tools' dialects) extends it.
package overrides

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
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

// Rule sets how the tensors a node (or op type, or the whole model) owns are
// quantized: its output activations, its weight and its bias. "float" as a type
// keeps those tensors in float. Unset fields fall through to the next level.
type Rule struct {
	ActivationDType     string    `json:"activation_dtype,omitempty"`
	ActivationSymmetric *bool     `json:"activation_symmetric,omitempty"`
	Observer            *Observer `json:"observer,omitempty"`
	WeightDType         string    `json:"weight_dtype,omitempty"`
	WeightSymmetric     *bool     `json:"weight_symmetric,omitempty"`
	// WeightGranularity is per_channel, per_tensor or per_block (with
	// WeightBlockSize values per block along the reduction axis).
	WeightGranularity string `json:"weight_granularity,omitempty"`
	WeightBlockSize   int    `json:"weight_block_size,omitempty"`
	// BiasDType is int32 (scale = input scale x weight scale) or float.
	BiasDType string `json:"bias_dtype,omitempty"`
	// WeightRounding picks the weight's codes: nearest, gptq, awq,
	// adaround or hqq (see WeightRoundings). WeightRange is minmax or mse
	// (the clipping search on the layer's output error).
	WeightRounding string `json:"weight_rounding,omitempty"`
	WeightRange    string `json:"weight_range,omitempty"`
	// SmoothQuant is the migration strength alpha in [0, 1] for the MatMul/Gemm
	// layers the rule covers (0: no smoothing); see SmoothQuantOf.
	SmoothQuant *float64 `json:"smooth_quant,omitempty"`
}

// WeightRoundings are the weight_rounding names; WeightRanges the
// weight_range ones.
var (
	WeightRoundings = []string{"nearest", "gptq", "awq", "adaround", "hqq"}
	WeightRanges    = []string{"minmax", "mse"}
)

// Observer chooses how activation ranges are calibrated; unset fields fall
// through like the rest of a rule.
type Observer struct {
	Kind          string  `json:"kind,omitempty"` // minmax, percentile, entropy, mse
	Percentile    float64 `json:"percentile,omitempty"`
	Bins          int     `json:"bins,omitempty"`
	MovingAverage float64 `json:"moving_average,omitempty"` // minmax momentum in [0, 1)
}

// Granularities of weight quantization.
const (
	PerChannel = "per_channel"
	PerTensor  = "per_tensor"
	PerBlock   = "per_block"
)

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
	// Symmetric sets the tensor's symmetry.
	Symmetric *bool `json:"symmetric,omitempty"`
	// Min and Max pin the range instead of calibrating it (a ReLU6 output to
	// [0, 6]); a weight may give one pair per output channel.
	Min Values `json:"min,omitempty"`
	Max Values `json:"max,omitempty"`
	// Observer calibrates this activation.
	Observer *Observer `json:"observer,omitempty"`
	// Granularity and BlockSize quantize this weight (see Rule). Axis, when
	// given, is the output-channel axis the file expects; onnxq checks it
	// against the op (Conv 0, ConvTranspose 1, Gemm by transB, MatMul last).
	Granularity string `json:"granularity,omitempty"`
	BlockSize   int    `json:"block_size,omitempty"`
	Axis        *int   `json:"axis,omitempty"`
	// Kind, when set, says whether the name is an activation or a weight; the
	// converter checks it against the model, AIMET export sorts by it.
	Kind string `json:"kind,omitempty"`
}

// Values are one number or a list of numbers.
type Values []float64

// UnmarshalJSON accepts 1.5 and [1.5, 2].
func (v *Values) UnmarshalJSON(b []byte) error {
	var one float64
	if err := json.Unmarshal(b, &one); err == nil {
		*v = Values{one}
		return nil
	}
	var many []float64
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("a number or a list of numbers")
	}
	*v = many
	return nil
}

// MarshalJSON writes one value as a number.
func (v Values) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]float64(v))
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
	// Axis is the channel (or blocked) axis when there are several scales;
	// without it the converter takes the weight's output-channel axis (or, for
	// blocks, its reduction axis) from the model.
	Axis      *int  `json:"axis,omitempty"`
	BlockSize int   `json:"block_size,omitempty"`
	Shape     []int `json:"scale_shape,omitempty"`
	// AxisFromModel is set for dialects that never state the axis (AIMET), so
	// exports leave it out too.
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
	var f File
	if err := strictDecode(b, &f); err != nil {
		return nil, err
	}
	if f.Version != Version {
		return nil, fmt.Errorf("version: %d is not supported (this build reads version %d)", f.Version, Version)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
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

// Write writes the file in onnxq's format.
func (f *File) Write(path string) error { return f.WriteAs(path, ONNXQ) }

// WriteAs writes the file in a dialect through a temp file and a rename, so a
// failed write leaves no partial file.
func (f *File) WriteAs(path string, d Dialect) error {
	b, err := f.Export(d)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b)
}
