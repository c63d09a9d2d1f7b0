#!/usr/bin/env bash
# The whole GPU check in one command, for a bare GPU machine (nvcc, CMake, Ninja, Python with PyTorch
# and its NCCL wheel; no network, no Debian packages): builds only the GPU tests and GPU benchmarks,
# runs `ctest -L gpu` and each GPU benchmark, and writes OUT_DIR/gpu-check.json and OUT_DIR/gpu-check.log.
#
#   scripts/gpu-check.sh [OUT_DIR]                    build, test, benchmark (default OUT_DIR: ./gpu-out)
#   scripts/gpu-check.sh --build-only [OUT_DIR]       build the same targets the same way, run nothing
#                                                     (runs without a GPU; CI uses it so this cannot rot)
#   scripts/gpu-check.sh --configure-only [OUT_DIR]   build Google Benchmark and configure pdiff only
#
# Needs third_party/ from scripts/gpu-deps.sh (run where apt is reachable, then carry third_party).
# Everything that Debian would install comes from there: Eigen3, doctest, nlohmann-json, stb and CLI11
# (headers + CMake config files) and Google Benchmark (source, built here into the build folder).
# From the machine itself come only: the CUDA toolkit (nvcc, cudart, cuBLASLt), NCCL (a system one,
# else the PyTorch wheel's nvidia-nccl), CMake, Ninja, the host C++ compiler and its libc/libstdc++.
# The same holds for --build-only on a developer's or CI's Debian machine: there /usr/local/cuda gives
# nvcc, cuBLASLt and NCCL, Debian gives cmake, ninja, g++ (and ccache, used when present), and the
# Debian -dev packages that scripts/deps.sh installs are left unused: the build fails if ninja's
# dependency log shows an Eigen/doctest/json/stb/CLI11/benchmark header from /usr/include.
#
# Environment knobs (all optional):
#   PDIFF_GPU_BUILD_DIR     build folder (default ./build-gpu; git-ignored by build*/)
#   PDIFF_GPU_JOBS          parallel build jobs (default: nproc)
#   PDIFF_GPU_BUDGET_S      wall-clock budget of a full run, seconds (default 450: done inside 8 minutes)
#   PDIFF_GPU_ARCHS         CMAKE_CUDA_ARCHITECTURES (default "80;90a")
#   PDIFF_GPU_TARGETS       space-separated subset of the GPU targets to build/run (default: all of them)
#   PDIFF_GPU_TEST_TIMEOUT  ctest --timeout per test, seconds (default 180)
#   PDIFF_GPU_CTEST_J       ctest -j (default 1: the tests share one GPU and some read its free memory)
#   PDIFF_GPU_BENCH_TIMEOUT limit per benchmark binary, seconds (default 120)
#   PDIFF_GPU_BENCH_ARGS    extra arguments for every benchmark binary (e.g. --benchmark_min_time=0.2)
#   PDIFF_NCCL_INCLUDE_DIR / PDIFF_NCCL_LIBRARY   use this NCCL instead of searching
#   PDIFF_GPU_NO_NCCL=1     go on without NCCL (test_cuda_nccl_comm is then not built)
#   PDIFF_GPU_KERNPROF      BENCH[:FILTER] — run benchmark binary BENCH (its cases matching FILTER) under
#                           tools/kernprof instead of plainly (CUPTI: every kernel and copy timed; its figures
#                           are reported as usual) and write OUT_DIR/kernprof.csv.gz and OUT_DIR/kernprof.txt
#                           (tools/kernprof/summarize.py); e.g. bench_flux2_step_cuda:serial. Needs CUPTI (the
#                           CUDA toolkit's or the PyTorch wheel's); without it BENCH is not run
set -euo pipefail

usage() { sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; }
mode=full
out=""
while (($#)); do
  case "$1" in
    --build-only) mode=build ;;
    --configure-only) mode=configure ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu-check: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "gpu-check: one OUT_DIR only" >&2; exit 2; }; out=$1 ;;
  esac
  shift
done

