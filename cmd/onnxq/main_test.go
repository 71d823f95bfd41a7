package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/overrides"
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

// demoCalib writes n samples for the demo model into dir/calib, element j of
// sample i being value(i, j).
func demoCalib(t *testing.T, dir string, n int, value func(i, j int) float32) string {
	t.Helper()
	cal := filepath.Join(dir, "calib")
	if err := os.MkdirAll(cal, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		x := graph.NewTensor(graph.Float, []int{1, 3, 32, 32})
		for j, d := 0, x.Float32s(); j < len(d); j++ {
			d[j] = value(i, j)
		}
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%d.npy", i)), x); err != nil {
			t.Fatal(err)
		}
	}
	return cal
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

func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	in := filepath.Join(dir, "in.npy")
	x := graph.Float32Tensor([]int{1, 3, 32, 32}, make([]float32, 3*32*32))
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(i%7) - 3
	}
	if err := npy.WriteFile(in, x); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, _, errOut := runCLI("run", model, "--input", "input="+in, "--output-dir", out, "--threads", "1", "--repeat", "3", "--timing")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "forward pass: median") || !strings.Contains(errOut, "peak RSS") {
		t.Errorf("timing line missing: %q", errOut)
	}
	got, err := npy.ReadFile(filepath.Join(out, "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	// The same forward pass through the library gives the same logits.
	m, _ := graph.Load(model)
	s, _ := kernels.NewSession(m, kernels.Options{Threads: 1})
	want, _ := s.Run(map[string]*graph.Tensor{"input": x})
	if fmt.Sprint(got.Float32s()) != fmt.Sprint(want["logits"].Float32s()) || fmt.Sprint(got.Shape) != "[1 10]" {
		t.Errorf("logits.npy = %v %v, want %v", got.Shape, got.Float32s(), want["logits"].Float32s())
	}
	// A one-input model takes a bare file name.
	if code, _, errOut := runCLI("run", model, "--input", in, "-o", out); code != 0 {
		t.Errorf("bare input: exit %d %s", code, errOut)
	}
	// And a serialized TensorProto (the ONNX test data's input_0.pb).
	b, err := proto.Marshal(x.ToProto())
	if err != nil {
		t.Fatal(err)
	}
	pb := filepath.Join(dir, "input_0.pb")
	if err := os.WriteFile(pb, b, 0o644); err != nil {
		t.Fatal(err)
	}
	pbOut := filepath.Join(dir, "pbout")
	if code, _, errOut := runCLI("run", model, "--input", pb, "-o", pbOut); code != 0 {
		t.Fatalf("a .pb input: exit %d %s", code, errOut)
	}
	if got, err := npy.ReadFile(filepath.Join(pbOut, "logits.npy")); err != nil || fmt.Sprint(got.Float32s()) != fmt.Sprint(want["logits"].Float32s()) {
		t.Errorf("a .pb input: %v %v", got, err)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	wrong := filepath.Join(dir, "wrong.npy")
	npy.WriteFile(wrong, graph.Float32Tensor([]int{1, 3, 16, 16}, make([]float32, 3*16*16)))
	junk := filepath.Join(dir, "junk.npy")
	os.WriteFile(junk, []byte("nope"), 0o644)
	// A model with an op onnxq has no kernel for.
	um := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	xin := um.Graph.AddInput("x", graph.Float, []int64{2})
	n := um.Graph.AddNode("Frobnicate", "frob_node", []*graph.Value{xin}, []string{"y"})
	um.Graph.AddOutput(n.Output())
	unsupported := filepath.Join(dir, "unsupported.onnx")
	graph.Save(um, unsupported)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", model, "-o", dir}, 1, `input "input" is missing: give --input input=FILE.npy`},
		{[]string{"run", model, "--input", "input=" + wrong, "-o", dir}, 1, `input "input": expected shape [1 3 32 32], got [1 3 16 16]`},
		{[]string{"run", model, "--input", "input=" + junk, "-o", dir}, 1, "not a .npy file"},
		{[]string{"run", model, "--input", "nosuch=" + wrong, "-o", dir}, 1, `the model has no input "nosuch"`},
		{[]string{"run", unsupported, "--input", wrong, "-o", dir}, 1, `node "frob_node" (Frobnicate): unsupported op Frobnicate (domain ai.onnx) at opset 17`},
		{[]string{"run", model, "--input", wrong}, 2, "--output-dir is required"},
		{[]string{"run", model, "--repeat", "0", "-o", dir}, 2, "--repeat must be at least 1"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", c.args[1:], code, errOut, c.code, c.want)
		}
	}
}

func TestOptimizeCommand(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	out := filepath.Join(dir, "opt.onnx")
	rep := filepath.Join(dir, "rep.json")
	code, _, errOut := runCLI("optimize", model, "-o", out, "--passes", "default,upgrade-opset:17", "--verify", "--report", rep)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.OpsetVersion("") != 17 {
		t.Errorf("opset %d", m.OpsetVersion(""))
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "BatchNormalization" {
			t.Error("BatchNormalization left")
		}
	}
	var r struct {
		Passes []struct {
			Pass       string  `json:"pass"`
			Count      int     `json:"count"`
			MaxRelDiff float64 `json:"max_rel_diff"`
		} `json:"passes"`
		Verified bool `json:"verified"`
	}
	b, _ := os.ReadFile(rep)
	if err := json.Unmarshal(b, &r); err != nil || !r.Verified || len(r.Passes) != 10 {
		t.Errorf("report %s (%v)", b, err)
	}
	// --fold-bn=false keeps the BatchNormalizations.
	if code, _, errOut := runCLI("optimize", model, "-o", out, "--fold-bn=false"); code != 0 {
		t.Fatalf("--fold-bn=false: %d %s", code, errOut)
	}
	if m, _ := graph.Load(out); m == nil || func() int {
		n := 0
		for _, x := range m.Graph.Nodes {
			if x.OpType == "BatchNormalization" {
				n++
			}
		}
		return n
	}() != 3 {
		t.Error("--fold-bn=false folded")
	}
	// Weights can go to an external data file.
	ext := filepath.Join(dir, "ext.onnx")
	if code, _, errOut := runCLI("optimize", model, "-o", ext, "--external-data-threshold", "1024"); code != 0 {
		t.Fatalf("external: %d %s", code, errOut)
	}
	if m, err := graph.Load(ext); err != nil || len(m.ExternalFiles()) != 1 {
		t.Errorf("external data: %v", err)
	}
	// --passes none is a plain round trip.
	if code, _, errOut := runCLI("optimize", model, "-o", out, "--passes", "none"); code != 0 {
		t.Fatalf("none: %d %s", code, errOut)
	}
	a, _ := os.ReadFile(model)
	c, _ := os.ReadFile(out)
	if !bytes.Equal(a, c) {
		t.Error("--passes none changed the model")
	}
	code, out2, _ := runCLI("passes")
	if code != 0 || !strings.Contains(out2, "fold-bn") || !strings.Contains(out2, "cle") {
		t.Errorf("passes: %d %s", code, out2)
	}
}

func TestOptimizeErrorsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--passes", "default,frobnicate"}, 2, `unknown pass "frobnicate"`},
		{[]string{"--passes", "upgrade-opset:25"}, 2, "opset 25 cannot be reached"},
		{[]string{"--passes", "upgrade-opset:11"}, 1, "downgrading to 11 is not supported"},
		{[]string{"--standalone-bn", "drop"}, 2, `"drop" is not muladd or keep`},
	}
	for i, c := range cases {
		out := filepath.Join(dir, fmt.Sprintf("o%d.onnx", i))
		code, _, errOut := runCLI(append([]string{"optimize", model, "-o", out}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %d %q", c.args, code, errOut, c.code, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%v: output written despite the error", c.args)
		}
	}
	if code, _, errOut := runCLI("optimize", model, "-o", model); code != 2 || !strings.Contains(errOut, "overwrite the input") {
		t.Errorf("overwrite: %d %s", code, errOut)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left files: %v", entries)
	}
}

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	cal := demoCalib(t, dir, 4, func(i, j int) float32 { return float32((i+j)%11) - 5 })
	out := filepath.Join(dir, "q.onnx")
	code, _, errOut := runCLI("convert", model, "-o", out, "--calib", cal, "--observer", "entropy", "--report", filepath.Join(dir, "r.json"))
	if code != 0 || !strings.Contains(errOut, "quantized      8 activations, 4 weights, 4 biases") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range q.Graph.Nodes {
		if x.OpType == "QuantizeLinear" {
			n++
		}
	}
	if n != 8 {
		t.Errorf("%d QuantizeLinear nodes", n)
	}
	wrong := filepath.Join(dir, "wrong")
	os.MkdirAll(wrong, 0o755)
	npy.WriteFile(filepath.Join(wrong, "0.npy"), graph.NewTensor(graph.Float, []int{1, 3, 16, 16}))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 1, "no calibration data given (--calib)"},
		{[]string{"--calib", wrong}, 1, `0.npy: input "input" expects shape [1 3 32 32], the file holds [1 3 16 16]`},
		{[]string{"--calib", filepath.Join(dir, "empty-missing")}, 1, "no such file or directory"},
		{[]string{"--calib", cal, "--observer", "kl"}, 2, `--observer: "kl" is not one of minmax, percentile, entropy, mse`},
		{[]string{"--calib", cal, "--runtime", "npu"}, 2, `--runtime: "npu" is not one of generic, ort, ort-vnni`},
		{[]string{"--calib", cal, "--activation-type", "int5"}, 2, `--activation-type: "int5" is not one of uint8`},
	}
	for i, c := range cases {
		o := filepath.Join(dir, fmt.Sprintf("bad%d.onnx", i))
		code, _, errOut := runCLI(append([]string{"convert", model, "-o", o}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %d %q", c.args, code, errOut, c.code, c.want)
		}
		if _, err := os.Stat(o); !os.IsNotExist(err) {
			t.Errorf("%v: output written despite the error", c.args)
		}
	}
}

