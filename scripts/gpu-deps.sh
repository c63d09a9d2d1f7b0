#!/usr/bin/env bash
# Fills third_party/ (git-ignored) with every dependency of the GPU build besides CUDA and NCCL, so
# that scripts/gpu-check.sh can build on a bare GPU machine that has no network and no Debian
# packages: carry third_party in the device call (docs/gpu-results.md has the exact call).
#
#   scripts/gpu-deps.sh            fetch what is missing or not at the pinned version (idempotent)
#   scripts/gpu-deps.sh --force    fetch everything again
#
# Runs here (Debian bookworm's apt reachable). What it puts there:
#   third_party/usr/...            the headers and CMake config files of the Debian packages below
#                                  (apt-get download + dpkg-deb -x; no shared library is shipped)
#   third_party/cudnn-frontend/    cudnn-frontend's headers (header-only; from the PyPI wheel), for the
#                                  cuDNN attention path (src/cuda/attention_cudnn.cpp)
#   third_party/benchmark-src/     Google Benchmark as upstream SOURCE (the orig tarball of Debian's
#                                  source package), built by gpu-check.sh on the machine that uses it,
#                                  since that machine's glibc/libstdc++ may differ from Debian's
#   third_party/VERSIONS           one line per package: kind, name, version, sha256 of what was fetched
# apt runs on a private state folder (its own sources list for bookworm main, lists in a temp dir):
# the system's apt configuration and lists are neither used nor changed. (PyPI's google-benchmark
# sdists hold only the Python bindings, no C++ sources, so Debian's source package is used instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=third_party
suite=bookworm
mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# The pins: Debian bookworm's versions, the same that scripts/deps.sh installs for the CPU build.
debs=(
  "libeigen3-dev 3.4.0-4"
  "doctest-dev 2.4.9~ds-1"
  "nlohmann-json3-dev 3.11.2-2"
  "libstb-dev 0.0~git20220908.8b5f1f3+ds-1"
  "libcli11-dev 2.1.2+ds-1"
)
bench_src="benchmark 1.7.1-1"   # Debian's source package of Google Benchmark; its orig tarball is upstream v1.7.1
cudnn_fe="nvidia-cudnn-frontend 1.32.0"   # PyPI wheel; only its include/ (header-only C++ cudnn-frontend) is kept

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "gpu-deps: unknown argument '$1' (only --force)" >&2; exit 2 ;;
esac

say() { echo "gpu-deps: $*"; }

# The pins as VERSIONS lists them (kind name version), without the checksums.
expected() {
  local d
  for d in "${debs[@]}"; do echo "deb $d"; done
  echo "src $bench_src"
  echo "whl $cudnn_fe"
}

# Everything in place and at the pinned versions?
up_to_date() {
  [ -f "$dest/VERSIONS" ] || return 1
  [ "$(grep -v '^#' "$dest/VERSIONS" | awk '{print $1, $2, $3}')" = "$(expected)" ] || return 1
  local f
  for f in usr/include/eigen3/Eigen/Core usr/share/eigen3/cmake/Eigen3Config.cmake \
           usr/include/doctest/doctest.h usr/lib/cmake/doctest/doctestConfig.cmake \
           usr/include/nlohmann/json.hpp usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake \
           usr/include/stb/stb_image.h usr/include/stb/stb_image_write.h \
           usr/include/CLI/CLI.hpp usr/share/cmake/CLI11/CLI11Config.cmake \
           benchmark-src/CMakeLists.txt benchmark-src/include/benchmark/benchmark.h \
           cudnn-frontend/include/cudnn_frontend.h; do
    [ -f "$dest/$f" ] || return 1
  done
}

if [ "$force" = 0 ] && up_to_date; then
  say "third_party/ is up to date ($(du -sh "$dest" | cut -f1)); pins:"
  sed 's/^/  /' "$dest/VERSIONS"
  exit 0
fi

for t in apt-get dpkg-deb tar sha256sum; do
  command -v "$t" >/dev/null || { echo "gpu-deps: '$t' not found (this script runs on Debian, where apt is reachable)" >&2; exit 1; }
