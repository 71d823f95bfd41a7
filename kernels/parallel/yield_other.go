//go:build !linux

package parallel

// osYield has no portable form; elsewhere the spin only yields to goroutines.
func osYield() {}
