#!/usr/bin/env bash
# Size of each install a user can choose, measured in fresh virtual environments:
#   scripts/install_size.sh [EXTRAS...]      (default: "cpu" "cpu,cli" "gpu,cli")
# Prints the site-packages size of each, without pip and setuptools (every venv has them),
# and the largest packages. Needs network access to the package index; takes a few minutes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
extras=("$@")
[ ${#extras[@]} -eq 0 ] && extras=("cpu" "cpu,cli" "gpu,cli")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for extra in "${extras[@]}"; do
  venv="$work/venv-${extra//,/-}"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$repo[$extra]" >/dev/null 2>&1
  site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  total=$(du -sk "$site" --exclude='pip' --exclude='pip-*' --exclude='setuptools' --exclude='setuptools-*' \
          --exclude='pkg_resources' --exclude='_distutils_hack' | cut -f1)
  printf '%-10s %5d MB   ' "[$extra]" $((total / 1024))
  du -sk "$site"/* | sort -rn | head -4 | while read -r kb path; do printf '%s %d MB  ' "$(basename "$path")" $((kb / 1024)); done
  echo
done
