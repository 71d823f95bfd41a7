// Package converter is onnxq's pipeline: float passes, calibration on user data,
// encodings, QDQ insertion and the report.
package converter

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/rss"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/wround"
)

// Options configure a conversion.
type Options struct {
	Model, Output string
	// Calib is the calibration data (folder, list file, or one file).
	Calib   string
	Dataset dataset.Options
	// Observer computes activation ranges.
	Observer calib.Config
	// Passes run before calibration (default "default"); CLE adds cross-layer
	// equalization after them.
	Passes string
	CLE    bool
	// Activation and weight types. Defaults: uint8 asymmetric activations, int8
	// symmetric per-channel weights.
	ActType         graph.DataType
	ActSymmetric    bool
	WeightType      graph.DataType
	WeightPerTensor bool
	// WeightBlockSize > 0 quantizes MatMul and Gemm weights in blocks of this
	// many values along the reduction axis (opset 21); their biases stay float.
	WeightBlockSize int
	Threads         int
	// BiasCorrection corrects each quantized Conv/Gemm bias for its weight
	// quantization error, -(Q(W)-W)·E[x], with E[x] measured on the calibration
	// data (per-channel weights only).
	BiasCorrection bool
	// WeightOnly quantizes weights only: activations stay float (except those
	// the overrides give an explicit encoding or range), so no calibration data
	// is needed, and biases stay float (their int32 scale needs the input's).
	WeightOnly bool
	// WeightFormat is how quantized weights are written: "onnx" (default),
	// "matmulnbits" or, with Dynamic, "ort" (see weightonly.go).
	WeightFormat string
	// AccuracyLevel is MatMulNBits' accuracy_level (0: unset).
	AccuracyLevel int
	// Dynamic quantizes MatMul/Gemm weights to int8 and their inputs at run
	// time (see dynamic.go); no calibration data is needed.
	Dynamic bool
	// DynamicPerToken scales dynamic activations per row (token) instead of
	// per tensor: symmetric int8, one scale per row of the last axis.
	DynamicPerToken bool
	// BiasFloat keeps biases float where the overrides do not set bias_dtype.
	BiasFloat bool
	// KeepInitializerInputs keeps graph inputs that repeat an initializer (IR <
	// 4 exporters), so the model's inputs stay as they were; their float
	// values stay too, beside the quantized copies the layers read. By
	// default they become constants and unused ones are dropped.
	KeepInitializerInputs bool
	// AllowMissing turns overrides naming nodes or tensors the model lacks
	// into warnings.
	AllowMissing bool
	// Overrides carry explicit encodings: those tensors are not calibrated.
	Overrides *overrides.File
	// EncodingsOut, when set, receives the final encodings in the overrides
	// format; fed back as Overrides without calibration data, it reproduces the
	// same model byte for byte.
	EncodingsOut string
	// Progress, when set, is called after each calibration sample.
	Progress func(done, total int)

	// After writing, the float model (after the same passes) and the QDQ
	// model run on Eval (default: the calibration data) and the report
	// carries their output metrics; outputs under CosThreshold or
	// SQNRThreshold (defaults 0.99, 20 dB) are warnings. NoMeasure skips it.
	Eval                        string
	NoMeasure                   bool
	CosThreshold, SQNRThreshold float64
	// ReduceRange quantizes int8 weights to 7 bits of range, so ONNX
	// Runtime's x86 kernels without AVX-VNNI cannot saturate their int16
	// pair sums (its reduce_range).
	ReduceRange bool
	// Runtime is what the Q/DQ placement is made for (see Runtime);
	// RuntimeORT also implies ReduceRange.
	Runtime Runtime
	// WeightRounding chooses how weights' codes are picked where the
	// overrides' weight_rounding does not: "nearest" (default), "gptq",
	// "awq", "adaround" or "hqq" (see the wround package); WeightRange
	// "mse" searches each group's clipping on the layer's output error,
	// "minmax" keeps the weights' own range, "" is mse for gptq and minmax
	// for the others. Rounding holds the
	// algorithms' knobs (wround.DefaultOptions when zero); Sequential
	// collects each layer's inputs from the model with the earlier layers
	// already rounded. WeightBits (2..7) narrows weight codes to that many
	// bits inside the weight type (3-bit codes stored as int4).
	WeightRounding, WeightRange string
	Rounding                    wround.Options
	Sequential                  bool
	// With Sequential, each layer reconstructs the float model's output
	// from the rounded prefix's inputs, so it compensates the error of the
	// layers before it (wround's Layer.Retarget); QuantizedTargets makes
	// it reconstruct its own output on those inputs instead (closer to
	// float on no model measured: docs/llm.md).
	QuantizedTargets bool
	WeightBits       int
	// SmoothQuant, when above 0, is SmoothQuant's alpha for every
	// MatMul/Gemm with a constant weight (overrides rules may set it per
	// node): per-input-channel scales from the calibration data move
	// activation outliers into the weights before calibration (smooth.go).
	SmoothQuant float64
	// SmoothQuantDefault smooths every MatMul (not Gemm: the classifier
	// heads of CNNs stay as they were) whose input is quantized to 8 bits,
	// statically or dynamically, when calibration data is given and neither
	// SmoothQuant nor a rule says otherwise, where 1/s folds upstream, with
	// the strength (0.3-0.7, or none) that minimises an estimate of the
	// W8A8 output noise (smooth.go): per-tensor 8-bit activations are what
	// transformer outlier channels break (stories260K W8A8 +5.95% -> +4.10%
	// perplexity), and the rewrite is exact in float.
	SmoothQuantDefault bool
	// RangeCache, when set, supplies ranges calibrated by an earlier
	// conversion of the same model and data, and keeps the new ones.
	RangeCache *RangeCache
	// ExternalDataChunk > 0 writes the output's external data in files of at
	// most this many bytes (graph.SaveOptions.ChunkSize) instead of one, and
	// every initializer of 1 KiB or more goes there.
	ExternalDataChunk int64
}

