package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
	"google.golang.org/protobuf/proto"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), append([]string{"onnxq"}, args...), &o, &e)
	return code, o.String(), e.String()
}

func demoModel(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "demo.onnx")
	if err := graph.Save(testmodels.ConvBNReLU(1), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInspectText(t *testing.T) {
	p := demoModel(t)
	code, out, errOut := runCLI("inspect", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"ir_version     11", "opsets         ai.onnx 13", "producer       onnxq-testmodels",
		"input  float32[1,3,32,32]", "logits  float32[1,10]", "Conv                3",
		"BatchNormalization  3", "external data  none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestInspectJSONAndFlagAfterArg(t *testing.T) {
	p := demoModel(t)
	code, out, errOut := runCLI("inspect", p, "--json") // flags after the positional argument work
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s graph.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	// 3 convs (432+16, 2304+16, 4608+32), 3 BNs (4*16, 4*16, 4*32), Gemm 320+10.
	want := int64(432 + 16 + 2304 + 16 + 4608 + 32 + 64 + 64 + 128 + 320 + 10)
	if s.Parameters != want || s.ParameterBytes != 4*want {
		t.Errorf("parameters %d (%d bytes), want %d", s.Parameters, s.ParameterBytes, want)
	}
	if len(s.Inputs) != 1 || s.Inputs[0].Type != "float32[1,3,32,32]" {
		t.Errorf("inputs %+v", s.Inputs)
	}
}

// TestInspectPaddleOCR checks the parameter count against an independent count of
// the Constant-node tensors, read straight from the protobuf.
func TestInspectPaddleOCR(t *testing.T) {
	for _, kind := range []string{"det", "rec", "cls"} {
		p := testdata.OCRModel(t, kind)
		b, _ := os.ReadFile(p)
		mp := &onnxpb.ModelProto{}
		if err := proto.Unmarshal(b, mp); err != nil {
			t.Fatal(err)
		}
		var want int64
		for _, n := range mp.Graph.Node {
			if n.GetOpType() == "Constant" {
				for _, a := range n.Attribute {
					if a.T != nil {
						c := int64(1)
						for _, d := range a.T.Dims {
							c *= d
						}
						want += c
					}
				}
			}
		}
		if want < 100000 {
			t.Fatalf("%s: implausible reference count %d", kind, want)
		}
		code, out, errOut := runCLI("inspect", "--json", p)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", kind, code, errOut)
		}
		var s graph.Summary
		json.Unmarshal([]byte(out), &s)
		if s.Parameters != want {
			t.Errorf("%s: %d parameters, want %d", kind, s.Parameters, want)
		}
		t.Logf("%s: %d parameters in %d Constant nodes", kind, s.Parameters, s.ConstantNodes)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.onnx")
	os.WriteFile(junk, []byte("not a model at all"), 0o644)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect"}, 2, "inspect: missing MODEL"},
		{[]string{"inspect", "a", "b"}, 2, "expected one MODEL, got 2"},
		{[]string{"inspect", "--nope", "x"}, 2, "flag provided but not defined: -nope"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"inspect", filepath.Join(dir, "missing.onnx")}, 1, "missing.onnx: no such file or directory"},
		{[]string{"inspect", junk}, 1, "junk.onnx: not"},
		{[]string{"inspect", ""}, 1, "no model path given"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if c.code == 2 && (len(lines) != 2 || !strings.Contains(lines[1], "see 'onnxq --help'")) {
			t.Errorf("%v: usage error should be one line plus the help hint: %q", c.args, errOut)
		}
		if c.code == 1 && len(lines) != 1 {
			t.Errorf("%v: %d error lines, want 1: %q", c.args, len(lines), errOut)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCLI("--help")
	if code != 0 || !strings.Contains(out, "onnxq inspect model.onnx") || !strings.Contains(out, "inspect") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("version")
	if code != 0 || !strings.HasPrefix(out, "onnxq ") {
		t.Errorf("version: exit %d %q", code, out)
	}
}
