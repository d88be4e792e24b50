#!/usr/bin/env bash
# Every GPU measurement of the benchmarks in one run (CUDA tests first), for a lent GPU machine.
#
# Run from the repository root on the GPU machine, where python3 already has torch with CUDA
# and Triton. Peers come as wheels in .whl/ (prepare them on a machine with network access):
#   echo /.whl/ >> .git/info/exclude
#   for p in pyriemann==0.12 geoopt==0.5.1 pymanopt==2.2.1 spd-learn==0.2.1 array-api-compat \
#            array-api-extra; do
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform any -d .whl "$p"; done
# Outputs (logs and markdown tables) go to $OUT (default ./gpu_out), plus RESULTS.md updated by
# gpu_spectral --record. Roughly 8-10 minutes on an H100; split with STEPS="tests spectral" etc.
set -u
OUT=${OUT:-gpu_out}
STEPS=${STEPS:-"tests spectral spd_ops stats_mean layers optim optim_large pipeline"}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# the checkout is the package: make `import riemlearn` resolve to it without installing
mkdir -p /tmp/rl_pkg && ln -sfn "$PWD" /tmp/rl_pkg/riemlearn
export PYTHONPATH=/tmp/rl_pkg:${PYTHONPATH:-} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
run() {  # name, timeout seconds, command...
  local name=$1 limit=$2; shift 2
  echo "== $name: $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "   exit $? (log: $OUT/$name.log)"
  tail -3 "$OUT/$name.log"
}
for step in $STEPS; do
  case $step in
    tests) run cuda_tests 240 python3 -m pytest tests -q -m cuda -p no:cacheprovider ;;
    spectral) run gpu_spectral 420 python3 benchmarks/gpu_spectral.py --device cuda --repeat 5 --record \
                --probe-chunks --markdown "$OUT/gpu_spectral.md" ;;
    spd_ops) run spd_ops 420 python3 benchmarks/spd_ops.py --device cuda --markdown "$OUT/spd_ops.md" ;;
    stats_mean) run stats_mean 300 python3 benchmarks/stats_mean.py --device cuda --repeat 3 \
                  --markdown "$OUT/stats_mean.md" ;;
    layers) run layers 420 python3 benchmarks/layers.py --device cuda --seeds 3 --epochs 5 \
              --markdown "$OUT/layers.md" ;;
    optim) run optim 420 python3 benchmarks/optim.py --device cuda --repeat 3 --markdown "$OUT/optim.md" ;;
    optim_large) OMP_NUM_THREADS=16 run optim_large 300 python3 benchmarks/optim_large.py --device cuda \
                   --threads 16 --markdown "$OUT/optim_large.md" ;;
    pipeline) run stats_pipeline 300 python3 benchmarks/stats_pipeline.py --device cuda --repeat 3 \
                --markdown "$OUT/stats_pipeline.md" ;;
    *) echo "unknown step $step" ;;
  esac
done
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
