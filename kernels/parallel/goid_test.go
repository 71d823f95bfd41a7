package parallel

import (
	"bytes"
	"runtime"
	"strconv"
)

// goid is the current goroutine's id, parsed from its stack header.
func goid() int {
	var buf [64]byte
	s := buf[:runtime.Stack(buf[:], false)]
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	id, _ := strconv.Atoi(string(s[:bytes.IndexByte(s, ' ')]))
	return id
}
