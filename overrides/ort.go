package overrides

import (
	"fmt"
	"strings"
)

// ONNX Runtime's quantizer takes TensorQuantOverrides: a map from tensor name
// to a list of dictionaries. One dictionary sets the tensor (per-tensor
// values, or per-channel quantization when it has an axis); several are one
// per channel, the first carrying the axis and type. The keys: quant_type
// (QUInt8, QInt8, QUInt16, QInt16, QUInt4, QInt4), symmetric, reduce_range,
// rmin/rmax (range overrides), scale/zero_point (a fixed encoding), axis and
// convert (a second type for some consumers).

// ortEntry is one dictionary of an ORT tensor override.
type ortEntry struct {
	QuantType   string   `json:"quant_type,omitempty"`
	Symmetric   *bool    `json:"symmetric,omitempty"`
	ReduceRange *bool    `json:"reduce_range,omitempty"`
	RMin        *float64 `json:"rmin,omitempty"`
	RMax        *float64 `json:"rmax,omitempty"`
	Scale       *float64 `json:"scale,omitempty"`
	ZeroPoint   *int64   `json:"zero_point,omitempty"`
	Axis        *int     `json:"axis,omitempty"`
	Convert     any      `json:"convert,omitempty"`
}

var ortTypes = map[string]string{
	"QUInt8": "uint8", "QInt8": "int8", "QUInt16": "uint16", "QInt16": "int16", "QUInt4": "uint4", "QInt4": "int4",
}

func ortType(s string) (string, bool) {
	dt, ok := ortTypes[strings.TrimPrefix(s, "QuantType.")]
	return dt, ok
}

func parseORT(b []byte) (*File, error) {
	var m map[string][]ortEntry
	if err := strictDecode(b, &m); err != nil {
		return nil, err
	}
	f := &File{Version: Version, Tensors: map[string]*Tensor{}}
	for _, name := range sortedNames(m) {
		t, err := fromORT(m[name], fmt.Sprintf("[%q]", name))
		if err != nil {
			return nil, err
		}
		f.Tensors[name] = t
	}
	return f, f.Validate()
}

func fromORT(es []ortEntry, path string) (*Tensor, error) {
	if len(es) == 0 {
		return nil, fmt.Errorf("%s: an empty list", path)
	}
	t := &Tensor{}
	first := es[0]
	if first.QuantType != "" {
		dt, ok := ortType(first.QuantType)
		if !ok {
			return nil, fmt.Errorf("%s[0].quant_type: %q is not supported (QUInt8, QInt8, QUInt16, QInt16, QUInt4, QInt4)", path, first.QuantType)
		}
		t.DType = dt
	}
	t.Symmetric = first.Symmetric
	var scales []float32
	var zps []int64
	for i, e := range es {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case e.ReduceRange != nil && *e.ReduceRange:
			return nil, fmt.Errorf("%s.reduce_range: true is not supported (onnxq quantizes to the full range of the type; pin a narrower range with rmin/rmax)", p)
		case e.Convert != nil:
			return nil, fmt.Errorf("%s.convert: a second type for some consumers is not supported; set the tensor's type itself", p)
		case i > 0 && e.QuantType != "" && e.QuantType != first.QuantType:
			return nil, fmt.Errorf("%s.quant_type: %q differs from entry 0", p, e.QuantType)
		case i > 0 && (e.Axis != nil || e.Symmetric != nil):
			return nil, fmt.Errorf("%s: axis and symmetric belong in entry 0", p)
		case (e.Scale == nil) != (e.ZeroPoint == nil):
			return nil, fmt.Errorf("%s: scale and zero_point go together", p)
		case e.Scale != nil && (e.RMin != nil || e.RMax != nil || e.Symmetric != nil):
			return nil, fmt.Errorf("%s: a fixed scale and zero_point leave no room for rmin, rmax or symmetric", p)
		case len(es) > 1 && e.Scale == nil && (e.RMin == nil || e.RMax == nil):
			return nil, fmt.Errorf("%s: per-channel entries need scale and zero_point, or rmin and rmax", p)
		}
		if e.Scale != nil {
			scales, zps = append(scales, float32(*e.Scale)), append(zps, *e.ZeroPoint)
		}
		if e.RMin != nil {
			t.Min = append(t.Min, *e.RMin)
		}
		if e.RMax != nil {
			t.Max = append(t.Max, *e.RMax)
		}
	}
	if scales != nil && (t.Min != nil || t.Max != nil) {
		return nil, fmt.Errorf("%s: mixes scale/zero_point entries with rmin/rmax entries", path)
	}
	if len(es) > 1 && first.Axis == nil {
		return nil, fmt.Errorf("%s[0].axis: %d per-channel entries need the axis they run along", path, len(es))
	}
	if first.Axis != nil {
		t.Axis, t.Kind = first.Axis, KindWeight
		if len(es) == 1 {
			if scales != nil || t.Min != nil || t.Max != nil {
				return nil, fmt.Errorf("%s[0].axis: one scale or range with an axis; give one entry per channel", path)
			}
			t.Granularity = PerChannel
		}
	}
	if scales != nil {
		t.Encoding = &Encoding{DType: t.DType, Scale: scales, ZeroPoint: zps, Axis: first.Axis}
		t.DType = ""
	}
	return t, nil
}

// toORT writes a tensor's encoding or settings as ORT dictionaries.
func toORT(name string, t *Tensor) ([]ortEntry, error) {
	qt := func(dt string) (string, error) {
		for k, v := range ortTypes {
			if v == dt {
				return k, nil
			}
		}
		return "", fmt.Errorf("tensors[%q]: %q has no ORT quant_type", name, dt)
	}
	switch {
	case t.Float || t.DType == "float":
		return nil, fmt.Errorf("tensors[%q]: ORT overrides cannot keep a tensor in float (use nodes_to_exclude there)", name)
	case t.Encoding != nil:
		e := t.Encoding
		if e.BlockSize > 0 {
			return nil, fmt.Errorf("tensors[%q]: ORT overrides have no blocked encodings; export as aimet-1.0", name)
		}
		q, err := qt(e.DType)
		if err != nil {
			return nil, err
		}
		out := make([]ortEntry, len(e.Scale))
		for i := range e.Scale {
			s, z := float64(e.Scale[i]), e.ZeroPoint[i]
			out[i] = ortEntry{Scale: &s, ZeroPoint: &z}
		}
		out[0].QuantType = q
		if len(e.Scale) > 1 {
			out[0].Axis = e.Axis
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensors[%q]: only explicit encodings export to ORT overrides", name)
}
