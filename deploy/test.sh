#!/bin/bash
# kiln's whole test suite, as the README and .ci/run run it.
#
# Installs what is missing, then builds and tests twice: `build` with
# warnings as errors, and `build-asan` with AddressSanitizer and
# UndefinedBehaviorSanitizer (every C test, the daemon's integration tests
# included, runs again there). Ends with one summary line; exits non-zero
# if anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh || exit 1

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1"

setup() {
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

# Counts one build's results from meson's machine-readable log.
count() {
    local log=$1/meson-logs/testlog.json
    [ -f "$log" ] || { echo "0 0"; return; }
    local ok bad
    ok=$(grep -c '"result": "OK"' "$log" || true)
    bad=$(grep -c -E '"result": "(FAIL|ERROR|TIMEOUT|UNEXPECTEDPASS)"' "$log" || true)
    echo "$ok $bad"
}

status=0
passed=0
failed=0
for variant in plain asan; do
    if [ $variant = plain ]; then
        dir=build; opts=(--werror)
    else
        dir=build-asan; opts=(--werror -Db_sanitize=address,undefined -Db_lundef=false)
    fi
    echo "=== $dir: configure and build"
    rm -f "$dir/meson-logs/testlog.json"
    if ! setup "$dir" "${opts[@]}" || ! meson compile -C "$dir"; then
        echo "=== $dir: BUILD FAILED"
        status=1; failed=$((failed + 1)); continue
    fi
    echo "=== $dir: test"
    meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
    read -r ok bad < <(count "$dir")
    passed=$((passed + ok)); failed=$((failed + bad))
done

# The Python client's pytest suite, against the plain build's kilnd (each
# test session starts its own embedded daemon). Any python3 that has numpy,
# msgpack and pytest will do; Debian's come from deploy/packages.txt.
echo "=== python: pytest tests/python"
py=""
for cand in /usr/bin/python3 python3; do  # Debian's first: it has the apt packages
    if "$cand" -c "import numpy, msgpack, pytest" 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ] || [ ! -x build/daemon/kilnd ]; then
    echo "=== python: FAILED: no python3 with numpy, msgpack and pytest, or no build/daemon/kilnd"
    status=1; failed=$((failed + 1))
else
    pylog=$(mktemp)
    KILN_DAEMON="$PWD/build/daemon/kilnd" PYTHONDONTWRITEBYTECODE=1 XDG_CACHE_HOME="$PWD/build/test-cache" timeout 900 \
        "$py" -m pytest -q -p no:cacheprovider tests/python 2>&1 | tee "$pylog"
    pyrc=${PIPESTATUS[0]}
    # pytest's last line: "3 failed, 410 passed, 1 error in 12.3s".
    summary=$(grep -E '[0-9]+ (passed|failed|errors?)' "$pylog" | tail -n 1)
    pyok=$(echo "$summary" | grep -oE '[0-9]+ passed' | awk '{s += $1} END {print s + 0}')
    pybad=$(echo "$summary" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
    pyok=${pyok:-0}; pybad=${pybad:-0}
    if [ "$pyrc" -ne 0 ]; then
        status=1
        [ "$pybad" -eq 0 ] && pybad=1  # crashed, timed out or collected nothing
    fi
    passed=$((passed + pyok)); failed=$((failed + pybad))
    rm -f "$pylog"
fi

echo "kiln: $passed passed, $failed failed"
[ $failed -eq 0 ] || status=1
exit $status