t0=$SECONDS
out=${out:-gpu-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
src=$PWD
tp=$src/third_party
build=${PDIFF_GPU_BUILD_DIR:-$src/build-gpu}
mkdir -p "$build"
build=$(cd "$build" && pwd)
state=$build/gpu-check-state          # step records, device info, ctest JUnit: read by the report
rm -rf "$state"
mkdir -p "$state"
jobs=${PDIFF_GPU_JOBS:-$(nproc)}
budget=${PDIFF_GPU_BUDGET_S:-450}
archs=${PDIFF_GPU_ARCHS:-80;90a}
log=$out/gpu-check.log

# Everything from here on goes to the terminal and to the log.
exec > >(tee "$log") 2>&1
tee_pid=$!

say() { echo "gpu-check: $*"; }
die() { echo "gpu-check: ERROR: $*" >&2; exit 1; }
info() { printf '%s=%s\n' "$1" "$2" >>"$state/info.env"; }   # key=value lines for the report

# ---- never leave a process behind ------------------------------------------------------------------
# Each long step runs under `timeout`, which puts it in a process group of its own and kills that whole
# group at its limit (ninja's and nvcc's children, a hung test). On any exit, including a signal, the
# EXIT trap below also ends every process still descended from this shell, deepest first. Steps run
# in the background and are waited for, so that a signal reaches the trap at once.
children_of() {   # direct children of pid $1, read from /proc (no ps needed)
  local f s rest
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null <"$f" || continue
    rest=${s##*) }
    set -- $rest
    if [ "${2:-}" = "$PARENT" ]; then f=${f#/proc/}; echo "${f%/stat}"; fi
  done
}
kill_tree() {     # signal $2 to every descendant of $1, deepest first (the log's tee excepted)
  local c kids
  kids=$(PARENT=$1 children_of)
  for c in $kids; do
    [ "$c" = "$tee_pid" ] && continue
    kill_tree "$c" "$2"
    kill "-$2" "$c" 2>/dev/null || true
  done
}
on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  kill_tree $$ TERM
  sleep 0.3
  kill_tree $$ KILL
  write_report "$rc"
  say "exit $rc after $((SECONDS - t0)) s; log: $log"
  exec >&- 2>&-
  wait "$tee_pid" 2>/dev/null
  exit "$rc"
}
trap on_exit EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM
trap 'say "hung up"; exit 129' HUP

# run_step NAME CAP_S CMD...: runs CMD under a limit of CAP_S seconds (in a full run also no more than
# what is left of the budget, less a reserve for the report), records NAME, status and seconds.
# Returns CMD's status (124 on a timeout); never exits by itself.
run_step() {
  local name=$1 cap=$2 limit rc=0 s=$SECONDS status
  shift 2
  limit=$cap
  if [ "$mode" = full ]; then
    local left=$((budget - (SECONDS - t0) - 15))
    if ((left < limit)); then limit=$left; fi
    if ((limit < 5)); then
      say "$name: skipped, the time budget (${budget} s) is spent"
      printf '%s\t%s\t%s\t%s\t%s\n' "$name" skipped 0 "$limit" -1 >>"$state/steps.tsv"
      return 125
    fi
  fi
  say "[$((SECONDS - t0)) s] $name (limit ${limit} s): $*"
  timeout -k 10 "$limit" "$@" </dev/null &
  wait $! || rc=$?
  case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status=failed ;; esac
  say "[$((SECONDS - t0)) s] $name: $status (rc $rc, $((SECONDS - s)) s)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - s))" "$limit" "$rc" >>"$state/steps.tsv"
  return "$rc"
}

# write_report RC: OUT_DIR/gpu-check.json from what $state holds (called once, by the EXIT trap).
write_report() {
  local py
  py=$(command -v python3 || true)
  if [ -z "$py" ]; then
    printf '{"schema": "pdiff-gpu-check/1", "mode": "%s", "exit_code": %s, "note": "no python3: see gpu-check.log"}\n' \
      "$mode" "$1" >"$out/gpu-check.json"
    return
  fi
  STATE=$state OUT=$out MODE=$mode RC=$1 TP=$tp SRC=$src "$py" - <<'PY' || echo "gpu-check: could not write gpu-check.json" >&2
import datetime, json, os, platform, subprocess, xml.etree.ElementTree as ET
st, out = os.environ["STATE"], os.environ["OUT"]
def read(p, default=""):
    try:
        with open(p, errors="replace") as f: return f.read()
    except OSError: return default
info = {}
for line in read(os.path.join(st, "info.env")).splitlines():
    if "=" in line:
        k, v = line.split("=", 1)
        info[k] = v
rep = {"schema": "pdiff-gpu-check/1",
       "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "mode": os.environ["MODE"], "exit_code": int(os.environ["RC"]),
       "host": {"hostname": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count()}}
try:
    sha = subprocess.run(["git", "-C", os.environ["SRC"], "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    rep["git_commit"] = sha.stdout.strip() if sha.returncode == 0 else None
except Exception:
    rep["git_commit"] = None
gpus = [l for l in read(os.path.join(st, "device.csv")).splitlines() if l.strip()]
rep["device"] = {"source": info.get("device_source", "none"),
                 "gpus": [dict(zip(["name", "driver", "memory_total", "compute_cap"], [x.strip() for x in g.split(",")]))
                          for g in gpus]}
q = read(os.path.join(st, "devquery.txt"))
if q:
    rep["device"]["query"] = dict(l.split("=", 1) for l in q.splitlines() if "=" in l)
rep["toolchain"] = {k: v for k, v in info.items() if not k.startswith("device") and k != "mode"}
rep["third_party"] = [l for l in read(os.path.join(os.environ["TP"], "VERSIONS")).splitlines() if l and not l.startswith("#")]
rep["steps"] = []
for l in read(os.path.join(st, "steps.tsv")).splitlines():
    n, s, secs, lim, rc = l.split("\t")
    rep["steps"].append({"name": n, "status": s, "seconds": int(secs), "limit_s": int(lim), "rc": int(rc)})
rep["targets"] = {"tests": read(os.path.join(st, "tests.txt")).split(),
                  "benchmarks": read(os.path.join(st, "benches.txt")).split()}
tests, summ = [], {"passed": 0, "failed": 0, "skipped": 0}
junit = os.path.join(st, "ctest-junit.xml")
if os.path.exists(junit):
    try:
        for tc in ET.parse(junit).getroot().iter("testcase"):
            status = tc.get("status", "")
            fail, skip = tc.find("failure"), tc.find("skipped")
            res = "fail" if fail is not None or status == "fail" else \
                  "skip" if skip is not None or status in ("notrun", "disabled") else "pass"
            t = {"name": tc.get("name"), "result": res, "time_s": float(tc.get("time") or 0)}
            el = fail if fail is not None else skip
            if el is not None and el.get("message"): t["message"] = el.get("message")
            so = tc.find("system-out")
            if res != "pass" and so is not None and so.text: t["output_tail"] = so.text[-3000:]
            tests.append(t)
            summ[{"pass": "passed", "fail": "failed", "skip": "skipped"}[res]] += 1
    except ET.ParseError as e:
        rep["tests_error"] = f"cannot parse {junit}: {e}"
rep["tests"], rep["test_summary"] = tests, summ
benches = {}
for l in read(os.path.join(st, "bench_runs.tsv")).splitlines():
    name, path, rc = l.split("\t")
    b = {"rc": int(rc), "json_file": os.path.basename(path)}
    try:
        with open(path) as f: b.update(json.load(f))
    except (OSError, ValueError) as e:
        b["error"] = f"no benchmark JSON: {e}"
    benches[name] = b
rep["benchmarks"] = benches
# pdiff's attention (flash kernel, and cuDNN's where built) against PyTorch's best SDPA backend, shape by shape
try:
    mine = {"flash": {}, "cudnn": {}}
    for r in benches.get("bench_cuda_attention", {}).get("benchmarks", []):
        for kind in mine:
            if r.get("name", "").startswith(f"BM_{kind}_attention/") and "TFLOP/s" in r:
                kv = dict(x.split(":") for x in r["name"].split("/")[1:] if ":" in x)
                mine[kind][(kv.get("H"), kv.get("S"), kv.get("causal"))] = r["TFLOP/s"]
    peer = {}
    for r in benches.get("sdpa_torch", {}).get("benchmarks", []):
        if "TFLOP/s" in r:
            kv = dict(x.split(":") for x in r["name"].split("/")[2:] if ":" in x)
            key = (kv.get("H"), kv.get("S"), kv.get("causal"))
            be = r["name"].split("/")[1]
            if key not in peer or r["TFLOP/s"] > peer[key][0]: peer[key] = (r["TFLOP/s"], be)
    rows = []
    for k, v in sorted(mine["flash"].items()):
        if k not in peer: continue
        row = {"H": int(k[0]), "S": int(k[1]), "causal": int(k[2]), "pdiff_tflops": round(v, 1),
               "torch_tflops": round(peer[k][0], 1), "torch_backend": peer[k][1], "ratio": round(v / peer[k][0], 3)}
        if k in mine["cudnn"]:
            row["pdiff_cudnn_tflops"] = round(mine["cudnn"][k], 1)
            row["ratio_cudnn"] = round(mine["cudnn"][k] / peer[k][0], 3)
        rows.append(row)
    rep["attention_vs_torch"] = rows
except Exception as e:
    rep["attention_vs_torch_error"] = str(e)
rep["ok"] = rep["exit_code"] == 0
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(rep, f, indent=1)
    f.write("\n")
print(f"gpu-check: wrote {os.path.join(out, 'gpu-check.json')}")
PY
}

say "mode $mode, source $src, build $build, out $out, $jobs jobs$([ "$mode" = full ] && echo ", budget ${budget} s")"
info mode "$mode"

# ---- prerequisites (each stops the run with what to do) ---------------------------------------------
[ -d "$tp" ] || die "third_party/ is absent: run scripts/gpu-deps.sh first (where apt is reachable) and carry third_party (the device call: docs/gpu-results.md)"
for f in VERSIONS usr/share/eigen3/cmake/Eigen3Config.cmake usr/lib/cmake/doctest/doctestConfig.cmake \
         usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake usr/share/cmake/CLI11/CLI11Config.cmake \
         usr/include/stb/stb_image.h benchmark-src/CMakeLists.txt; do
  [ -f "$tp/$f" ] || die "third_party/$f is missing: run scripts/gpu-deps.sh first and carry third_party"
done
say "third_party pins:"
grep -v '^#' "$tp/VERSIONS" | awk '{print "  " $1, $2, $3}'

pybin=""
if command -v python3 >/dev/null; then pybin=$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))' 2>/dev/null || true); fi
find_tool() {     # on PATH, else beside the python3 that holds PyTorch (pip's cmake and ninja)
  local p
  if p=$(command -v "$1" 2>/dev/null); then echo "$p"; return 0; fi
  if [ -n "$pybin" ] && [ -x "$pybin/$1" ]; then echo "$pybin/$1"; return 0; fi
  return 1
}
cmake=$(find_tool cmake) || die "cmake not found (PATH, $pybin)"
ctest=$(find_tool ctest) || ctest=$(dirname "$cmake")/ctest
ninja=$(find_tool ninja) || die "ninja not found (PATH, $pybin)"
command -v timeout >/dev/null || die "timeout (coreutils) not found"
cmake_ver=$("$cmake" --version | head -1 | awk '{print $3}')
printf '%s\n%s\n' 3.25 "$cmake_ver" | sort -V -C || die "cmake $cmake_ver is older than 3.25 (pdiff's minimum)"
cxx=${CXX:-$(command -v c++ || command -v g++ || command -v clang++ || true)}
[ -n "$cxx" ] || die "no host C++ compiler (c++, g++, clang++) on PATH"

wheel_nvcc() {    # the pip CUDA toolkit's nvcc (nvidia/cu13/bin/nvcc), if python3 has one
  command -v python3 >/dev/null || return 0
  python3 -c 'import glob, os, nvidia; print(next(iter(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "cu*", "bin", "nvcc")))), ""))' 2>/dev/null || true
}
find_nvcc() {
  local c
  for c in "${CUDACXX:-}" "$(command -v nvcc 2>/dev/null || true)" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" \
           "${CUDA_PATH:+$CUDA_PATH/bin/nvcc}" /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc "$(wheel_nvcc)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}
nvcc=$(find_nvcc) || die "nvcc not found (CUDACXX, PATH, CUDA_HOME, /usr/local/cuda/bin, python3's nvidia/cu*/bin)"
# The toolkit root as nvcc itself reports it (TOP=), so a wrapper script such as /usr/local/bin/nvcc
# (exec /usr/local/cuda-13.0/bin/nvcc "$@") still leads to the real toolkit; else nvcc's own folder.
cuda_root=$("$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1 || true)
if [ -n "$cuda_root" ] && [ -d "$cuda_root" ]; then
  cuda_root=$(cd "$cuda_root" && pwd -P)
  [ -x "$cuda_root/bin/nvcc" ] && nvcc=$cuda_root/bin/nvcc
else
  cuda_root=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
fi
PATH="$(dirname "$nvcc"):$PATH"
export PATH CUDACXX="$nvcc"
nvcc_ver=$("$nvcc" --version | grep -o 'release [0-9.]*, V[0-9.]*' || true)
# (one glob at a time: `ls a* b*` fails when any of them matches nothing)
{ compgen -G "$cuda_root/lib64/libcublasLt.so*" || compgen -G "$cuda_root/lib/libcublasLt.so*" ||
  compgen -G "$cuda_root/targets/*/lib/libcublasLt.so*"; } >/dev/null ||
  die "cuBLASLt not found under $cuda_root (pdiff's CUDA backend needs it)"
say "cmake $cmake_ver ($cmake), ninja $("$ninja" --version) ($ninja), c++ $cxx, nvcc $nvcc_ver ($nvcc)"
info cmake "$cmake_ver"; info ninja "$("$ninja" --version)"; info cxx "$("$cxx" --version | head -1)"
info nvcc "$nvcc_ver"; info cuda_root "$cuda_root"; info cuda_architectures "$archs"

# NCCL: given, else a system one (header and library both), else the PyTorch wheel's nvidia-nccl.
nccl_inc=${PDIFF_NCCL_INCLUDE_DIR:-}
nccl_lib=${PDIFF_NCCL_LIBRARY:-}
nccl_from="environment"
if [ -z "$nccl_inc" ] || [ -z "$nccl_lib" ]; then
  nccl_inc="" nccl_lib="" nccl_from=""
  si="" sl=""
  for d in "$cuda_root/include" /usr/include /usr/local/include; do
    [ -f "$d/nccl.h" ] && { si=$d; break; }
  done
  for d in "$cuda_root/lib64" "$cuda_root/lib" "$cuda_root"/targets/*/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib; do
    for n in libnccl.so libnccl.so.2; do [ -e "$d/$n" ] && { sl=$d/$n; break 2; }; done
  done
  if [ -n "$si" ] && [ -n "$sl" ]; then
    nccl_inc=$si nccl_lib=$sl nccl_from=system
  elif command -v python3 >/dev/null; then
    wd=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null || true)
    if [ -n "$wd" ] && [ -f "$wd/include/nccl.h" ]; then
      for n in libnccl.so libnccl.so.2; do [ -e "$wd/lib/$n" ] && { nccl_lib=$wd/lib/$n; break; }; done
      [ -n "$nccl_lib" ] && nccl_inc=$wd/include nccl_from="python wheel nvidia-nccl"
    fi
  fi
fi
nccl_args=()
if [ -n "$nccl_inc" ] && [ -n "$nccl_lib" ]; then
  # Only libnccl.so.2 (the wheel ships no libnccl.so): link through symlinks in the build folder, which
  # CMake then puts in the binaries' RPATH; LD_LIBRARY_PATH covers the run as well.
  if [ "$(basename "$nccl_lib")" != libnccl.so ]; then
    mkdir -p "$build/nccl-lib"
    ln -sfn "$(readlink -f "$nccl_lib")" "$build/nccl-lib/libnccl.so"
    ln -sfn "$(readlink -f "$nccl_lib")" "$build/nccl-lib/libnccl.so.2"
    LD_LIBRARY_PATH="$(dirname "$(readlink -f "$nccl_lib")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
    nccl_lib=$build/nccl-lib/libnccl.so
  fi
  nccl_ver=$(awk '/^#define NCCL_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}' "$nccl_inc/nccl.h")
  say "NCCL $nccl_ver from $nccl_from: $nccl_inc/nccl.h, $nccl_lib"
  info nccl "$nccl_ver ($nccl_from) $nccl_inc $nccl_lib"
  nccl_args=(-DPDIFF_ENABLE_NCCL=ON -DPDIFF_NCCL_INCLUDE_DIR="$nccl_inc" -DPDIFF_NCCL_LIBRARY="$nccl_lib")
elif [ "$mode" != full ] || [ "${PDIFF_GPU_NO_NCCL:-0}" = 1 ]; then
  say "WARNING: no NCCL found: building without it (test_cuda_nccl_comm is not built)"
  info nccl none
  nccl_args=(-DPDIFF_ENABLE_NCCL=OFF)
else
  die "no NCCL found (nccl.h + libnccl.so under $cuda_root or /usr, or python3's nvidia.nccl wheel); set PDIFF_NCCL_INCLUDE_DIR and PDIFF_NCCL_LIBRARY, or PDIFF_GPU_NO_NCCL=1 to go on without it"
fi

# cuDNN (for its fused attention; optional): a system one, else the PyTorch wheel's nvidia-cudnn. Its
# libcudnn.so.9 loads its engine libraries from its own folder: that folder goes on LD_LIBRARY_PATH.
cudnn_args=()
ci="" cl=""
for d in "$cuda_root/include" "$cuda_root"/targets/*/include /usr/include /usr/local/include; do
  [ -f "$d/cudnn.h" ] && { ci=$d; break; }
done
for d in "$cuda_root/lib64" "$cuda_root"/targets/*/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib; do
  for n in libcudnn.so libcudnn.so.9; do [ -e "$d/$n" ] && { cl=$d/$n; break 2; }; done
done
cudnn_from=system
if { [ -z "$ci" ] || [ -z "$cl" ]; } && command -v python3 >/dev/null; then
  wd=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
  ci="" cl="" cudnn_from="python wheel nvidia-cudnn"
  if [ -n "$wd" ] && [ -f "$wd/include/cudnn.h" ]; then
    ci=$wd/include
    for n in libcudnn.so libcudnn.so.9; do [ -e "$wd/lib/$n" ] && { cl=$wd/lib/$n; break; }; done
  fi
fi
if [ -n "$ci" ] && [ -n "$cl" ] && [ -f "$tp/cudnn-frontend/include/cudnn_frontend.h" ]; then
  LD_LIBRARY_PATH="$(dirname "$(readlink -f "$cl")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
  cudnn_ver=$(awk '/^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s%s", sep, $3; sep="."}' "$ci/cudnn_version.h" 2>/dev/null)
  say "cuDNN ${cudnn_ver:-?} from $cudnn_from: $ci/cudnn.h, $cl; cudnn-frontend from third_party"
  info cudnn "${cudnn_ver:-?} ($cudnn_from) $ci $cl"
  cudnn_args=(-DPDIFF_ENABLE_CUDNN=ON -DPDIFF_CUDNN_INCLUDE_DIR="$ci" -DPDIFF_CUDNN_LIBRARY="$cl"
              -DPDIFF_CUDNN_FRONTEND_INCLUDE_DIR="$tp/cudnn-frontend/include")
else
  say "no cuDNN (or no third_party/cudnn-frontend): cuDNN's attention is not built"
  info cudnn none
  cudnn_args=(-DPDIFF_ENABLE_CUDNN=OFF)
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi

# ---- Google Benchmark, from source, into the build folder (built once per build folder) -----------------
gb_prefix=$build/gbench-prefix
gb_stamp="$(grep '^src benchmark ' "$tp/VERSIONS") $cxx"
if [ -f "$gb_prefix/lib/cmake/benchmark/benchmarkConfig.cmake" ] && [ "$(cat "$gb_prefix/.stamp" 2>/dev/null)" = "$gb_stamp" ]; then
  say "Google Benchmark already installed in $gb_prefix"
else
  rm -rf "$build/gbench-build" "$gb_prefix"
  # GIT_CEILING_DIRECTORIES: its CMake asks git for a version; keep git out of pdiff's own repository.
  run_step gbench-configure 180 env GIT_CEILING_DIRECTORIES="$tp" "$cmake" -S "$tp/benchmark-src" \
    -B "$build/gbench-build" -G Ninja -DCMAKE_MAKE_PROGRAM="$ninja" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$cxx" -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DBENCHMARK_ENABLE_TESTING=OFF -DBENCHMARK_ENABLE_GTEST_TESTS=OFF -DBENCHMARK_ENABLE_WERROR=OFF \
    -DBENCHMARK_ENABLE_INSTALL=ON -DBENCHMARK_INSTALL_DOCS=OFF -DBENCHMARK_ENABLE_LIBPFM=OFF \
    -DCMAKE_INSTALL_PREFIX="$gb_prefix" -DCMAKE_INSTALL_LIBDIR=lib ||
    die "Google Benchmark: configure failed"
  run_step gbench-build 300 "$cmake" --build "$build/gbench-build" -j "$jobs" || die "Google Benchmark: build failed"
  run_step gbench-install 60 "$cmake" --install "$build/gbench-build" || die "Google Benchmark: install failed"
  echo "$gb_stamp" >"$gb_prefix/.stamp"
fi

# ---- configure pdiff against third_party only ---------------------------------------------------------
# Each package's config folder is named outright (and CMAKE_PREFIX_PATH searched before the system's),
# so find_package() cannot take a system copy; nlohmann-json and stb are plain #includes (no
# find_package), so
# third_party/usr/include goes on every compile line (-isystem, searched before /usr/include).
tpi=$tp/usr/include
run_step configure 180 "$cmake" -S "$src" -B "$build" -G Ninja -DCMAKE_MAKE_PROGRAM="$ninja" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CUDA_COMPILER="$nvcc" \
  -DCUDAToolkit_ROOT="$cuda_root" -DCMAKE_CUDA_ARCHITECTURES="$archs" -DCMAKE_CUDA_FLAGS="--threads=2" \
  -DPDIFF_ENABLE_CUDA=ON -DPDIFF_ENABLE_MPI=OFF "${nccl_args[@]}" "${cudnn_args[@]}" "${launcher[@]}" \
  -DPDIFF_BUILD_TESTS=ON -DPDIFF_BUILD_BENCH=ON -DPDIFF_BUILD_EXAMPLES=ON \
  -DCMAKE_PREFIX_PATH="$tp/usr;$gb_prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DEigen3_DIR="$tp/usr/share/eigen3/cmake" -Ddoctest_DIR="$tp/usr/lib/cmake/doctest" \
  -DCLI11_DIR="$tp/usr/share/cmake/CLI11" \
  -Dbenchmark_DIR="$gb_prefix/lib/cmake/benchmark" \
  -DCMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES="$tpi" -DCMAKE_CUDA_STANDARD_INCLUDE_DIRECTORIES="$tpi" ||
  die "configuring pdiff failed (see above)"

# The packages found must be third_party's.
while IFS= read -r line; do
  dir=${line#*=}
  case $dir in
    "$tp"/*|"$gb_prefix"/*) ;;
    *) die "configure took ${line%%:*} from $dir, not from third_party/" ;;
  esac
done < <(grep -E '^(Eigen3|doctest|nlohmann_json|CLI11|benchmark)_DIR:' "$build/CMakeCache.txt")

"$ninja" -C "$build" -t targets all >"$state/ninja-targets.txt"
mapfile -t tests < <(grep -oE '^tests/cuda/test_cuda_[A-Za-z0-9_]+: [A-Z]+_EXECUTABLE_LINKER' "$state/ninja-targets.txt" |
                     sed 's|^tests/cuda/||; s|:.*||' | sort -u)
mapfile -t benches < <(grep -oE '^bench/cuda/[A-Za-z0-9_]+: [A-Z]+_EXECUTABLE_LINKER' "$state/ninja-targets.txt" |
                       sed 's|^bench/cuda/||; s|:.*||' | sort -u)
((${#tests[@]})) || die "no test_cuda_* target: CUDA was not enabled (see the 'pdiff: CUDA=' line of the configure output)"
if [ -n "${PDIFF_GPU_TARGETS:-}" ]; then
  keep=" $PDIFF_GPU_TARGETS "
  sel=(); for t in "${tests[@]}"; do [[ $keep == *" $t "* ]] && sel+=("$t"); done; tests=("${sel[@]}")
  sel=(); for t in "${benches[@]}"; do [[ $keep == *" $t "* ]] && sel+=("$t"); done; benches=("${sel[@]}")
  ((${#tests[@]} + ${#benches[@]})) || die "PDIFF_GPU_TARGETS='$PDIFF_GPU_TARGETS' names no GPU target"
fi
[ -n "$nccl_lib" ] && ! [[ " ${tests[*]} " == *" test_cuda_nccl_comm "* ]] && [ -z "${PDIFF_GPU_TARGETS:-}" ] &&
  die "NCCL was given but test_cuda_nccl_comm is not a target (see the 'pdiff: ... NCCL=' line above)"
# The binaries of gpu-labelled tests outside tests/cuda (example_flux2_cuda_tp2 runs examples/flux2_cuda_tp2):
# built with the tests, or ctest reports the test "Not Run" and the check fails on a GPU machine
examples=()
if [ -z "${PDIFF_GPU_TARGETS:-}" ]; then
  # each gpu test's executable from its add_test line: CMake 3 writes add_test([=[name]=] "exe" ...),
  # CMake 4 add_test("name" "exe" ...); ctest's JSON names no command for a binary not yet built there
  while IFS= read -r e; do
    grep -q "^examples/$e: " "$state/ninja-targets.txt" && examples+=("$e")
  done < <("$ctest" --test-dir "$build" -N -L '^gpu$' 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: //p' | python3 -c '
import os, re, sys
wanted = set(sys.stdin.read().split())
b = os.path.realpath(sys.argv[1])
line = re.compile(r"^add_test\((?:\[=\[([^]]+)\]=\]|\"([^\"]+)\")\s+\"([^\"]+)\"", re.M)
with open(os.path.join(b, "examples", "CTestTestfile.cmake")) as f:
    for m in line.finditer(f.read()):
        name, exe = m.group(1) or m.group(2), os.path.realpath(m.group(3))
        if name in wanted and os.path.dirname(exe) == os.path.join(b, "examples"): print(os.path.basename(exe))' "$build" | sort -u)
fi
echo "${tests[*]}" >"$state/tests.txt"
echo "${benches[*]}" >"$state/benches.txt"
say "GPU tests: ${tests[*]}"
say "GPU benchmarks: ${benches[*]:-none}"
say "example binaries of GPU tests: ${examples[*]:-none}"
if [ "$mode" = configure ]; then
  say "configure only: done"
  exit 0
fi

# tools/kernprof (a CUPTI timeline recorder) into $build/libkernprof.so: CUPTI's header and library from one
# place, the toolkit's, else a PyTorch wheel's nvidia-cuda-cupti. False (and why) when there is none.
build_kernprof() {
  local cupti_inc="" cupti_lib="" d l
  for d in "$cuda_root" "$cuda_root/extras/CUPTI"; do
    [ -f "$d/include/cupti.h" ] || continue
    for l in "$d"/lib64/libcupti.so "$d"/lib/libcupti.so "$d"/lib64/libcupti.so.* "$d"/lib/libcupti.so.*; do
      [ -e "$l" ] && { cupti_inc=$d/include cupti_lib=$l; break 2; }
    done
  done
  if [ -z "$cupti_lib" ] && command -v python3 >/dev/null; then
    read -r cupti_inc cupti_lib < <(python3 - <<'PY' 2>/dev/null || true
import glob, os, site
for sp in site.getsitepackages():
    for h in sorted(glob.glob(os.path.join(sp, "nvidia", "**", "cupti.h"), recursive=True)):
        root = os.path.dirname(os.path.dirname(h))
        libs = sorted(glob.glob(os.path.join(root, "lib*", "libcupti.so*")))
        if libs:
            print(os.path.dirname(h), libs[0]); raise SystemExit
PY
)
  fi
  if [ -z "$cupti_lib" ]; then
    say "kernprof: no CUPTI (cupti.h + libcupti) in $cuda_root or a Python wheel"
    return 1
  fi
  say "kernprof: CUPTI $cupti_lib"
  run_step kernprof-build 120 "$cxx" -O2 -std=c++17 -Wall -shared -fPIC -I"$cupti_inc" -I"$cuda_root/include" \
    "$src/tools/kernprof/kernprof.cpp" -o "$build/libkernprof.so" "$cupti_lib" \
    -Wl,-rpath,"$(dirname "$(readlink -f "$cupti_lib")")"
}

# ---- build only the GPU targets ---------------------------------------------------------------------
build_cap=400
[ "$mode" = build ] && build_cap=7200
run_step build "$build_cap" "$ninja" -C "$build" -j "$jobs" "${tests[@]}" "${examples[@]}" "${benches[@]}" || die "the GPU build failed (see above)"

# No Eigen/doctest/json/stb/CLI11/benchmark header may have come from the system (ninja's dependency log).
"$ninja" -C "$build" -t deps >"$state/ninja-deps.txt"
grep -E '^ +/usr/(local/)?include/(eigen3|nlohmann|stb|CLI|doctest|benchmark)/' "$state/ninja-deps.txt" | sort -u >"$state/system-headers.txt" || true
if [ -s "$state/system-headers.txt" ]; then
  head -5 "$state/system-headers.txt"
  die "these headers (and $(($(wc -l <"$state/system-headers.txt") - 1)) more) came from the system, not from third_party/"
fi
grep -q "^ *$tp/usr/include/" "$state/ninja-deps.txt" || die "no third_party header in ninja's dependency log: cannot confirm where the headers came from"
say "headers: Eigen/doctest/json/stb/CLI11 from third_party/, benchmark from $gb_prefix (checked in ninja's deps)"
if [ "$mode" = build ]; then
  build_kernprof || true
  say "build only: ${#tests[@]} GPU tests and ${#benches[@]} GPU benchmarks built"
  exit 0
fi

# ---- the device ----------------------------------------------------------------------------------
: >"$state/device.csv"
if command -v nvidia-smi >/dev/null && { timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader >"$state/device.csv" 2>/dev/null ||
     timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$state/device.csv" 2>/dev/null; }; then
  info device_source nvidia-smi
else
  # a tiny CUDA program: name, compute capability, memory, the driver's CUDA version
  cat >"$state/devquery.cu" <<'CU'
#include <cstdio>
#include <cuda_runtime.h>
int main() {
  int n = 0, drv = 0, rt = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) { std::printf("error=%s\n", cudaGetErrorString(e)); return 1; }
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  std::printf("count=%d\ndriver_cuda_version=%d\nruntime_version=%d\n", n, drv, rt);
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, i);
    std::printf("gpu%d=%s, cuda %d, %zu MiB, %d.%d\n", i, p.name, drv, p.totalGlobalMem >> 20, p.major, p.minor);
  }
}
CU
  if timeout 120 "$nvcc" -o "$state/devquery" "$state/devquery.cu" && timeout 30 "$state/devquery" >"$state/devquery.txt"; then
    grep '^gpu[0-9]*=' "$state/devquery.txt" | cut -d= -f2- >"$state/device.csv" || true
    info device_source "cuda query"
  else
    info device_source "none (no nvidia-smi; the CUDA query found no device)"
  fi
fi
say "device: $(tr '\n' ';' <"$state/device.csv")"

# ---- tests ---------------------------------------------------------------------------------------
ctest_sel=(-L '^gpu$')
if [ -n "${PDIFF_GPU_TARGETS:-}" ]; then
  ((${#tests[@]})) && ctest_sel+=(-R "^($(IFS='|'; echo "${tests[*]}"))\$") || ctest_sel+=(-R '^$')
fi
run_step ctest 300 "$ctest" --test-dir "$build" "${ctest_sel[@]}" --output-on-failure --no-tests=error \
  --timeout "${PDIFF_GPU_TEST_TIMEOUT:-180}" -j "${PDIFF_GPU_CTEST_J:-1}" --output-junit "$state/ctest-junit.xml" || true

# ---- benchmarks (JSON each; more than 6 stay in the build folder: the device returns 8 files at most) -----
# The peer of pdiff's attention: PyTorch's SDPA on the same shapes (bench/cuda/sdpa_torch.py), run with
# bench_cuda_attention when the machine's python3 has PyTorch; the report puts the two side by side.
peer=()
if [[ " ${benches[*]} " == *" bench_cuda_attention "* ]] && python3 -c 'import torch' 2>/dev/null; then peer=(sdpa_torch); fi
bdir=$out
room=6; [ -n "${PDIFF_GPU_KERNPROF:-}" ] && room=4  # kernprof.txt and kernprof.csv.gz come back too
((${#benches[@]} + ${#peer[@]} > room)) && bdir=$build/bench-json && mkdir -p "$bdir"
kb=${PDIFF_GPU_KERNPROF:-}
kb=${kb%%:*}  # (unset: no benchmark is skipped here)
for b in "${benches[@]}"; do
  [ "$b" = "$kb" ] && continue  # runs once, under the profiler (below)
  rc=0
  run_step "bench:$b" "${PDIFF_GPU_BENCH_TIMEOUT:-120}" "$build/bench/cuda/$b" --benchmark_out="$bdir/$b.json" \
    --benchmark_out_format=json ${PDIFF_GPU_BENCH_ARGS:-} || rc=$?
  printf '%s\t%s\t%s\n' "$b" "$bdir/$b.json" "$rc" >>"$state/bench_runs.tsv"
done
for b in "${peer[@]}"; do
  rc=0
  run_step "bench:$b" "${PDIFF_GPU_BENCH_TIMEOUT:-120}" env PYTHONUNBUFFERED=1 python3 "$src/bench/cuda/$b.py" \
    --out "$bdir/$b.json" || rc=$?
  printf '%s\t%s\t%s\n' "$b" "$bdir/$b.json" "$rc" >>"$state/bench_runs.tsv"
done

# ---- kernel timeline of one benchmark (PDIFF_GPU_KERNPROF=BENCH[:FILTER]) -----------------------------
if [ -n "${PDIFF_GPU_KERNPROF:-}" ]; then
  kf=""
  [[ $PDIFF_GPU_KERNPROF == *:* ]] && kf=${PDIFF_GPU_KERNPROF#*:}
  if [ ! -x "$build/bench/cuda/$kb" ]; then
    say "kernprof: no benchmark binary $kb: skipped"
  elif ! build_kernprof; then
    say "kernprof: not built: $kb runs plainly"
    rc=0
    run_step "bench:$kb" "${PDIFF_GPU_BENCH_TIMEOUT:-120}" "$build/bench/cuda/$kb" --benchmark_out="$bdir/$kb.json" \
      --benchmark_out_format=json ${PDIFF_GPU_BENCH_ARGS:-} || rc=$?
    printf '%s\t%s\t%s\n' "$kb" "$bdir/$kb.json" "$rc" >>"$state/bench_runs.tsv"
  else
    say "kernprof: timing every kernel of $kb ${kf:+(filter $kf)}"
    rc=0
    run_step "kernprof:$kb" "${PDIFF_GPU_BENCH_TIMEOUT:-120}" env KERNPROF_OUT="$build/kernprof.csv" \
      CUDA_INJECTION64_PATH="$build/libkernprof.so" "$build/bench/cuda/$kb" ${kf:+--benchmark_filter="$kf"} \
      --benchmark_out="$bdir/$kb.json" --benchmark_out_format=json ${PDIFF_GPU_BENCH_ARGS:-} || rc=$?
    if [ -s "$build/kernprof.csv" ]; then
      python3 "$src/tools/kernprof/summarize.py" "$build/kernprof.csv" | tee "$out/kernprof.txt" || true
      gzip -c "$build/kernprof.csv" >"$out/kernprof.csv.gz"
    fi
    printf '%s\t%s\t%s\n' "$kb" "$bdir/$kb.json" "$rc" >>"$state/bench_runs.tsv"
  fi
fi

# ---- verdict -------------------------------------------------------------------------------------
read -r passed failed skipped < <(python3 - "$state/ctest-junit.xml" <<'PY' 2>/dev/null || echo "0 0 0"
import sys, xml.etree.ElementTree as ET
p = f = s = 0
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    st = tc.get("status", "")
    if tc.find("failure") is not None or st == "fail": f += 1
    elif tc.find("skipped") is not None or st in ("notrun", "disabled"): s += 1
    else: p += 1
print(p, f, s)
PY
)
touch "$state/bench_runs.tsv"
bench_bad=$(awk -F'\t' '$3 != 0' "$state/bench_runs.tsv" | wc -l)
steps_bad=$(awk -F'\t' '$2 != "ok"' "$state/steps.tsv" | wc -l)
say "tests: $passed passed, $failed failed, $skipped skipped; benchmarks: $((${#benches[@]} - bench_bad)) ran, $bench_bad failed"
[ -f "$state/ctest-junit.xml" ] || die "ctest wrote no JUnit report (it did not finish)"
((failed == 0 && bench_bad == 0 && steps_bad == 0)) || exit 1
((passed > 0)) || die "no GPU test passed (all skipped: is there a device?)"
exit 0
