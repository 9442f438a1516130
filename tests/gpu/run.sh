#!/usr/bin/env bash
# tests/gpu/run.sh: everything a GPU session runs, in one command.
#
# On the GPU machine, with build-gpu/ and .gpu-carry/ carried (made by
# tests/gpu/pack.sh here; see tests/gpu/README.md):
#
#   bash tests/gpu/run.sh --budget 420
#
# Steps, each with its own timeout so that the summary is always printed:
#   build       the carried build loads (kilnd --version, no library
#               missing); rebuilt only where there is none and meson and
#               kiln's dependencies are there
#   test_cuda   every generated kernel compiled by NVRTC, and the driver probe
#   cuda_relay  test_cuda_relay (cuBLAS / cuDNN relays)
#   cuda_run    test_cuda_run (fused kernels on the device)
#   memcheck    compute-sanitizer --tool memcheck on test_cuda_run
#               (KILN_GPU_SUBSET=1: a representative subset)
#   racecheck   the same with --tool racecheck, if time is left
#   bench       python3 bench/gpu.py (kiln against PyTorch), writing the
#               gpu section of bench/RESULTS.md
# A test binary that does not exist yet is MISSING, not a failure of the
# script. Logs, RESULTS.md and the benchmark's JSON go to $OUT (the device
# tool's folder; elsewhere --out or a fresh /tmp folder). The last lines
# printed are the step table and the benchmark's table.
#
# Options:
#   --budget S    seconds for the whole script (default 420)
#   --build DIR   the build to use (default build-gpu; relative to the repo)
#   --cpu-side    no GPU: build check, test_cuda (NVRTC compiles every
#                 kernel; skipped, exit 77, without NVRTC) and the smoke
#                 benchmark (bench/gpu.py --smoke, into a copy of RESULTS.md)
#   --skip-bench  no benchmark
#   --out DIR     where logs and results go (default $OUT, else a temp dir)
# Environment: PYTHON (default python3).
# Exit status: 0 when no step FAILed (MISSING and SKIP are not failures).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
t_start=$(date +%s)

budget=420
build="build-gpu"
cpu_side=0
skip_bench=0
out="${OUT:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --budget) budget="${2:?--budget needs seconds}"; shift 2 ;;
        --build) build="${2:?--build needs a directory}"; shift 2 ;;
        --cpu-side) cpu_side=1; shift ;;
        --skip-bench) skip_bench=1; shift ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
done
case "$budget" in ''|*[!0-9]*) echo "run.sh: --budget takes whole seconds" >&2; exit 2 ;; esac
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
py="${PYTHON:-python3}"
[ -n "$out" ] || out="$(mktemp -d /tmp/kiln-gpu-run-XXXXXX)"
mkdir -p "$out"
work="$(mktemp -d /tmp/kiln-gpu-work-XXXXXX)"
cd "$repo" || exit 1

say() { printf '== %s\n' "$*"; }
elapsed() { echo $(( $(date +%s) - t_start )); }
left() { echo $(( budget - $(elapsed) )); }

