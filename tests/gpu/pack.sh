#!/usr/bin/env bash
# tests/gpu/pack.sh: prepare a GPU session, on a build machine (this one).
#
# The GPU machine has the CUDA driver, the toolkit and PyTorch, but none of
# kiln's build dependencies (NNG, msgpack-c, libuv, Check, oneDNN, ...) and
# no network. So the build happens here and travels with the run:
#
#   build-gpu/    release build, -Dcuda=enabled, tests on (kilnd, libkiln,
#                 the Check test binaries run.sh runs)
#   .gpu-carry/   lib/      every shared library those binaries load that the
#                           GPU machine may lack (glibc, libstdc++, libgcc and
#                           the CUDA toolkit's own are left out); big ones are
#                           xz-compressed and unpacked by run.sh
#                 wheels/   Python wheels the client needs (msgpack), for
#                           the GPU machine's Python 3.12, installed by run.sh
#                           only where that Python lacks them
#                 MANIFEST  commit, date, build options, what was packed
#
# Then one device call runs everything (bench/README.md, "GPU"):
#   run  carry: ["build-gpu", ".gpu-carry"]  command: bash tests/gpu/run.sh --budget 420
#
# Options: --no-build (pack what build-gpu/ already holds), --no-wheels.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="$repo/build-gpu"
carry="$repo/.gpu-carry"
# The device tool moves at most 64 MiB (the working tree included); keep a
# margin for the tracked files.
limit_mib=56
do_build=1
do_wheels=1
for a in "$@"; do
    case "$a" in
        --no-build) do_build=0 ;;
        --no-wheels) do_wheels=0 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "pack: unknown option $a (--no-build, --no-wheels)" >&2; exit 2 ;;
    esac
done

say() { printf 'pack: %s\n' "$*"; }
die() { printf 'pack: error: %s\n' "$*" >&2; exit 1; }

cd "$repo" || die "no repository at $repo"

# .gpu-carry is a build product: never committed (the device tool carries
# ignored paths only when a call names them).
if ! grep -qx '/.gpu-carry/' .gitignore 2>/dev/null; then
    die ".gitignore lacks /.gpu-carry/ (this checkout predates the GPU scripts?)"
fi

# ---- build -------------------------------------------------------------------
if [ "$do_build" = 1 ]; then
    log="$(mktemp /tmp/kiln-pack-XXXXXX.log)"
    command -v meson >/dev/null || die "meson is not installed"
    if [ -f "$build/build.ninja" ]; then
        say "reconfiguring build-gpu/ (release, -Dcuda=enabled, -Dtests=enabled)"
        meson configure "$build" -Dbuildtype=release -Dcuda=enabled -Dtests=enabled \
            >"$log" 2>&1 || { tail -20 "$log"; die "meson configure failed"; }
    else
        say "setting up build-gpu/ (release, -Dcuda=enabled, -Dtests=enabled)"
        meson setup "$build" --buildtype=release -Dcuda=enabled -Dtests=enabled \
            >"$log" 2>&1 \
            || { tail -20 "$log"; die "meson setup failed (is the CUDA toolkit in /usr/local/cuda?)"; }
    fi
    say "compiling (meson compile -C build-gpu)"
    meson compile -C "$build" >"$log" 2>&1 \
        || { tail -30 "$log"; die "build failed (log: $log)"; }
    rm -f "$log"
fi
[ -x "$build/daemon/kilnd" ] || die "no build-gpu/daemon/kilnd (run without --no-build)"

# Only what runs travels: the object files and static libraries in build-gpu
# are not needed there, but deleting them would make the next build here
# start over, so the size check below counts them and says what to do.

# ---- shared libraries -------------------------------------------------------
rm -rf "$carry"
mkdir -p "$carry/lib" "$carry/wheels"

