#!/bin/sh
# Puts the C library inside the Go module, where cgo links it from (${SRCDIR}/lib/...):
#   cargo build --release -p quiesce-ffi && examples/go/vendor-lib.sh [BUILD_DIR]
# BUILD_DIR (default: target/release) holds libquiesce.a; the header comes from include/.
# After this, `go build`, `go vet` and `go test` need no CGO_* variable, and `go mod vendor`
# in a module that uses this one carries the library along.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/target/release}
for f in "$build/libquiesce.a" "$root/include/quiesce.h"; do
  [ -f "$f" ] || { echo "vendor-lib.sh: no $f; build it first: cargo build --release -p quiesce-ffi" >&2; exit 1; }
done
# Copy, then rename: a build running meanwhile sees the old file or the new, never half of one.
cp "$build/libquiesce.a" "$here/lib/linux-amd64/.libquiesce.a.$$"
mv -f "$here/lib/linux-amd64/.libquiesce.a.$$" "$here/lib/linux-amd64/libquiesce.a"
cp "$root/include/quiesce.h" "$here/lib/include/.quiesce.h.$$"
mv -f "$here/lib/include/.quiesce.h.$$" "$here/lib/include/quiesce.h"
echo "vendored $build/libquiesce.a into $here/lib/linux-amd64/"
