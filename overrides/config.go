package overrides

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/pelletier/go-toml/v2"
)

// Config is a convert run as a TOML file: every option of `onnxq convert`,
// plus the overrides, embedded as an [overrides] table (the JSON format's keys)
// or referenced by overrides_file. Command-line flags override the file.
type Config struct {
	Model         string        `toml:"model"`
	Output        string        `toml:"output"`
	Threads       int           `toml:"threads"`
	AllowMissing  bool          `toml:"allow_missing"`
	OverridesFile string        `toml:"overrides_file"`
	Calib         CalibConfig   `toml:"calib"`
	Observer      ObsConfig     `toml:"observer"`
	Quant         QuantConfig   `toml:"quantization"`
	Passes        PassConfig    `toml:"passes"`
	Report        OutConfig     `toml:"report"`
	Compare       CompareConfig `toml:"compare"`
	Tune          TuneConfig    `toml:"tune"`
	Rounding      RoundConfig   `toml:"rounding"`
	// ExternalDataChunk splits the output's external data into files of at
	// most this size (empty: one file).
	ExternalDataChunk ByteSize `toml:"external_data_chunk,omitempty"`
	// Overrides is the embedded [overrides] table, kept as decoded; see Embedded.
	Overrides map[string]any `toml:"overrides,omitempty"`

	lines keyLines // where each key of the file is, for errors
	path  string
}

// CalibConfig is the calibration data and how to read it.
type CalibConfig struct {
	Path     string      `toml:"path"`
	Size     int         `toml:"size"`
	RawShape []int       `toml:"raw_shape"`
	RawType  string      `toml:"raw_type"`
	Image    ImageConfig `toml:"image"`
}

// ImageConfig is the preprocessing of PNG/JPEG samples.
type ImageConfig struct {
	Resize    string    `toml:"resize"`
	ShortSide int       `toml:"short_side"`
	Size      string    `toml:"size"` // "HxW" when the model input has no static size
	Channels  string    `toml:"channels"`
	Layout    string    `toml:"layout"`
	Mean      []float64 `toml:"mean"`
	Std       []float64 `toml:"std"`
	Scale     float64   `toml:"scale"`
}

// ObsConfig is the activation observer.
type ObsConfig struct {
	Kind          string  `toml:"kind"`
	Percentile    float64 `toml:"percentile"`
	Bins          int     `toml:"bins"`
	MovingAverage float64 `toml:"moving_average"`
}

// QuantConfig are the global types.
type QuantConfig struct {
	ActivationType      string `toml:"activation_type"`
	ActivationSymmetric bool   `toml:"activation_symmetric"`
	WeightType          string `toml:"weight_type"`
	WeightGranularity   string `toml:"weight_granularity"`
	WeightBlockSize     int    `toml:"weight_block_size"`
	BiasType            string `toml:"bias_type"`
	WeightOnly          bool   `toml:"weight_only"`
	WeightFormat        string `toml:"weight_format"`  // onnx, matmulnbits, ort (with dynamic)
	AccuracyLevel       int    `toml:"accuracy_level"` // MatMulNBits accuracy_level
	Dynamic             bool   `toml:"dynamic"`
	BiasCorrection      bool   `toml:"bias_correction"`
	ReduceRange         bool   `toml:"reduce_range"`
	// Runtime is what the placement is made for: generic, ort or
	// ort-vnni (converter.Runtime).
	Runtime string `toml:"runtime"`
	// SmoothQuant is SmoothQuant's alpha for every MatMul/Gemm (0: off).
	// Unset (nil): 0.5 for MatMuls whose input is quantized to 8 bits with
	// calibration data, off elsewhere (converter.Options.SmoothQuantDefault).
	SmoothQuant *float64 `toml:"smooth_quant"`
	// DynamicGranularity is how dynamic activations are scaled: tensor or
	// token (one scale per row).
	DynamicGranularity string `toml:"dynamic_granularity"`
}

