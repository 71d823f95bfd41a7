package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

// planted writes the planted-outlier model and seeded samples.
func planted(t *testing.T) (dir, model, calib string) {
	t.Helper()
	dir = t.TempDir()
	model = filepath.Join(dir, "planted.onnx")
	if err := graph.Save(testmodels.PlantedOutlier(1), model); err != nil {
		t.Fatal(err)
	}
	calib = demoCalib(t, dir, 12, func(i, j int) float32 { return float32(math.Sin(float64(i*7919+j) * 0.37)) })
	return dir, model, calib
}

func oneLine(t *testing.T, s string) {
	t.Helper()
	if strings.Count(strings.TrimSpace(s), "\n") != 0 || strings.TrimSpace(s) == "" {
		t.Errorf("want one line on stderr, got %q", s)
	}
}

// TestCompareCommand: compare names the planted layer, writes the stats,
// JSON and CSV reports, and refuses bad input with one line.
func TestCompareCommand(t *testing.T) {
	dir, model, calib := planted(t)
	q := filepath.Join(dir, "q.onnx")
	code, out, errOut := runCLI("convert", model, "-o", q, "--calib", calib)
	if code != 0 || !strings.Contains(errOut, "BELOW thresholds") || !strings.Contains(errOut, "onnxq compare") {
		t.Fatalf("convert exit %d: %s %s", code, out, errOut)
	}
	stats, rj, rc := filepath.Join(dir, "s.csv"), filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv")
	code, out, errOut = runCLI("compare", model, q, "--data", calib, "--layerwise", "--stats", stats, "--report", rj)
	if code != 0 || !strings.Contains(out, "first bad") || !strings.Contains(out, testmodels.PlantedTensor+" (node Relu_3") {
		t.Fatalf("compare exit %d: %s %s", code, out, errOut)
	}
	var res struct {
		FirstBad string `json:"first_bad"`
		Layers   []struct {
			Name string `json:"name"`
		} `json:"layers"`
	}
	b, _ := os.ReadFile(rj)
	if err := json.Unmarshal(b, &res); err != nil || res.FirstBad != testmodels.PlantedTensor || len(res.Layers) < 10 {
		t.Errorf("report: %v %+v", err, res)
	}
	f, _ := os.Open(stats)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) < 10 || rows[0][2] != "float_min" || !slices.Contains(rows[0], "clip_rate") {
		t.Fatalf("stats: %v %v", err, rows[:min(2, len(rows))])
	}
	if code, _, errOut = runCLI("compare", model, q, "--data", calib, "--report", rc); code != 0 {
		t.Fatal(errOut)
	}
	if b, _ := os.ReadFile(rc); !strings.HasPrefix(string(b), "index,name,op_type,") {
		t.Errorf("csv report: %.80s", b)
	}
	// Bad input.
	other := filepath.Join(dir, "other.onnx")
	m := testmodels.ConvBNReLU(1)
	m.Graph.Inputs[0].Name = "image"
	graph.Save(m, other)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"compare", model, q}, 2, "--data is required"},
		{[]string{"compare", model, "--data", calib}, 2, "expected FLOAT.onnx and QUANT.onnx"},
		{[]string{"compare", model, q, "--data", calib, "--report", filepath.Join(dir, "r.txt")}, 2, ".json, .csv or .html"},
		{[]string{"compare", model, other, "--data", calib}, 1, "different inputs"},
		{[]string{"compare", model, filepath.Join(dir, "missing.onnx"), "--data", calib}, 1, "no such file"},
		{[]string{"compare", model, q, "--data", filepath.Join(dir, "nodata")}, 1, "nodata"},
	} {
		code, _, errOut := runCLI(c.args...)
		first, _, _ := strings.Cut(errOut, "\n")
		if code != c.code || !strings.Contains(first, c.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args[1:], code, errOut, c.code, c.want)
		}
		if code == 1 {
			oneLine(t, errOut)
		}
	}
}

