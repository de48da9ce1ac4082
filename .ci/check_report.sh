#!/usr/bin/env bash
# Renders a report of a small sweep in headless Chromium and checks the screenshot.
# Usage: .ci/check_report.sh [path/to/moonbench]   (installs Chromium from Debian if missing)
set -euo pipefail
bin=${1:-target/release/moonbench}
if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium (Debian package)"
    (apt-get update -q && apt-get install -y -q chromium) >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
here=$(pwd)
(cd "$work" && "$here/$bin" sweep scripts/config.yaml >/dev/null && "$here/$bin" report results -o report.html)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$work/profile" \
    --window-size=1400,2600 --screenshot="$work/report.png" "file://$work/report.html" >/dev/null 2>&1
python3 .ci/check_report.py "$work/report.png"