// RoundConfig is how weights' codes are chosen (the weight rounding engine).
type RoundConfig struct {
	Method           string  `toml:"method"` // nearest, gptq, awq, adaround, hqq
	Range            string  `toml:"range"`  // minmax, mse; unset: mse for gptq, minmax otherwise
	Bits             int     `toml:"bits"`   // narrow weight codes to this many bits (0: the type's)
	Sequential       bool    `toml:"sequential"`
	QuantizedTargets bool    `toml:"quantized_targets"` // with sequential: each layer's own output on the rounded inputs, not the float model's
	GPTQDamp         float64 `toml:"gptq_damp"`
	GPTQActOrder     bool    `toml:"gptq_act_order"`
	GPTQBlock        int     `toml:"gptq_block"`
	AdaRoundIter     int     `toml:"adaround_iters"`
	AdaRoundLR       float64 `toml:"adaround_lr"`
	HQQIters         int     `toml:"hqq_iters"`
	Seed             int64   `toml:"seed"`
}

// PassConfig chooses the float passes.
type PassConfig struct {
	List string `toml:"list"`
	CLE  bool   `toml:"cle"`
	// KeepInitializerInputs keeps graph inputs that repeat an initializer.
	KeepInitializerInputs bool `toml:"keep_initializer_inputs"`
}

// OutConfig names the side outputs.
type OutConfig struct {
	JSON      string `toml:"json"`
	Encodings string `toml:"encodings"`
}

// CompareConfig is how a conversion is measured against the float model:
// `convert`'s verdict after writing, and `onnxq compare`.
type CompareConfig struct {
	// Eval is data held apart from calibration to measure on (default: the
	// calibration samples).
	Eval string `toml:"eval"`
	// Skip turns convert's measurement off.
	Skip bool `toml:"skip"`
	// CosThreshold and SQNRThreshold (dB) mark a tensor or output as bad.
	CosThreshold  float64 `toml:"cos_threshold"`
	SQNRThreshold float64 `toml:"sqnr_threshold"`
	Layerwise     bool    `toml:"layerwise"`
	// Stats, Report and Plots name side outputs: tensor statistics CSV, the
	// report (.html, .json or .csv by extension), a folder of PNG figures.
	Stats  string `toml:"stats"`
	Report string `toml:"report"`
	Plots  string `toml:"plots"`
}

// TuneConfig is `onnxq tune`'s search for a mixed-precision overrides file.
type TuneConfig struct {
	// One target: a cosine, an SQNR (dB), or the user's metric from EvalCmd
	// reaching Target (HigherIsBetter false for error rates, perplexity).
	TargetCos     float64 `toml:"target_cos"`
	TargetSQNR    float64 `toml:"target_sqnr"`
	EvalCmd       string  `toml:"eval_cmd"`
	Target        float64 `toml:"target"`
	LowerIsBetter bool    `toml:"lower_is_better"`
	// Prefer is what a raised node gets: int16 activations, int8 weights
	// (under 4-bit defaults) or float.
	Prefer   string `toml:"prefer"`
	MaxRaise int    `toml:"max_raise"`
	// RankSamples is how many evaluation samples rank the nodes (0: 8).
	RankSamples int `toml:"rank_samples"`
	// OverridesOut receives the result; Format is its dialect.
	OverridesOut string `toml:"overrides_out"`
	Format       string `toml:"format"`
}

// DefaultConfig is what a run uses where neither the file nor a flag speaks.
func DefaultConfig() *Config {
	return &Config{
		Calib:    CalibConfig{RawType: "float32", Image: ImageConfig{Resize: "bilinear", Channels: "RGB", Layout: "NCHW", Scale: 1.0 / 255}},
		Observer: ObsConfig{Kind: "minmax", Percentile: 99.99, Bins: 2048},
		Quant:    QuantConfig{ActivationType: "uint8", WeightType: "int8", WeightGranularity: PerChannel, BiasType: "int32", WeightFormat: "onnx", DynamicGranularity: "tensor", Runtime: "generic"},
		Passes:   PassConfig{List: "default"},
		Compare:  CompareConfig{CosThreshold: 0.99, SQNRThreshold: 20},
		Tune:     TuneConfig{Prefer: "int16", Format: "onnxq"},
		Rounding: RoundConfig{Method: "nearest", GPTQDamp: 0.01, GPTQBlock: 128, AdaRoundIter: 10000, AdaRoundLR: 1e-3, HQQIters: 20},
	}
}

// LoadConfig reads a run config over the defaults.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(b, path)
	if err != nil {
		return nil, err
	}
	c.relativeTo(filepath.Dir(path))
	return c, nil
}

