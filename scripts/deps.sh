#!/usr/bin/env bash
# Installs what pdiff's build, tests, benchmarks and examples need on a Debian machine (apt only;
# nothing already installed is touched). Sourced by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
pkgs=(cmake ninja-build ccache g++ libeigen3-dev doctest-dev libbenchmark-dev nlohmann-json3-dev libstb-dev
      libcli11-dev libopenmpi-dev openmpi-bin libopenblas-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "pdiff: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# mpirun refuses root without these (CI and containers run as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
