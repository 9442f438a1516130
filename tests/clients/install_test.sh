#!/bin/bash
# install_test.sh: libkiln as a user gets it. Installs the build into a
# temporary DESTDIR, finds kiln.pc there, and builds small programs with
# nothing but `pkg-config kiln` (PKG_CONFIG_SYSROOT_DIR points pkg-config
# into the DESTDIR): one against libkiln.so, one against libkiln.a (with
# --static's private libraries), and one C++ program on kiln.hpp. Each
# runs against the kilnd installed next to them. Also checks that
# libkiln.so exports exactly the functions the installed kiln.h marks
# KILN_API, plus kiln_err_name and kiln_err_str.
#
# usage: install_test.sh BUILD_DIR PROG.c PROG.cpp SANITIZE CC [CXX]
# (CC and CXX are commands, split at spaces: "ccache cc" works.)
set -euo pipefail
build=$1 prog_c=$2 prog_cpp=$3 sanitize=$4 cc=$5 cxx=${6:-}

tmp=$(mktemp -d /tmp/kiln-install-XXXXXX)
daemon=""
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install_test: $*" >&2; exit 1; }

root=$tmp/root
meson install -C "$build" --no-rebuild --quiet --destdir "$root" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "meson install failed"; }
pc=$(find "$root" -name kiln.pc -print -quit)
[ -n "$pc" ] || fail "no kiln.pc under the DESTDIR"
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR=$root
cflags=$(pkg-config --cflags kiln) || fail "pkg-config --cflags kiln failed"
libs=$(pkg-config --libs kiln) || fail "pkg-config --libs kiln failed"
echo "pkg-config --cflags --libs kiln: $cflags $libs"
libdir=$root$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=libdir kiln)
incdir=$root$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=includedir kiln)/kiln
for f in "$incdir/kiln.h" "$incdir/kiln_err.h" "$incdir/kiln.hpp" "$libdir/libkiln.a" \
         "$libdir/libkiln.so"; do
    [ -e "$f" ] || fail "$f was not installed"
done
case "$cflags" in *"$root"*) ;; *) fail "--cflags does not point into the DESTDIR: $cflags" ;; esac

# The exported symbols are the header's promise, no more and no less.
want=$( (grep -A3 '^KILN_API' "$incdir/kiln.h" | grep -o 'kiln_[a-z_0-9]*(' | tr -d '(';
         echo kiln_err_name; echo kiln_err_str) | sort -u)
have=$(nm -D --defined-only "$libdir/libkiln.so" | awk '{print $3}' | sort -u)
[ "$want" = "$have" ] || { diff <(echo "$want") <(echo "$have") >&2 || true;
                           fail "libkiln.so exports differ from kiln.h (< header, > library)"; }

san=()
[ "$sanitize" != none ] && san=(-fsanitize="$sanitize")

# A daemon to talk to: the installed one.
kilnd=$(find "$root" -name kilnd -type f -print -quit)
[ -n "$kilnd" ] || fail "kilnd was not installed"
"$kilnd" --listen "ipc://$tmp/kilnd.sock" --log-level warn &
daemon=$!
for _ in $(seq 100); do [ -S "$tmp/kilnd.sock" ] && break; sleep 0.05; done
[ -S "$tmp/kilnd.sock" ] || fail "the installed kilnd did not start"
address=ipc://$tmp/kilnd.sock

# shellcheck disable=SC2086  # pkg-config output is meant to be split
$cc "${san[@]}" -Werror -Wall -Wextra -std=c11 -o "$tmp/prog_shared" "$prog_c" $cflags $libs ||
    fail "cannot build against libkiln.so"
LD_LIBRARY_PATH=$libdir "$tmp/prog_shared" "$address" || fail "the shared-library program failed"
readelf -d "$tmp/prog_shared" | grep -q 'NEEDED.*libkiln\.so\.0' || fail "not linked to libkiln.so.0"

static_libs=$(pkg-config --static --libs kiln | sed -e 's/\(^\| \)-lkiln\( \|$\)/ /')
# shellcheck disable=SC2086
$cc "${san[@]}" -Werror -Wall -Wextra -std=c11 -o "$tmp/prog_static" "$prog_c" $cflags \
    "$libdir/libkiln.a" $static_libs || fail "cannot build against libkiln.a"
readelf -d "$tmp/prog_static" | grep -q 'NEEDED.*libkiln' && fail "the static program needs libkiln.so"
"$tmp/prog_static" "$address" || fail "the static-library program failed"

if [ -n "$cxx" ]; then
    # shellcheck disable=SC2086
    $cxx "${san[@]}" -Werror -Wall -Wextra -Wshadow -std=c++17 -o "$tmp/prog_cpp" "$prog_cpp" \
        $cflags $libs || fail "cannot build a C++ program on kiln.hpp"
    LD_LIBRARY_PATH=$libdir "$tmp/prog_cpp" "$address" || fail "the C++ program failed"
else
    echo "no C++ compiler: kiln.hpp not built"
fi
echo "install_test: ok"