done
[ -f "$keyring" ] || { echo "gpu-deps: $keyring missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

work=$(mktemp -d /tmp/pdiff-gpu-deps.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/dl" "$work/new"
cat >"$work/sources.list" <<EOF
deb [signed-by=$keyring] $mirror $suite main
deb-src [signed-by=$keyring] $mirror $suite main
EOF
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
          -o "APT::Architecture=amd64" -o "APT::Architectures=amd64" -o "APT::Sandbox::User=root"
          -o "Acquire::Languages=none" -q)
say "apt-get update (private lists for $suite main, in $work)"
apt-get "${apt_opts[@]}" update >/dev/null

cd "$work/dl"
for d in "${debs[@]}"; do
  read -r name ver <<<"$d"
  say "apt-get download $name=$ver"
  apt-get "${apt_opts[@]}" download "$name=$ver" >/dev/null
done
read -r sname sver <<<"$bench_src"
say "apt-get source --download-only $sname=$sver"
apt-get "${apt_opts[@]}" source --download-only "$sname=$sver" >/dev/null
cd - >/dev/null
read -r fname fver <<<"$cudnn_fe"
say "pip download $fname==$fver (PyPI)"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux_2_28_x86_64 -d "$work/whl" "$fname==$fver"

# Check what came against the pins, then unpack into a fresh folder and swap it in at the end, so an
# interrupted run never leaves a half-filled third_party/ that looks complete.
new="$work/new"
{
  echo "# kind name version sha256 -- written by scripts/gpu-deps.sh; gpu-check.sh reads it"
  for d in "${debs[@]}"; do
    read -r name ver <<<"$d"
    f=$(ls "$work/dl/${name}_"*.deb)
    got="$(dpkg-deb -f "$f" Package) $(dpkg-deb -f "$f" Version)"
    [ "$got" = "$name $ver" ] || { echo "gpu-deps: $f is '$got', expected '$name $ver'" >&2; exit 1; }
    dpkg-deb -x "$f" "$new"
    echo "deb $name $ver $(sha256sum "$f" | cut -d' ' -f1)"
  done
  orig=$(ls "$work/dl/${sname}_${sver%-*}.orig.tar."*)
  mkdir -p "$new/benchmark-src"
  tar -xf "$orig" -C "$new/benchmark-src" --strip-components=1
  grep -q "project (benchmark VERSION ${sver%-*}" "$new/benchmark-src/CMakeLists.txt" ||
    { echo "gpu-deps: $orig is not Google Benchmark ${sver%-*}" >&2; exit 1; }
  echo "src $sname $sver $(sha256sum "$orig" | cut -d' ' -f1)"
  whl=$(ls "$work/whl/"*.whl)
  python3 - "$whl" "$new/cudnn-frontend" "$fver" <<'PY'
import sys, zipfile
whl, dest, ver = sys.argv[1:]
z = zipfile.ZipFile(whl)
names = [n for n in z.namelist() if n.startswith("include/")]
assert "include/cudnn_frontend.h" in names, f"{whl} holds no include/cudnn_frontend.h"
assert any(n.endswith("METADATA") and f"Version: {ver}" in z.read(n).decode() for n in z.namelist()), f"{whl} is not {ver}"
z.extractall(dest, names)
PY
  echo "whl $fname $fver $(sha256sum "$whl" | cut -d' ' -f1)"
} >"$work/VERSIONS"

# Keep it small: documentation, Eigen's unsupported/ modules (pdiff includes none), stb's prebuilt
# libraries (a link to a libstb0 that is not shipped; pdiff compiles stb_image itself), pkg-config
# files; Benchmark's tests, docs and Python bindings (gpu-check.sh builds with testing off).
rm -rf "$new/usr/share/doc" "$new/usr/share/pkgconfig" "$new/usr/include/eigen3/unsupported" \
       "$new/usr/lib/x86_64-linux-gnu" \
       "$new/benchmark-src/test" "$new/benchmark-src/docs" "$new/benchmark-src/bindings" \
       "$new/benchmark-src/.github" "$new/benchmark-src/tools"
# Debian's doctestTargets.cmake hard-codes the prefix /usr; make it relative to the file (like the
# other packages' config files) so that find_package(doctest) points into third_party/.
sed -i 's|^set(_IMPORT_PREFIX "/usr")$|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  "$new/usr/lib/cmake/doctest/doctestTargets.cmake"
if grep -rln '"/usr' --include='*.cmake' "$new/usr" >/dev/null; then
  echo "gpu-deps: a CMake config file still names /usr:" >&2
  grep -rn '"/usr' --include='*.cmake' "$new/usr" >&2
  exit 1
fi
cp "$work/VERSIONS" "$new/VERSIONS"

rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$new" "$dest"
rm -rf "$dest.old"
say "third_party/ filled ($(du -sh "$dest" | cut -f1), $(find "$dest" -type f | wc -l) files):"
sed 's/^/  /' "$dest/VERSIONS"
