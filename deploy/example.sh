#!/bin/bash
# The example the main job runs against the daemon at $KILN_ADDRESS.
# It shows the daemon answering (a few PINGs with their round-trip times),
# then runs one graph, deploy/example-graph.json: a 2x3 matrix X times a
# vector w broadcast over its rows, summed along each row (X.w = [-0.75,
# -1.5]), plus 1, through a sigmoid (about [0.5622, 0.3775]); kiln prints
# the kept vars 5 (X.w) and 8 (the sigmoid) as JSON. Ends with the
# daemon's STATUS table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build/clients/cli/kiln ping -c 3
build/clients/cli/kiln submit deploy/example-graph.json
build/clients/cli/kiln status
