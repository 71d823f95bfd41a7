// Package tune searches for a small set of nodes to raise to a wider type (or
// leave in float) so that a converted model meets an accuracy target.
package tune

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/overrides"
)

// What a raised node gets.
const (
	PreferInt16 = "int16" // 16-bit activations (and int8 weights under 4-bit defaults)
	PreferInt8  = "int8"  // int8 weights under 4-bit defaults
	PreferFloat = "float" // the node's tensors stay float
)

// Options configure a search.
type Options struct {
	// Convert is the base conversion: model, calibration data, types and
	// the user's overrides. Output, measurement and encodings are ignored.
	Convert converter.Options
	// Eval is the data the target is measured on (held apart from
	// calibration; default the calibration data).
	Eval string
	// One target: TargetCos or TargetSQNR (worst output against the float
	// model), or the number EvalCmd prints reaching Target.
	TargetCos, TargetSQNR float64
	EvalCmd               string
	Target                float64
	LowerIsBetter         bool
	Prefer                string
	// MaxRaise caps the raised nodes (0: no cap).
	MaxRaise int
	// RankSamples is how many evaluation samples the ranking runs on
	// (default 8; the target is always measured on all of them).
	RankSamples int
	// Log, when set, receives one line per step.
	Log func(format string, args ...any)
}

// Step is one evaluated candidate.
type Step struct {
	Raised       int      `json:"raised"`
	Nodes        []string `json:"nodes"`
	Metric       float64  `json:"metric"`
	Met          bool     `json:"met"`
	SizeBytes    int64    `json:"model_bytes"`
	Int8MACShare float64  `json:"int8_mac_share"`
	Seconds      float64  `json:"seconds"`
	Phase        string   `json:"phase"` // base, grow, bisect, prune
}

// Result is a finished search.
type Result struct {
	Metric  string  `json:"metric"` // cosine, sqnr_db, or the command's number
	Target  float64 `json:"target"`
	Prefer  string  `json:"prefer"`
	Met     bool    `json:"met"`
	Best    Step    `json:"best"`
	Steps   []Step  `json:"steps"`
	Units   int     `json:"quantized_nodes"`
	Seconds float64 `json:"seconds"`
	// Ranking is the quant-one sensitivity the search starts from.
	Ranking *diagnose.SensitivityResult `json:"ranking"`
	// Types are the tensor types the best candidate adds to the user's
	// overrides; Overrides is the user's file with them.
	Types     map[string]overrides.TensorType `json:"-"`
	Overrides *overrides.File                 `json:"-"`
	// Model is the best candidate's QDQ model.
	Model *graph.Model `json:"-"`
}

// ErrNotMet is returned (with a Result holding the best candidate) when no
// candidate meets the target.
var ErrNotMet = errors.New("target not met")

type searcher struct {
	opt     Options
	eval    dataset.Source
	units   []diagnose.Unit // most sensitive first
	macs    map[string]int64
	kinds   map[string]string
	base    *converter.Quantized
	cache   map[int]*cand
	res     *Result
	ctx     context.Context
	tmpDir  string
	actType graph.DataType
	wType   graph.DataType

	// The float model's outputs on the eval set (diagnose.Reference), for
	// the float model whose encoding hashes to refHash; noRef once they
	// were over refOutputBytes.
	ref     *diagnose.Reference
	refHash [sha256.Size]byte
	noRef   bool

	// packs keeps packed weights for every session of the run: the
	// ranking's variants and the candidates share most weights (a
	// candidate's unchanged nodes dequantize to the same numbers).
	packs *kernels.PackCache
}

// refOutputBytes bounds the float model's outputs tune keeps over the eval
// set, and refModelBytes the float models whose encoding it hashes to know
// they did not change: the candidates are compared against the same float
// model on the same samples, which each evaluation ran again.
const (
	refOutputBytes = 256 << 20
	refModelBytes  = 512 << 20
)

// noReference makes every evaluation run the float model, for the test that
// compares.
var noReference = false

// reference returns the float model's outputs on the eval set, computed
// once and kept while the float model stays the same (every candidate's
// conversion runs the float passes again), or nil when they would take too
// much memory.
func (s *searcher) reference(q *converter.Quantized) (*diagnose.Reference, error) {
	if noReference || s.noRef || graph.Summarize(q.Float).ParameterBytes > refModelBytes {
		return nil, nil
	}
	b, err := graph.Marshal(q.Float)
	if err != nil {
		return nil, err
	}
	if h := sha256.Sum256(b); s.ref == nil || h != s.refHash {
		ref, err := diagnose.NewReference(s.ctx, q.Float, s.eval, s.opt.Convert.Threads, refOutputBytes)
		if err != nil {
			return nil, err
		}
		s.ref, s.refHash, s.noRef = ref, h, ref == nil
	}
	return s.ref, nil
}

