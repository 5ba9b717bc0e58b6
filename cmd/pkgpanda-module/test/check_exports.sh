#!/bin/sh
# check_exports.sh LIB: LIB's dynamic symbol table defines the module
# symbol com_procpanda_Pkgpandad and nothing of the module's own. Besides
# that symbol only instantiations of the C++ standard library's templates
# may be there (names in std:: or __gnu_cxx::): libstdc++ declares its
# namespaces with default visibility, which -fvisibility=hidden does not
# override, and they are the same code as the agent's copies.
set -eu
lib=$1
symbols=$(nm -D --defined-only "$lib" | awk '{print $NF}')
if ! printf '%s\n' "$symbols" | grep -qx com_procpanda_Pkgpandad; then
  echo "check_exports: $lib does not export com_procpanda_Pkgpandad" >&2
  exit 1
fi
# Itanium-mangled names in std:: (St) or __gnu_cxx:: (9__gnu_cxx): plain,
# const members (NK), statics of functions (Z...), typeinfo (TI), its
# name (TS) and vtables (TV).
others=$(printf '%s\n' "$symbols" | grep -vx com_procpanda_Pkgpandad |
  grep -vE '^_Z(Z|TI|TS|TV)?N?K?(St|9__gnu_cxx)' || true)
if [ -n "$others" ]; then
  echo "check_exports: $lib exports more than the module symbol:" >&2
  printf '%s\n' "$others" | c++filt >&2
  exit 1
fi
echo "check_exports: $lib exports com_procpanda_Pkgpandad and" \
  "$(printf '%s\n' "$symbols" | grep -cvx com_procpanda_Pkgpandad) standard library instantiations"
