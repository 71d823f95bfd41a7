package graph

import (
	"sort"

	"github.com/onnxq/onnxq/graph/onnxpb"
)

// Summary is what `onnxq inspect` reports about a model.
type Summary struct {
	IRVersion       int64          `json:"ir_version"`
	Opsets          []Opset        `json:"opsets"`
	ProducerName    string         `json:"producer_name"`
	ProducerVersion string         `json:"producer_version"`
	GraphName       string         `json:"graph_name"`
	Inputs          []ValueSummary `json:"inputs"`
	Outputs         []ValueSummary `json:"outputs"`
	Nodes           int            `json:"nodes"`
	OpTypes         []OpCount      `json:"op_types"`
	// Parameters counts the elements of every constant tensor: initializers and
	// Constant nodes (where exporters such as paddle2onnx keep the weights).
	Parameters        int64            `json:"parameters"`
	ParameterBytes    int64            `json:"parameter_bytes"`
	ParametersByType  map[string]int64 `json:"parameters_by_type"`
	Initializers      int              `json:"initializers"`
	ConstantNodes     int              `json:"constant_nodes"`
	ExternalDataFiles []string         `json:"external_data_files"`
	Subgraphs         int              `json:"subgraphs"`
	Functions         int              `json:"functions"`
}

// ValueSummary is a graph input or output with its declared type.
type ValueSummary struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// OpCount is how many nodes use an op type ("domain:Op" outside the default domain).
type OpCount struct {
	Op    string `json:"op"`
	Count int    `json:"count"`
}

// Summarize collects the model's facts without reading external data.
func Summarize(m *Model) Summary {
	g := m.Graph
	s := Summary{
		IRVersion:         m.IRVersion(),
		Opsets:            m.Opsets(),
		ProducerName:      m.Proto.GetProducerName(),
		ProducerVersion:   m.Proto.GetProducerVersion(),
		GraphName:         g.Proto.GetName(),
		Nodes:             len(g.Nodes),
		ParametersByType:  map[string]int64{},
		ExternalDataFiles: m.ExternalFiles(),
		Functions:         len(m.Proto.Functions),
	}
	if s.ExternalDataFiles == nil {
		s.ExternalDataFiles = []string{}
	}
	for _, v := range g.Inputs {
		if v.Const == nil { // old models list initializers as inputs too
			s.Inputs = append(s.Inputs, ValueSummary{v.Name, TypeString(v.Info.GetType())})
		}
	}
	for _, v := range g.Outputs {
		s.Outputs = append(s.Outputs, ValueSummary{v.Name, TypeString(v.Info.GetType())})
	}
	counts := map[string]int{}
	for _, n := range g.Nodes {
		op := n.OpType
		if !IsStandardDomain(n.Domain) {
			op = n.Domain + ":" + op
		}
		counts[op]++
		for _, sg := range n.Subgraphs() {
			s.Subgraphs += 1 + countSubgraphs(sg)
		}
	}
	for op, c := range counts {
		s.OpTypes = append(s.OpTypes, OpCount{op, c})
	}
	sort.Slice(s.OpTypes, func(i, j int) bool {
		if s.OpTypes[i].Count != s.OpTypes[j].Count {
			return s.OpTypes[i].Count > s.OpTypes[j].Count
		}
		return s.OpTypes[i].Op < s.OpTypes[j].Op
	})
	add := func(dt DataType, n, bytes int64) {
		s.Parameters += n
		s.ParameterBytes += bytes
		s.ParametersByType[dt.Short()] += n
	}
	for _, v := range g.Initializers {
		s.Initializers++
		add(v.Const.DType, int64(v.Const.Len()), v.Const.DType.ByteSize(int64(v.Const.Len())))
	}
	for _, n := range g.Nodes {
		if n.OpType != "Constant" || !IsStandardDomain(n.Domain) {
			continue
		}
		s.ConstantNodes++
		for _, a := range n.Attrs {
			switch a.GetName() {
			case "value":
				if a.T != nil {
					dt := DataType(a.T.GetDataType())
					cnt := int64(1)
					for _, d := range a.T.Dims {
						cnt *= d
					}
					add(dt, cnt, dt.ByteSize(cnt))
				}
			case "value_float":
				add(Float, 1, 4)
			case "value_floats":
				add(Float, int64(len(a.Floats)), 4*int64(len(a.Floats)))
			case "value_int":
				add(Int64, 1, 8)
			case "value_ints":
				add(Int64, int64(len(a.Ints)), 8*int64(len(a.Ints)))
			}
		}
	}
	return s
}

func countSubgraphs(g *onnxpb.GraphProto) int {
	n := 0
	for _, node := range g.Node {
		for _, a := range node.Attribute {
			if a.G != nil {
				n += 1 + countSubgraphs(a.G)
			}
			for _, sg := range a.Graphs {
				n += 1 + countSubgraphs(sg)
			}
		}
	}
	return n
}
