package tune

// SetNoReference makes every evaluation run the float model (true) or keep
// its outputs (false), for the tests that compare.
func SetNoReference(v bool) { noReference = v }
