#!/usr/bin/env bash
# The .deb, built by cpack from a Release build directory ($1): its control fields and
# dependencies, its files, its maintainer scripts, the binary it carries (run from the unpacked
# package), and, as root, postinst and postrm run for real inside a private mount namespace
# (copies of /etc and /var/lib, the package's /usr/share/shoal overlaid) so that the host is left
# untouched. Exits 1 on the first failure; as non-root the last part is reported as not run and
# the script exits 77 (ctest: skipped), unless SHOAL_REQUIRE_FAULT=1 (CI) makes that a failure.
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/shoal-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_deb: FAILED: $*" >&2; exit 1; }

(cd "$build" && cpack -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/out/shoal_*.deb)
echo "built $(basename "$deb")"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = shoal ] || fail "Package: $(field Package)"
version=$("$build/bin/shoal" --version | awk '{print $2}')
[ "$(field Version)" = "$version" ] || fail "Version $(field Version), the binary says $version"
for dep in adduser libuv1 libsodium23 libc6; do
  field Depends | grep -q "\b$dep\b" || fail "Depends lacks $dep: $(field Depends)"
done
echo "control: shoal $version, depends on $(field Depends)"

files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/shoal ./usr/lib/systemd/system/shoal.service ./usr/share/shoal/agent.toml \
         ./usr/share/doc/shoal/README.md; do
  grep -qx "$f" <<<"$files" || fail "no $f in the package"
done
echo "files: $(grep -vc '/$' <<<"$files") (binary, unit, default config, docs)"

dpkg-deb -e "$deb" "$work/control"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "$s missing or not executable"
  sh -n "$work/control/$s" || fail "$s: syntax"
done
dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/shoal" --version | grep -qx "shoal $version" || fail "the packaged binary"
grep -q '^ExecStart=shoal agent --config /etc/shoal/agent.toml$' \
  "$work/root/usr/lib/systemd/system/shoal.service" || fail "the unit's ExecStart"
echo "maintainer scripts: postinst, prerm, postrm; the packaged binary runs"

if [ "$(id -u)" -ne 0 ]; then
  echo "check_deb: postinst and postrm not run: they need root"
  if [ "${SHOAL_REQUIRE_FAULT:-0}" = 1 ]; then exit 1; fi
  exit 77
fi
# postinst configure, then postrm purge, with the host's /etc and /var/lib replaced by copies.
host_before=$(getent passwd shoal || true; ls -d /etc/shoal /var/lib/shoal 2>/dev/null || true)
cp -a /etc "$work/etc"
mkdir -p "$work/varlib" "$work/upper/shoal" "$work/ovl"
cp "$work/root/usr/share/shoal/agent.toml" "$work/upper/shoal/"
unshare --mount --propagation private bash -euo pipefail -c "
  mount --bind '$work/etc' /etc
  mount --bind '$work/varlib' /var/lib
  mount -t overlay overlay -o lowerdir=/usr/share,upperdir='$work/upper',workdir='$work/ovl' /usr/share
  '$work/control/postinst' configure
  getent passwd shoal | grep -q ':/var/lib/shoal:' || { echo 'no shoal user' >&2; exit 1; }
  [ \"\$(stat -c '%U %a' /var/lib/shoal)\" = 'shoal 700' ] || { echo 'state dir' >&2; exit 1; }
  cmp /etc/shoal/agent.toml /usr/share/shoal/agent.toml
  echo '# edited' >> /etc/shoal/agent.toml
  '$work/control/postinst' configure  # again (an upgrade): the edited config stays
  grep -q '^# edited$' /etc/shoal/agent.toml || { echo 'config replaced' >&2; exit 1; }
  '$work/control/prerm' remove
  '$work/control/postrm' purge
  [ ! -e /etc/shoal/agent.toml ] && [ ! -e /var/lib/shoal ] || { echo 'purge left files' >&2; exit 1; }
" || fail "postinst/postrm in a private mount namespace"
host_after=$(getent passwd shoal || true; ls -d /etc/shoal /var/lib/shoal 2>/dev/null || true)
[ "$host_before" = "$host_after" ] || fail "the host was changed"
echo "postinst: user shoal, /var/lib/shoal 0700, /etc/shoal/agent.toml (kept when edited); postrm purge removes them"