// TestEncodingsRoundTrip: convert -> --encodings-out -> convert with those
// encodings as --overrides and no calibration data -> the same bytes.
func TestEncodingsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	cal := demoCalib(t, dir, 4, func(i, j int) float32 { return float32((i*7+j)%13) / 3 })
	for _, extra := range [][]string{nil, {"--weight-type", "int4", "--activation-type", "uint16"}} {
		a, b := filepath.Join(dir, "a.onnx"), filepath.Join(dir, "b.onnx")
		enc := filepath.Join(dir, "enc.json")
		if code, _, errOut := runCLI(append([]string{"convert", model, "-o", a, "--calib", cal, "--encodings-out", enc}, extra...)...); code != 0 {
			t.Fatalf("first convert: %s", errOut)
		}
		if code, _, errOut := runCLI(append([]string{"convert", model, "-o", b, "--overrides", enc}, extra...)...); code != 0 {
			t.Fatalf("convert from encodings: %s", errOut)
		}
		ab, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		if !bytes.Equal(ab, bb) {
			t.Errorf("%v: the model rebuilt from its encodings differs (%d vs %d bytes)", extra, len(ab), len(bb))
		}
		// The same through AIMET's formats: export, import as overrides.
		for _, format := range []string{"aimet-1.0", "aimet-0.6"} {
			aj := filepath.Join(dir, format+".json")
			if code, _, errOut := runCLI("encodings", "export", enc, "--format", format, "-o", aj); code != 0 {
				t.Fatalf("export %s: %s", format, errOut)
			}
			c := filepath.Join(dir, "c.onnx")
			if code, _, errOut := runCLI(append([]string{"convert", model, "-o", c, "--overrides", aj}, extra...)...); code != 0 {
				t.Fatalf("convert from %s: %s", format, errOut)
			}
			if cb, _ := os.ReadFile(c); !bytes.Equal(ab, cb) {
				t.Errorf("%v: the model rebuilt from %s encodings differs (%d vs %d bytes)", extra, format, len(ab), len(cb))
			}
		}
	}
	// A FLOAT entry keeps that activation in float: no QuantizeLinear reads it,
	// and the report says why.
	fl := filepath.Join(dir, "float.json")
	os.WriteFile(fl, []byte(`{"version": "1.0.0", "activation_encodings": [{"name": "input", "dtype": "FLOAT", "bw": 16}], "param_encodings": []}`), 0o644)
	fm, rep := filepath.Join(dir, "f.onnx"), filepath.Join(dir, "f.json")
	if code, _, errOut := runCLI("convert", model, "-o", fm, "--calib", cal, "--overrides", fl, "--report", rep); code != 0 {
		t.Fatalf("float override: %s", errOut)
	}
	m, err := graph.Load(fm)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "QuantizeLinear" && n.Inputs[0] != nil && n.Inputs[0].Name == "input" {
			t.Errorf("input is quantized despite the FLOAT entry")
		}
	}
	if rb, _ := os.ReadFile(rep); !strings.Contains(string(rb), `"reason": "overrides: tensors[\"input\"]"`) {
		t.Errorf("report does not list the float tensor")
	}
	// AIMET offsets out of the grid name their JSON path.
	badA := filepath.Join(dir, "bad_aimet.json")
	os.WriteFile(badA, []byte(`{"version": "0.6.1", "activation_encodings": {"input": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "offset": 5, "scale": 0.1}]}, "param_encodings": {}}`), 0o644)
	if code, _, errOut := runCLI("convert", model, "-o", filepath.Join(dir, "z.onnx"), "--calib", cal, "--overrides", badA); code != 1 || !strings.Contains(errOut, `activation_encodings["input"][0].offset: 5 puts the zero point outside the 8-bit grid`) {
		t.Errorf("bad AIMET offset: %d %q", code, errOut)
	}
	// Bad overrides: one line, exit 1, nothing written.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version": 1, "tensors": {"input": {"encoding": {"dtype": "uint8", "scale": [0.1], "zero_point": [300]}}}}`), 0o644)
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"version": 1, "tensors": {"nosuch": {"encoding": {"dtype": "uint8", "scale": [0.1], "zero_point": [0]}}}}`), 0o644)
	typo := filepath.Join(dir, "typo.json")
	os.WriteFile(typo, []byte(`{"version": 1, "tensor": {}}`), 0o644)
	for path, want := range map[string]string{
		bad:     `tensors["input"].encoding.zero_point[0]: 300 is outside uint8's range [0, 255]`,
		unknown: `tensors["nosuch"]: the model has no "nosuch" (closest: `,
		typo:    `tensor: unknown key`,
	} {
		out := filepath.Join(dir, "x.onnx")
		code, _, errOut := runCLI("convert", model, "-o", out, "--overrides", path, "--calib", cal)
		if code != 1 || !strings.Contains(errOut, want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: exit %d %q, want %q", filepath.Base(path), code, errOut, want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: output written", filepath.Base(path))
		}
	}
	// Without --calib and without full encodings: says which tensors lack one.
	if code, _, errOut := runCLI("convert", model, "-o", filepath.Join(dir, "y.onnx")); code != 1 || !strings.Contains(errOut, "7 tensors have no explicit encoding (input, ") {
		t.Errorf("no calib: %d %q", code, errOut)
	}
}

