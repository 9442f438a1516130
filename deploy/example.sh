#!/bin/bash
# The example the main job runs against the daemon at $KILN_ADDRESS.
# Graph execution arrives with the core work; until then the example shows
# the daemon answering: a few PINGs with their round-trip times and the
# daemon's STATUS table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build/clients/cli/kiln ping -c 5
build/clients/cli/kiln status