// relativeTo makes the file's relative paths relative to its folder, so a run
// config works from any working directory (flags stay relative to the
// working directory).
func (c *Config) relativeTo(dir string) {
	if dir == "." {
		return
	}
	for _, p := range []*string{&c.Model, &c.Output, &c.OverridesFile, &c.Calib.Path, &c.Report.JSON, &c.Report.Encodings,
		&c.Compare.Eval, &c.Compare.Stats, &c.Compare.Report, &c.Compare.Plots, &c.Tune.OverridesOut} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// ParseConfig decodes TOML over the defaults; unknown keys and wrong types are
// errors naming the key and its line. Semantic checks are Validate's.
func ParseConfig(b []byte, path string) (*Config, error) {
	if path == "" {
		path = "config"
	}
	c := DefaultConfig()
	c.path = path
	lines, err := indexKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	c.lines = lines
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		var sm *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &sm) && len(sm.Errors) > 0:
			e := sm.Errors[0]
			row, _ := e.Position()
			return nil, fmt.Errorf("%s:%d: %s: unknown key", path, row, strings.Join(e.Key(), "."))
		case errors.As(err, &de):
			row, _ := de.Position()
			key := strings.Join(de.Key(), ".")
			if key != "" {
				key += ": "
			}
			return nil, fmt.Errorf("%s:%d: %s%v", path, row, key, de)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return c, nil
}

