package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ppocr"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
)

// The float models read the rendered lines well: the labels are right and
// the preprocessing is the models' own (a wrong normalization, dictionary
// offset or cls class order would score near 0 or 50%).
func TestFloatModelsScoreHigh(t *testing.T) {
	for _, c := range []struct {
		kind string
		n    int
		min  int
	}{{"rec", 30, 27}, {"cls", 60, 56}} {
		model := testdata.OCRModel(t, c.kind)
		run, err := runtimes["onnxq"](model, 0)
		if err != nil {
			t.Fatal(err)
		}
		read := reader(ppocr.ClsDecision)
		if c.kind == "rec" {
			d, err := ppocr.LoadDict(filepath.Join(filepath.Dir(model), "ppocr_keys_v1.txt"))
			if err != nil {
				t.Fatal(err)
			}
			read = recReader(d)
		}
		var wrong []string
		right, err := Score(run, read, Rendered(c.kind, c.n, 5000), func(l Line, got string) { wrong = append(wrong, l.Label+" -> "+got) })
		if err != nil {
			t.Fatal(err)
		}
		if right < c.min {
			t.Errorf("float %s: %d of %d lines right, want at least %d; wrong: %q", c.kind, right, c.n, c.min, wrong)
		}
	}
}

// Score counts against the labels: a reader that always answers "0" is
// right exactly on the upright cls lines.
func TestScoreCountsLabels(t *testing.T) {
	lines := Rendered("cls", 40, 100)
	upright := 0
	for _, l := range lines {
		if l.Label == testdata.ClsUpright {
			upright++
		}
	}
	run := func(x *graph.Tensor) (*graph.Tensor, error) { return x, nil }
	wrong := 0
	right, err := Score(run, func(*graph.Tensor) (string, error) { return "0", nil }, lines, func(Line, string) { wrong++ })
	if err != nil || right != upright || wrong != 40-upright || upright == 0 || upright == 40 {
		t.Errorf("right %d, wrong %d (%v); %d of 40 upright", right, wrong, err, upright)
	}
	if p := Percent(right, 40); p != 2.5*float64(upright) {
		t.Errorf("Percent = %v", p)
	}
}

func TestReadLabelled(t *testing.T) {
	dir := t.TempDir()
	x := graph.Float32Tensor([]int{1, 3, 1, 2}, []float32{1, 2, 3, 4, 5, 6})
	if err := npy.WriteFile(filepath.Join(dir, "a.npy"), x); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "labels.txt"), []byte("a.npy\tTel: 12 34\n\na.npy\t180\n"), 0o644)
	lines, err := ReadLabelled(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Label != "Tel: 12 34" || lines[1].Label != "180" || lines[0].Name != "a.npy" {
		t.Fatalf("lines %+v", lines)
	}
	got, err := lines[0].Input()
	if err != nil || got.Float32s()[5] != 6 {
		t.Errorf("input %v, %v", got, err)
	}
	for name, content := range map[string]string{"no tab": "a.npy 0\n", "empty": "\n"} {
		os.WriteFile(filepath.Join(dir, "labels.txt"), []byte(content), 0o644)
		if _, err := ReadLabelled(dir); err == nil {
			t.Errorf("%s labels.txt read without error", name)
		}
	}
	if _, err := ReadLabelled(t.TempDir()); err == nil {
		t.Error("a folder without labels.txt read without error")
	}
}
