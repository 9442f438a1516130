#!/bin/bash
# kiln's main job, as the README runs it: install what is missing, build,
# start kilnd on a private ipc:// socket and run the command-line example
# against it (deploy/example.sh), stop it, then train the digits example
# (clients/python/examples/digits.py: an MLP and a small CNN on
# scikit-learn's bundled 8x8 digits) from Python, whose client starts its
# own private embedded kilnd from this build and stops it at exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh

if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null
fi
meson compile -C build >/dev/null
echo "demo: built build/daemon/kilnd and build/clients/cli/kiln"

rundir=$(mktemp -d /tmp/kiln-demo.XXXXXX)
chmod 700 "$rundir"
address="ipc://$rundir/kilnd.sock"
build/daemon/kilnd --listen "$address" --log-level warn &
kilnd_pid=$!
stop() {
    kill -TERM "$kilnd_pid" 2>/dev/null || true
    wait "$kilnd_pid" 2>/dev/null || true
    rm -rf "$rundir"
}
trap stop EXIT

export KILN_ADDRESS="$address"
for _ in $(seq 100); do
    build/clients/cli/kiln --timeout 200 ping -c 1 >/dev/null 2>&1 && break
    sleep 0.1
done
echo "demo: kilnd (pid $kilnd_pid) is serving at $address"
bash deploy/example.sh
stop
trap - EXIT

# Any python3 with what the example needs; Debian's gets them from
# deploy/packages.txt (python3-numpy, -msgpack, -sklearn, -tqdm).
py=""
for cand in /usr/bin/python3 python3; do
    if "$cand" -c "import numpy, msgpack, sklearn, tqdm" 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
    echo "demo: no python3 with numpy, msgpack, scikit-learn and tqdm (deploy/install-deps.sh" \
         "installs Debian's)" >&2
    exit 1
fi
echo "demo: training the digits example with $py and an embedded kilnd"
unset KILN_ADDRESS
KILN_DAEMON="$PWD/build/daemon/kilnd" PYTHONPATH="$PWD/clients/python" PYTHONDONTWRITEBYTECODE=1 \
    "$py" clients/python/examples/digits.py
