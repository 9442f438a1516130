#!/usr/bin/env bash
# bench/peers/run.sh: issue 7's peer benchmark in one command (see
# bench/README.md, "peers"). Runs W1-W7 for kiln, PyTorch, Jittor,
# Jittor+oneDNN and numpy, one process per cell, and writes the "peers"
# section of bench/RESULTS.md and bench/peers_ratios.png.
# Options are run.py's (--help); PYTHON picks the interpreter.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${PYTHON:-python3}"
if ! "$py" -c "import matplotlib" 2>/dev/null; then
    echo "peers: installing matplotlib for the plot"
    "$py" -m pip install --quiet matplotlib || echo "peers: no matplotlib; the plot is skipped"
fi
for p in numpy msgpack; do
    "$py" -c "import $p" 2>/dev/null || { echo "peers: $py lacks $p (kiln's client needs it)"; }
done
if [ -z "${KILN_DAEMON:-}" ] && [ -x "$(command -v meson)" ]; then
    # Always brought up to date: a stale build-bench would measure old code.
    echo "peers: building kilnd (release) in build-bench/"
    (cd "$repo" && { [ -f build-bench/build.ninja ] || meson setup build-bench --buildtype=release; } \
        && meson compile -C build-bench) >/dev/null || echo "peers: kilnd build failed"
fi
exec "$py" "$here/run.py" "$@"
