package overrides

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Validate checks every entry; errors name the entry's JSON path.
func (f *File) Validate() error {
	if f.Defaults != nil {
		if err := f.Defaults.validate("defaults"); err != nil {
			return err
		}
	}
	for _, k := range sortedNames(f.OpTypes) {
		if err := f.OpTypes[k].validate(fmt.Sprintf("op_types[%q]", k)); err != nil {
			return err
		}
	}
	for _, k := range sortedNames(f.Nodes) {
		p := fmt.Sprintf("nodes[%q]", k)
		if err := checkGlob(k, p); err != nil {
			return err
		}
		if err := f.Nodes[k].validate(p); err != nil {
			return err
		}
	}
	for _, name := range f.Names() {
		p := fmt.Sprintf("tensors[%q]", name)
		if err := checkGlob(name, p); err != nil {
			return err
		}
		if err := f.Tensors[name].validate(name, p); err != nil {
			return err
		}
	}
	if s := f.Skip; s != nil {
		if s.WeightsSmallerThan < 0 {
			return fmt.Errorf("skip.weights_smaller_than: %d must not be negative", s.WeightsSmallerThan)
		}
		if s.WeightsFewerChannelsThan < 0 {
			return fmt.Errorf("skip.weights_fewer_channels_than: %d must not be negative", s.WeightsFewerChannelsThan)
		}
		for i, n := range s.Nodes {
			if err := checkGlob(n, fmt.Sprintf("skip.nodes[%d]", i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkGlob(k, p string) error {
	if _, err := path.Match(k, ""); err != nil {
		return fmt.Errorf("%s: %q is a malformed glob", p, k)
	}
	return nil
}

func (r *Rule) validate(p string) error {
	if r == nil {
		return fmt.Errorf("%s: null", p)
	}
	if r.ActivationDType != "" {
		if err := checkDType(r.ActivationDType, p+".activation_dtype"); err != nil {
			return err
		}
	}
	if r.WeightDType != "" {
		if err := checkDType(r.WeightDType, p+".weight_dtype"); err != nil {
			return err
		}
	}
	if err := r.Observer.validate(p+".observer", r.ActivationDType); err != nil {
		return err
	}
	if err := checkGranularity(r.WeightGranularity, r.WeightBlockSize, p+".weight_granularity", p+".weight_block_size"); err != nil {
		return err
	}
	if r.WeightRounding != "" && !slices.Contains(WeightRoundings, r.WeightRounding) {
		return fmt.Errorf("%s.weight_rounding: %q is not one of %s", p, r.WeightRounding, strings.Join(WeightRoundings, ", "))
	}
	if r.WeightRange != "" && !slices.Contains(WeightRanges, r.WeightRange) {
		return fmt.Errorf("%s.weight_range: %q is not one of %s", p, r.WeightRange, strings.Join(WeightRanges, ", "))
	}
	if err := checkSmoothQuant(r.SmoothQuant, p+".smooth_quant"); err != nil {
		return err
	}
	switch r.BiasDType {
	case "", "int32", "float":
	default:
		return fmt.Errorf("%s.bias_dtype: %q is not supported (int32, whose scale is input scale x weight scale so runtimes add it to their int32 accumulators, or float)", p, r.BiasDType)
	}
	return nil
}

func (o *Observer) validate(p, dtype string) error {
	if o == nil {
		return nil
	}
	switch o.Kind {
	case "", "minmax", "percentile", "entropy", "mse":
	default:
		return fmt.Errorf("%s.kind: %q is not minmax, percentile, entropy or mse", p, o.Kind)
	}
	if o.Percentile != 0 && !(o.Percentile > 0 && o.Percentile <= 100) {
		return fmt.Errorf("%s.percentile: %v is not in (0, 100]", p, o.Percentile)
	}
	if o.Bins != 0 && (o.Bins < 16 || o.Bins > 1<<16) {
		return fmt.Errorf("%s.bins: %d is not in [16, 65536]", p, o.Bins)
	}
	if o.MovingAverage < 0 || o.MovingAverage >= 1 {
		return fmt.Errorf("%s.moving_average: %v is not in [0, 1)", p, o.MovingAverage)
	}
	if dt, err := graph.ParseDataType(dtype); err == nil && dt.BitWidth() == 4 && o.Kind == "entropy" {
		return fmt.Errorf("%s.kind: the entropy observer does not go with 4-bit activations (its threshold search assumes at least 8 bits)", p)
	}
	return nil
}

func checkGranularity(g string, block int, gp, bp string) error {
	switch g {
	case "", PerChannel, PerTensor, PerBlock:
	default:
		return fmt.Errorf("%s: %q is not per_channel, per_tensor or per_block", gp, g)
	}
	if block < 0 {
		return fmt.Errorf("%s: %d must be positive", bp, block)
	}
	if block > 0 && g != PerBlock && g != "" {
		return fmt.Errorf("%s: a block size goes with per_block, not %s", bp, g)
	}
	return nil
}

func (t *Tensor) validate(name, p string) error {
	if t == nil {
		return fmt.Errorf("%s: null", p)
	}
	glob := strings.ContainsAny(name, "*?[")
	switch {
	case t.Float && t.Encoding != nil:
		return fmt.Errorf("%s: float and encoding conflict (a float tensor has no encoding)", p)
	case t.Encoding != nil && glob:
		return fmt.Errorf("%s.encoding: an explicit encoding names one tensor, not a glob", p)
	case t.DType != "" && t.Encoding != nil && t.Encoding.DType != "":
		return fmt.Errorf("%s.dtype: conflicts with the explicit encoding (its dtype is the type)", p)
	case (t.Min != nil || t.Max != nil) && t.Encoding != nil:
		return fmt.Errorf("%s.min: a range and an explicit encoding conflict (give one)", p)
	case (t.Min != nil || t.Max != nil) && t.Observer != nil:
		return fmt.Errorf("%s.observer: a pinned range is not calibrated, so an observer has no effect", p)
	case (t.Min != nil || t.Max != nil || t.Observer != nil || t.Symmetric != nil || t.Granularity != "") && (t.Float || t.DType == "float"):
		return fmt.Errorf("%s: a float tensor takes no quantization settings", p)
	}
	switch {
	case t.DType == "int32":
		// A bias's type (AIMET/QNN write biases as 32-bit param entries); onnxq
		// derives its scale, so nothing else may be set.
		if t.Kind != KindWeight {
			return fmt.Errorf("%s.dtype: int32 is for biases, which need \"kind\": \"weight\"", p)
		}
		if t.Symmetric != nil || t.Min != nil || t.Max != nil || t.Observer != nil || t.Granularity != "" || t.BlockSize != 0 || t.Axis != nil || t.Encoding != nil {
			return fmt.Errorf("%s: an int32 bias takes no other settings (its scale is input scale x weight scale)", p)
		}
	case t.DType != "":
		if err := checkDType(t.DType, p+".dtype"); err != nil {
			return err
		}
	}
	if t.Kind != "" && t.Kind != KindActivation && t.Kind != KindWeight {
		return fmt.Errorf("%s.kind: %q is not \"activation\" or \"weight\"", p, t.Kind)
	}
	// One side alone (ORT's rmin or rmax) replaces that side of the calibrated range.
	if (t.Min == nil) != (t.Max == nil) && len(t.Min)+len(t.Max) != 1 {
		return fmt.Errorf("%s: min or max alone is one value (it replaces that side of the calibrated range)", p)
	}
	if t.Min != nil && t.Max != nil && len(t.Min) != len(t.Max) {
		return fmt.Errorf("%s.max: %d values for %d minimums", p, len(t.Max), len(t.Min))
	}
	if (t.Min != nil && len(t.Min) == 0) || (t.Max != nil && len(t.Max) == 0) {
		return fmt.Errorf("%s.min: an empty list", p)
	}
	for _, v := range append(append([]float64(nil), t.Min...), t.Max...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s.min: %v is not finite", p, v)
		}
	}
	for i := range min(len(t.Min), len(t.Max)) {
		lo, hi := t.Min[i], t.Max[i]
		if lo > hi {
			return fmt.Errorf("%s.min[%d]: %v is above max %v", p, i, lo, hi)
		}
	}
	if len(t.Min) > 1 && (t.Kind == KindActivation || glob) {
		return fmt.Errorf("%s.min: %d ranges; per-channel ranges are for one weight", p, len(t.Min))
	}
	if t.Kind == KindWeight && t.Observer != nil {
		return fmt.Errorf("%s.observer: weights are not calibrated", p)
	}
	if t.Axis != nil && *t.Axis < 0 {
		return fmt.Errorf("%s.axis: %d must not be negative", p, *t.Axis)
	}
	if t.Kind == KindActivation && (t.Granularity != "" || t.BlockSize != 0 || t.Axis != nil) {
		return fmt.Errorf("%s.granularity: activations are quantized per tensor", p)
	}
	if err := t.Observer.validate(p+".observer", t.DType); err != nil {
		return err
	}
	if err := checkGranularity(t.Granularity, t.BlockSize, p+".granularity", p+".block_size"); err != nil {
		return err
	}
	if t.Encoding != nil {
		return t.Encoding.validate(p + ".encoding")
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

// validate checks an explicit encoding. An empty dtype (ORT files may leave
// quant_type out) takes the tensor's resolved type in the converter.
func (e *Encoding) validate(path string) error {
	if e.DType != "" {
		dt, err := graph.ParseDataType(e.DType)
		r, ok := ranges[dt]
		if err != nil || !ok {
			return fmt.Errorf("%s.dtype: %q is not supported (use uint8, int8, uint16, int16, uint4, int4 or int32)", path, e.DType)
		}
		for i, z := range e.ZeroPoint {
			if z < r[0] || z > r[1] {
				return fmt.Errorf("%s.zero_point[%d]: %d is outside %s's range [%d, %d]", path, i, z, dt.Short(), r[0], r[1])
			}
		}
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
	if e.Axis != nil && *e.Axis < 0 {
		return fmt.Errorf("%s.axis: %d must not be negative", path, *e.Axis)
	}
	if e.BlockSize < 0 {
		return fmt.Errorf("%s.block_size: %d must be positive", path, e.BlockSize)
	}
	if e.BlockSize > 0 && e.Shape != nil && graph.Numel(e.Shape) != len(e.Scale) {
		return fmt.Errorf("%s.scale_shape: %v does not hold %d scales", path, e.Shape, len(e.Scale))
	}
	return nil
}
