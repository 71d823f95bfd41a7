package wround

import "errors"

// adaround is being built on its own branch; this placeholder keeps the
// package compiling until it lands.
func adaround(l *Layer, in *Inputs, o Options) (*Result, error) {
	return nil, errors.New("weight rounding adaround: not built yet")
}
