package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

// TestConvertSmoothQuantAndPerToken: --smooth-quant reports what it folded
// (the two norms and Gelu's final Mul by 0.5; o_proj gets a Mul),
// --dynamic-granularity token writes ORT's MatMulIntegerToFloat with
// --weight-format ort, and bad values are usage errors.
func TestConvertSmoothQuantAndPerToken(t *testing.T) {
	dir := t.TempDir()
	m := testmodels.OutlierBlock(1)
	model := filepath.Join(dir, "block.onnx")
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	samples, err := testmodels.Samples("outlier-block", m, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(dir, "calib")
	if err := os.MkdirAll(cal, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%d.npy", i)), s["input"]); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "sq.onnx")
	code, _, errOut := runCLI("convert", model, "-o", out, "--calib", cal, "--smooth-quant", "0.5")
	if code != 0 || !strings.Contains(errOut, "smooth quant   4 tensors into 6 layers: 1/s folded upstream for 3, a Mul inserted for 1") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out = filepath.Join(dir, "tok.onnx")
	code, _, errOut = runCLI("convert", model, "-o", out, "--dynamic", "--dynamic-granularity", "token", "--weight-format", "ort", "--weight-type", "uint8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, nd := range q.Graph.Nodes {
		if nd.OpType == "MatMulIntegerToFloat" && nd.Domain == "com.microsoft" {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d MatMulIntegerToFloat nodes, want the block's 6 projections", n)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--calib", cal, "--smooth-quant", "1.5"}, 2, "--smooth-quant: 1.5 is not in [0, 1]"},
		{[]string{"--smooth-quant", "0.5"}, 1, "smooth quant needs calibration data (--calib)"},
		{[]string{"--dynamic", "--dynamic-granularity", "row"}, 2, `--dynamic-granularity: "row" is not one of tensor, token`},
		{[]string{"--weight-only", "--dynamic-granularity", "token"}, 1, "per-token activation scales are for dynamic quantization (--dynamic)"},
	} {
		o := filepath.Join(dir, "bad.onnx")
		code, _, errOut := runCLI(append([]string{"convert", model, "-o", o}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %d %q", c.args, code, errOut, c.code, c.want)
		}
		if _, err := os.Stat(o); !os.IsNotExist(err) {
			t.Errorf("%v: output written despite the error", c.args)
		}
	}
}
