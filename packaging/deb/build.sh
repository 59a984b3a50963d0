#!/bin/sh
# Builds the Debian package quiesce_VERSION_amd64.deb from the repository with plain dpkg-deb:
#   packaging/deb/build.sh [OUTDIR]          (OUTDIR defaults to target/deb)
# It builds the static command (musl; static glibc where the musl target is not installed) and
# the C library (release), stages the tree under OUTDIR/root and prints the .deb's path last.
#
# Why dpkg-deb and not cargo-deb: the package joins the products of two crates built for two
# targets (the musl `quiesce`, the glibc libquiesce.so/.a), a header made by build.rs, a
# templated quiesce.pc and a hand-written manual page; a script assembles them anyway, and
# dpkg-deb is on every Debian machine, where cargo-deb would first have to be compiled from
# crates.io on each CI machine.
set -eu
umask 022   # the staged tree's modes are the package's
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/target/deb}
cargo=${CARGO:-cargo}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
arch=amd64
triplet=x86_64-linux-gnu
musl=x86_64-unknown-linux-musl

# The static command.
if [ -d "$(rustc --print sysroot)/lib/rustlib/$musl" ]; then
  "$cargo" build --quiet --release --manifest-path "$root/Cargo.toml" --target "$musl" -p quiesce-cli --bin quiesce
  cli=$root/target/$musl/release/quiesce
else
  echo "build.sh: no musl target (rustup target add $musl); the command is linked with static glibc" >&2
  RUSTFLAGS="-C target-feature=+crt-static" "$cargo" build --quiet --release \
    --manifest-path "$root/Cargo.toml" --target x86_64-unknown-linux-gnu \
    --target-dir "$root/target/static-glibc" -p quiesce-cli --bin quiesce
  cli=$root/target/static-glibc/x86_64-unknown-linux-gnu/release/quiesce
fi
# The C library.
"$cargo" build --quiet --release --manifest-path "$root/Cargo.toml" -p quiesce-ffi --lib
lib=$root/target/release

stage=$out/root
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/sbin" "$stage/usr/lib/$triplet/pkgconfig" \
  "$stage/usr/include" "$stage/usr/share/man/man8" "$stage/usr/share/doc/quiesce" \
  "$stage/etc/quiesce/hooks.d"
install -m 0755 "$cli" "$stage/usr/sbin/quiesce"
install -m 0644 "$lib/libquiesce.so" "$lib/libquiesce.a" "$stage/usr/lib/$triplet/"
# As dh_strip does: no debug information in the static library, no .comment sections.
strip --strip-debug --remove-section=.comment "$stage/usr/lib/$triplet/libquiesce.a"
strip --remove-section=.comment "$stage/usr/lib/$triplet/libquiesce.so" "$stage/usr/sbin/quiesce"
install -m 0644 "$root/include/quiesce.h" "$stage/usr/include/"
sed -e "s|@prefix@|/usr|" -e "s|@libdir@|\${prefix}/lib/$triplet|" -e "s|@version@|$version|" \
  "$root/ffi/quiesce.pc.in" > "$stage/usr/lib/$triplet/pkgconfig/quiesce.pc"
chmod 0644 "$stage/usr/lib/$triplet/pkgconfig/quiesce.pc"
gzip -9n < "$root/examples/cli/quiesce.8" > "$stage/usr/share/man/man8/quiesce.8.gz"
chmod 0644 "$stage/usr/share/man/man8/quiesce.8.gz"
cp "$root/packaging/deb/copyright" "$stage/usr/share/doc/quiesce/copyright"
chmod 0644 "$stage/usr/share/doc/quiesce/copyright"
chmod 0755 "$stage/etc/quiesce" "$stage/etc/quiesce/hooks.d"
# The guest agent's systemd units (examples/agent), with the command where this package puts
# it. Installed, not enabled: `systemctl mask --now qemu-guest-agent; systemctl enable --now
# quiesce-agent` (README, "The guest agent"); the unit of qemu-ga behind quiesce and the
# forwarding drop-in are there too. No maintainer scripts: removing the package removes them.
unitdir=$stage/usr/lib/systemd/system
mkdir -p "$unitdir/quiesce-agent.service.d"
for u in quiesce-agent.service qemu-ga-behind-quiesce.service; do
  sed -e 's|/usr/local/sbin/quiesce|/usr/sbin/quiesce|g' "$root/examples/agent/$u" > "$unitdir/$u"
  chmod 0644 "$unitdir/$u"
done
mkdir -p "$stage/usr/share/doc/quiesce/examples"
sed -e 's|/usr/local/sbin/quiesce|/usr/sbin/quiesce|g' \
  "$root/examples/agent/quiesce-agent.service.d/forward.conf" \
  > "$stage/usr/share/doc/quiesce/examples/quiesce-agent-forward.conf"
chmod 0644 "$stage/usr/share/doc/quiesce/examples/quiesce-agent-forward.conf"
rmdir "$unitdir/quiesce-agent.service.d"

# A native package's changelog, dated by the last commit (the same tree gives the same .deb).
when=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
maintainer=$(sed -n 's/^Maintainer: //p' "$root/packaging/deb/control.in")
printf 'quiesce (%s) unstable; urgency=medium\n\n  * Built from the repository at %s.\n\n -- %s  %s\n' \
  "$version" "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "$maintainer" "$(date -R -u -d "@$when")" | gzip -9n > "$stage/usr/share/doc/quiesce/changelog.gz"
chmod 0644 "$stage/usr/share/doc/quiesce/changelog.gz"
install -D -m 0644 "$root/packaging/deb/lintian-overrides" "$stage/usr/share/lintian/overrides/quiesce"
# No maintainer scripts and no ldconfig trigger (the library has no SONAME for ldconfig to
# link): dpkg removes every file of the package, and /etc/quiesce/hooks.d when it is empty
# (hooks an administrator put there stay).
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
  > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@version@|$version|" -e "s|@arch@|$arch|" -e "s|@size@|$size|" \
  "$root/packaging/deb/control.in" > "$stage/DEBIAN/control"

deb=$out/quiesce_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
