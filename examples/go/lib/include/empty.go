// Package include holds quiesce.h, copied here by ../../vendor-lib.sh (it is not committed).
// This Go file exists so that `go mod vendor` copies the directory, and with it the header.
package include
