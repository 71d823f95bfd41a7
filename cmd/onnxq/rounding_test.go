package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConvertWeightRounding: the weight rounding flags and their run config
// keys reach the converter: the report names the algorithm per weight, and
// the summary says what it did.
func TestConvertWeightRounding(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	cal := demoCalib(t, dir, 4, func(i, j int) float32 { return float32((i*7+j)%13) - 6 })
	algoOf := func(report string) map[string]int {
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Tensors []struct {
				Kind     string `json:"kind"`
				Rounding *struct {
					Algorithm string `json:"algorithm"`
				} `json:"rounding"`
			} `json:"tensors"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, tr := range r.Tensors {
			if tr.Kind == "weight" && tr.Rounding != nil {
				got[tr.Rounding.Algorithm]++
			}
		}
		return got
	}
	rep := filepath.Join(dir, "r.json")
	code, _, errOut := runCLI("convert", model, "-o", filepath.Join(dir, "g.onnx"), "--calib", cal, "--weight-type", "int4",
		"--weight-rounding", "gptq", "--weight-range", "mse", "--gptq-act-order", "--gptq-damp", "0.05", "--sequential", "--report", rep)
	if code != 0 || !strings.Contains(errOut, "weight rounding  gptq+mse on 4 weights, output MSE") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := algoOf(rep); got["gptq+mse"] != 4 {
		t.Fatalf("report: %v", got)
	}
	cfg := filepath.Join(dir, "run.toml")
	if err := os.WriteFile(cfg, []byte("[quantization]\nweight_type = \"int4\"\nweight_only = true\n[rounding]\nmethod = \"hqq\"\nbits = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI("convert", model, "-o", filepath.Join(dir, "h.onnx"), "--config", cfg, "--report", rep)
	if code != 0 || algoOf(rep)["hqq"] != 4 {
		t.Fatalf("config: exit %d: %s, report %v", code, errOut, algoOf(rep))
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--weight-only", "--weight-rounding", "gptq"}, 1, "needs calibration data (--calib); nearest and hqq do not"},
		{[]string{"--calib", cal, "--weight-rounding", "gtpq"}, 2, `--weight-rounding: "gtpq" is not one of nearest, gptq, awq, adaround, hqq`},
		{[]string{"--calib", cal, "--weight-bits", "9"}, 2, "--weight-bits: 9 is not in 2..7"},
	} {
		o := filepath.Join(dir, "bad.onnx")
		code, _, errOut := runCLI(append([]string{"convert", model, "-o", o}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %d %q", c.args, code, errOut, c.code, c.want)
		}
	}
}
