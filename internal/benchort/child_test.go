//go:build ort

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

// The test binary serves as the child process too, as benchort does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		if err := childMain(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "benchort child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSamplesRoundTrip(t *testing.T) {
	want := []sample{
		{wall: 1500 * time.Microsecond, thread: 1400 * time.Microsecond, process: 1450 * time.Microsecond, waited: 12 * time.Microsecond},
		{wall: 2 * time.Millisecond, process: 3900 * time.Microsecond, waited: -1, estimate: 1100 * time.Microsecond, regions: 57, helped: 49},
	}
	var buf bytes.Buffer
	if err := writeSamples(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := parseSamples(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseSamplesRejects(t *testing.T) {
	for _, c := range []struct{ out, want string }{
		{"run 100 90 95 0 0 0 0\n", "without its end line"},
		{"", "after 0 runs without its end line"},
		{"run 100 90 95 0 0 0 0\nend 2\n", `"end 2" after 1 runs`},
		{"run 100 ninety 95 0 0 0 0\nend 1\n", `"ninety" is not a count`},
		{"run 0 0 0 0 0 0 0\nend 1\n", "out of range"},
		{"run 100 90 95 -2 0 0 0\nend 1\n", "out of range"},
		{"run 100 90 95 0 0 3 4\nend 1\n", "out of range"},
		{"run 100 90 95 0 0\nend 1\n", "unexpected"},
		{"hello\n", `line 1: unexpected "hello"`},
	} {
		_, err := parseSamples(strings.NewReader(c.out))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseSamples(%q) = %v, want an error with %q", c.out, err, c.want)
		}
	}
}

func TestParseBlock(t *testing.T) {
	b := block{threads: 2, noSpinning: true, model: "/m.onnx", inputs: map[string]string{"x": "/x.npy", "y": "/y.npy"},
		ortLib: "/lib.so", warmups: 3, minRuns: 2, maxRuns: 9, slice: 150 * time.Millisecond}
	got, err := parseBlock(b.args()[1:])
	if err != nil {
		t.Fatal(err)
	}
	if got.onnxq || got.threads != 2 || !got.noSpinning || got.model != "/m.onnx" || got.ortLib != "/lib.so" ||
		got.warmups != 3 || got.minRuns != 2 || got.maxRuns != 9 || got.slice != b.slice ||
		len(got.inputs) != 2 || got.inputs["x"] != "/x.npy" || got.inputs["y"] != "/y.npy" {
		t.Errorf("parseBlock(args of %+v) = %+v", b, got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-engine", "tvm", "-model", "m"}, `-engine "tvm"`},
		{[]string{"-engine", "ort", "-model", "m"}, "needs -ort-lib"},
		{[]string{"-engine", "onnxq"}, "want -model"},
		{[]string{"-engine", "onnxq", "-model", "m", "-threads", "0"}, "-threads >= 1"},
		{[]string{"-engine", "onnxq", "-model", "m", "-input", "x"}, "name=path"},
	} {
		if _, err := parseBlock(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseBlock(%q) = %v, want an error with %q", c.args, err, c.want)
		}
	}
}

func testExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// A child that fails reports its error in one line: the engine, the thread
// count and the cause, not a stack.
func TestRunBlockChildFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.onnx")
	_, err := runBlock(testExe(t), block{onnxq: true, threads: 2, model: missing, maxRuns: 3, minRuns: 1})
	if err == nil {
		t.Fatal("runBlock on a missing model: no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "onnxq at 2 thread(s)") || !strings.Contains(msg, "nope.onnx") {
		t.Errorf("error %q: want one line naming the engine, threads and model", msg)
	}
	// A bad input file fails the same way.
	m, in := resnet20Files(t)
	in["input"] = filepath.Join(t.TempDir(), "missing.npy")
	if _, err := runBlock(testExe(t), block{onnxq: true, threads: 1, model: m, inputs: in, maxRuns: 1}); err == nil ||
		strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("runBlock with a missing input: %v, want a one-line error naming the file", err)
	}
}

// resnet20Files writes the zoo's resnet20 and its sample input.
func resnet20Files(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	m, err := testmodels.Build("resnet20", 1)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "resnet20.onnx")
	if err := graph.Save(m, p); err != nil {
		t.Fatal(err)
	}
	in, err := testmodels.Samples("resnet20", m, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for name, tensor := range in[0] {
		f := filepath.Join(dir, name+".npy")
		if err := npy.WriteFile(f, tensor); err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	return p, files
}

// Children run each engine on a real model and report every timed run: at
// 1 thread with the thread's CPU time (the pass ran on it: process CPU
// close to it), above 1 thread without.
func TestRunBlockTimesEngines(t *testing.T) {
	m, in := resnet20Files(t)
	lib := testdata.ORTLibrary(t)
	for _, b := range []block{
		{onnxq: true, threads: 1},
		{onnxq: true, threads: 2},
		{threads: 1},
		{threads: 2, noSpinning: true},
	} {
		b.model, b.inputs, b.ortLib, b.warmups, b.minRuns, b.maxRuns = m, in, lib, 1, 4, 4
		ss, err := runBlock(testExe(t), b)
		if err != nil {
			t.Fatalf("%s at %d threads: %v", b.engineName(), b.threads, err)
		}
		if len(ss) != 4 {
			t.Fatalf("%s at %d threads: %d runs, want 4", b.engineName(), b.threads, len(ss))
		}
		tm := summarize(ss)
		if tm.wall <= 0 || tm.wall > 1000 {
			t.Errorf("%s at %d threads: median %.3f ms", b.engineName(), b.threads, tm.wall)
		}
		if b.threads == 1 && (tm.thread <= 0 || tm.thread > tm.wall*1.01 || tm.procPerThread < 0.98) {
			t.Errorf("%s at 1 thread: thread CPU %.3f ms of wall %.3f, process/thread %.2f", b.engineName(), tm.thread, tm.wall, tm.procPerThread)
		}
		if b.threads > 1 && tm.thread != 0 {
			t.Errorf("%s at %d threads: thread CPU %.3f ms, want 0 (not measured)", b.engineName(), b.threads, tm.thread)
		}
	}
}
