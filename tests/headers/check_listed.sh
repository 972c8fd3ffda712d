#!/usr/bin/env bash
# Fails when a public header in include/uvaio/ has no file in tests/headers/
# (or a file there names a header that is gone): the list in tests/meson.build
# is written out by hand, and a header missing from it would go untested.
#
#   check_listed.sh UVAIO_SOURCE_ROOT
set -euo pipefail
root=$1
status=0
listed=$(sed -n "/^public_headers = \[/,/^\]/p" "$root/tests/meson.build")
for header in "$root"/include/uvaio/*.hpp "$root"/include/uvaio/*.hpp.in; do
  [[ -e $header ]] || continue
  name=${header##*/}
  name=${name%.in}
  name=${name%.hpp}
  if [[ ! -e $root/tests/headers/$name.cpp ]] || ! grep -q "^ *'$name',\$" <<<"$listed"; then
    echo "FAIL: include/uvaio/$name.hpp is not tested on its own: add tests/headers/$name.cpp" \
      "(it includes only <uvaio/$name.hpp>) and '$name' to public_headers in tests/meson.build" >&2
    status=1
  fi
done
for test_file in "$root"/tests/headers/*.cpp; do
  name=${test_file##*/}
  name=${name%.cpp}
  [[ $name == main ]] && continue
  if [[ ! -e $root/include/uvaio/$name.hpp && ! -e $root/include/uvaio/$name.hpp.in ]]; then
    echo "FAIL: tests/headers/$name.cpp tests include/uvaio/$name.hpp, which does not exist" >&2
    status=1
  fi
done
((status == 0)) && echo "every public header in include/uvaio/ has its test in tests/headers/"
exit $status
