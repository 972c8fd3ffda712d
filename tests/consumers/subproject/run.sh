#!/usr/bin/env bash
# Consumer test: uvaio as a meson subproject.
#
#   run.sh UVAIO_SOURCE_ROOT [UVAIO_BUILD_ROOT]
#
# Copies uvaio's source tree (without build directories, .git and the build
# root given) into a temporary project's subprojects/uvaio, next to this
# directory's meson.build and main.cpp, builds it with uvaio forced to come from
# that subproject, checks that the program links the subproject's library and
# that uvaio's tests and examples were not configured, and runs the program.
set -euo pipefail

if (($# < 1)); then
  echo "usage: $0 UVAIO_SOURCE_ROOT [UVAIO_BUILD_ROOT]" >&2
  exit 2
fi
src=$(cd "$1" && pwd -P)
build_root=
if (($# >= 2)) && [[ -d $2 ]]; then build_root=$(cd "$2" && pwd -P); fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

work=$(mktemp -d "${TMPDIR:-/tmp}/uvaio-consumer-subproject.XXXXXX")
cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -f $work/build/meson-logs/meson-log.txt ]]; then
    echo "----- tail of the consumer's meson-log.txt -----"
    tail -n 40 "$work/build/meson-logs/meson-log.txt"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cp "$here/meson.build" "$here/main.cpp" "$work/"
mkdir -p "$work/subprojects/uvaio"
shopt -s dotglob nullglob
for entry in "$src"/*; do
  name=${entry##*/}
  case $name in
    build* | .git | .cache) continue ;;
  esac
  [[ -n $build_root && $entry == "$build_root" ]] && continue
  cp -a "$entry" "$work/subprojects/uvaio/"
done
shopt -u dotglob nullglob
echo "copied uvaio's tree to $work/subprojects/uvaio: $(find "$work/subprojects/uvaio" -type f | wc -l) files"

cd "$work"
# --force-fallback-for: an installed uvaio.pc must not be picked instead.
meson setup build --force-fallback-for=uvaio
meson compile -C build

if [[ -e build/subprojects/uvaio/tests || -e build/subprojects/uvaio/examples ]]; then
  echo "FAIL: uvaio's tests or examples were configured although the consumer turned them off" >&2
  exit 1
fi

linked=$(ldd build/consumer | grep libuvaio || true)
echo "consumer links: ${linked:-<no libuvaio>}"
if [[ $linked != *"$work/build/subprojects/uvaio/"* ]]; then
  echo "FAIL: the consumer does not link the library built from the subproject" >&2
  exit 1
fi

build/consumer
