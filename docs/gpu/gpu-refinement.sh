#!/bin/bash
# bench.py refinement's main target (shift 1.0) at GPU size, to ask whether the control's lead
# on the CPU benchmark comes from CPU-sized networks: the same datasets (seeds 0-2, or SEEDS), the paper's
# network width, batch and learning rate, 300 steps per network and round (30 passes over the
# 144 training patches; the CPU benchmark makes 5), scale 1, rounds 0-2; arms default, control,
# paper rule. One process per seed shares the GPU. Settings fixed before any GPU result was seen.
# Usage (a GPU machine, repository root): OUT=some/folder BUDGET=330 bash docs/gpu/gpu-refinement.sh
# then, on the same machine: SEEDS="3 4" ALL="0 1 2 3 4" OUT=... BUDGET=300 bash docs/gpu/gpu-refinement.sh
# another target and fewer arms: BENCH='shift 0.5' ARMS='default control' (paper-rule for 'paper rule')
# what the labels add over their batch slots at this size (docs/evidence.md: where the control's lead comes from):
#   ARMS='default control no-labels'
# grown labels against the control at this size (docs/evidence.md: At GPU size; run 2026-11-27 on aged scars
# and shift 1.0, one script each, side by side; the default arm then ran class-balanced labels):
#   BENCH='older scars' ARMS='default grow control'
# since 2026-11-27 the default arm runs grown labels with the source share as a ceiling; next, beside
# the previous default: BENCH='shift 0.5' ARMS='default balanced control', and BENCH='sensor only'
# the target's share at TestData's 19 % (docs/evidence.md: where the control's lead comes from), in its own folder:
#   ARMS=default R=runs/refinement-gpu-frac19 F='--width 64 --batch-size 16 --steps 300 --lr 1e-3 --device cuda --target-frac 0.19'
set -u
OUT=${OUT:-runs/gpu-refinement-out}; R=${R:-runs/refinement-gpu}; mkdir -p "$OUT"
F=${F:-"--width 64 --batch-size 16 --steps 300 --lr 1e-3 --device cuda"}
export PYTHONUNBUFFERED=1
BENCH=${BENCH:-shift 1.0}; read -ra A <<< "${ARMS:-default control paper-rule}"; A=("${A[@]//-/ }")
python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no cuda")'
T0=$(date +%s)
for s in ${SEEDS:-0 1 2}; do
  timeout "${BUDGET:-330}" python3 bench.py refinement --out "$R" --only "$BENCH" --seed-list $s \
    --arms "${A[@]}" --flags="$F" > "$OUT/seed$s.log" 2>&1 &
done
wait
echo "training: $(( $(date +%s) - T0 )) s"
python3 bench.py refinement --out "$R" --only "$BENCH" --seed-list ${ALL:-0 1 2} \
  --arms "${A[@]}" --flags="$F" --table-only | tee "$OUT/table.log"
tail -n 3 "$OUT"/seed*.log
tar czf "$OUT/runs.tgz" "$R"/*/metrics.json "$R"/*/config.json "$R"/refinement.*
