package diagnose_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

// saveModel writes m under dir and returns the path.
func saveModel(t testing.TB, m *graph.Model, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeSamples writes n seeded N(0,1) samples for the model's one input.
func writeSamples(t testing.TB, m *graph.Model, dir string, n int, seed uint64) string {
	t.Helper()
	in := m.Graph.Inputs[0]
	shape, ok := in.StaticShape()
	if !ok {
		t.Fatalf("input %s has no static shape", in.Name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range n {
		x := make([]float32, graph.Numel(shape))
		for j := range x {
			x[j] = float32(r.NormFloat64())
		}
		if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("s%04d.npy", i)), graph.Float32Tensor(shape, x)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// convertModel writes m, converts it with the default types and returns the
// float and QDQ paths and the samples.
func convertModel(t testing.TB, m *graph.Model, opt converter.Options) (string, string, string) {
	t.Helper()
	dir := t.TempDir()
	fp := saveModel(t, m, dir, "float.onnx")
	data := writeSamples(t, m, filepath.Join(dir, "calib"), 16, 1)
	opt.Model, opt.Output, opt.Calib = fp, filepath.Join(dir, "q.onnx"), data
	if opt.Threads == 0 {
		opt.Threads = 1
	}
	if _, err := converter.Convert(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	return fp, opt.Output, data
}

func compareFiles(t testing.TB, a, b, data string, opt diagnose.Options) (*diagnose.Result, error) {
	t.Helper()
	ref, err := graph.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	test, err := graph.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	src, err := dataset.Open(data, dataset.InputsOf(ref), dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return diagnose.Compare(context.Background(), ref, test, src, opt)
}

// TestPlantedLayerIsFirstBad: the layer with one channel 1000x the others is
// where the default uint8 conversion breaks, and layerwise compare names its
// output first and as the worst contributor, though its total SQNR (carried
// by the big channel) looks fine.
func TestPlantedLayerIsFirstBad(t *testing.T) {
	fp, qp, data := convertModel(t, testmodels.PlantedOutlier(1), converter.Options{})
	res, err := compareFiles(t, fp, qp, data, diagnose.Options{Layerwise: true, Stats: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstBad != testmodels.PlantedTensor || res.WorstContributor != testmodels.PlantedTensor {
		t.Fatalf("first bad %q, worst contributor %q; want %q for both", res.FirstBad, res.WorstContributor, testmodels.PlantedTensor)
	}
	var planted *diagnose.TensorResult
	for i, l := range res.Layers {
		if l.Name == testmodels.PlantedTensor {
			planted = &res.Layers[i]
		} else if planted == nil && l.Bad(res.Thresholds.Cos, res.Thresholds.SQNR) {
			t.Errorf("%s before the planted layer is bad: %+v", l.Name, l)
		}
	}
	if planted == nil || planted.Quant == nil || planted.ChannelSQNR == nil {
		t.Fatalf("planted tensor not compared through its Q/DQ pair: %+v", planted)
	}
	t.Logf("planted tensor: total SQNR %.2f dB, median channel SQNR %.2f dB, cosine %.5f", planted.SQNR, *planted.ChannelSQNR, planted.Cosine)
	if planted.SQNR < 20 || *planted.ChannelSQNR > 5 {
		t.Errorf("the planted tensor should hide its damage in total (SQNR %.2f) and show it per channel (%.2f)", planted.SQNR, *planted.ChannelSQNR)
	}
	if out := res.Outputs[0]; out.Name != "logits" || !out.Bad(0.99, 20) || out.Top1 == nil {
		t.Errorf("output: %+v", out)
	}
	// Measured on the calibration data with minmax ranges: nothing clipped.
	if planted.Stats == nil || planted.Stats.ClipRate != 0 || planted.Stats.Float.Max <= planted.Stats.Float.Q3 || planted.Stats.Float.Q1 != 0 {
		t.Errorf("stats: %+v", planted.Stats)
	}
}

// TestCompareIdentical: a model against itself is exact everywhere.
func TestCompareIdentical(t *testing.T) {
	dir := t.TempDir()
	m := testmodels.ConvBNReLU(3)
	fp := saveModel(t, m, dir, "m.onnx")
	data := writeSamples(t, m, filepath.Join(dir, "d"), 5, 2)
	res, err := compareFiles(t, fp, fp, data, diagnose.Options{Layerwise: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 5 || len(res.Layers) < 8 || res.FirstBad != "" {
		t.Fatalf("samples %d, layers %d, first bad %q", res.Samples, len(res.Layers), res.FirstBad)
	}
	for _, r := range append(res.Layers, res.Outputs...) {
		if r.Cosine != 1 || r.SQNR != diagnose.PerfectSQNR || r.MSE != 0 || r.MaxAbs != 0 || r.Values == 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	if o := res.Outputs[0]; o.Top1 == nil || *o.Top1 != 1 {
		t.Errorf("top-1 of logits against themselves: %v", o.Top1)
	}
}

// TestCompareThroughBNFolding: the original model (Conv, BN, ReLU) against
// onnxq's QDQ model (BN folded into the Conv): the BN outputs are matched to
// the folded Conv outputs, the pre-BN Conv outputs are not matched to
// anything, and every matched tensor of this healthy model is above 30 dB.
func TestCompareThroughBNFolding(t *testing.T) {
	m := testmodels.ConvBNReLU(5)
	var bnOuts, convOuts []string
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "BatchNormalization":
			bnOuts = append(bnOuts, n.Output().Name)
		case "Conv":
			convOuts = append(convOuts, n.Output().Name)
		}
	}
	fp, qp, data := convertModel(t, m, converter.Options{})
	res, err := compareFiles(t, fp, qp, data, diagnose.Options{Layerwise: true})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]diagnose.TensorResult{}
	for _, l := range res.Layers {
		names[l.Name] = l
		if l.Values > 0 && l.SQNR < 30 {
			t.Errorf("%s (-> %s): SQNR %.2f dB on a healthy model: wrong match?", l.Name, l.TestName, l.SQNR)
		}
	}
	for i, bn := range bnOuts {
		l, ok := names[bn]
		if !ok || l.Values == 0 || l.TestName != convOuts[i] {
			t.Errorf("BN output %s: matched to %q (%v), want the folded conv output %s", bn, l.TestName, ok, convOuts[i])
		}
		if _, ok := names[convOuts[i]]; ok {
			t.Errorf("pre-BN conv output %s was matched, but its name carries post-BN values in the QDQ model", convOuts[i])
		}
	}
	if res.Outputs[0].Cosine < 0.999 {
		t.Errorf("output cosine %.5f", res.Outputs[0].Cosine)
	}
}

// TestCompareErrors: models that cannot be compared say why.
func TestCompareErrors(t *testing.T) {
	dir := t.TempDir()
	a := testmodels.ConvBNReLU(1)
	b := testmodels.MobileNetV2Block(1) // another input shape, same name "input"
	ap, bp := saveModel(t, a, dir, "a.onnx"), saveModel(t, b, dir, "b.onnx")
	data := writeSamples(t, a, filepath.Join(dir, "d"), 2, 1)

	c := testmodels.ConvBNReLU(1)
	c.Graph.Inputs[0].Name = "image"
	cp := saveModel(t, c, dir, "c.onnx")
	if _, err := compareFiles(t, ap, cp, data, diagnose.Options{}); err == nil || !strings.Contains(err.Error(), "different inputs") {
		t.Errorf("different inputs: %v", err)
	}
	// Same input, no intermediate tensor in common.
	d := testmodels.ConvBNReLU(1)
	for _, n := range d.Graph.Nodes {
		for _, v := range n.Outputs {
			if !d.Graph.IsOutput(v) {
				v.Name = "other_" + v.Name
			}
		}
	}
	dp := saveModel(t, d, dir, "d.onnx")
	if _, err := compareFiles(t, ap, dp, data, diagnose.Options{Layerwise: true}); err == nil || !strings.Contains(err.Error(), "no intermediate tensors in common") {
		t.Errorf("no common tensors: %v", err)
	}
	if _, err := compareFiles(t, ap, bp, data, diagnose.Options{}); err == nil || !strings.Contains(err.Error(), "second model") {
		t.Errorf("second model cannot run the samples: %v", err)
	}
}

// TestAccMetrics checks the accumulated metrics against hand computation,
// split over two samples.
func TestAccMetrics(t *testing.T) {
	ref := []float32{1, 2, 3, 4, 0, -1}
	test := []float32{1, 2.5, 3, 3, 0, -1}
	var a diagnose.Acc
	a.ClassAxisLen = 3
	a.Add(ref[:3], test[:3])
	a.Add(ref[3:], test[3:])
	var rr, tt, rt, e2 float64
	for i := range ref {
		x, y := float64(ref[i]), float64(test[i])
		rr, tt, rt, e2 = rr+x*x, tt+y*y, rt+x*y, e2+(x-y)*(x-y)
	}
	if got, want := a.Cosine(), rt/math.Sqrt(rr*tt); math.Abs(got-want) > 1e-12 {
		t.Errorf("cosine %v, want %v", got, want)
	}
	if got, want := a.SQNR(), 10*math.Log10(rr/e2); math.Abs(got-want) > 1e-9 {
		t.Errorf("SQNR %v, want %v", got, want)
	}
	if got := a.MSE(); math.Abs(got-e2/6) > 1e-12 || a.MaxAbs() != 1 {
		t.Errorf("MSE %v, max abs %v", got, a.MaxAbs())
	}
	// Rows [1 2 3] -> argmax 2 both; [4 0 -1] -> 0 both.
	if top1, ok := a.Top1(); !ok || top1 != 1 {
		t.Errorf("top-1 %v %v", top1, ok)
	}
	var c diagnose.Acc
	c.SetChannels(2, 2) // [1, 2 channels, 2]
	c.Add([]float32{10, 10, 1, 1}, []float32{10, 10, 0, 0})
	if ch, ok := c.ChannelSQNR(); !ok || math.Abs(ch-(diagnose.PerfectSQNR+0)/2) > 1e-9 {
		t.Errorf("channel SQNR %v (median of 200 and 0 dB)", ch)
	}
}

// TestStatsQuartiles: quartiles from the histogram are within one bin of
// the exact ones over all values of all samples.
func TestStatsQuartiles(t *testing.T) {
	fp, qp, data := convertModel(t, testmodels.ConvBNReLU(7), converter.Options{})
	res, err := compareFiles(t, fp, qp, data, diagnose.Options{Stats: true, Bins: 4096})
	if err != nil {
		t.Fatal(err)
	}
	// The logits output, recomputed exactly from a second float run.
	ref, _ := graph.Load(fp)
	src, _ := dataset.Open(data, dataset.InputsOf(ref), dataset.Options{})
	var all []float64
	sess := mustSession(t, ref)
	for i := range src.Len() {
		smp, _ := src.Sample(i)
		out, err := sess.Run(smp)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range out["logits"].Float32s() {
			all = append(all, float64(v))
		}
	}
	slices.Sort(all)
	s := res.Outputs[0].Stats
	bin := (all[len(all)-1] - all[0]) / 2048 // at least Bins/2 bins over the range
	if s.Float.Min != all[0] || s.Float.Max != all[len(all)-1] {
		t.Errorf("min/max %v %v, exact %v %v", s.Float.Min, s.Float.Max, all[0], all[len(all)-1])
	}
	// With few values a quantile lies between two order statistics.
	for _, c := range []struct {
		q   float64
		got float64
	}{{0.25, s.Float.Q1}, {0.5, s.Float.Median}, {0.75, s.Float.Q3}} {
		k := int(c.q * float64(len(all)))
		if c.got < all[k-1]-bin || c.got > all[k]+bin {
			t.Errorf("quantile %v: %v, exact between %v and %v (bin %v)", c.q, c.got, all[k-1], all[k], bin)
		}
	}
}

func mustSession(t testing.TB, m *graph.Model) *kernels.Session {
	t.Helper()
	s, err := kernels.NewSession(m, kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClipRate: with 99th-percentile ranges, about 1% of each quantized
// tensor's values (on its clipped sides) fall outside the grid, measured on
// the calibration data.
func TestClipRate(t *testing.T) {
	fp, qp, data := convertModel(t, testmodels.ConvBNReLU(7), converter.Options{Observer: calib.Config{Kind: "percentile", Percentile: 99}})
	res, err := compareFiles(t, fp, qp, data, diagnose.Options{Layerwise: true, Stats: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range res.Layers {
		if l.Quant == nil || l.Quant.PerChannel {
			continue
		}
		n++
		if r := l.Stats.ClipRate; r < 0.002 || r > 0.025 {
			t.Errorf("%s: clip rate %.4f with 99th-percentile ranges", l.Name, r)
		}
	}
	if n < 3 {
		t.Fatalf("%d quantized tensors compared", n)
	}
}

// TestCompareLanesMatchOneRunner: Compare at 3 threads runs the samples
// after the first in lanes, and gives the results one runner gives bit for
// bit (outputs and layerwise, a classifier with top-1 and channel sums and
// a YOLO-style detector); a broken sample fails with the error one runner
// reports; Progress counts every sample once, in order.
func TestCompareLanesMatchOneRunner(t *testing.T) {
	for _, name := range []string{"planted", "yolo-silu"} {
		m := testmodels.PlantedOutlier(1)
		if name != "planted" {
			var err error
			if m, err = testmodels.Build(name, 1); err != nil {
				t.Fatal(err)
			}
		}
		fp, qp, data := convertModel(t, m, converter.Options{})
		for _, layerwise := range []bool{false, true} {
			var res [2]*diagnose.Result
			for i, threads := range []int{1, 3} {
				var seen []int
				r, err := compareFiles(t, fp, qp, data, diagnose.Options{Threads: threads, Layerwise: layerwise,
					Progress: func(done, total int) { seen = append(seen, done) }})
				if err != nil {
					t.Fatal(err)
				}
				for j, d := range seen {
					if d != j+1 || len(seen) != r.Samples {
						t.Fatalf("%s threads %d: progress %v", name, threads, seen)
					}
				}
				r.Seconds = 0
				res[i] = r
			}
			if !reflect.DeepEqual(res[0], res[1]) {
				t.Errorf("%s layerwise %v: 3 threads differ from 1:\n%+v\n%+v", name, layerwise, res[1].Outputs, res[0].Outputs)
			}
			if len(res[0].Outputs) == 0 || res[0].Outputs[0].Values == 0 || layerwise && len(res[0].Layers) == 0 {
				t.Fatalf("%s: nothing compared: %+v", name, res[0])
			}
		}
		// A sample the models reject (6) and one that cannot be read (9):
		// sample 6's error, as one runner gives it.
		ref, err := graph.Load(fp)
		if err != nil {
			t.Fatal(err)
		}
		test, err := graph.Load(qp)
		if err != nil {
			t.Fatal(err)
		}
		src, err := dataset.Open(data, dataset.InputsOf(ref), dataset.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var msgs [2]string
		for i, threads := range []int{1, 3} {
			_, err := diagnose.Compare(context.Background(), ref, test, brokenSource{src}, diagnose.Options{Threads: threads})
			if err == nil {
				t.Fatalf("%s threads %d: broken samples passed", name, threads)
			}
			msgs[i] = err.Error()
		}
		if !strings.HasPrefix(msgs[0], "sample 6:") {
			t.Errorf("%s: one runner's error %q is not sample 6's", name, msgs[0])
		}
		if msgs[0] != msgs[1] {
			t.Errorf("%s: error at 3 threads %q, at 1 %q", name, msgs[1], msgs[0])
		}
	}
}

// brokenSource is src with sample 6 of the wrong shape and sample 9
// unreadable.
type brokenSource struct{ dataset.Source }

func (b brokenSource) Sample(i int) (dataset.Sample, error) {
	switch i {
	case 6:
		return dataset.Sample{"x": graph.Float32Tensor([]int{1, 1}, []float32{0})}, nil
	case 9:
		return nil, fmt.Errorf("sample 9 cannot be read")
	}
	return b.Source.Sample(i)
}

// TestCompareWithReference: against the float model's outputs kept by
// NewReference, Compare gives the result it gives running the float model,
// bit for bit, at 1 and 3 threads; a reference refuses layerwise use and a
// dataset of another length; one over its byte budget is not made.
func TestCompareWithReference(t *testing.T) {
	m, err := testmodels.Build("yolo-silu", 1)
	if err != nil {
		t.Fatal(err)
	}
	fp, qp, data := convertModel(t, m, converter.Options{})
	ref, _ := graph.Load(fp)
	test, _ := graph.Load(qp)
	src, err := dataset.Open(data, dataset.InputsOf(ref), dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := diagnose.NewReference(context.Background(), ref, src, 2, 1<<30)
	if err != nil || cached == nil {
		t.Fatalf("reference: %v", err)
	}
	for _, threads := range []int{1, 3} {
		want, err := diagnose.Compare(context.Background(), ref, test, src, diagnose.Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		got, err := diagnose.Compare(context.Background(), ref, test, src, diagnose.Options{Threads: threads, Reference: cached})
		if err != nil {
			t.Fatal(err)
		}
		want.Seconds, got.Seconds = 0, 0
		if !reflect.DeepEqual(want, got) {
			t.Errorf("threads %d: with the reference\n%+v\nrunning the float model\n%+v", threads, got.Outputs, want.Outputs)
		}
	}
	if _, err := diagnose.Compare(context.Background(), ref, test, src, diagnose.Options{Layerwise: true, Reference: cached}); err == nil {
		t.Error("a reference was taken for a layerwise comparison")
	}
	short, _ := dataset.Open(data, dataset.InputsOf(ref), dataset.Options{Limit: 3})
	if _, err := diagnose.Compare(context.Background(), ref, test, short, diagnose.Options{Reference: cached}); err == nil {
		t.Error("a reference of 16 samples was taken for 3")
	}
	if small, err := diagnose.NewReference(context.Background(), ref, src, 1, 1000); err != nil || small != nil {
		t.Errorf("a reference over its budget: %v, %v", small, err)
	}
}
