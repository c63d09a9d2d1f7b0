#!/usr/bin/env bash
# Builds and runs pdiff's libFuzzer targets (tests/fuzz: tokenizer.json + encode/decode + regex, safetensors
# header parser) for a bounded time each, from a small seed corpus. Not part of CI.
# Usage: scripts/fuzz.sh [--install] [seconds per target, default 60]
#   --install  apt-get install clang + libclang-rt-14-dev when clang++ cannot link -fsanitize=fuzzer
# Env: PDIFF_FUZZ_DIR (default build-fuzz), CXX (default clang++), JOBS (default 2).
# Findings (crashes, leaks, timeouts, failed properties) are written to $PDIFF_FUZZ_DIR/artifacts/ and
# make the script exit non-zero; reproduce one with: $PDIFF_FUZZ_DIR/fuzz_<target> <artifact file>.
set -euo pipefail
cd "$(dirname "$0")/.."
install=0
if [ "${1:-}" = "--install" ]; then install=1; shift; fi
secs=${1:-60}
dir=${PDIFF_FUZZ_DIR:-build-fuzz}
cxx=${CXX:-clang++}

can_fuzz() {
  command -v "$cxx" >/dev/null 2>&1 || return 1
  local tmp; tmp=$(mktemp -d)
  printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n' > "$tmp/t.cpp"
  "$cxx" -fsanitize=fuzzer "$tmp/t.cpp" -o "$tmp/t" >/dev/null 2>&1; local rc=$?
  rm -rf "$tmp"; return $rc
}
if ! can_fuzz; then
  if [ $install = 1 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev
  fi
  can_fuzz || { echo "fuzz.sh: $cxx cannot link -fsanitize=fuzzer (libFuzzer); run scripts/fuzz.sh --install" >&2; exit 1; }
fi

cmake -S tests/fuzz -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j "${JOBS:-2}"

# Seed corpora: the first byte of a tokenizer input picks its mode (0 json, 1 text, 2 regex\0text).
seeds="$dir/seeds"
rm -rf "$seeds"; mkdir -p "$seeds/tokenizer" "$seeds/safetensors" "$dir/corpus/tokenizer" "$dir/corpus/safetensors" "$dir/artifacts"
g=tests/golden/mistral3_tiny
for f in $g/tokenizer/tokenizer.json $g/tokenizer_v1/tokenizer.json; do
  { printf '\x00'; cat "$f"; } > "$seeds/tokenizer/json_$(basename "$(dirname "$f")")"
done
printf '\x00{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"\\\\p{L}+|\\\\s+"},"behavior":"Isolated"},"decoder":{"type":"ByteFallback"}}' > "$seeds/tokenizer/json_small"
python3 - "$g/tokenizer/goldens.json" "$seeds/tokenizer" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
for i, c in enumerate(g["cases"]):
    open(f"{sys.argv[2]}/text_{i}", "wb").write(b"\x01" + c["text"].encode())
pats = [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", r"(?>a+)b|x{2,3}?|[^\d\s]++"]
for i, p in enumerate(pats):
    open(f"{sys.argv[2]}/regex_{i}", "wb").write(b"\x02" + p.encode() + b"\x00" + "Hello  world 42 café\n\n 東京".encode())
PY
find tests/golden -name '*.safetensors' -size -64k -exec cp {} "$seeds/safetensors/" \;
printf '\x02\x00\x00\x00\x00\x00\x00\x00{}' > "$seeds/safetensors/empty"

status=0
for t in tokenizer safetensors; do
  echo "== fuzz_$t: $secs s"
  log="$dir/fuzz_$t.log"
  if ! "$dir/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$dir/artifacts/${t}_" "$dir/corpus/$t" "$seeds/$t" >"$log" 2>&1; then
    status=1
    echo "fuzz_$t: FINDING — see $log and $dir/artifacts/"
    grep -E "ERROR|SUMMARY|property failed|uncaught|terminate" "$log" | head -5 || true
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|^Done" "$log" || tail -3 "$log"
  echo "corpus: $(ls "$dir/corpus/$t" | wc -l) inputs"
done
exit $status
