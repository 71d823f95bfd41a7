// Package report renders accuracy results (compare, tensor statistics, sensitivity, tune) as one HTML page, PNG plots, CSV and JSON.
package report

// Data is everything a report shows. Every part is optional: a section whose
// data is empty is left out. Floats may be non-finite (an SQNR of +Inf means
// no error at all); tables print them as "inf"/"nan" and plots draw +Inf at
// the top of the axis.
type Data struct {
	Title      string `json:"title"` // e.g. "onnxq compare: det.onnx vs det.qdq.onnx"
	FloatModel string `json:"float_model"`
	QuantModel string `json:"quant_model"`
	Samples    int    `json:"samples"`
	// Thresholds are the flags' values, drawn as lines; a zero threshold is
	// not set and not drawn.
	Thresholds Thresholds `json:"thresholds"`
	// Outputs has one metric per graph output.
	Outputs []Metric `json:"outputs,omitempty"`
	// Layers has one metric per matched tensor in topological order; Index
	// is the position in that order and the x of the depth curves.
	Layers []Metric `json:"layers,omitempty"`
	// FirstBad names the first tensor under a threshold ("" if none).
	FirstBad string `json:"first_bad,omitempty"`
	// WorstContributor names the tensor that adds the most error relative
	// to its input.
	WorstContributor string `json:"worst_contributor,omitempty"`
	// Tensors compares every tensor's float values with the dequantized ones
	// (the MindSpore debug set).
	Tensors     []TensorStats    `json:"tensors,omitempty"`
	Sensitivity []SensitivityRow `json:"sensitivity,omitempty"`
	Tune        []TunePoint      `json:"tune,omitempty"`
	// TuneTarget is the metric value tune aimed for, drawn as a line on the
	// trade-off curves; NaN or 0 draws none.
	TuneTarget float64  `json:"tune_target,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	// Notes are free lines shown at the top (timings, verdict).
	Notes []string `json:"notes,omitempty"`
}

// Thresholds are the cosine and SQNR (dB) limits under which a tensor counts
// as bad.
type Thresholds struct {
	Cos  float64 `json:"cos"`
	SQNR float64 `json:"sqnr"`
}

// Metric compares one tensor of the float model with its counterpart in the
// quantized model, accumulated over the samples.
type Metric struct {
	Index  int     `json:"index"`
	Name   string  `json:"name"`
	OpType string  `json:"op_type,omitempty"`
	Node   string  `json:"node,omitempty"`
	Cosine float64 `json:"cosine"`
	SQNR   float64 `json:"sqnr"` // dB
	MSE    float64 `json:"mse"`
	MaxAbs float64 `json:"max_abs"`
	// Top1 is the share of samples whose arg max agrees, for outputs that
	// look like class scores; nil elsewhere.
	Top1 *float64 `json:"top1,omitempty"`
	// ChannelSQNR is the median of the per-channel SQNRs (dB) where it was
	// measured: one wide channel can hold the total SQNR up while the
	// others are rounded away. The lower of the two meets the threshold.
	ChannelSQNR *float64 `json:"channel_sqnr,omitempty"`
	Quantized   bool     `json:"quantized"`
	Note        string   `json:"note,omitempty"`
}

// Hist is a histogram with equal-width bins over [Lo, Hi].
type Hist struct {
	Lo     float64   `json:"lo"`
	Hi     float64   `json:"hi"`
	Counts []float64 `json:"counts"`
}

// TensorStats sets one tensor's float values beside its dequantized ones.
type TensorStats struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"` // activation | weight
	Float   Summary `json:"float"`
	Dequant Summary `json:"dequant"`
	Cosine  float64 `json:"cosine"`
	// ClipRate is the share of float values outside [QuantLo, QuantHi].
	ClipRate float64 `json:"clip_rate"`
	// QuantLo and QuantHi bound what the encoding represents: the chosen
	// clipping range.
	QuantLo   float64 `json:"quant_lo"`
	QuantHi   float64 `json:"quant_hi"`
	Scale     float64 `json:"scale"`
	ZeroPoint int64   `json:"zero_point"`
	Bits      int     `json:"bits"`
	DType     string  `json:"dtype"`
	Observer  string  `json:"observer,omitempty"`
	// Hist is the float histogram; nil leaves the tensor without a figure.
	Hist *Hist `json:"hist,omitempty"`
}

// Summary is a five-number summary plus moments of one set of values.
type Summary struct {
	Min       float64 `json:"min"`
	Q1        float64 `json:"q1"`
	Median    float64 `json:"median"`
	Q3        float64 `json:"q3"`
	Max       float64 `json:"max"`
	Mean      float64 `json:"mean"`
	Variance  float64 `json:"variance"`
	ZeroShare float64 `json:"zero_share"`
}

// SensitivityRow is one node's effect on the model outputs: with all its
// tensors quantized (Cosine, SQNR), only its weights, only its activations.
// Mode says how it was measured ("quant-one" or "float-one"). A NaN marks a
// value that was not measured.
type SensitivityRow struct {
	Rank         int     `json:"rank"`
	Node         string  `json:"node"`
	OpType       string  `json:"op_type,omitempty"`
	Cosine       float64 `json:"cosine"`
	SQNR         float64 `json:"sqnr"`
	WeightCosine float64 `json:"weight_cosine"`
	WeightSQNR   float64 `json:"weight_sqnr"`
	ActCosine    float64 `json:"act_cosine"`
	ActSQNR      float64 `json:"act_sqnr"`
	Mode         string  `json:"mode,omitempty"`
}

// TunePoint is one model that tune tried: Raised nodes at higher precision
// (Nodes lists them), the metric it reached, its size and the share of MACs
// left in int8. Met says it meets the target, Chosen that it is the result;
// Phase names the search step (base, grow, bisect, prune).
type TunePoint struct {
	Raised       int      `json:"raised"`
	Metric       float64  `json:"metric"`
	MetricName   string   `json:"metric_name"`
	SizeBytes    int64    `json:"size_bytes"`
	Int8MACShare float64  `json:"int8_mac_share"`
	Nodes        []string `json:"nodes,omitempty"`
	Met          bool     `json:"met"`
	Chosen       bool     `json:"chosen,omitempty"`
	Phase        string   `json:"phase,omitempty"`
}
