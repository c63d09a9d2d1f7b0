#!/usr/bin/env bash
# Builds and runs pdiff's libFuzzer targets (tests/fuzz: tokenizer.json + encode/decode + regex, safetensors
# header parser, config.json of every model family, PNG/JPEG) for a bounded time each, from the committed
# seed corpora in tests/fuzz/corpus/<target>/.
# Usage: scripts/fuzz.sh [--ci] [--install] [--merge] [seconds per target, default 60]
#   --ci       what .ci/run calls (the same as --install): every run prints the executions per target and
#              exits non-zero on any finding; targets run two at a time (JOBS), about 3.5 minutes at 60 s (the tokenizer
#              gets 3x the time, the image decoder 1.5x: see run_target)
#   --install  apt-get install clang + libclang-rt-<clang's version>-dev when clang++ cannot link -fsanitize=fuzzer
#   --merge    after the run, adds the inputs that reach new code to tests/fuzz/corpus/ (libFuzzer -merge=1
#              on edges only, -use_counters=0, each input cut to 1 KiB: about 100-200 inputs and 50-150 KiB
#              per target) — commit them to grow the seeds; keep tests/fuzz/corpus under ~512 KiB
# Env: PDIFF_FUZZ_DIR (default build-fuzz), CXX (default clang++), JOBS (default 2), PDIFF_FUZZ_TARGETS.
# Findings (crashes, leaks, timeouts, failed properties) are written to $PDIFF_FUZZ_DIR/artifacts/, their
# paths printed, and make the script exit non-zero; reproduce one with: $PDIFF_FUZZ_DIR/fuzz_<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh  # Eigen, nlohmann-json, stb, cmake, ninja
install=0 merge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ci | --install) install=1 ;;
    --merge) merge=1 ;;
    *) break ;;
  esac
  shift
done
secs=${1:-60}
dir=${PDIFF_FUZZ_DIR:-build-fuzz}
cxx=${CXX:-clang++}
jobs=${JOBS:-2}
targets=(${PDIFF_FUZZ_TARGETS:-tokenizer safetensors config image})
start=$(date +%s)

can_fuzz() {
  command -v "$cxx" >/dev/null 2>&1 || return 1
  local tmp rc=0; tmp=$(mktemp -d)
  printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n' > "$tmp/t.cpp"
  "$cxx" -fsanitize=fuzzer "$tmp/t.cpp" -o "$tmp/t" >/dev/null 2>&1 || rc=$?
  rm -rf "$tmp"; return $rc
}
if ! can_fuzz; then
  if [ $install = 1 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    command -v clang++ >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang >/dev/null
    # libFuzzer's runtime comes with compiler-rt of the same major version as clang
    ver=$(clang++ --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
    echo "fuzz.sh: installing libclang-rt-$ver-dev"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "libclang-rt-$ver-dev" >/dev/null
  fi
  can_fuzz || { echo "fuzz.sh: $cxx cannot link -fsanitize=fuzzer (libFuzzer); run scripts/fuzz.sh --install" >&2; exit 1; }
fi

cmake -S tests/fuzz -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j "$jobs" --target "${targets[@]/#/fuzz_}"
built=$(date +%s)

# One target: fuzz from the committed seeds into a working corpus under $dir (the seeds stay untouched).
run_target() {
  local t=$1
  mkdir -p "$dir/corpus/$t" "$dir/artifacts"
  # the tokenizer encodes text at ~10 µs per byte under ASan + UBSan -O1 (0.1-0.4 µs in a Release
  # build): inputs up to 4 KiB (longer ones only repeat its loops) and 3x the time (~660 executions/s
  # measured idle: 100k in 150 s); it starts first, so the other three fill the second slot meanwhile
  local max_len=65536 t_secs=$secs
  [ "$t" = tokenizer ] && max_len=4096 t_secs=$((secs * 3))
  # PNG/JPEG decoding: ~1700 executions/s beside another target (101k in 60 s measured): 1.5x for margin
  [ "$t" = image ] && t_secs=$((secs * 3 / 2))
  "$dir/fuzz_$t" -max_total_time="$t_secs" -timeout=20 -rss_limit_mb=2048 -max_len=$max_len -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/${t}_" "$dir/corpus/$t" "tests/fuzz/corpus/$t" >"$dir/fuzz_$t.log" 2>&1
}
pids=()
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run_target "$t" & pids+=($!)
done
status=0 total=0
for i in "${!targets[@]}"; do
  t=${targets[$i]} log="$dir/fuzz_${targets[$i]}.log"
  rc=0; wait "${pids[$i]}" || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  total=$((total + ${execs:-0}))
  printf 'fuzz_%-12s %9s executions in %s s, corpus %s inputs\n' "$t" "${execs:-?}" \
    "$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)" "$(ls "$dir/corpus/$t" | wc -l)"
  if [ $rc != 0 ]; then
    status=1
    echo "fuzz_$t: FINDING (exit $rc) — log $log"
    grep -E "ERROR|SUMMARY|runtime error|property failed|uncaught|terminate" "$log" | head -5 || true
    grep -o "Test unit written to .*" "$log" | while read -r _ _ _ _ f; do
      echo "  input: $f (reproduce: $dir/fuzz_$t $f)"
    done
  fi
done

if [ $merge = 1 ] && [ $status = 0 ]; then
  for t in "${targets[@]}"; do
    before=$(ls "tests/fuzz/corpus/$t" | wc -l)
    "$dir/fuzz_$t" -merge=1 -use_counters=0 -max_len=1024 "tests/fuzz/corpus/$t" "$dir/corpus/$t" >"$dir/merge_$t.log" 2>&1
    echo "merge fuzz_$t: $before → $(ls "tests/fuzz/corpus/$t" | wc -l) seeds"
  done
  echo "tests/fuzz/corpus: $(du -sk tests/fuzz/corpus | cut -f1) KiB"
fi
echo "pdiff: fuzzing took $(( $(date +%s) - start )) s (build $(( built - start )) s), $total executions"
exit $status
