package overrides

import "fmt"

// TensorType is one tensor's resolved quantization type: what a type-only
// AIMET/QNN entry says, the range being left to calibration.
type TensorType struct {
	// DType is uint8, int8, uint16, int16, uint4 or int4; "float" keeps the
	// tensor float; int32 marks a bias (kind weight).
	DType string
	// Symmetric, when nil, leaves the symmetry to the converter's default.
	Symmetric *bool
	// Kind, KindActivation or KindWeight, picks the file's section; the
	// converter checks it against the model.
	Kind string
}

// TypeOnlyFile builds an overrides file of per-tensor types. AIMET and QNN
// files have no node, op-type or default rules, so a caller holding rules
// (tune's raised nodes, say) resolves them to the tensors they set first:
// each node's output activations and its weight, with their kinds. The file
// writes as onnxq, aimet-1.0 or aimet-0.6 (File.Export) and reads back with the
// same types.
func TypeOnlyFile(types map[string]TensorType) (*File, error) {
	f := &File{Version: Version, Tensors: map[string]*Tensor{}}
	for _, name := range sortedNames(types) {
		tt := types[name]
		p := fmt.Sprintf("tensors[%q]", name)
		if tt.Kind != KindActivation && tt.Kind != KindWeight {
			return nil, fmt.Errorf("%s.kind: %q is not %q or %q (the AIMET section depends on it)", p, tt.Kind, KindActivation, KindWeight)
		}
		t := &Tensor{Kind: tt.Kind, DType: tt.DType, Symmetric: tt.Symmetric}
		if tt.DType == "float" {
			t.DType, t.Float = "", true
		}
		f.Tensors[name] = t
	}
	return f, f.Validate()
}

// QNNOverrides renders per-tensor types as a QNN quantization_overrides file in
// AIMET's 1.0.0 layout, each entry a name, dtype, bw and is_sym without scale
// or offset.
func QNNOverrides(types map[string]TensorType) ([]byte, error) {
	f, err := TypeOnlyFile(types)
	if err != nil {
		return nil, err
	}
	return f.Export(AIMET10)
}