# ---- environment: carried libraries and wheels ---------------------------------
carry="$repo/.gpu-carry"
if [ -d "$carry/lib" ]; then
    libdir="$work/lib"
    mkdir -p "$libdir"
    for f in "$carry"/lib/*; do
        case "$f" in
            *.xz) dst="$libdir/$(basename "$f" .xz)"
                  if command -v xz >/dev/null; then
                      xz -dc "$f" >"$dst"
                  else
                      "$py" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$dst"
                  fi || echo "run.sh: warning: cannot unpack $f" ;;
            *) cp "$f" "$libdir/" ;;
        esac
    done
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ "$cpu_side" = 0 ]; then
    # cuBLAS and cuDNN as PyTorch's wheels ship them, for the daemon's
    # relays (loaded with dlopen) where the toolkit has no copy of its own.
    extra=$("$py" - <<'EOF' 2>/dev/null
import importlib, os
dirs = []
for mod in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_nvrtc"):
    try:
        m = importlib.import_module(mod)
    except ImportError:
        continue
    for base in list(getattr(m, "__path__", [])):
        d = os.path.join(base, "lib")
        if os.path.isdir(d):
            dirs.append(d)
print(":".join(dirs))
EOF
)
    [ -n "$extra" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$extra"
    [ -d /usr/local/cuda/lib64 ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/cuda/lib64"
fi
if ! "$py" -c "import msgpack" 2>/dev/null; then
    if ls "$carry"/wheels/*.whl >/dev/null 2>&1; then
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$work/site" "$carry"/wheels/*.whl \
            || echo "run.sh: warning: the carried wheels did not install"
        export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "run.sh: warning: $py has no msgpack and no wheel was carried (tests/gpu/pack.sh)"
    fi
fi
export PYTHONPATH="$repo/clients/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export KILN_DAEMON="$build/daemon/kilnd"
export XDG_CACHE_HOME="$work/cache"
export KILN_BUILD_ROOT="$build" KILN_SOURCE_ROOT="$repo"
unset KILN_ADDRESS

# ---- versions ------------------------------------------------------------------
say "kiln GPU run: $(date -u '+%Y-%m-%d %H:%M UTC'), budget ${budget} s, build ${build#$repo/}$([ $cpu_side = 1 ] && echo ', --cpu-side')"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L 2>&1 | sed 's/^/   /'
    echo "   driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
else
    echo "   nvidia-smi: not here (no GPU driver)"
fi
nvcc_bin=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
echo "   nvcc: $([ -n "$nvcc_bin" ] && "$nvcc_bin" --version | grep -i release || echo none)"
echo "   python: $("$py" --version 2>&1) ($py); torch: $("$py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo none)"
echo "   meson: $(meson --version 2>/dev/null || echo none); kilnd: $("$KILN_DAEMON" --version 2>/dev/null || echo 'does not run')"
[ -f "$carry/MANIFEST" ] && sed 's/^/   carry /' "$carry/MANIFEST" | grep -v '^   carry libs:'
[ -n "${LD_LIBRARY_PATH:-}" ] && echo "   LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

# ---- steps ---------------------------------------------------------------------
names=()
results=()
secs=()
notes=()
record() {  # name result seconds note
    names+=("$1"); results+=("$2"); secs+=("$3"); notes+=("$4")
    printf '== step %-11s %-7s %5ss  %s\n' "$1" "$2" "$3" "$4"
}

# run_step NAME TIMEOUT CMD...: runs with a timeout, log in $work/NAME.log.
# Sets rc (124: timed out) and dt.
run_step() {
    local name=$1 t=$2; shift 2
    local t0=$(date +%s)
    say "step $name (timeout ${t} s): $*"
    timeout -k 10 "$t" "$@" >"$work/$name.log" 2>&1
    rc=$?
    dt=$(( $(date +%s) - t0 ))
    tail -n 25 "$work/$name.log" | sed 's/^/   | /'
}

# The time a step may take: its own cap, less what must stay for the
# steps after it (the benchmark's reserve). Prints 0 when too little is left.
cap() {
    local want=$1 reserve=$2
    local t=$(( $(left) - reserve - 10 ))
    [ "$t" -gt "$want" ] && t=$want
    [ "$t" -lt 15 ] && t=0
    echo "$t"
}

bench_reserve=200
[ "$skip_bench" = 1 ] && bench_reserve=0
[ "$cpu_side" = 1 ] && bench_reserve=90


# -- build
t0=$(date +%s)
if [ ! -x "$build/daemon/kilnd" ]; then
    if command -v meson >/dev/null && pkg-config --exists libuv msgpack check 2>/dev/null \
            && [ -f /usr/include/nng/nng.h ]; then
        run_step build "$(cap 300 "$bench_reserve")" bash -c \
            "meson setup '$build' --buildtype=release -Dcuda=enabled -Dtests=enabled && meson compile -C '$build'"
        [ "$rc" = 0 ] && record build PASS "$dt" "built here" || record build FAIL "$dt" "meson build failed (rc $rc)"
    else
        record build FAIL 0 "no ${build#$repo/}/daemon/kilnd, and no meson with kiln's dependencies here (run tests/gpu/pack.sh and carry build-gpu)"
    fi
else
    bad=""
    for b in "$build/daemon/kilnd" "$build"/tests/jit/test_cuda*; do
        [ -x "$b" ] || continue
        miss=$(ldd "$b" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
        [ -n "$miss" ] && bad="$bad ${b##*/}: $miss"
    done
    if [ -n "$bad" ]; then
        record build FAIL $(( $(date +%s) - t0 )) "libraries not found:$bad"
    elif ! "$build/daemon/kilnd" --version >/dev/null 2>&1; then
        record build FAIL $(( $(date +%s) - t0 )) "kilnd --version failed"
    else
        bt=$("$py" -c "import json,sys; print(next(o['value'] for o in json.load(open(sys.argv[1])) if o['name']=='buildtype'))" \
             "$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo '?')
        record build PASS $(( $(date +%s) - t0 )) "$("$build/daemon/kilnd" --version), ${build#$repo/} ($bt)"
    fi
fi

# test_step NAME BINARY MESON_TEST CAP [PREFIX...]: one Check binary.
test_step() {
    local name=$1 bin=$2 mtest=$3 want=$4; shift 4
    if [ ! -x "$build/tests/jit/$bin" ]; then
        record "$name" MISSING 0 "no ${build#$repo/}/tests/jit/$bin (not written yet?)"
        return
    fi
    local t
    t=$(cap "$want" "$bench_reserve")
    if [ "$t" = 0 ]; then
        record "$name" SKIP 0 "not enough of the budget left"
        return
    fi
    # The binary itself, never `meson test`: meson runs cuda and cuda_run
    # against tests/jit's stand-in driver (LD_LIBRARY_PATH), and here they
    # must find the real one.
    run_step "$name" "$t" "$@" "$build/tests/jit/$bin"
    local why
    why=$(grep -m1 -E '^SKIP' "$work/$name.log" | cut -c1-150)
    case "$rc" in
        0) record "$name" PASS "$dt" "$(grep -m1 -oE '[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$work/$name.log" || echo "meson test $mtest")" ;;
        77) record "$name" SKIP "$dt" "exit 77: ${why:-skipped (see its log)}" ;;
        124|137) record "$name" FAIL "$dt" "timeout after ${t} s" ;;
        *) record "$name" FAIL "$dt" "exit $rc: $(grep -m1 -E 'FAIL|ERROR|Error|error' "$work/$name.log" | cut -c1-150)" ;;
    esac
}

