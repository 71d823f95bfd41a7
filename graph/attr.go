package graph

import (
	"fmt"

	"github.com/onnxq/onnxq/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// AttrType is the type tag of an attribute.
type AttrType = onnxpb.AttributeProto_AttributeType

// Attr returns the attribute of that name, or nil.
func (n *Node) Attr(name string) *onnxpb.AttributeProto {
	for _, a := range n.Attrs {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// HasAttr reports whether the attribute is set.
func (n *Node) HasAttr(name string) bool { return n.Attr(name) != nil }

// attrOf returns the attribute when it exists with type want; an attribute of
// another type is an error, so a malformed model is not silently misread.
func (n *Node) attrOf(name string, want AttrType) (*onnxpb.AttributeProto, error) {
	a := n.Attr(name)
	if a == nil {
		return nil, nil
	}
	if a.GetType() != want {
		return nil, fmt.Errorf("node %s: attribute %q is %s, expected %s", n, name, a.GetType(), want)
	}
	return a, nil
}

// AttrInt returns an INT attribute, or def when it is absent.
func (n *Node) AttrInt(name string, def int64) (int64, error) {
	a, err := n.attrOf(name, onnxpb.AttributeProto_INT)
	if a == nil {
		return def, err
	}
	return a.GetI(), nil
}

// AttrFloat returns a FLOAT attribute, or def when it is absent.
func (n *Node) AttrFloat(name string, def float32) (float32, error) {
	a, err := n.attrOf(name, onnxpb.AttributeProto_FLOAT)
	if a == nil {
		return def, err
	}
	return a.GetF(), nil
}

// AttrString returns a STRING attribute, or def when it is absent.
func (n *Node) AttrString(name string, def string) (string, error) {
	a, err := n.attrOf(name, onnxpb.AttributeProto_STRING)
	if a == nil {
		return def, err
	}
	return string(a.GetS()), nil
}

// AttrInts returns an INTS attribute, or def when it is absent.
func (n *Node) AttrInts(name string, def []int64) ([]int64, error) {
	a, err := n.attrOf(name, onnxpb.AttributeProto_INTS)
	if a == nil {
		return def, err
	}
	return a.Ints, nil
}

// AttrFloats returns a FLOATS attribute, or def when it is absent.
func (n *Node) AttrFloats(name string, def []float32) ([]float32, error) {
	a, err := n.attrOf(name, onnxpb.AttributeProto_FLOATS)
	if a == nil {
		return def, err
	}
	return a.Floats, nil
}

// AttrStrings returns a STRINGS attribute as Go strings, or def when it is absent.
func (n *Node) AttrStrings(name string, def []string) ([]string, error) {
	a, err := n.attrOf(name, onnxpb.AttributeProto_STRINGS)
	if a == nil {
		return def, err
	}
	out := make([]string, len(a.Strings))
	for i, s := range a.Strings {
		out[i] = string(s)
	}
	return out, nil
}

// AttrTensor returns a TENSOR attribute decoded (nil when absent); external data
// is resolved against the model's folder.
func (n *Node) AttrTensor(name string, dir string) (*Tensor, error) {
	a, err := n.attrOf(name, onnxpb.AttributeProto_TENSOR)
	if a == nil || err != nil {
		return nil, err
	}
	t, err := TensorFromProto(a.T, dir, false)
	if err != nil {
		return nil, fmt.Errorf("node %s: attribute %q: %w", n, name, err)
	}
	return t, nil
}

// SetAttr adds or replaces an attribute.
func (n *Node) SetAttr(a *onnxpb.AttributeProto) {
	for i, old := range n.Attrs {
		if old.GetName() == a.GetName() {
			n.Attrs[i] = a
			return
		}
	}
	n.Attrs = append(n.Attrs, a)
}

// DelAttr removes an attribute if present.
func (n *Node) DelAttr(name string) {
	for i, a := range n.Attrs {
		if a.GetName() == name {
			n.Attrs = append(n.Attrs[:i], n.Attrs[i+1:]...)
			return
		}
	}
}

// AttrIntOf builds an INT attribute.
func AttrIntOf(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrFloatOf builds a FLOAT attribute.
func AttrFloatOf(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrStringOf builds a STRING attribute.
func AttrStringOf(name string, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// AttrIntsOf builds an INTS attribute.
func AttrIntsOf(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: append([]int64{}, v...)}
}

// AttrFloatsOf builds a FLOATS attribute.
func AttrFloatsOf(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: append([]float32{}, v...)}
}

// AttrTensorOf builds a TENSOR attribute.
func AttrTensorOf(name string, t *Tensor) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t.ToProto()}
}