type cand struct {
	step  Step
	types map[string]overrides.TensorType
	file  *overrides.File
	model *graph.Model
}

// Run searches: it ranks the nodes by how much quantizing each alone costs
// at the outputs (as mixed-precision tools rank layers), raises the first k for growing k until the target holds, bisects
// to the smallest such k, then drops every raised node the target does not
// need.
func Run(ctx context.Context, opt Options) (*Result, error) {
	start := time.Now()
	if err := check(&opt); err != nil {
		return nil, err
	}
	s := &searcher{opt: opt, cache: map[int]*cand{}, ctx: ctx, actType: opt.Convert.ActType, wType: opt.Convert.WeightType, packs: kernels.NewPackCache()}
	if s.actType == graph.Undefined {
		s.actType = graph.Uint8
	}
	if s.wType == graph.Undefined {
		s.wType = graph.Int8
	}
	s.res = &Result{Prefer: opt.Prefer}
	switch {
	case opt.EvalCmd != "":
		s.res.Metric, s.res.Target = "eval-cmd", opt.Target
	case opt.TargetCos != 0:
		s.res.Metric, s.res.Target = "cosine", opt.TargetCos
	default:
		s.res.Metric, s.res.Target = "sqnr_db", opt.TargetSQNR
	}
	tmp, err := os.MkdirTemp("", "onnxq-tune-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	s.tmpDir = tmp

	// Candidates differ from the base in a few tensors' types only: their
	// calibration is the base's, except where the range depends on the type.
	opt.Convert.RangeCache = &converter.RangeCache{}
	s.opt.Convert.RangeCache = opt.Convert.RangeCache
	base, err := converter.Quantize(ctx, opt.Convert, true)
	if err != nil {
		return nil, err
	}
	s.base = base
	data := cmp(opt.Eval, opt.Convert.Calib)
	if s.eval, err = dataset.Open(data, dataset.InputsOf(base.Float), opt.Convert.Dataset); err != nil {
		return nil, err
	}
	// The ranking orders candidates; a few samples order them as well as
	// many, and each sample costs one suffix run per node.
	rankOn := s.eval
	if n := opt.RankSamples; n == 0 || n < s.eval.Len() {
		if n == 0 {
			n = 8
		}
		ds := opt.Convert.Dataset
		ds.Limit = n
		if rankOn, err = dataset.Open(data, dataset.InputsOf(base.Float), ds); err != nil {
			return nil, err
		}
	}
	s.log("ranking the quantized nodes (quant-one sensitivity on %d samples)", rankOn.Len())
	rank, err := diagnose.Sensitivity(ctx, base.Float, base.Plan, rankOn, diagnose.SensitivityOptions{Mode: diagnose.QuantOne, Threads: opt.Convert.Threads, Packs: s.packs})
	if err != nil {
		return nil, err
	}
	s.res.Ranking = rank
	for _, r := range rank.Rows {
		// Units the preference leaves as they are (activation-only
		// nodes under --prefer int8) cannot help.
		if len(s.typesFor([]diagnose.Unit{r.Unit})) > 0 {
			s.units = append(s.units, r.Unit)
		}
	}
	s.res.Units = len(s.units)
	if s.macs, err = macsOf(base.Float, s.eval); err != nil {
		return nil, err
	}
	s.kinds = map[string]string{}
	for _, u := range s.units {
		for _, w := range u.Weights {
			s.kinds[w] = overrides.KindWeight
		}
		for _, a := range u.Activations {
			s.kinds[a] = overrides.KindActivation
		}
	}
	best, err := s.search()
	s.res.Seconds = time.Since(start).Seconds()
	if err != nil {
		return s.res, err
	}
	s.res.Best, s.res.Types, s.res.Overrides, s.res.Model = best.step, best.types, best.file, best.model
	if !best.step.Met {
		return s.res, fmt.Errorf("%w: best %s %.6g (target %.6g) with %d of %d nodes raised, %d candidates tried", ErrNotMet, s.res.Metric, best.step.Metric, s.res.Target, best.step.Raised, len(s.units), len(s.res.Steps))
	}
	s.res.Met = true
	return s.res, nil
}

func check(opt *Options) error {
	n := 0
	if opt.TargetCos != 0 {
		n++
		if !(opt.TargetCos > -1 && opt.TargetCos <= 1) {
			return fmt.Errorf("--target-cos %v is not in (-1, 1]", opt.TargetCos)
		}
	}
	if opt.TargetSQNR != 0 {
		n++
	}
	if opt.EvalCmd != "" {
		n++
	}
	if n != 1 {
		return fmt.Errorf("give one target: --target-cos, --target-sqnr, or --eval-cmd with --target")
	}
	if opt.Prefer == "" {
		opt.Prefer = PreferInt16
	}
	switch opt.Prefer {
	case PreferInt16, PreferInt8, PreferFloat:
	default:
		return fmt.Errorf("--prefer %q is not int16, int8 or float", opt.Prefer)
	}
	if opt.Prefer == PreferInt8 && (opt.Convert.WeightType == graph.Undefined || opt.Convert.WeightType.BitWidth() > 4) {
		return fmt.Errorf("--prefer int8 raises 4-bit weights to int8, but the weights are %s already (use --prefer int16 or float)", cmpType(opt.Convert.WeightType))
	}
	if opt.MaxRaise < 0 {
		return fmt.Errorf("--max-raise %d is negative", opt.MaxRaise)
	}
	if opt.Convert.Calib == "" {
		return fmt.Errorf("tune needs calibration data (--calib)")
	}
	return nil
}

func cmpType(dt graph.DataType) string {
	if dt == graph.Undefined {
		return "int8"
	}
	return dt.Short()
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *searcher) log(format string, args ...any) {
	if s.opt.Log != nil {
		s.opt.Log(format, args...)
	}
}

// search is grow, bisect, prune over the ranking.
func (s *searcher) search() (*cand, error) {
	limit := len(s.units)
	if s.opt.Prefer == PreferFloat {
		limit-- // every node float is the float model, not a conversion
	}
	if s.opt.MaxRaise > 0 {
		limit = min(limit, s.opt.MaxRaise)
	}
	base, err := s.evalTop(0, "base")
	if err != nil {
		return nil, err
	}
	if base.step.Met {
		return base, nil
	}
	// Grow: 1, 2, 4, ... until met.
	lo, hi := 0, -1
	for k := 1; ; k *= 2 {
		k = min(k, limit)
		c, err := s.evalTop(k, "grow")
		if err != nil {
			return nil, err
		}
		if c.step.Met {
			hi = k
			break
		}
		lo = k
		if k == limit {
			break
		}
	}
	if hi < 0 {
		return s.bestSoFar(), nil
	}
	// Bisect: the smallest k in (lo, hi] that meets the target.
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		c, err := s.evalTop(mid, "bisect")
		if err != nil {
			return nil, err
		}
		if c.step.Met {
			hi = mid
		} else {
			lo = mid
		}
	}
	best := s.cache[hi]
	// Prune: drop raised nodes the target does not need, least sensitive
	// first: runs of nodes while the set is large (halving the run length),
	// then single nodes once at most pruneSingles remain, so a large set costs
	// a few dozen candidates, not one per node.
	set := slices.Clone(s.units[:hi])
	for run := len(set) / 2; run >= 1; run /= 2 {
		if run == 1 && len(set) > pruneSingles {
			break
		}
		for end := len(set); end > 0 && len(set) > 1; end -= run {
			start := max(0, end-run)
			if end-start >= len(set) {
				continue
			}
			trial := slices.Delete(slices.Clone(set), start, end)
			c, err := s.evaluate(trial, "prune")
			if err != nil {
				return nil, err
			}
			if c.step.Met {
				set, best = trial, c
			}
		}
	}
	return best, nil
}

