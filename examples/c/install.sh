#!/bin/sh
# Installs libquiesce (static and shared), quiesce.h and quiesce.pc under PREFIX.
#   cargo build --release -p quiesce-ffi && examples/c/install.sh [PREFIX] [LIBDIR-OF-BUILD]
# PREFIX defaults to /usr/local; the build directory to target/release.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${1:-/usr/local}
build=${2:-$root/target/release}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$build/libquiesce.a" "$build/libquiesce.so" "$prefix/lib/"
cp "$root/include/quiesce.h" "$prefix/include/"
sed -e "s|@prefix@|$prefix|" -e "s|@libdir@|\${prefix}/lib|" -e "s|@version@|$version|" "$root/ffi/quiesce.pc.in" \
  > "$prefix/lib/pkgconfig/quiesce.pc"
echo "installed quiesce $version under $prefix"
