package ppocr

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
)

// scores builds a [1, T, c] tensor whose best class at step s is best[s].
func scores(best []int, c int) *graph.Tensor {
	x := graph.NewTensor(graph.Float, []int{1, len(best), c})
	d := x.Float32s()
	for s, b := range best {
		for k := 0; k < c; k++ {
			d[s*c+k] = 0.1 * float32(k%3)
		}
		d[s*c+b] = 0.9
	}
	return x
}

func TestGreedyCTC(t *testing.T) {
	// Steps' best classes: 3 3 0 3 5 5 0 0 2 -> 3 3 5 2 (a blank
	// separates a doubled letter; repeats without one collapse).
	got, err := GreedyCTC(scores([]int{3, 3, 0, 3, 5, 5, 0, 0, 2}, 6))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 3, 5, 2}; !slices.Equal(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
	if got, _ := GreedyCTC(scores([]int{0, 0, 0}, 4)); len(got) != 0 {
		t.Errorf("all blanks decoded to %v", got)
	}
	for _, bad := range []*graph.Tensor{graph.NewTensor(graph.Float, []int{2, 4, 6}), graph.NewTensor(graph.Int64, []int{1, 4, 6}), graph.NewTensor(graph.Float, []int{24})} {
		if _, err := GreedyCTC(bad); err == nil {
			t.Errorf("%s%v decoded without error", bad.DType.Short(), bad.Shape)
		}
	}
}

func TestDict(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(p, []byte("a\nb\r\n：\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDict(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Dict{"", "a", "b", "：", " "}); !slices.Equal(d, want) {
		t.Fatalf("dictionary %q, want %q", d, want)
	}
	got, err := d.Text([]int{1, 4, 2, 3, 0})
	if err != nil || got != "a b：" {
		t.Errorf("Text = %q, %v; want \"a b：\"", got, err)
	}
	if _, err := d.Text([]int{5}); err == nil {
		t.Error("class 5 of 5 spelled without error")
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	if _, err := LoadDict(empty); err == nil {
		t.Error("an empty dictionary loaded")
	}
	if _, err := LoadDict(filepath.Join(t.TempDir(), "missing.txt")); err == nil {
		t.Error("a missing dictionary loaded")
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"Tel: 12 34":   "Tel:1234",
		"Ｔｅｌ：１２　３４":    "Tel:1234",
		"（Ｏｐｅｎ）， ｄｕｅ％": "(Open),due%",
		"～！＂＃＄＆＊＋－．／＠": "~!\"#$&*+-./@",
		"价格 19.99":     "价格19.99",
		"a。":           "a。", // the ideographic full stop is not ASCII's
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	if !Same("date：12/05", "date: 12/05") || Same("WWW", "www") || Same("I1867", "II867") {
		t.Error("Same compares case or digits loosely, or full-width forms strictly")
	}
}

func TestClsDecision(t *testing.T) {
	for _, c := range []struct {
		p    []float32
		want string
	}{{[]float32{0.7, 0.3}, "0"}, {[]float32{0.49, 0.51}, "180"}} {
		got, err := ClsDecision(graph.Float32Tensor([]int{1, 2}, c.p))
		if err != nil || got != c.want {
			t.Errorf("scores %v: %q, %v; want %q", c.p, got, err, c.want)
		}
	}
	if _, err := ClsDecision(graph.Float32Tensor([]int{1, 3}, []float32{1, 2, 3})); err == nil {
		t.Error("three classes decided without error")
	}
	if ClsLabels[0] != testdata.ClsUpright || ClsLabels[1] != testdata.ClsFlipped {
		t.Errorf("ClsLabels %q differ from the renderer's labels", ClsLabels)
	}
}

// The real dictionary has one class for each of the recognizer's scores.
func TestRealDictMatchesRec(t *testing.T) {
	rec := testdata.OCRModel(t, "rec")
	d, err := LoadDict(filepath.Join(filepath.Dir(rec), "ppocr_keys_v1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(rec)
	if err != nil {
		t.Fatal(err)
	}
	dims, ok := m.Graph.Outputs[0].Shape()
	if !ok || len(dims) != 3 || !dims[2].Known {
		t.Fatalf("rec output shape %v", dims)
	}
	if len(d) != int(dims[2].Value) {
		t.Errorf("dictionary has %d classes, the recognizer %d", len(d), dims[2].Value)
	}
	if !slices.Contains(d, "a") || !slices.Contains(d, "Ｔ") || !slices.Contains(d, "价") {
		t.Error("the dictionary lacks a, Ｔ or 价")
	}
}
