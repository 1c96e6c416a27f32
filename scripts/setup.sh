#!/usr/bin/env bash
# Create .venv with everything voxface needs. Idempotent: a second run only checks.
#   bash scripts/setup.sh          # runtime + test dependencies
# Order matters: torch (CPU build) first, then everything else under requirements/constraints.txt,
# so that no later install can replace it with a CUDA build (see docs/install.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VOXFACE_VENV:-.venv}
PY=${PYTHON:-python3}

apt_packages="libusb-1.0-0 libegl1 libgl1 libegl-mesa0 libgbm1 libgles2 ffmpeg chromium chromium-driver"
missing=""
for p in $apt_packages; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] apt-get install$missing"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "[setup] warning: missing system packages:$missing (install them with apt-get as root)" >&2
  fi
fi

stamp="$VENV/.voxface-setup"
want=$(cat requirements/*.txt pyproject.toml | sha1sum | cut -c1-40)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
echo "[setup] installing torch (CPU build) first"
"${pip[@]}" "torch==2.13.0"
echo "[setup] installing dependencies under requirements/constraints.txt"
"${pip[@]}" -c requirements/constraints.txt -r requirements/base.txt -r requirements/test.txt
"${pip[@]}" -c requirements/constraints.txt --no-deps -e .
"$VENV/bin/python" -c "import torch, voxface; assert torch.__version__.startswith('2.13.0'), torch.__version__"
echo "$want" > "$stamp"
echo "[setup] done: $VENV"
