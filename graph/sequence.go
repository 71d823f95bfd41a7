package graph

// Sequence is the value of an ONNX sequence: tensors of one element type
// whose shapes may differ. Executors carry it as a Tensor of DType
// SequenceOf (SequenceTensor), so that it moves through the same value
// slots as tensors; models never store one.
type Sequence struct {
	Elem  DataType
	Items []*Tensor
}

// SequenceOf is the DType of a Tensor that holds a Sequence; it is no ONNX
// element type.
const SequenceOf DataType = -1

// SequenceTensor wraps a sequence of tensors of element type elem (the items
// are not copied).
func SequenceTensor(elem DataType, items []*Tensor) *Tensor {
	return &Tensor{DType: SequenceOf, data: &Sequence{Elem: elem, Items: items}}
}

// Sequence returns the sequence t holds, or false when t is a tensor.
func (t *Tensor) Sequence() (*Sequence, bool) {
	if t == nil || t.DType != SequenceOf {
		return nil, false
	}
	s, ok := t.data.(*Sequence)
	return s, ok
}

// Optional is the value of an ONNX optional: a tensor or a sequence, or
// none (Value nil). Executors carry it as a Tensor of DType OptionalOf.
type Optional struct {
	Value *Tensor
}

// OptionalOf is the DType of a Tensor that holds an Optional.
const OptionalOf DataType = -2

// OptionalTensor wraps an optional value (nil for none; not copied).
func OptionalTensor(v *Tensor) *Tensor {
	return &Tensor{DType: OptionalOf, data: &Optional{Value: v}}
}

// Optional returns the optional t holds, or false when t is not one.
func (t *Tensor) Optional() (*Optional, bool) {
	if t == nil || t.DType != OptionalOf {
		return nil, false
	}
	o, ok := t.data.(*Optional)
	return o, ok
}
