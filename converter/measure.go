package converter

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/passes"
)

// cloneModel is an independent copy of m (weights included).
func cloneModel(m *graph.Model) (*graph.Model, error) {
	b, err := graph.Marshal(m)
	if err != nil {
		return nil, err
	}
	return graph.Decode(b, m.Dir, graph.LoadOptions{})
}

// recordPassNames writes the passes' renames and by-design changes into the
// model's metadata, so `onnxq compare` against the original float model
// matches a folded BatchNormalization's output and skips equalized channels.
func recordPassNames(m *graph.Model, st *passes.State) error {
	set := func(key string, v any, empty bool) error {
		props := slices.DeleteFunc(m.Proto.MetadataProps, func(p *onnxpb.StringStringEntryProto) bool { return p.GetKey() == key })
		if !empty {
			b, err := json.Marshal(v) // maps marshal with sorted keys: deterministic
			if err != nil {
				return err
			}
			k, val := key, string(b)
			props = append(props, &onnxpb.StringStringEntryProto{Key: &k, Value: &val})
		}
		m.Proto.MetadataProps = props
		return nil
	}
	if err := set(diagnose.MetaRenamed, st.Renamed, len(st.Renamed) == 0); err != nil {
		return err
	}
	return set(diagnose.MetaChanged, slices.Sorted(maps.Keys(st.Changed)), len(st.Changed) == 0)
}

// measure runs the float and the written model on the data and records the
// output metrics, with a warning per output under a threshold.
func measure(ctx context.Context, floatModel, quant *graph.Model, data string, opt Options, rep *Report) error {
	src, err := dataset.Open(data, dataset.InputsOf(floatModel), opt.Dataset)
	if err != nil {
		return err
	}
	res, err := diagnose.Compare(ctx, floatModel, quant, src, diagnose.Options{Threads: opt.Threads, CosThreshold: opt.CosThreshold, SQNRThreshold: opt.SQNRThreshold})
	if err != nil {
		return err
	}
	rep.Measured, rep.MeasuredOn = res, data
	for _, o := range res.Outputs {
		if o.Bad(res.Thresholds.Cos, res.Thresholds.SQNR) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("output %q: cosine %.4f, SQNR %.1f dB against the float model, under the thresholds (%.4g, %.4g dB); find the cause with: onnxq compare %s %s --data %s --layerwise with this run's sample flags (or onnxq sensitivity, onnxq tune)",
				o.Name, o.Cosine, o.SQNR, res.Thresholds.Cos, res.Thresholds.SQNR, opt.Model, opt.Output, data))
		}
	}
	return nil
}