// TensorReport is one quantized tensor in the report.
type TensorReport struct {
	Name     string            `json:"name"`
	Kind     string            `json:"kind"` // activation, weight, bias
	Encoding *passes.Encoding  `json:"encoding"`
	Observer string            `json:"observer,omitempty"`
	Range    *[2]float32       `json:"range,omitempty"`
	SharedOf string            `json:"shares_encoding_of,omitempty"`
	Override string            `json:"override,omitempty"` // the overrides entry that set its type
	Adjusted string            `json:"adjusted,omitempty"` // what the converter changed after computing it
	Rounding *RoundingReport   `json:"rounding,omitempty"` // weights: what the rounding engine did
	Extra    map[string]string `json:"-"`
}

// FloatTensor is a tensor the plan would quantize that stays float, with the reason.
type FloatTensor struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// FloatNode is a node left in float, with the reason.
type FloatNode struct {
	Node   string `json:"node"`
	OpType string `json:"op_type"`
	Reason string `json:"reason"`
}

// Report is what a conversion did.
type Report struct {
	Model        string           `json:"model"`
	Output       string           `json:"output"`
	Samples      int              `json:"calibration_samples"`
	Passes       []*passes.Change `json:"passes"`
	Tensors      []*TensorReport  `json:"tensors"`
	FloatNodes   []FloatNode      `json:"float_nodes"`
	FloatTensors []FloatTensor    `json:"float_tensors,omitempty"`
	Warnings     []string         `json:"warnings,omitempty"`
	WeightOnly   bool             `json:"weight_only,omitempty"`
	// Streamed: the weights were quantized one at a time from external data
	// (stream.go), with the passes that fold weights skipped.
	Streamed     bool               `json:"streamed,omitempty"`
	Dynamic      bool               `json:"dynamic,omitempty"`
	PhaseSeconds map[string]float64 `json:"phase_seconds"`
	PeakRSSBytes int64              `json:"peak_rss_bytes"`
	// CalibrationPeakRSSBytes is the peak during calibration alone (Linux).
	CalibrationPeakRSSBytes int64 `json:"calibration_peak_rss_bytes,omitempty"`
	// Measured compares the written model's outputs with the float model's
	// on MeasuredOn; nil when there was no data to run.
	Measured *diagnose.Result `json:"measured,omitempty"`
	// U8S8 is set when a uint8 activation feeds a full-range int8 weight:
	// the pairing ONNX Runtime's x86 kernels without AVX-VNNI saturate.
	U8S8       bool   `json:"u8s8_full_range,omitempty"`
	MeasuredOn string `json:"measured_on,omitempty"`
}

