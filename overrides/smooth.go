package overrides

import "fmt"

// SmoothQuantOf resolves the SmoothQuant alpha of a MatMul/Gemm node: node >
// op type > defaults. ok is false when no rule sets it (the command line's
// value applies); src names the entry that did.
func (f *File) SmoothQuantOf(node, opType string) (alpha float64, src string, ok bool, err error) {
	if f == nil {
		return 0, "", false, nil
	}
	k, found, err := lookup(f.Nodes, node, sameRule, func(r *Rule) bool { return r.SmoothQuant != nil })
	if err != nil {
		return 0, "", false, err
	}
	if found {
		return *f.Nodes[k].SmoothQuant, fmt.Sprintf("nodes[%q]", k), true, nil
	}
	if r, found := f.OpTypes[opType]; found && r.SmoothQuant != nil {
		return *r.SmoothQuant, fmt.Sprintf("op_types[%q]", opType), true, nil
	}
	if f.Defaults != nil && f.Defaults.SmoothQuant != nil {
		return *f.Defaults.SmoothQuant, "defaults", true, nil
	}
	return 0, "", false, nil
}

func checkSmoothQuant(a *float64, p string) error {
	if a != nil && !(*a >= 0 && *a <= 1) { // NaN fails both
		return fmt.Errorf("%s: %v is not in [0, 1] (SmoothQuant's alpha: the share of the activation's outliers moved into the weights; 0 is off)", p, *a)
	}
	return nil
}
