#!/bin/bash
# kiln's main job, as the README runs it: install what is missing, build,
# start a private embedded kilnd on its own ipc:// socket, run the example,
# and stop the daemon again.
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
