package diagnose

import (
	"context"
	"fmt"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// Reference is a float model's outputs on every sample of a dataset, kept
// so that candidates can be compared against it without running it again:
// tune compares every candidate with the same float model on the same
// samples, and ran it for each (half of each evaluation's runs).
type Reference struct {
	names []string          // the model's outputs, in graph order
	outs  [][]*graph.Tensor // per sample, per output
}

// NewReference runs ref on every sample of src on threads and keeps its
// outputs; nil, and no error, when they would take more than maxBytes.
func NewReference(ctx context.Context, ref *graph.Model, src dataset.Source, threads int, maxBytes int64) (*Reference, error) {
	s, err := kernels.NewSession(ref, kernels.Options{Threads: threads})
	if err != nil {
		return nil, fmt.Errorf("first model: %w", err)
	}
	r := &Reference{}
	for _, v := range ref.Graph.Outputs {
		r.names = append(r.names, v.Name)
	}
	var bytes int64
	for i := 0; i < src.Len(); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		smp, err := src.Sample(i)
		if err != nil {
			return nil, err
		}
		out, err := s.Run(smp)
		if err != nil {
			return nil, fmt.Errorf("sample %d: first model: %w", i, err)
		}
		row := make([]*graph.Tensor, len(r.names))
		for k, name := range r.names {
			row[k] = out[name] // lent until the next run, then the caller's
			if row[k] != nil {
				bytes += row[k].ByteSize()
			}
		}
		if bytes > maxBytes {
			return nil, nil
		}
		r.outs = append(r.outs, row)
	}
	return r, nil
}

// fits reports why r cannot stand in for ref on src in a comparison, or "".
func (r *Reference) fits(ref *graph.Model, src dataset.Source, opt Options) string {
	switch {
	case opt.Layerwise || opt.Stats:
		return "a reference holds outputs only: not with Layerwise or Stats"
	case len(r.outs) != src.Len():
		return fmt.Sprintf("a reference of %d samples for a dataset of %d", len(r.outs), src.Len())
	case len(ref.Graph.Outputs) != len(r.names):
		return "the reference's outputs are not the first model's"
	}
	for i, v := range ref.Graph.Outputs {
		if v.Name != r.names[i] {
			return "the reference's outputs are not the first model's"
		}
	}
	return ""
}
