#!/usr/bin/env bash
# `npm start`: set up this machine (apt packages when root, npm deps, build),
# then start walkenfs. See README "Quick start".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/src/cli/main.js start "$@"
