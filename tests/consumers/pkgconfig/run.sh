#!/usr/bin/env bash
# Consumer test: uvaio installed, found through pkg-config.
#
#   run.sh UVAIO_BUILD_ROOT
#
# Installs that build of uvaio into a temporary DESTDIR, points pkg-config at
# the installed uvaio.pc (PKG_CONFIG_PATH for the .pc, PKG_CONFIG_SYSROOT_DIR so
# that its -I and -L paths lead into the DESTDIR), builds this directory's
# project against it, checks that the include and library paths used are the
# installed ones, and runs the program with the installed library.
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 UVAIO_BUILD_ROOT" >&2
  exit 2
fi
uvaio_build=$(cd "$1" && pwd -P)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

work=$(mktemp -d "${TMPDIR:-/tmp}/uvaio-consumer-pkgconfig.XXXXXX")
cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -f $work/build/meson-logs/meson-log.txt ]]; then
    echo "----- tail of the consumer's meson-log.txt -----"
    tail -n 40 "$work/build/meson-logs/meson-log.txt"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
destdir=$work/root

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# meson test has built everything already; --no-rebuild keeps this test from
# running ninja in a build directory that meson test is using.
meson install -C "$uvaio_build" --destdir "$destdir" --no-rebuild >"$work/install.log" ||
  { cat "$work/install.log"; fail "meson install failed"; }

pc=$(find "$destdir" -path '*/pkgconfig/uvaio.pc' | head -n 1)
[[ -n $pc ]] || fail "no uvaio.pc was installed"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
echo "installed: $pc"
[[ -e $libdir/libuvaio.so ]] || fail "no libuvaio.so beside the installed uvaio.pc (in $libdir)"

export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_SYSROOT_DIR=$destdir
# pkgconf 1.8 prefixes the sysroot to the system libuv's and spdlog's paths too
# (-I$destdir/usr/include, ...) before dropping system directories; listing
# their sysroot-prefixed forms as system directories drops them again.
with_sysroot() {
  local dir out=
  local IFS=:
  for dir in $1; do out+="${out:+:}$destdir$dir:$dir"; done
  echo "$out"
}
system_includes=$(pkg-config --variable=pc_system_includedirs pkg-config 2>/dev/null || true)
system_libs=$(pkg-config --variable=pc_system_libdirs pkg-config 2>/dev/null || true)
export PKG_CONFIG_SYSTEM_INCLUDE_PATH
PKG_CONFIG_SYSTEM_INCLUDE_PATH=$(with_sysroot "${system_includes:-/usr/include}")
export PKG_CONFIG_SYSTEM_LIBRARY_PATH
PKG_CONFIG_SYSTEM_LIBRARY_PATH=$(with_sysroot "${system_libs:-/usr/lib:/lib}")

cflags=$(pkg-config --cflags uvaio)
libs=$(pkg-config --libs uvaio)
echo "pkg-config --cflags uvaio: $cflags"
echo "pkg-config --libs uvaio: $libs"
[[ " $cflags " == *" -I$destdir/"* ]] || fail "pkg-config's include path is not under $destdir"
[[ " $libs " == *" -L$libdir "* ]] || fail "pkg-config's library path is not $libdir"
for flag in $cflags $libs; do
  case $flag in
    -I* | -L*) [[ -d ${flag:2} ]] || fail "pkg-config gives $flag, a directory that does not exist" ;;
  esac
done

meson setup "$work/build" "$here"
meson compile -C "$work/build"

# The build used the installed headers: the compile command has -I into DESTDIR.
grep -qF -- "-I$destdir/" "$work/build/compile_commands.json" ||
  fail "the consumer was not compiled with the installed headers"

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
linked=$(ldd "$work/build/consumer" | grep libuvaio || true)
echo "consumer links: ${linked:-<no libuvaio>}"
[[ $linked == *"=> $libdir/"* ]] || fail "the consumer does not load the installed libuvaio"

"$work/build/consumer"
