package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/internal/testdata"
)

// The float recognizer agrees with itself on every line, and decodes
// rendered lines to text-length sequences (not empty, not one per step).
func TestFloatAgreesWithItself(t *testing.T) {
	rec := testdata.OCRModel(t, "rec")
	cache := filepath.Join(t.TempDir(), "float.json")
	same, err := Agreement(rec, rec, 3, 5000, 0, cache)
	if err != nil {
		t.Fatal(err)
	}
	if same != 3 {
		t.Errorf("float vs float: %d of 3 lines agree", same)
	}
	// A cache for other seeds is not taken for these: a planted decoding
	// under the right key is.
	var d decodings
	b, err := os.ReadFile(cache)
	if err != nil || json.Unmarshal(b, &d) != nil || len(d.Lines) != 3 {
		t.Fatalf("cache not written: %v", err)
	}
	d.Lines[1] = []int{1, 2, 3}
	b, _ = json.Marshal(d)
	if err := os.WriteFile(cache, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if same, err = Agreement(rec, rec, 3, 5000, 0, cache); err != nil || same != 2 {
		t.Errorf("with a planted cached line: %d of 3 agree (%v), want 2", same, err)
	}
	if same, err = Agreement(rec, rec, 3, 6000, 0, cache); err != nil || same != 3 {
		t.Errorf("other seeds: %d of 3 agree (%v), want 3 (cache not reused)", same, err)
	}
	s, err := open(rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := decodeLine(s, testdata.OCRInput("rec", 48, 320, 5000))
	if err != nil {
		t.Fatal(err)
	}
	if len(seq) < 5 || len(seq) > 40 {
		t.Errorf("line 5000 decodes to %d characters", len(seq))
	}
}
