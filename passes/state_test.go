package passes

import (
	"maps"
	"testing"
)

// TestRenameChains: folding Mul then Add into a Conv leaves only the Add's
// output renamed onto the Conv's (the Mul's values no longer exist), and a
// renamed name that is renamed again follows to the last name.
func TestRenameChains(t *testing.T) {
	st := NewState()
	st.rename("mul_out", "conv_out") // Mul folded: the conv now computes it
	st.rename("add_out", "conv_out") // Add folded: the conv's values change again
	if want := map[string]string{"add_out": "conv_out"}; !maps.Equal(st.Renamed, want) {
		t.Errorf("after two folds: %v, want %v", st.Renamed, want)
	}
	st = NewState()
	st.rename("a", "b")
	st.rename("b", "c") // b's values move on to c
	if want := map[string]string{"a": "c", "b": "c"}; !maps.Equal(st.Renamed, want) {
		t.Errorf("chain: %v, want %v", st.Renamed, want)
	}
}