bins=("$build/daemon/kilnd")
for f in "$build"/clients/c/libkiln.so* "$build"/tests/*/test_* "$build"/bench/*; do
    [ -f "$f" ] && [ -x "$f" ] && bins+=("$f")
done

# A library the GPU machine certainly has (the C runtime, the C++ runtime
# that ships with every compiler, and the CUDA toolkit's) stays behind:
# carrying glibc pieces would clash with the machine's own loader.
skip_re='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libutil\.so|libresolv\.so|libstdc\+\+\.so|libgcc_s\.so)'
declare -A seen=()
for b in "${bins[@]}"; do
    while read -r name path; do
        [ -n "$path" ] || continue
        [[ "$name" =~ $skip_re ]] && continue
        # The toolkit's own libraries are the GPU machine's; ours (libkiln)
        # travel inside build-gpu and are found through their rpath.
        case "$(readlink -f "$path")" in /usr/local/cuda*|"$repo"/*) continue ;; esac
        [ -n "${seen[$name]:-}" ] && continue
        seen[$name]="$path"
    done < <(ldd "$b" 2>/dev/null | awk '/=>/ && $3 ~ /^\// {print $1, $3}')
done
[ "${#seen[@]}" -gt 0 ] || die "ldd found no libraries to carry (is ldd installed?)"

big=$((4 * 1024 * 1024))
for name in $(printf '%s\n' "${!seen[@]}" | sort); do
    src="${seen[$name]}"
    size=$(stat -Lc %s "$src")
    if [ "$size" -gt "$big" ]; then
        # oneDNN alone is 40 MB: xz brings it to about 7.
        xz -T2 -6 -c "$src" >"$carry/lib/$name.xz" || die "xz $src failed"
        say "lib $name <- $src ($((size / 1024)) KiB, xz $(( $(stat -c %s "$carry/lib/$name.xz") / 1024 )) KiB)"
    else
        cp -L "$src" "$carry/lib/$name" || die "cannot copy $src"
        say "lib $name <- $src ($((size / 1024)) KiB)"
    fi
done

# ---- wheels -----------------------------------------------------------------
# The GPU machine's python3 is 3.12 (KINDS.md); its image lists msgpack and
# numpy, so these are a fallback, installed by run.sh only if missing.
if [ "$do_wheels" = 1 ]; then
    ver=$(python3 -c 'import msgpack; print(".".join(map(str, msgpack.version)))' 2>/dev/null)
    spec="msgpack${ver:+==$ver}"
    if python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "$carry/wheels" "$spec" >/dev/null 2>&1; then
        say "wheel $(cd "$carry/wheels" && ls)"
    else
        say "warning: could not download a $spec wheel (no network?); the GPU machine's own msgpack will be used"
    fi
fi

# ---- manifest and size ------------------------------------------------------
{
    echo "packed: $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "branch: $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo '?')"
    echo "build: $(meson introspect --buildoptions "$build" 2>/dev/null | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(", ".join(f"{k}={o.get(k)}" for k in ("buildtype", "cuda", "tests", "dnnl")))' 2>/dev/null || echo '?')"
    echo "meson: $(meson --version 2>/dev/null || echo '?')"
    echo "cc: $(cc --version 2>/dev/null | head -1)"
    echo "glibc: $(ldd --version 2>/dev/null | head -1)"
    echo "libs: $(cd "$carry/lib" && ls | tr '\n' ' ')"
    echo "wheels: $(cd "$carry/wheels" && ls | tr '\n' ' ')"
} >"$carry/MANIFEST"

kib() { du -sk "$1" | cut -f1; }
b=$(kib "$build")
c=$(kib "$carry")
t=$(git ls-files -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((b + c + t))
say "sizes: build-gpu $((b / 1024)) MiB, .gpu-carry $((c / 1024)) MiB, tracked files $((t / 1024)) MiB: $((total / 1024)) MiB of the device tool's 64 MiB"
if [ "$total" -gt $((limit_mib * 1024)) ]; then
    die "over ${limit_mib} MiB: the device call would be refused; strip build-gpu (strip build-gpu/daemon/kilnd build-gpu/tests/*/test_*) or remove build-gpu/*/*.p object folders"
fi
say "ready: carry [\"build-gpu\", \".gpu-carry\"], command: bash tests/gpu/run.sh --budget 420"