// Convert runs the whole pipeline and writes opt.Output.
func Convert(ctx context.Context, opt Options) (*Report, error) {
	if opt.Output == "" {
		return nil, fmt.Errorf("no output path given")
	}
	measureOn := cmp.Or(opt.Eval, opt.Calib)
	q, err := Quantize(ctx, opt, !opt.NoMeasure && measureOn != "")
	if err != nil {
		return nil, err
	}
	rep, m := q.Report, q.Model
	phase := func(name string, start time.Time) { rep.PhaseSeconds[name] = time.Since(start).Seconds() }
	start := time.Now()
	save := graph.SaveOptions{ChunkSize: opt.ExternalDataChunk, Data: q.data}
	if opt.ExternalDataChunk > 0 {
		save.ExternalThreshold = spillBytes
	}
	if err := graph.SaveWith(m, opt.Output, save); err != nil {
		return nil, err
	}
	phase("save", start)
	if q.Float != nil {
		start = time.Now()
		if err := measure(ctx, q.Float, m, measureOn, opt, rep); err != nil {
			return nil, fmt.Errorf("measuring the written model against the float model: %w", err)
		}
		phase("measure", start)
	}
	if opt.EncodingsOut != "" {
		if err := encodingsFile(q.plan, q.Plan).Write(opt.EncodingsOut); err != nil {
			return nil, fmt.Errorf("writing encodings: %w", err)
		}
	}
	rep.PeakRSSBytes = max(rep.PeakRSSBytes, rss.Peak())
	return rep, nil
}

// Quantized is a conversion before it is written.
type Quantized struct {
	// Model is the QDQ model.
	Model *graph.Model
	// Float is the float model after the same passes, the reference the QDQ
	// model is measured against (nil unless asked for).
	Float *graph.Model
	// Plan holds every encoding InsertQDQ applied.
	Plan   *passes.QDQPlan
	Report *Report
	plan   *plan
	// data holds the weights a streaming conversion wrote already; Save
	// completes it.
	data *graph.DataWriter
}

// SharesEncoding reports whether the tensor takes another tensor's encoding
// (a movement op's output): a type set on it would have no effect.
func (q *Quantized) SharesEncoding(name string) bool {
	_, ok := q.plan.shared[name]
	return ok
}