// Embedded decodes the [overrides] table with the JSON format's rules; errors
// name the TOML key and line.
func (c *Config) Embedded() (*File, error) {
	if c.Overrides == nil {
		return nil, nil
	}
	if c.OverridesFile != "" {
		return nil, c.errorAt("overrides_file", "conflicts with the [overrides] table; give one")
	}
	m := c.Overrides
	if _, ok := m["version"]; !ok {
		m = map[string]any{"version": Version}
		for k, v := range c.Overrides {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, c.errorAt("overrides", err.Error())
	}
	f, err := Parse(b)
	if err != nil {
		msg := err.Error()
		key, rest, ok := strings.Cut(msg, ": ")
		if !ok {
			return nil, c.errorAt("overrides", msg)
		}
		return nil, c.errorAtSegs(append([]string{"overrides"}, tomlSegments(key)...), rest)
	}
	return f, nil
}

// ConfigError is a setting that cannot be used, by its TOML key.
type ConfigError struct {
	Key, Msg string
	File     string
	Line     int // 0: not from the file
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// errorAt names a key of the config's own tables (dotted, no quoting needed).
func (c *Config) errorAt(key, msg string) error { return c.errorAtSegs(strings.Split(key, "."), msg) }

func (c *Config) errorAtSegs(segs []string, msg string) error {
	return &ConfigError{Key: keyString(segs), Msg: msg, File: c.path, Line: c.lines.find(segs)}
}

// Validate checks the values; errors are *ConfigError naming the key.
func (c *Config) Validate() error {
	in := func(key, v string, ok ...string) error {
		for _, o := range ok {
			if v == o {
				return nil
			}
		}
		return c.errorAt(key, fmt.Sprintf("%q is not one of %s", v, strings.Join(ok, ", ")))
	}
	checks := []error{
		in("observer.kind", c.Observer.Kind, "minmax", "percentile", "entropy", "mse"),
		in("quantization.activation_type", c.Quant.ActivationType, "uint8", "int8", "uint16", "int16"),
		in("quantization.weight_type", c.Quant.WeightType, "int8", "uint8", "int16", "int4", "uint4"),
		in("quantization.weight_granularity", c.Quant.WeightGranularity, PerChannel, PerTensor, PerBlock),
		in("quantization.bias_type", c.Quant.BiasType, "int32", "float"),
		in("quantization.weight_format", c.Quant.WeightFormat, "onnx", "matmulnbits", "ort"),
		in("quantization.dynamic_granularity", c.Quant.DynamicGranularity, "tensor", "token"),
		in("quantization.runtime", c.Quant.Runtime, "generic", "ort", "ort-vnni"),
		in("calib.image.resize", c.Calib.Image.Resize, "nearest", "bilinear", "bicubic"),
		in("calib.image.channels", c.Calib.Image.Channels, "RGB", "BGR", "GRAY"),
		in("calib.image.layout", c.Calib.Image.Layout, "NCHW", "NHWC"),
		in("tune.prefer", c.Tune.Prefer, "int16", "int8", "float"),
		in("tune.format", c.Tune.Format, "onnxq", "aimet"),
		in("rounding.method", c.Rounding.Method, WeightRoundings...),
		in("rounding.range", c.Rounding.Range, append([]string{""}, WeightRanges...)...),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	o, q := c.Observer, c.Quant
	switch {
	case !(o.Percentile > 0 && o.Percentile <= 100):
		return c.errorAt("observer.percentile", fmt.Sprintf("%v is not in (0, 100]", o.Percentile))
	case o.Bins < 16 || o.Bins > 1<<16:
		return c.errorAt("observer.bins", fmt.Sprintf("%d is not in [16, 65536]", o.Bins))
	case o.MovingAverage < 0 || o.MovingAverage >= 1:
		return c.errorAt("observer.moving_average", fmt.Sprintf("%v is not in [0, 1)", o.MovingAverage))
	case q.AccuracyLevel < 0 || q.AccuracyLevel > 4:
		return c.errorAt("quantization.accuracy_level", fmt.Sprintf("%d is not in 0..4", q.AccuracyLevel))
	case q.SmoothQuant != nil && !(*q.SmoothQuant >= 0 && *q.SmoothQuant <= 1):
		return c.errorAt("quantization.smooth_quant", fmt.Sprintf("%v is not in [0, 1] (SmoothQuant's alpha; 0 is off)", *q.SmoothQuant))
	case q.WeightBlockSize < 0:
		return c.errorAt("quantization.weight_block_size", fmt.Sprintf("%d must be positive", q.WeightBlockSize))
	case q.WeightGranularity == PerBlock && q.WeightBlockSize == 0:
		return c.errorAt("quantization.weight_block_size", "per_block needs a block size")
	case q.WeightGranularity != PerBlock && q.WeightBlockSize > 0:
		return c.errorAt("quantization.weight_block_size", fmt.Sprintf("a block size goes with per_block, not %s", q.WeightGranularity))
	case !(c.Compare.CosThreshold >= -1 && c.Compare.CosThreshold <= 1):
		return c.errorAt("compare.cos_threshold", fmt.Sprintf("%v is not in [-1, 1]", c.Compare.CosThreshold))
	case math.IsNaN(c.Compare.SQNRThreshold) || math.IsInf(c.Compare.SQNRThreshold, 0):
		return c.errorAt("compare.sqnr_threshold", fmt.Sprintf("%v is not a number of dB", c.Compare.SQNRThreshold))
	case c.Tune.TargetCos != 0 && !(c.Tune.TargetCos > -1 && c.Tune.TargetCos <= 1):
		return c.errorAt("tune.target_cos", fmt.Sprintf("%v is not in (-1, 1]", c.Tune.TargetCos))
	case c.Tune.RankSamples < 0:
		return c.errorAt("tune.rank_samples", fmt.Sprintf("%d must not be negative", c.Tune.RankSamples))
	case c.Tune.MaxRaise < 0:
		return c.errorAt("tune.max_raise", fmt.Sprintf("%d must not be negative", c.Tune.MaxRaise))
	case c.Rounding.Bits != 0 && (c.Rounding.Bits < 2 || c.Rounding.Bits > 7):
		return c.errorAt("rounding.bits", fmt.Sprintf("%d is not in 2..7", c.Rounding.Bits))
	case !(c.Rounding.GPTQDamp > 0) || c.Rounding.GPTQDamp > 1:
		return c.errorAt("rounding.gptq_damp", fmt.Sprintf("%v is not in (0, 1]", c.Rounding.GPTQDamp))
	case c.Rounding.GPTQBlock < 1:
		return c.errorAt("rounding.gptq_block", fmt.Sprintf("%d must be positive", c.Rounding.GPTQBlock))
	case c.Rounding.AdaRoundIter < 1:
		return c.errorAt("rounding.adaround_iters", fmt.Sprintf("%d must be positive", c.Rounding.AdaRoundIter))
	case !(c.Rounding.AdaRoundLR > 0) || c.Rounding.AdaRoundLR > 1:
		return c.errorAt("rounding.adaround_lr", fmt.Sprintf("%v is not in (0, 1]", c.Rounding.AdaRoundLR))
	case c.Rounding.HQQIters < 1:
		return c.errorAt("rounding.hqq_iters", fmt.Sprintf("%d must be positive", c.Rounding.HQQIters))
	case c.Threads < 0:
		return c.errorAt("threads", fmt.Sprintf("%d must not be negative", c.Threads))
	case c.Calib.Size < 0:
		return c.errorAt("calib.size", fmt.Sprintf("%d must not be negative", c.Calib.Size))
	case c.Calib.Image.ShortSide < 0:
		return c.errorAt("calib.image.short_side", fmt.Sprintf("%d must not be negative", c.Calib.Image.ShortSide))
	case !(c.Calib.Image.Scale > 0):
		return c.errorAt("calib.image.scale", fmt.Sprintf("%v must be positive", c.Calib.Image.Scale))
	case o.Kind == "entropy" && strings.HasSuffix(q.ActivationType, "4"):
		return c.errorAt("observer.kind", "the entropy observer does not go with 4-bit activations")
	}
	if _, err := c.ExternalDataChunk.Bytes(); err != nil {
		return c.errorAt("external_data_chunk", err.Error())
	}
	if _, _, err := c.ImageSize(); err != nil {
		return c.errorAt("calib.image.size", err.Error())
	}
	if _, err := graph.ParseDataType(c.Calib.RawType); err != nil {
		return c.errorAt("calib.raw_type", err.Error())
	}
	for i, d := range c.Calib.RawShape {
		if d < 0 {
			return c.errorAt("calib.raw_shape", fmt.Sprintf("dimension %d is %d", i, d))
		}
	}
	if len(c.Calib.Image.Std) > 0 {
		for i, s := range c.Calib.Image.Std {
			if !(s > 0) {
				return c.errorAt("calib.image.std", fmt.Sprintf("std[%d] = %v must be positive", i, s))
			}
		}
	}
	return nil
}

// ImageSize parses calib.image.size ("HxW"; empty is 0, 0).
func (c *Config) ImageSize() (h, w int, err error) {
	s := c.Calib.Image.Size
	if s == "" {
		return 0, 0, nil
	}
	hs, ws, ok := strings.Cut(strings.ToLower(s), "x")
	h, err1 := strconv.Atoi(hs)
	w, err2 := strconv.Atoi(ws)
	if !ok || err1 != nil || err2 != nil || h <= 0 || w <= 0 {
		return 0, 0, fmt.Errorf("%q is not HxW", s)
	}
	return h, w, nil
}

// ByteSize is a size in a run config: bytes as an integer or a string, or
// a number with a unit ("2GB", "500MiB"). The decoder keeps the value's text
// (UnmarshalText) so Validate can name the key and line of a bad one.
type ByteSize string

// UnmarshalText keeps the TOML value's text, integer or string.
func (b *ByteSize) UnmarshalText(t []byte) error {
	*b = ByteSize(t)
	return nil
}

// Bytes is the size in bytes (0 when unset).
func (b ByteSize) Bytes() (int64, error) {
	if b == "" {
		return 0, nil
	}
	return ParseByteSize(string(b))
}

// ParseByteSize reads a size such as 1500000000, 512MB or 1.5GiB: decimal
// (KB, MB, GB) and binary (KiB, MiB, GiB) units, positive, below 2^62.
func ParseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mul := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mul = strings.TrimSpace(rest), u.mul
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) || v*mul > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with KB, MB, GB, KiB, MiB or GiB)", s)
	}
	return int64(v * mul), nil
}

// TOML prints the config as a file that reproduces the run.
func (c *Config) TOML() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tomlSegments turns a JSON path of the overrides format (tensors["a.b"].min[0])
// into TOML key segments (tensors, a.b, min), for line lookup.
func tomlSegments(p string) []string {
	var segs []string
	for p != "" {
		switch {
		case strings.HasPrefix(p, "."):
			p = p[1:]
		case strings.HasPrefix(p, `["`):
			s, err := strconv.QuotedPrefix(p[1:])
			if err != nil {
				return append(segs, p)
			}
			name, _ := strconv.Unquote(s)
			segs = append(segs, name)
			p = strings.TrimPrefix(p[1+len(s):], "]")
		case strings.HasPrefix(p, "["):
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return append(segs, p)
			}
			p = p[end+1:] // a list index: the list's key holds the line
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			segs = append(segs, p[:end])
			p = p[end:]
		}
	}
	return segs
}
