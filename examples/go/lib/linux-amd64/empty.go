// Package linuxamd64 holds libquiesce.a for linux/amd64, copied here by ../../vendor-lib.sh
// (it is not committed). This Go file exists so that `go mod vendor` in a module that uses
// example.com/quiesce copies the directory, and with it the library (as wasmtime-go does).
package linuxamd64