// TestSensitivityAndTuneCommands: sensitivity ranks the planted node
// first; tune raises exactly it and writes overrides convert takes; an
// unreachable target exits 1 and writes the best overrides under a name
// that says so.
func TestSensitivityAndTuneCommands(t *testing.T) {
	dir, model, calib := planted(t)
	sens := filepath.Join(dir, "sens.csv")
	plots := filepath.Join(dir, "plots")
	code, out, errOut := runCLI("sensitivity", model, "--calib", calib, "--report", sens, "--plots", plots, "--threads", "1")
	if code != 0 || !strings.Contains(out, "1   ") || !strings.Contains(strings.SplitN(out, "\n", 4)[2], testmodels.PlantedNode) {
		t.Fatalf("sensitivity exit %d: %s %s", code, out, errOut)
	}
	if b, _ := os.ReadFile(sens); !strings.Contains(string(b), "1,"+testmodels.PlantedNode+",Conv,quant-one") {
		t.Errorf("sensitivity csv: %.200s", b)
	}
	qj, qa, qm := filepath.Join(dir, "q.json"), filepath.Join(dir, "q.aimet.json"), filepath.Join(dir, "tuned.onnx")
	tplots := filepath.Join(dir, "tune-plots")
	code, out, errOut = runCLI("tune", model, "--calib", calib, "--target-cos", "0.999", "--overrides-out", qj, "-o", qm, "--plots", tplots, "--threads", "1")
	if code != 0 || !strings.Contains(out, "1 of") {
		t.Fatalf("tune exit %d: %s %s", code, out, errOut)
	}
	// --plots: the sensitivity bar chart and tune's trade-off curves as PNGs.
	for _, d := range []string{plots, tplots} {
		ents, err := os.ReadDir(d)
		if err != nil || len(ents) == 0 {
			t.Fatalf("--plots %s: %v, %d files", d, err, len(ents))
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err != nil || !strings.HasSuffix(e.Name(), ".png") || len(b) < 1000 || string(b[1:4]) != "PNG" {
				t.Errorf("%s/%s: not a PNG figure (%d bytes, %v)", d, e.Name(), len(b), err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(plots, "sensitivity.png")); err != nil {
		t.Error(err)
	}
	code, out, errOut = runCLI("convert", model, "-o", filepath.Join(dir, "again.onnx"), "--calib", calib, "--overrides", qj)
	if code != 0 || strings.Contains(out, "BELOW") {
		t.Errorf("convert with the tuned overrides: exit %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(qm); err != nil {
		t.Error(err)
	}
	if code, _, errOut = runCLI("tune", model, "--calib", calib, "--target-cos", "0.999", "--overrides-out", qa, "--format", "aimet", "--threads", "1"); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut = runCLI("convert", model, "-o", filepath.Join(dir, "again2.onnx"), "--calib", calib, "--overrides", qa); code != 0 || strings.Contains(out, "BELOW") {
		t.Errorf("convert with the AIMET-dialect overrides: exit %d %s %s", code, out, errOut)
	}
	// Unreachable: 150 dB.
	qu := filepath.Join(dir, "u.json")
	code, _, errOut = runCLI("tune", model, "--calib", calib, "--target-sqnr", "150", "--max-raise", "2", "--overrides-out", qu, "--threads", "1")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || !strings.Contains(lines[len(lines)-1], "target not met") || !strings.Contains(lines[len(lines)-1], "u.best-unmet.json") {
		t.Errorf("unmet: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "u.best-unmet.json")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(qu); err == nil {
		t.Error("an unmet target wrote the plain overrides name")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tune", model, "--calib", calib, "--overrides-out", qj}, "give one target"},
		{[]string{"tune", model, "--calib", calib, "--target-cos", "0.9"}, "--overrides-out"},
		{[]string{"tune", model, "--calib", calib, "--target-cos", "0.9", "--overrides-out", qj, "--prefer", "int3"}, "--prefer"},
		{[]string{"tune", model, "--calib", calib, "--eval-cmd", "echo nothing", "--target", "1", "--overrides-out", qj}, "printed no number"},
		{[]string{"tune", model, "--calib", calib, "--eval-cmd", "exit 4", "--target", "1", "--overrides-out", qj}, "failed"},
		{[]string{"sensitivity", model, "--calib", calib, "--mode", "other"}, "quant-one or float-one"},
	} {
		code, _, errOut := runCLI(c.args...)
		// tune logs its steps first; the error is the last line (the first
		// for usage errors, which add a hint).
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		last := lines[len(lines)-1]
		if code == 2 {
			last = lines[0]
		}
		if code == 0 || !strings.Contains(last, c.want) {
			t.Errorf("%v: exit %d, %q; want %q", c.args[2:], code, errOut, c.want)
		}
	}
}

// TestComparePeakRSSIndependentOfSamples: layerwise compare of PaddleOCR cls
// with 200 samples peaks within 10% of 20 samples (median of three child
// processes each, one thread).
func TestComparePeakRSSIndependentOfSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("compares ten times in child processes")
	}
	dir := t.TempDir()
	model := testdata.OCRModel(t, "cls")
	cal := filepath.Join(dir, "calib")
	os.MkdirAll(cal, 0o755)
	for i := 0; i < 200; i++ {
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%03d.npy", i)), testdata.OCRInput("cls", 48, 192, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	q := filepath.Join(dir, "q.onnx")
	if code, _, errOut := runCLI("convert", model, "-o", q, "--calib", cal, "--calib-size", "20", "--no-measure"); code != 0 {
		t.Fatal(errOut)
	}
	peak := func(n int) float64 {
		rep := filepath.Join(dir, fmt.Sprintf("r%d.json", n))
		return medianPeakMiB(t, []string{"GOMAXPROCS=1"}, "compare", model, q, "--data", cal, "--calib-size", fmt.Sprint(n), "--layerwise", "--stats", rep+".csv", "--threads", "1")
	}
	p20, p200 := peak(20), peak(200)
	t.Logf("peak RSS of onnxq compare --layerwise --stats on PaddleOCR cls (median of 3): %.1f MiB with 20 samples, %.1f MiB with 200 (%+.1f%%)", p20, p200, 100*(p200/p20-1))
	if p200 > 1.1*p20 {
		t.Errorf("peak RSS grows with the samples: %.1f -> %.1f MiB", p20, p200)
	}
}

// TestTuneAndCompareFromConfig: [tune] and [compare] tables drive the
// commands like their flags; flags override them; a bad value names the key.
func TestTuneAndCompareFromConfig(t *testing.T) {
	dir, model, calib := planted(t)
	out := filepath.Join(dir, "q.json")
	cfg := filepath.Join(dir, "run.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("model = %q\n[calib]\npath = %q\n[tune]\ntarget_cos = 0.999\nprefer = \"float\"\noverrides_out = %q\n[compare]\nlayerwise = true\ncos_threshold = 0.5\n", model, calib, out)), 0o644)
	if code, _, errOut := runCLI("tune", "--config", cfg, "--threads", "1"); code != 0 {
		t.Fatal(errOut)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), `"float": true`) || !strings.Contains(string(b), testmodels.PlantedTensor) {
		t.Errorf("tuned overrides from the config: %s", b)
	}
	q := filepath.Join(dir, "q.onnx")
	if code, _, errOut := runCLI("convert", model, "-o", q, "--calib", calib, "--no-measure"); code != 0 {
		t.Fatal(errOut)
	}
	// [compare] cos_threshold 0.5 and layerwise: the planted tensor is still
	// first (its channel SQNR is under 20 dB) and the flag overrides the table.
	code, stdout, errOut := runCLI("compare", model, q, "--config", cfg, "--data", calib)
	if code != 0 || !strings.Contains(stdout, "layerwise") || !strings.Contains(stdout, "thresholds 0.5, 20 dB") {
		t.Errorf("compare from the config: exit %d %s %s", code, stdout, errOut)
	}
	os.WriteFile(cfg, []byte("[tune]\nprefer = \"int3\"\n"), 0o644)
	if code, _, errOut := runCLI("tune", model, "--config", cfg, "--calib", calib, "--target-cos", "0.9", "--overrides-out", out); code != 1 || !strings.Contains(errOut, "tune.prefer") {
		t.Errorf("bad [tune] value: exit %d %s", code, errOut)
	}
}

// TestSensitivityPeakRSSIndependentOfSamples: sensitivity analysis of
// PaddleOCR cls at 2 threads (variants in lanes) with 64 samples peaks
// within 10% of 16 samples (median of three child processes each). Not
// fewer than 16: the first samples' garbage fills the collector's allowance
// (heappace, 32 MiB), which a short run does not reach (before session 47:
// 198 MiB at 4 samples, 218-220 at 8, 16, 64 and 128; since the executor
// reuses its tensors' structs, less garbage a run: 183-186 at 4, 192 at 8,
// 210-212 at 16, 32 and 64).
func TestSensitivityPeakRSSIndependentOfSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("ranks six times in child processes")
	}
	dir := t.TempDir()
	model := testdata.OCRModel(t, "cls")
	cal := filepath.Join(dir, "calib")
	os.MkdirAll(cal, 0o755)
	for i := 0; i < 64; i++ {
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%03d.npy", i)), testdata.OCRInput("cls", 48, 192, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	peak := func(n int) float64 {
		return medianPeakMiB(t, nil, "sensitivity", model, "--calib", cal, "--calib-size", fmt.Sprint(n), "--threads", "2", "--top", "1")
	}
	p16, p64 := peak(16), peak(64)
	t.Logf("peak RSS of onnxq sensitivity on PaddleOCR cls, 2 threads (median of 3): %.1f MiB with 16 samples, %.1f MiB with 64 (%+.1f%%)", p16, p64, 100*(p64/p16-1))
	if p64 > 1.1*p16 {
		t.Errorf("peak RSS grows with the samples: %.1f -> %.1f MiB", p16, p64)
	}
}

// medianPeakMiB runs onnxq with args in three child processes (env added
// to theirs) and returns the median of their peak RSS in MiB.
func medianPeakMiB(t *testing.T, env []string, args ...string) float64 {
	t.Helper()
	var runs []float64
	for k := 0; k < 3; k++ {
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", os.Args[0]}, args...)...)
		cmd.Env = append(append(os.Environ(), "ONNXQ_AS_CLI=1"), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var kb float64
		if _, err := fmt.Sscan(lines[len(lines)-1], &kb); err != nil {
			t.Fatalf("no RSS in %q", lines[len(lines)-1])
		}
		runs = append(runs, kb/1024)
	}
	slices.Sort(runs)
	return runs[1]
}