// pruneSingles is the largest raised set tried node by node.
const pruneSingles = 24

// bestSoFar is the candidate closest to the target.
func (s *searcher) bestSoFar() *cand {
	var best *cand
	for _, c := range s.cache {
		if best == nil || s.better(c.step.Metric, best.step.Metric) || (c.step.Metric == best.step.Metric && c.step.Raised < best.step.Raised) {
			best = c
		}
	}
	return best
}

func (s *searcher) better(a, b float64) bool {
	if s.res.Metric == "eval-cmd" && s.opt.LowerIsBetter {
		return a < b
	}
	return a > b
}

func (s *searcher) meets(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if s.res.Metric == "eval-cmd" && s.opt.LowerIsBetter {
		return v <= s.res.Target
	}
	return v >= s.res.Target
}

func (s *searcher) evalTop(k int, phase string) (*cand, error) {
	if c, ok := s.cache[k]; ok {
		return c, nil
	}
	c, err := s.evaluate(s.units[:k], phase)
	if err != nil {
		return nil, err
	}
	s.cache[k] = c
	return c, nil
}

// typesFor is what the raised units' tensors become.
func (s *searcher) typesFor(units []diagnose.Unit) map[string]overrides.TensorType {
	out := map[string]overrides.TensorType{}
	act16 := graph.Uint16
	if s.actType == graph.Int8 || s.actType == graph.Int16 {
		act16 = graph.Int16
	}
	biases := s.base.Plan.Biases
	for _, u := range units {
		for _, w := range u.Weights {
			if _, isBias := biases[w]; isBias {
				continue // a bias follows its weight (float with a float weight)
			}
			switch {
			case s.opt.Prefer == PreferFloat:
				out[w] = overrides.TensorType{DType: "float", Kind: overrides.KindWeight}
			case s.wType.BitWidth() < 8:
				out[w] = overrides.TensorType{DType: "int8", Kind: overrides.KindWeight}
			}
		}
		for _, a := range u.Activations {
			if s.base.SharesEncoding(a) {
				continue // follows the tensor it shares with
			}
			switch s.opt.Prefer {
			case PreferFloat:
				out[a] = overrides.TensorType{DType: "float", Kind: overrides.KindActivation}
			case PreferInt16:
				if s.actType.BitWidth() < 16 {
					out[a] = overrides.TensorType{DType: act16.Short(), Kind: overrides.KindActivation}
				}
			}
		}
	}
	return out
}

