package vec

// ArgBest is one step of an ArgMax (isMax) or ArgMin along an axis whose
// values lie in rows (a segmentation map's classes are planes): where row[i]
// beats best[i] — greater (less), or with last also equal — best[i] takes it
// and ids[i] becomes j. The comparisons are ordered, so a NaN neither wins
// nor is beaten, and +0 equals -0: a scalar loop's `v > b`, `v >= b`, ...
// Both paths give the same results.
func ArgBest(best []float32, ids []int32, row []float32, j int32, isMax, last bool) {
	n := len(best)
	ids, row = ids[:n], row[:n]
	pred := argPred(isMax, last)
	k := simdLen(n)
	if k > 0 {
		argBestAsm(&best[0], &ids[0], &row[0], k, j, pred)
	}
	for i := k; i < n; i++ {
		if v, b := row[i], best[i]; beats(v, b, pred) {
			best[i], ids[i] = v, j
		}
	}
}

// The four comparisons of ArgBest, as the assembly numbers them.
const (
	predGT = iota // ArgMax, first of equals
	predGE        // ArgMax, last of equals
	predLT        // ArgMin, first
	predLE        // ArgMin, last
)

func argPred(isMax, last bool) int {
	p := predGT
	if !isMax {
		p = predLT
	}
	if last {
		p++
	}
	return p
}

func beats(v, b float32, pred int) bool {
	switch pred {
	case predGT:
		return v > b
	case predGE:
		return v >= b
	case predLT:
		return v < b
	}
	return v <= b
}