// TestConvertConfig: a TOML run config drives convert; flags override it;
// --print-config shows the merged result; bad keys name the file's line.
func TestConvertConfig(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	cal := demoCalib(t, dir, 4, func(i, j int) float32 { return float32((i*7+j)%13) - 6 })
	out, rep := filepath.Join(dir, "q.onnx"), filepath.Join(dir, "r.json")
	cfg := filepath.Join(dir, "run.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`model = %q
output = %q
[calib]
path = %q
[observer]
kind = "percentile"
percentile = 99.9
[report]
json = %q
[overrides.op_types.Gemm]
activation_dtype = "uint16"
[overrides.tensors.input]
min = -6.0
max = 6.0
`, model, out, cal, rep)), 0o644)
	code, _, errOut := runCLI("convert", "--config", cfg, "--observer", "mse")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Tensors []struct {
			Name, Observer string
			Encoding       struct{ DType int }
			Range          []float32
		}
	}
	b, _ := os.ReadFile(rep)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tr := range r.Tensors {
		switch {
		case tr.Name == "input":
			seen["input"] = tr.Observer == "pinned range" && tr.Range[0] == -6 && tr.Range[1] == 6
		case tr.Observer != "":
			if tr.Observer != "mse" {
				t.Errorf("%s: observer %s, want the flag's mse over the file's percentile", tr.Name, tr.Observer)
			}
			seen["observer"] = true
		}
		if tr.Encoding.DType == int(graph.Uint16) {
			seen["uint16"] = true
		}
	}
	if len(seen) != 3 || !seen["input"] {
		t.Errorf("report: %v", seen)
	}

	// Paths in a config file are relative to its folder.
	sub := filepath.Join(dir, "sub")
	os.MkdirAll(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "rel.toml"), []byte("output = \"q.onnx\"\n[calib]\npath = \"../calib\"\n"), 0o644)
	code, stdout, _ := runCLI("convert", "--config", filepath.Join(sub, "rel.toml"), "--print-config")
	if rel, err := overrides.ParseConfig([]byte(stdout), "printed"); code != 0 || err != nil || rel.Output != filepath.Join(sub, "q.onnx") || rel.Calib.Path != cal {
		t.Errorf("relative paths: exit %d, %v, output %q calib %q", code, err, rel.Output, rel.Calib.Path)
	}

	// --print-config: the file, the flag and the positional model, merged.
	code, stdout, errOut = runCLI("convert", "other.onnx", "--config", cfg, "--bins", "512", "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	c, err := overrides.ParseConfig([]byte(stdout), "printed")
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	emb, err := c.Embedded()
	if err != nil || c.Model != "other.onnx" || c.Output != out || c.Observer.Kind != "percentile" || c.Observer.Percentile != 99.9 || c.Observer.Bins != 512 || emb.OpTypes["Gemm"].ActivationDType != "uint16" {
		t.Errorf("printed config %+v (%v)\n%s", c, err, stdout)
	}

	// Errors: the file's key and line; a flag's name; missing names.
	bad := filepath.Join(dir, "bad.toml")
	for _, c := range []struct {
		toml string
		args []string
		code int
		want string
	}{
		{"[observer]\nkind = \"kl\"\n", nil, 1, `bad.toml:2: observer.kind: "kl" is not one of`},
		{"[calib]\npaht = \"x\"\n", nil, 1, `bad.toml:2: calib.paht: unknown key`},
		{"[overrides.tensors.input]\nmin = 1.0\nmax = 0.0\n", nil, 1, `bad.toml:2: overrides.tensors.input.min: 1 is above max 0`},
		{"", []string{"--weight-type", "int7"}, 2, `--weight-type: "int7" is not one of`},
		{"[overrides.nodes.Conv_9]\nweight_dtype = \"int4\"\n", nil, 1, `nodes["Conv_9"]: the model has no "Conv_9" (closest:`},
		{"[overrides.nodes.Conv_9]\nweight_dtype = \"int4\"\n", []string{"--allow-missing"}, 0, `nodes["Conv_9"]: the model has no "Conv_9" (closest: "Conv_1"`},
	} {
		os.WriteFile(bad, []byte(c.toml), 0o644)
		o := filepath.Join(dir, "bad.onnx")
		args := append([]string{"convert", model, "-o", o, "--calib", cal, "--config", bad}, c.args...)
		code, _, errOut := runCLI(args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%q %v: exit %d %q, want %d %q", c.toml, c.args, code, errOut, c.code, c.want)
		}
		if _, err := os.Stat(o); (err == nil) != (c.code == 0) {
			t.Errorf("%q: output present %v with exit %d", c.toml, err == nil, code)
		}
		os.Remove(o)
	}
}

// TestRunInteger: --integer runs the QDQ Conv groups as QLinearConv.
func TestRunInteger(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	cal := demoCalib(t, dir, 1, func(_, j int) float32 { return float32(j%7) - 3 })
	q := filepath.Join(dir, "q.onnx")
	if code, _, errOut := runCLI("convert", model, "-o", q, "--calib", cal); code != 0 {
		t.Fatal(errOut)
	}
	code, _, errOut := runCLI("run", q, "--input", filepath.Join(cal, "0.npy"), "--output-dir", filepath.Join(dir, "o"), "--integer")
	if code != 0 || !strings.Contains(errOut, "integer: 3 Conv groups run as QLinearConv") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "o", "logits.npy")); err != nil {
		t.Fatal(err)
	}
}

// TestMain lets a test run this binary as the onnxq command in a child
// process (ONNXQ_AS_CLI=1), so peak RSS is measured per conversion.
func TestMain(m *testing.M) {
	if os.Getenv("ONNXQ_AS_CLI") == "1" {
		os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestPeakRSSIndependentOfSamples: converting the PaddleOCR cls model with 500
// calibration samples peaks within 10% of the RSS with 50, on one thread and
// on two (samples in two lanes). Each is the median of five child processes
// (on two threads, goroutine timing moves the peak by a few MiB either way).
func TestPeakRSSIndependentOfSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("converts six times in child processes")
	}
	dir := t.TempDir()
	model := testdata.OCRModel(t, "cls")
	cal := filepath.Join(dir, "calib")
	os.MkdirAll(cal, 0o755)
	for i := 0; i < 500; i++ {
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%03d.npy", i)), testdata.OCRInput("cls", 48, 192, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	peak := func(n, threads int) float64 {
		var runs []float64
		for k := 0; k < 5; k++ {
			rep := filepath.Join(dir, fmt.Sprintf("r%d.json", n))
			cmd := exec.Command(os.Args[0], "convert", model, "-o", filepath.Join(dir, "q.onnx"),
				"--calib", cal, "--calib-size", fmt.Sprint(n), "--threads", fmt.Sprint(threads), "--report", rep, "--no-measure")
			cmd.Env = append(os.Environ(), "ONNXQ_AS_CLI=1", fmt.Sprintf("GOMAXPROCS=%d", threads))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			var r struct {
				Samples int   `json:"calibration_samples"`
				Peak    int64 `json:"peak_rss_bytes"`
			}
			b, _ := os.ReadFile(rep)
			if err := json.Unmarshal(b, &r); err != nil || r.Samples != n || r.Peak <= 0 {
				t.Fatalf("report %s: %v %+v", b, err, r)
			}
			runs = append(runs, float64(r.Peak)/(1<<20))
		}
		slices.Sort(runs)
		return runs[2]
	}
	for _, threads := range []int{1, 2} {
		p50, p500 := peak(50, threads), peak(500, threads)
		t.Logf("peak RSS of onnxq convert on PaddleOCR cls, %d thread(s) (median of 5): %.1f MiB with 50 samples, %.1f MiB with 500 (%+.1f%%)", threads, p50, p500, 100*(p500/p50-1))
		if p500 > 1.1*p50 {
			t.Errorf("%d thread(s): peak RSS grows with the samples: %.1f -> %.1f MiB", threads, p50, p500)
		}
	}
}

// TestConvertImages: a folder of PNGs feeds the demo model through the image
// flags; a broken image is named and nothing is written.
func TestConvertImages(t *testing.T) {
	dir := t.TempDir()
	model := demoModel(t)
	imgs := filepath.Join(dir, "imgs")
	os.MkdirAll(imgs, 0o755)
	for i := 0; i < 3; i++ {
		im := image.NewRGBA(image.Rect(0, 0, 50+i*7, 40))
		for y := 0; y < 40; y++ {
			for x := 0; x < 50+i*7; x++ {
				im.Set(x, y, color.RGBA{uint8(x * 5), uint8(y * 6), uint8((x + y + i*40) % 256), 255})
			}
		}
		f, _ := os.Create(filepath.Join(imgs, fmt.Sprintf("%d.png", i)))
		png.Encode(f, im)
		f.Close()
	}
	out, rep := filepath.Join(dir, "q.onnx"), filepath.Join(dir, "r.json")
	code, _, errOut := runCLI("convert", model, "-o", out, "--calib", imgs, "--image-short-side", "36", "--image-resize", "bicubic",
		"--image-channels", "BGR", "--image-mean", "0.485,0.456,0.406", "--image-std", "0.229,0.224,0.225", "--report", rep)
	if code != 0 || !strings.Contains(errOut, "calibration    3 samples") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Tensors []struct {
			Name  string
			Range []float32
		}
	}
	b, _ := os.ReadFile(rep)
	json.Unmarshal(b, &r)
	seen := false
	for _, tr := range r.Tensors {
		// Pixels scaled to [0, 1] then normalized with these means and stds.
		if tr.Name == "input" {
			seen = true
			if tr.Range[0] < -2.2 || tr.Range[0] > -1.5 || tr.Range[1] < 1.5 || tr.Range[1] > 2.7 {
				t.Errorf("input range %v, want about [-2.1, 2.6]", tr.Range)
			}
		}
	}
	if !seen {
		t.Error("no input range in the report")
	}
	os.WriteFile(filepath.Join(imgs, "3.png"), []byte("\x89PNG\r\n\x1a\nbroken"), 0o644)
	bad := filepath.Join(dir, "bad.onnx")
	code, _, errOut = runCLI("convert", model, "-o", bad, "--calib", imgs)
	if code != 1 || !strings.Contains(errOut, "3.png") {
		t.Errorf("broken image: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("output written despite a broken image")
	}
}

// TestInspectNamesOpsOnnxqCannotRun: ops without a kernel, inside subgraphs
// too, are named in the text and in the JSON.
func TestInspectNamesOpsOnnxqCannotRun(t *testing.T) {
	m := graph.NewModel(graph.Opset{Version: 17}, graph.Opset{Domain: "com.example", Version: 1})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{2})
	c := g.AddInput("c", graph.Bool, nil)
	zap := g.AddNode("Zap", "zap", []*graph.Value{x}, []string{"z"})
	zap.Domain = "com.example"
	branch := func(name, op string) *onnxpb.AttributeProto {
		gp := &onnxpb.GraphProto{Name: &name, Output: []*onnxpb.ValueInfoProto{{Name: proto.String(name + "_y")}},
			Node: []*onnxpb.NodeProto{{OpType: &op, Input: []string{"z"}, Output: []string{name + "_y"}}}}
		return &onnxpb.AttributeProto{Name: &name, Type: onnxpb.AttributeProto_GRAPH.Enum(), G: gp}
	}
	y := g.AddNode("If", "if", []*graph.Value{c}, []string{"y"}, branch("then_branch", "Frobnicate"), branch("else_branch", "Relu")).Output()
	g.AddOutput(y)
	p := filepath.Join(t.TempDir(), "m.onnx")
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("inspect", p)
	if code != 0 || !strings.Contains(out, "onnxq cannot run (run, convert, compare would stop at them): Frobnicate, com.example:Zap") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	_, out, _ = runCLI("inspect", p, "--json")
	var s struct {
		Unsupported []string `json:"unsupported_ops"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || !slices.Equal(s.Unsupported, []string{"Frobnicate", "com.example:Zap"}) {
		t.Fatalf("unsupported_ops %v (%v)", s.Unsupported, err)
	}
}

// TestRunWritesSequenceOutputs: a sequence output is written item by item
// (NAME.0.npy, NAME.1.npy, ...).
func TestRunWritesSequenceOutputs(t *testing.T) {
	dir := t.TempDir()
	m := graph.NewModel(graph.Opset{Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{3, 2})
	r := g.AddNode("Relu", "relu", []*graph.Value{x}, []string{"r"}).Output()
	g.AddOutput(g.AddNode("SplitToSequence", "split", []*graph.Value{r}, []string{"parts"}, graph.AttrIntOf("keepdims", 0)).Output())
	sum := g.AddNode("ReduceSum", "sum", []*graph.Value{r}, []string{"total"}).Output()
	sum.SetTensorType(graph.Float, nil)
	g.AddOutput(sum)
	model, in := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "x.npy")
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	npy.WriteFile(in, graph.Float32Tensor([]int{3, 2}, []float32{1, 2, 3, 4, 5, 6}))
	if code, out, errOut := runCLI("run", model, "--input", in, "-o", dir); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for i, want := range [][]float32{{1, 2}, {3, 4}, {5, 6}} {
		got, err := npy.ReadFile(filepath.Join(dir, fmt.Sprintf("parts.%d.npy", i)))
		if err != nil || !slices.Equal(got.Float32s(), want) || !slices.Equal(got.Shape, []int{2}) {
			t.Fatalf("item %d: %v %v (%v)", i, got.Shape, got.Float32s(), err)
		}
	}
	// convert measures the outputs it can and says which it cannot.
	cal := filepath.Join(dir, "cal")
	os.MkdirAll(cal, 0o755)
	npy.WriteFile(filepath.Join(cal, "a.npy"), graph.Float32Tensor([]int{3, 2}, []float32{1, -2, 3, 4, 5, 6}))
	code, out, errOut := runCLI("convert", model, "-o", filepath.Join(dir, "q.onnx"), "--calib", cal)
	if code != 0 || !strings.Contains(out+errOut, "parts: not measured (not produced as float32 by both models)") {
		t.Fatalf("convert exit %d: %s%s", code, out, errOut)
	}
}