// withTypes is the user's overrides with the raised tensors' types.
func (s *searcher) withTypes(types map[string]overrides.TensorType) (*overrides.File, error) {
	f := &overrides.File{Version: overrides.Version}
	if u := s.opt.Convert.Overrides; u != nil {
		b, err := json.Marshal(u)
		if err != nil {
			return nil, err
		}
		if f, err = overrides.Parse(b); err != nil {
			return nil, err
		}
	}
	if f.Tensors == nil {
		f.Tensors = map[string]*overrides.Tensor{}
	}
	for name, tt := range types {
		t := f.Tensors[name]
		if t == nil {
			t = &overrides.Tensor{}
			f.Tensors[name] = t
		}
		t.Kind = tt.Kind
		t.DType, t.Float, t.Encoding, t.Min, t.Max = tt.DType, false, nil, nil, nil
		if tt.DType == "float" {
			t.DType, t.Float = "", true
		}
	}
	return f, f.Validate()
}

// evaluate converts with the units raised and measures the target.
func (s *searcher) evaluate(units []diagnose.Unit, phase string) (*cand, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	types := s.typesFor(units)
	f, err := s.withTypes(types)
	if err != nil {
		return nil, fmt.Errorf("tune: the candidate overrides: %w", err)
	}
	opt := s.opt.Convert
	opt.Overrides, opt.Progress = f, nil
	q, err := converter.Quantize(s.ctx, opt, true)
	if err != nil {
		return nil, err
	}
	c := &cand{types: types, file: f, model: q.Model}
	c.step = Step{Raised: len(units), Phase: phase}
	for _, u := range units {
		c.step.Nodes = append(c.step.Nodes, u.Node)
	}
	if c.step.Metric, err = s.metric(q); err != nil {
		return nil, err
	}
	c.step.Met = s.meets(c.step.Metric)
	b, err := graph.Marshal(q.Model)
	if err != nil {
		return nil, err
	}
	c.step.SizeBytes = int64(len(b))
	c.step.Int8MACShare = int8Share(q, s.macs)
	c.step.Seconds = time.Since(start).Seconds()
	s.res.Steps = append(s.res.Steps, c.step)
	verdict := "misses"
	if c.step.Met {
		verdict = "meets"
	}
	s.log("%-6s %3d raised: %s %.6g %s the target %.6g (%.1fs)", phase, len(units), s.res.Metric, c.step.Metric, verdict, s.res.Target, c.step.Seconds)
	return c, nil
}