// Quantize runs the pipeline up to the QDQ model in memory: float passes,
// calibration, encodings, QDQ insertion. withFloat keeps a copy of the float
// model after the passes.
func Quantize(ctx context.Context, opt Options, withFloat bool) (q *Quantized, err error) {
	if opt.ActType == graph.Undefined {
		opt.ActType = graph.Uint8
	}
	if opt.WeightType == graph.Undefined {
		opt.WeightType = graph.Int8
	}
	if opt.Passes == "" {
		opt.Passes = "default"
	}
	if opt.Runtime == RuntimeORT {
		opt.ReduceRange = true
	}
	if err := prepareDynamic(&opt); err != nil {
		return nil, err
	}
	rep := &Report{Model: opt.Model, Output: opt.Output, PhaseSeconds: map[string]float64{}}
	phase := func(name string, start time.Time) { rep.PhaseSeconds[name] = time.Since(start).Seconds() }

	start := time.Now()
	// Weight-only conversion needs no run of the float model: weights stay on
	// disk until quantized, and models with external data stream (stream.go).
	lazy := opt.WeightOnly && !opt.Dynamic && !withFloat
	m, err := graph.LoadWith(opt.Model, graph.LoadOptions{LazyExternal: lazy})
	if err != nil {
		return nil, err
	}
	phase("load", start)
	var stream *streamer
	// unstream falls back to building the quantized model in memory (weights
	// are still read lazily).
	unstream := func(why string) {
		if why != "" {
			rep.Warnings = append(rep.Warnings, why)
		}
		stream.data.Abort()
		debug.SetGCPercent(stream.gcPercent)
		stream, rep.Streamed = nil, false
	}
	if lazy && opt.Output != "" && len(m.ExternalFiles()) > 0 && len(kernels.HalfTypes(m)) == 0 {
		data, err := graph.NewDataWriter(opt.Output, graph.SaveOptions{ChunkSize: opt.ExternalDataChunk})
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				data.Abort()
			}
		}()
		stream = newStreamer(data, opt)
		rep.Streamed = true
		// Collect often: encoding a weight leaves garbage of about its own
		// size, and the default pacing would let the heap reach twice the
		// largest weight plus the encodings.
		stream.gcPercent = debug.SetGCPercent(streamGCPercent)
		defer func() {
			if stream != nil {
				debug.SetGCPercent(stream.gcPercent)
			}
		}()
	}

	// Users name tensors of the model they have; passes rename folded weights
	// (conv_w -> conv_w_bnfold). Keep the names and each compute node's weight.
	pre := names{tensors: map[string]bool{}, nodes: map[string]bool{}, weight: map[string]string{}}
	for _, v := range m.Graph.Values() {
		pre.tensors[v.Name] = true
	}
	for _, n := range m.Graph.Nodes {
		pre.nodes[n.Name] = true
		if _, ok := weightOps[n.OpType]; ok && n.Input(1) != nil {
			pre.weight[n.Name] = n.Input(1).Name
		}
	}

	// Float passes; per-channel Q/DQ needs opset 13.
	start = time.Now()
	list := opt.Passes
	if opt.CLE {
		list += ",cle"
	}
	// Per-channel Q/DQ needs opset 13; 16-bit and 4-bit types need 21.
	need := int64(13)
	for _, dt := range []graph.DataType{opt.ActType, opt.WeightType} {
		if dt.BitWidth() == 16 || dt.BitWidth() == 4 {
			need = 21
		}
	}
	for _, s := range opt.Overrides.DTypes() {
		if dt, err := graph.ParseDataType(s); err == nil && (dt.BitWidth() == 16 || dt.BitWidth() == 4) {
			need = 21
		}
	}
	if opt.WeightBlockSize > 0 {
		need = 21
	}
	if len(kernels.HalfTypes(m)) > 0 {
		need = max(need, 19) // float16/bfloat16 Q/DQ scales
	}
	if stream != nil {
		if p := weightRewritingPass(list); p != "" {
			// Asked for by name: run it, on a model built in memory.
			unstream(fmt.Sprintf("not streamed: pass %s reads and rewrites weights in memory", p))
		} else if opt.Passes == "default" {
			list = streamPassList(opt)
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("streaming weight-only conversion (external data): passes %s skipped (they would read every weight into memory)", strings.Join(streamSkippedPasses, ", ")))
		}
	}
	if m.OpsetVersion("") < need {
		list += fmt.Sprintf(",upgrade-opset:%d", need)
	}
	ps, err := passes.Parse(list, passes.Options{KeepInitializerInputs: opt.KeepInitializerInputs})
	if err != nil {
		return nil, err
	}
	pst := passes.NewState()
	prep, err := (&passes.Pipeline{Passes: ps, State: pst}).Run(m)
	if err != nil {
		return nil, err
	}
	rep.Passes = prep.Changes
	phase("passes", start)
	start = time.Now()
	sq, sqSamples, err := smoothQuant(ctx, m, opt, pst)
	if err != nil {
		return nil, err
	}
	if sq != nil {
		rep.Passes = append(rep.Passes, sq)
		rep.Samples = sqSamples
		phase("smooth-quant", start)
		if stream != nil {
			unstream("not streamed: smooth quant rewrites weights in memory")
		}
	} else if opt.SmoothQuant > 0 {
		rep.Warnings = append(rep.Warnings, "smooth quant: no MatMul or Gemm reads its input through a constant float weight; nothing smoothed")
	}

	pl := makePlan(m, opt.Runtime)
	rep.FloatNodes = pl.floatOps
	if pl.note != "" {
		rep.Warnings = append(rep.Warnings, pl.note)
	}
	rep.FloatTensors = append(rep.FloatTensors, pl.floatTensors...)

	// Explicit encodings first: those tensors need no calibration.
	alias := pre.aliases(m.Graph)
	if err := checkNames(m.Graph, pre, opt.Overrides, opt.AllowMissing, rep); err != nil {
		return nil, err
	}
	if err := checkWeightRules(m.Graph, opt.Overrides, opt.WeightFormat); err != nil {
		return nil, err
	}
	explicit, keepFloat, err := explicitEncodings(m.Graph, pl, opt, alias)
	if err != nil {
		return nil, err
	}
	st, err := applyRules(m.Graph, pl, opt, explicit, keepFloat, alias, rep)
	if err != nil {
		return nil, err
	}
	untypedTables(pl, st, rep)
	if err := checkBlockSizes(m.Graph, pl, st, opt, rep); err != nil {
		return nil, err
	}
	pl.keepFloat(keepFloat, rep)
	// Pinned ranges need no calibration either.
	pinned := map[string]*passes.Encoding{}
	var toObserve []string
	for _, name := range pl.observe {
		if _, ok := explicit[name]; ok {
			continue
		}
		if c := st.act[name]; c.Min != nil && c.Max != nil {
			dt, sym := st.actType(name, opt)
			enc, err := passes.RangeEncoding([]float32{float32(c.Min[0])}, []float32{float32(c.Max[0])}, 0, dt, sym)
			if err != nil {
				return nil, fmt.Errorf("overrides: %s: tensor %q: %v", c.Source(), name, err)
			}
			pinned[name] = enc
			continue
		}
		toObserve = append(toObserve, name)
	}
	if opt.WeightOnly {
		kept := pl.observe[:0]
		for _, name := range pl.observe {
			if _, ok := explicit[name]; ok || pinned[name] != nil {
				kept = append(kept, name)
			}
		}
		pl.observe, toObserve = kept, nil
		rep.WeightOnly = true
	}
	if stream != nil && len(pl.observe) > 0 {
		// Explicit activation encodings bring biases and an order the
		// per-weight loop does not follow: every weight is still read lazily,
		// but the quantized model is built in memory.
		unstream("")
	}
	if stream != nil && picksCodes(opt, st, pl) {
		unstream("not streamed: weight rounding other than nearest works on whole layers in memory")
	}
	// Weights do not depend on the data: their encodings come first, and bias
	// correction measures against exactly these.
	qp := &passes.QDQPlan{Activations: map[string]*passes.Encoding{}, Weights: map[string]*passes.Encoding{}, Biases: map[string]passes.BiasPlan{}}
	var weightReports []*TensorReport
	start = time.Now()
	for _, name := range sortedKeys(pl.weights) {
		tr := &TensorReport{Name: name, Kind: "weight", Override: st.weight[name].Source()}
		enc, ok := explicit[name]
		if ok {
			tr.Observer = "overrides"
		} else if enc, err = weightEncodingFor(m.Graph, pl, st, opt, name); err != nil {
			return nil, err
		}
		tr.Encoding = enc
		qp.Weights[name] = enc
		weightReports = append(weightReports, tr)
		if stream != nil {
			if err := ctx.Err(); err != nil { // the data writer's files go with the error
				return nil, err
			}
			if err := stream.weight(m, name, enc); err != nil {
				return nil, err
			}
		}
	}
	phase("weights", start)
	// Data-driven weight rounding: new codes (and grids) before bias
	// correction, which corrects for these codes' error.
	start = time.Now()
	rounded, inserted, err := roundWeights(ctx, m, pl, st, opt, qp.Weights, weightReports, rep, pst)
	if err != nil {
		return nil, err
	}
	if !opt.WeightOnly {
		// AWQ's Mul by 1/s: the layers now read its output.
		pl.observe = append(pl.observe, inserted...)
		toObserve = append(toObserve, inserted...)
	}
	if len(rounded) > 0 {
		phase("weight rounding", start)
	}

	// Calibration, with its own peak RSS where the kernel can reset the mark:
	// what the passes left for the collector is returned to the system first,
	// or the mark would start at their garbage rather than at what
	// calibration holds.
	peakBefore := rss.Peak()
	debug.FreeOSMemory()
	ownPeak := rss.ResetPeak()
	start = time.Now()
	ranges := map[string][2]float32{}
	if opt.Calib == "" {
		if len(toObserve) > 0 {
			shown := strings.Join(toObserve[:min(3, len(toObserve))], ", ")
			if len(toObserve) > 3 {
				shown += ", ..."
			}
			return nil, fmt.Errorf("no calibration data given (--calib), and %d tensors have no explicit encoding (%s): onnxq does not invent data; give samples, encodings through --overrides, or quantize weights only (--weight-only)", len(toObserve), shown)
		}
		if opt.BiasCorrection {
			return nil, fmt.Errorf("bias correction needs calibration data (--calib)")
		}
	} else if len(toObserve) == 0 && !opt.BiasCorrection && sq == nil {
		if rep.Samples == 0 {
			rep.Warnings = append(rep.Warnings, "calibration data not used: no tensor needs a calibrated range")
		}
	} else if err := runCalibration(ctx, m, opt, pl, st, qp.Weights, rounded, toObserve, rep, ranges, floatState(m.Graph, sq, inserted)); err != nil {
		return nil, err
	}
	phase("calibration", start)
	if ownPeak {
		rep.CalibrationPeakRSSBytes = rss.Peak()
	}
	// The float reference keeps the float weights (AWQ's scaled ones).
	floatWeights := map[string][]float32{}
	for _, name := range sortedKeys(rounded) {
		w := m.Graph.Value(name).Const.Float32s()
		if withFloat {
			floatWeights[name] = slices.Clone(w)
		}
		copy(w, rounded[name])
	}
	// Encodings and QDQ insertion.
	start = time.Now()
	for _, name := range pl.observe {
		if enc, ok := explicit[name]; ok {
			qp.Activations[name] = enc
			rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "activation", Encoding: enc, Observer: "overrides"})
			continue
		}
		if enc, ok := pinned[name]; ok {
			qp.Activations[name] = enc
			r := [2]float32{float32(st.act[name].Min[0]), float32(st.act[name].Max[0])}
			rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "activation", Encoding: enc, Observer: "pinned range", Range: &r, Override: st.source(name)})
			continue
		}
		r := withinOutputBounds(m.Graph.Value(name), ranges[name])
		if c := st.act[name]; c.Min != nil { // one side pinned, the other calibrated
			r[0] = float32(c.Min[0])
		} else if c.Max != nil {
			r[1] = float32(c.Max[0])
		}
		if r[0] > r[1] {
			return nil, fmt.Errorf("overrides: %s: tensor %q: the pinned side leaves the range [%v, %v] empty", st.source(name), name, r[0], r[1])
		}
		if why := rangeProblem(r[0], r[1]); why != "" {
			rep.FloatTensors = append(rep.FloatTensors, FloatTensor{Name: name, Reason: why})
			continue
		}
		dt, sym := st.actType(name, opt)
		enc, err := passes.ComputeEncoding(r[0], r[1], dt, sym)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		if why := scaleProblem(enc, r[0], r[1]); why != "" {
			rep.FloatTensors = append(rep.FloatTensors, FloatTensor{Name: name, Reason: why})
			continue
		}
		qp.Activations[name] = enc
		rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "activation", Encoding: enc, Observer: observerName(st.observer(name, opt)), Range: &r, Override: st.source(name)})
	}
	for _, name := range sortedKeys(pl.shared) {
		root := rootOf(pl.shared, name)
		enc, ok := qp.Activations[root]
		if !ok {
			continue
		}
		qp.Activations[name] = enc
		rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "activation", Encoding: enc, SharedOf: root})
	}
	rep.Tensors = append(rep.Tensors, weightReports...)
	rep.Warnings = append(rep.Warnings, clipWindowWarnings(m.Graph, qp.Activations)...)
	fitted := map[string]int{} // weight -> channels whose scale FitBias raised
	for _, name := range sortedKeys(pl.biases) {
		ref := pl.biases[name]
		in, w := qp.Activations[ref[0]], qp.Weights[ref[1]]
		if in == nil || w == nil || w.BlockSize > 0 {
			continue // blocked weights have no per-channel scale for an int32 bias
		}
		if c := st.bias[name]; c.DType == "float" || (c.DType == "" && opt.BiasFloat) {
			reason := "overrides: " + c.Source()
			if c.DType == "" {
				reason = "bias type float (command line or run config)"
			}
			rep.FloatTensors = append(rep.FloatTensors, FloatTensor{Name: name, Reason: reason})
			continue
		}
		raised, err := passes.FitBias(m.Graph.Value(name).Const, in, w)
		if err != nil {
			return nil, fmt.Errorf("bias %q: %v", name, err)
		}
		if raised > 0 {
			fitted[ref[1]] += raised
		}
		qp.Biases[name] = passes.BiasPlan{Input: in, Weight: w}
		rep.Tensors = append(rep.Tensors, &TensorReport{Name: name, Kind: "bias", Override: st.bias[name].Source()})
	}
	for _, tr := range weightReports {
		if n := fitted[tr.Name]; n > 0 {
			tr.Adjusted = fmt.Sprintf("scale raised on %d channel(s) so the int32 bias fits", n)
			if tr.Observer == "overrides" {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("weight %q: the explicit encoding's scale was raised on %d channel(s) so the int32 bias fits", tr.Name, n))
			}
		}
	}
	if len(fitted) > 0 {
		total := 0
		for _, n := range fitted {
			total += n
		}
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d weight channel(s) in %d weight(s) had their scale raised so their int32 bias fits (near-dead channels with a large bias; see \"adjusted\" in the report)", total, len(fitted)))
	}
	// The float model after the passes is the reference the result is
	// measured against.
	var floatModel *graph.Model
	if withFloat {
		if floatModel, err = cloneModel(m); err != nil {
			return nil, err
		}
		for name, w := range floatWeights {
			copy(floatModel.Graph.Value(name).Const.Float32s(), w)
		}
	}
	if len(qp.Weights)+len(qp.Activations) == 0 {
		return nil, nothingQuantized(m, opt, rep)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Conv" && n.OpType != "Gemm" && n.OpType != "MatMul" || n.Input(1) == nil {
			continue
		}
		a, w := qp.Activations[n.Input(0).Name], qp.Weights[n.Input(1).Name]
		if a != nil && w != nil && a.DType == graph.Uint8 && w.DType == graph.Int8 && !opt.ReduceRange {
			rep.U8S8 = true
			break
		}
	}
	insertHook(qp)
	if stream != nil {
		// The weights are in place already; nothing else is quantized.
		if err := passes.InsertQDQ(m, &passes.QDQPlan{}); err != nil {
			return nil, err
		}
		if stream.nbits != nil {
			rep.Passes = append(rep.Passes, stream.nbits)
		}
	} else {
		if err := passes.InsertQDQ(m, qp); err != nil {
			return nil, err
		}
		if err := rewriteWeightFormat(m, opt, rep); err != nil {
			return nil, err
		}
	}
	rep.Passes = append(rep.Passes, passes.DropUnusedInitializers(m))
	if err := recordPassNames(m, pst); err != nil {
		return nil, err
	}
	phase("quantize", start)
	rep.PeakRSSBytes = max(peakBefore, rss.Peak())
	q = &Quantized{Model: m, Float: floatModel, Plan: qp, Report: rep, plan: pl}
	if stream != nil {
		q.data = stream.data
	}
	return q, nil
}

func observerName(c calib.Config) string {
	if c.Kind == "" {
		return "minmax"
	}
	return c.Kind
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
