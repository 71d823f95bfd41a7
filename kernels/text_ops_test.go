package kernels

import (
	"slices"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

func textStrs(shape []int, v ...string) *graph.Tensor {
	b := make([][]byte, len(v))
	for i, s := range v {
		b[i] = []byte(s)
	}
	t, err := graph.TensorOf(graph.String, shape, b)
	if err != nil {
		panic(err)
	}
	return t
}

func textAttrStrs(name string, v ...string) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: &name, Type: onnxpb.AttributeProto_STRINGS.Enum()}
	for _, s := range v {
		a.Strings = append(a.Strings, []byte(s))
	}
	return a
}

func textRun(t *testing.T, op string, opset int64, attrs []*onnxpb.AttributeProto, x *graph.Tensor) (*graph.Tensor, error) {
	t.Helper()
	got, err := runNode(t, "", op, opset, attrs, []string{"y"}, x)
	if err != nil {
		return nil, err
	}
	return got["y"], nil
}

// TestStringNormalizerHand: stopwords are whole elements matched with or
// without case, removed before the case changes; Turkish locales map the
// dotted and dotless i; everything dropped leaves one empty string.
func TestStringNormalizerHand(t *testing.T) {
	s, i := graph.AttrStringOf, graph.AttrIntOf
	for _, c := range []struct {
		name  string
		attrs []*onnxpb.AttributeProto
		in    *graph.Tensor
		shape []int
		want  []string
	}{
		{"insensitive lower", []*onnxpb.AttributeProto{s("case_change_action", "LOWER"), textAttrStrs("stopwords", "the", "a")},
			textStrs([]int{6}, "Hello", "THE", "the", "WORLD", "A", "a b"), []int{3}, []string{"hello", "world", "a b"}},
		{"sensitive none", []*onnxpb.AttributeProto{i("is_case_sensitive", 1), textAttrStrs("stopwords", "The")},
			textStrs([]int{1, 3}, "The", "the", "x"), []int{1, 2}, []string{"the", "x"}},
		// the stopword is matched before upper-casing, so "MONDAY" (not a stopword) stays
		{"sensitive upper", []*onnxpb.AttributeProto{s("case_change_action", "UPPER"), i("is_case_sensitive", 1), textAttrStrs("stopwords", "monday")},
			textStrs([]int{3}, "monday", "Monday", "émile"), []int{2}, []string{"MONDAY", "ÉMILE"}},
		{"default locale", []*onnxpb.AttributeProto{s("case_change_action", "UPPER"), s("locale", "en_US")},
			textStrs([]int{2}, "istanbul", "ıi"), []int{2}, []string{"ISTANBUL", "II"}},
		{"turkish upper", []*onnxpb.AttributeProto{s("case_change_action", "UPPER"), s("locale", "tr_TR.UTF-8")},
			textStrs([]int{1}, "istanbul"), []int{1}, []string{"İSTANBUL"}},
		{"turkish lower", []*onnxpb.AttributeProto{s("case_change_action", "LOWER"), s("locale", "tr-TR")},
			textStrs([]int{1}, "ISPARTA"), []int{1}, []string{"ısparta"}},
		// in Turkish "İ" lowers to "i", so it matches the stopword "iki"
		{"turkish stopword", []*onnxpb.AttributeProto{s("locale", "tr_TR"), textAttrStrs("stopwords", "iki")},
			textStrs([]int{2}, "İKİ", "IKI"), []int{1}, []string{"IKI"}},
		{"all dropped 2d", []*onnxpb.AttributeProto{textAttrStrs("stopwords", "x")},
			textStrs([]int{1, 2}, "x", "X"), []int{1, 1}, []string{""}},
		{"empty input", nil, textStrs([]int{0}), []int{1}, []string{""}},
	} {
		got, err := textRun(t, "StringNormalizer", 10, c.attrs, c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var strs []string
		for _, b := range got.Data().([][]byte) {
			strs = append(strs, string(b))
		}
		if got.DType != graph.String || !slices.Equal(got.Shape, c.shape) || !slices.Equal(strs, c.want) {
			t.Errorf("%s: got %s %v %q, want %v %q", c.name, got.DType.Short(), got.Shape, strs, c.shape, c.want)
		}
	}
}

func TestStringNormalizerBadInputs(t *testing.T) {
	s := graph.AttrStringOf
	upper := s("case_change_action", "UPPER")
	for _, c := range []struct {
		name  string
		attrs []*onnxpb.AttributeProto
		in    *graph.Tensor
		want  string
	}{
		{"two rows", nil, textStrs([]int{2, 1}, "a", "b"), "[C] or [1, C]"},
		{"rank 3", nil, textStrs([]int{1, 1, 1}, "a"), "[C] or [1, C]"},
		{"not strings", nil, lossI64([]int{1}, 1), "must be string"},
		{"case action", []*onnxpb.AttributeProto{s("case_change_action", "lower")}, textStrs([]int{1}, "a"), "case_change_action"},
		{"locale", []*onnxpb.AttributeProto{upper, s("locale", "not a locale!")}, textStrs([]int{1}, "a"), "locale"},
		{"utf-8", []*onnxpb.AttributeProto{upper}, textStrs([]int{1}, "\xff"), "UTF-8"},
	} {
		_, err := textRun(t, "StringNormalizer", 10, c.attrs, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// a locale that nothing uses is not checked
	if _, err := textRun(t, "StringNormalizer", 10, []*onnxpb.AttributeProto{s("locale", "??")}, textStrs([]int{1}, "\xff")); err != nil {
		t.Errorf("unused locale and bytes passed through: %v", err)
	}
}

// tfidfAttrs builds TfIdfVectorizer attributes; pool is []int64 or []string.
func tfidfAttrs(mode string, minN, maxN, skip int64, counts, indexes []int64, pool any, weights ...float32) []*onnxpb.AttributeProto {
	as := []*onnxpb.AttributeProto{
		graph.AttrStringOf("mode", mode),
		graph.AttrIntOf("min_gram_length", minN),
		graph.AttrIntOf("max_gram_length", maxN),
		graph.AttrIntOf("max_skip_count", skip),
		graph.AttrIntsOf("ngram_counts", counts...),
		graph.AttrIntsOf("ngram_indexes", indexes...),
	}
	switch p := pool.(type) {
	case []int64:
		as = append(as, graph.AttrIntsOf("pool_int64s", p...))
	case []string:
		as = append(as, textAttrStrs("pool_strings", p...))
	}
	if weights != nil {
		as = append(as, graph.AttrFloatsOf("weights", weights...))
	}
	return as
}

// TestTfIdfVectorizerHand: the spec's examples and the cases the backend
// tests leave out, worked out by hand.
func TestTfIdfVectorizerHand(t *testing.T) {
	ints := func(v ...int64) []int64 { return v }
	for _, c := range []struct {
		name  string
		attrs []*onnxpb.AttributeProto
		in    *graph.Tensor
		shape []int
		want  []float32
	}{
		// the spec: pool [94 17 17 36], ngram_indexes [1 0]: Y[0] counts [17 36], Y[1] [94 17]
		{"index map", tfidfAttrs("TF", 2, 2, 0, ints(0, 0), ints(1, 0), ints(94, 17, 17, 36)),
			lossI64([]int{5}, 94, 17, 36, 17, 36), []int{2}, []float32{2, 1}},
		// the spec: with 2 skips [94 17 36 12 28] holds [94 12] and [17 28]
		{"skip 2", tfidfAttrs("TF", 2, 2, 2, ints(0, 0), ints(0, 1, 2), ints(94, 12, 17, 28, 94, 17)),
			lossI32([]int{5}, 94, 17, 36, 12, 28), []int{3}, []float32{1, 1, 1}},
		{"skip 1", tfidfAttrs("TF", 2, 2, 1, ints(0, 0), ints(0, 1, 2), ints(94, 12, 17, 28, 94, 17)),
			lossI32([]int{5}, 94, 17, 36, 12, 28), []int{3}, []float32{0, 0, 1}},
		// unigrams count once; [5 5] at distances 1 (twice) and 2 (once)
		{"unigrams once", tfidfAttrs("TF", 1, 2, 2, ints(0, 1), ints(0, 1), ints(5, 5, 5)),
			lossI64([]int{3}, 5, 5, 5), []int{2}, []float32{3, 3}},
		// [1 2 3] at distance 1 (positions 5-7) and 2 (positions 0, 2, 4)
		{"trigram skip", tfidfAttrs("TF", 3, 3, 1, ints(0, 0, 0), ints(0), ints(1, 2, 3)),
			lossI64([]int{8}, 1, 9, 2, 9, 3, 1, 2, 3), []int{1}, []float32{2}},
		// n-grams of lengths not counted still take their index: the bigram is the third
		{"numbering", tfidfAttrs("TF", 2, 2, 0, ints(0, 2), ints(0, 1, 2), ints(1, 2, 1, 2)),
			lossI64([]int{2}, 1, 2), []int{3}, []float32{0, 0, 1}},
		// weights[i] belongs to the i-th pool n-gram, which lands in Y[ngram_indexes[i]]
		{"tf", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(2, 0, 1), ints(7, 8, 9), 0.5, 2, 4),
			lossI64([]int{3}, 7, 7, 8), []int{3}, []float32{1, 0, 2}},
		{"idf", tfidfAttrs("IDF", 1, 1, 0, ints(0), ints(2, 0, 1), ints(7, 8, 9), 0.5, 2, 4),
			lossI64([]int{3}, 7, 7, 8), []int{3}, []float32{2, 0, 0.5}},
		{"tfidf", tfidfAttrs("TFIDF", 1, 1, 0, ints(0), ints(2, 0, 1), ints(7, 8, 9), 0.5, 2, 4),
			lossI64([]int{3}, 7, 7, 8), []int{3}, []float32{2, 0, 1}},
		{"idf no weights", tfidfAttrs("IDF", 1, 1, 0, ints(0), ints(2, 0, 1), ints(7, 8, 9)),
			lossI64([]int{3}, 7, 7, 8), []int{3}, []float32{1, 0, 1}},
		{"strings batch", tfidfAttrs("TF", 1, 2, 0, ints(0, 2), ints(0, 1, 2), []string{"a", "b", "c", "a"}),
			textStrs([]int{2, 3}, "a", "c", "a", "b", "b", "x"), []int{2, 3}, []float32{2, 0, 1, 0, 2, 0}},
		{"empty rows", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0, 3), ints(1, 2)),
			lossI64([]int{2, 0}), []int{2, 4}, []float32{0, 0, 0, 0, 0, 0, 0, 0}},
	} {
		got, err := textRun(t, "TfIdfVectorizer", 9, c.attrs, c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.DType != graph.Float || !slices.Equal(got.Shape, c.shape) || !slices.Equal(got.Float32s(), c.want) {
			t.Errorf("%s: got %s %v %v, want %v %v", c.name, got.DType.Short(), got.Shape, got.Float32s(), c.shape, c.want)
		}
	}
}

func TestTfIdfVectorizerBadInputs(t *testing.T) {
	ints := func(v ...int64) []int64 { return v }
	x := lossI64([]int{3}, 1, 2, 3)
	drop := func(as []*onnxpb.AttributeProto, name string) []*onnxpb.AttributeProto {
		return slices.DeleteFunc(as, func(a *onnxpb.AttributeProto) bool { return a.GetName() == name })
	}
	both := append(tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0), ints(1)), textAttrStrs("pool_strings", "a"))
	for _, c := range []struct {
		name  string
		attrs []*onnxpb.AttributeProto
		in    *graph.Tensor
		want  string
	}{
		{"indexes short", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0, 1), ints(1, 2, 3)), x, "ngram_indexes has 2"},
		{"negative count", tfidfAttrs("TF", 1, 2, 0, ints(0, -1), ints(0), ints(1)), x, "ngram_counts"},
		{"counts fall", tfidfAttrs("TF", 1, 2, 0, ints(0, 3, 2), ints(0, 1, 2), ints(1, 2, 3, 4)), x, "ngram_counts"},
		{"counts past pool", tfidfAttrs("TF", 1, 2, 0, ints(0, 5), ints(0), ints(1, 2)), x, "ngram_counts"},
		{"first count", tfidfAttrs("TF", 1, 2, 0, ints(1, 1), ints(0), ints(1, 2, 3)), x, "ngram_counts"},
		{"partial bigram", tfidfAttrs("TF", 1, 2, 0, ints(0, 1), ints(0, 1), ints(1, 2, 3, 4)), x, "whole 2-grams"},
		{"weights", tfidfAttrs("TFIDF", 1, 1, 0, ints(0), ints(0, 1), ints(1, 2), 1), x, "weights"},
		{"negative index", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0, -1), ints(1, 2)), x, "negative index"},
		{"mode", tfidfAttrs("BM25", 1, 1, 0, ints(0), ints(0), ints(1)), x, "mode"},
		{"min > max", tfidfAttrs("TF", 2, 1, 0, ints(0), ints(0), ints(1)), x, "min_gram_length"},
		{"min 0", tfidfAttrs("TF", 0, 1, 0, ints(0), ints(0), ints(1)), x, "min_gram_length"},
		{"negative skip", tfidfAttrs("TF", 1, 1, -1, ints(0), ints(0), ints(1)), x, "max_skip_count"},
		{"no pool", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0), nil), x, "needs pool"},
		{"two pools", both, x, "both"},
		{"missing attribute", drop(tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0), ints(1)), "max_skip_count"), x, "needs attribute max_skip_count"},
		{"strings for int pool", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0), ints(1)), textStrs([]int{1}, "a"), "needs pool_strings"},
		{"ints for string pool", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0), []string{"a"}), x, "needs pool_int64s"},
		{"float input", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0), ints(1)), lossF32([]int{1}, 1), "int32, int64 or string"},
		{"rank 3", tfidfAttrs("TF", 1, 1, 0, ints(0), ints(0), ints(1)), lossI64([]int{1, 1, 1}, 1), "[C] or [N, C]"},
	} {
		_, err := textRun(t, "TfIdfVectorizer", 9, c.attrs, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
}