// metric measures a candidate: the worst output against the float model, or
// the user's command on the written model.
func (s *searcher) metric(q *converter.Quantized) (float64, error) {
	if s.opt.EvalCmd == "" {
		ref, err := s.reference(q)
		if err != nil {
			return 0, err
		}
		res, err := diagnose.Compare(s.ctx, q.Float, q.Model, s.eval, diagnose.Options{Threads: s.opt.Convert.Threads, Reference: ref, Packs: s.packs})
		if err != nil {
			return 0, err
		}
		v := math.Inf(1)
		for _, o := range res.Outputs {
			m := o.SQNR
			if s.res.Metric == "cosine" {
				m = o.Cosine
			}
			v = math.Min(v, m)
		}
		return v, nil
	}
	p := filepath.Join(s.tmpDir, "candidate.onnx")
	if err := graph.Save(q.Model, p); err != nil {
		return 0, err
	}
	return RunEvalCmd(s.ctx, s.opt.EvalCmd, p)
}

// RunEvalCmd runs the user's accuracy command on a model: "{model}" in the
// command is replaced by the path (or the path is appended), the command
// runs through sh, and the last number it prints on stdout is the metric.
func RunEvalCmd(ctx context.Context, command, model string) (float64, error) {
	line := command
	if strings.Contains(line, "{model}") {
		line = strings.ReplaceAll(line, "{model}", shellQuote(model))
	} else {
		line += " " + shellQuote(model)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg != "" {
			msg = ": " + msg
		}
		return 0, fmt.Errorf("--eval-cmd %q failed (%v)%s", command, err, msg)
	}
	fields := strings.Fields(out.String())
	for i := len(fields) - 1; i >= 0; i-- {
		if v, err := strconv.ParseFloat(strings.TrimRight(fields[i], "%,;"), 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("--eval-cmd %q printed no number on stdout (it must print the metric, e.g. 0.853)", command)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// macsOf estimates the multiply-accumulates of each weighted node on the
// first sample: output values x weight values per output channel.
func macsOf(f *graph.Model, src dataset.Source) (map[string]int64, error) {
	want := map[string]bool{}
	for _, n := range f.Graph.Nodes {
		if isWeighted(n) {
			want[n.Output().Name] = true
		}
	}
	outs := map[string]int{}
	s, err := kernels.NewSession(f, kernels.Options{Threads: 1, TapOnly: want, Tap: func(name string, t *graph.Tensor) { outs[name] = t.Len() }})
	if err != nil {
		return nil, err
	}
	smp, err := src.Sample(0)
	if err != nil {
		return nil, err
	}
	if _, err := s.Run(smp); err != nil {
		return nil, err
	}
	macs := map[string]int64{}
	for _, n := range f.Graph.Nodes {
		if !isWeighted(n) {
			continue
		}
		w := n.Input(1).Const
		perOut := int64(w.Len())
		if ch := outChannels(n, w); ch > 0 {
			perOut /= int64(ch)
		}
		macs[n.Name] = int64(outs[n.Output().Name]) * perOut
	}
	return macs, nil
}

func isWeighted(n *graph.Node) bool {
	switch n.OpType {
	case "Conv", "ConvTranspose", "Gemm", "MatMul":
		return n.Input(1) != nil && n.Input(1).Const != nil && n.Output() != nil
	}
	return false
}

func outChannels(n *graph.Node, w *graph.Tensor) int {
	switch {
	case n.OpType == "Conv" && w.Rank() > 0:
		return w.Shape[0]
	case n.OpType == "ConvTranspose" && w.Rank() > 1:
		g, _ := n.AttrInt("group", 1)
		return w.Shape[1] * int(g)
	case n.OpType == "Gemm" && w.Rank() == 2:
		if tb, _ := n.AttrInt("transB", 0); tb != 0 {
			return w.Shape[0]
		}
		return w.Shape[1]
	case n.OpType == "MatMul" && w.Rank() >= 2:
		return w.Shape[w.Rank()-1]
	}
	return 0
}

// int8Share is the share of the weighted nodes' MACs that run with weights
// and input of at most 8 bits in the candidate.
func int8Share(q *converter.Quantized, macs map[string]int64) float64 {
	var all, low int64
	for _, n := range q.Float.Graph.Nodes {
		m, ok := macs[n.Name]
		if !ok {
			continue
		}
		all += m
		w, in := q.Plan.Weights[n.Input(1).Name], q.Plan.Activations[n.Input(0).Name]
		if w != nil && in != nil && w.DType.BitWidth() <= 8 && in.DType.BitWidth() <= 8 {
			low += m
		}
	}
	if all == 0 {
		return 0
	}
	return float64(low) / float64(all)
}