test_step test_cuda test_cuda cuda 200
if [ "$cpu_side" = 0 ]; then
    test_step cuda_relay test_cuda_relay cuda_relay 90
    test_step cuda_run test_cuda_run cuda_run 120

    san=$(command -v compute-sanitizer || { [ -x /usr/local/cuda/bin/compute-sanitizer ] && echo /usr/local/cuda/bin/compute-sanitizer; })
    for tool in memcheck racecheck; do
        if [ -z "$san" ]; then
            record "$tool" MISSING 0 "no compute-sanitizer"
            continue
        fi
        # Check's fork mode would hide the test processes from the tool.
        test_step "$tool" test_cuda_run cuda_run 120 \
            env KILN_GPU_SUBSET=1 CK_FORK=no "$san" --tool "$tool" --error-exitcode 1 \
            --target-processes all
    done
fi

# -- bench
if [ "$skip_bench" = 1 ]; then
    record bench SKIP 0 "--skip-bench"
else
    cp -f "$repo/bench/RESULTS.md" "$work/RESULTS.md" 2>/dev/null
    if [ "$cpu_side" = 1 ]; then
        results_md="$work/RESULTS.md"      # the repository's copy stays as it is
        bargs=(--smoke)
        bmax=$(( $(left) - 10 ))
    else
        results_md="$repo/bench/RESULTS.md"
        bargs=()
        bmax=$(( $(left) - 20 ))
        [ "$bmax" -gt 240 ] && bmax=240
    fi
    if [ "$bmax" -lt 30 ]; then
        record bench SKIP 0 "not enough of the budget left (${bmax} s)"
    else
        run_step bench $((bmax + 30)) "$py" "$repo/bench/gpu.py" "${bargs[@]}" \
            --deadline "$bmax" --results "$results_md" --json "$work/gpu.json" \
            --table "$work/table.md" --kilnd "$KILN_DAEMON"
        cells=$(grep -cE '^  \S+ +\S+ +ERROR' "$work/bench.log")
        case "$rc" in
            0) record bench PASS "$dt" "gpu section of ${results_md#$repo/} written (a copy in $out)" ;;
            124|137) record bench FAIL "$dt" "timeout after $((bmax + 30)) s" ;;
            *) record bench FAIL "$dt" "exit $rc: $cells cell(s) failed" ;;
        esac
        cp -f "$results_md" "$out/RESULTS.md" 2>/dev/null
        [ -f "$work/gpu.json" ] && cp -f "$work/gpu.json" "$out/gpu.json"
    fi
fi

# ---- logs and summary --------------------------------------------------------------
# The device tool brings back at most 8 files: every step's log goes into one.
{
    for n in "${names[@]}"; do
        [ -f "$work/$n.log" ] || continue
        echo "==================== $n"
        lines=$(wc -l <"$work/$n.log")
        if [ "$lines" -gt 3000 ]; then
            head -n 300 "$work/$n.log"
            echo "... ($((lines - 2300)) lines left out) ..."
            tail -n 2000 "$work/$n.log"
        else
            cat "$work/$n.log"
        fi
    done
} >"$out/steps.log"

status=0
{
    echo
    echo "== kiln GPU run: steps ($(elapsed) s of the ${budget} s budget; logs in $out)"
    printf '%-11s %-7s %7s  %s\n' step result seconds note
    for i in "${!names[@]}"; do
        printf '%-11s %-7s %7s  %s\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}" "${notes[$i]}"
        [ "${results[$i]}" = FAIL ] && status=1
    done
    if [ -f "$work/table.md" ]; then
        echo
        echo "== benchmark ($([ $cpu_side = 1 ] && echo 'smoke: tiny shapes, not figures' || echo 'bench/gpu.py'))"
        cat "$work/table.md"
    fi
} | tee "$out/summary.txt"
rm -rf "$work"
exit $status
