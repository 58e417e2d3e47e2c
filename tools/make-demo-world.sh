#!/usr/bin/env bash
# Regenerates the demo world (demo/) from scratch with the project's own code: task files, tokenizer, base model
# and LoRA library. Deterministic: the same machine type gives the same files (compare demo/SHA256SUMS).
#
#   tools/make-demo-world.sh                 # uses build/src/app/lorahub (or $LORAHUB)
#   LORAHUB=build-x/src/app/lorahub JOBS=1 tools/make-demo-world.sh
#
# Settings (environment): LORAHUB (the binary), JOBS (module trainings at once, 1 thread each; default 2),
# PRETRAIN_THREADS (default 1), SEED (world seed, default 2024), BASE_WORDING (code | english),
# KEEP_WORK=1 (keep the intermediate files).
# Needs spm_train (Debian: sentencepiece). Takes about 10 minutes on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LORAHUB=${LORAHUB:-build/src/app/lorahub}
JOBS=${JOBS:-2}
PRETRAIN_THREADS=${PRETRAIN_THREADS:-1}
SEED=${SEED:-2024}
BASE_WORDING=${BASE_WORDING:-code}   # code: the base learns "Task k." (shipped); english: canonical wordings
OUT=demo

# The recipe (docs/demo-world.md explains each choice).
SPM_VOCAB=256
PRETRAIN_STEPS=3000
PRETRAIN_BATCH=64
PRETRAIN_LR=2e-3
BIAS_LR_FACTOR=100
MODULE_STEPS=300
MODULE_BATCH=64
MODULE_LR=3e-3
MODULE_RANK=8
MODULE_ALPHA=16
MODULE_INIT_SEED=7   # every module starts from the same A

[ -x "$LORAHUB" ] || { echo "make-demo-world: $LORAHUB is not built (cmake --build <dir> --target lorahub, or set LORAHUB)" >&2; exit 1; }
command -v spm_train >/dev/null || { echo "make-demo-world: spm_train not found (apt-get install sentencepiece)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/demo-world.XXXXXX")
cleanup() { if [ "${KEEP_WORK:-0}" = 1 ]; then echo "intermediate files kept in $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

T_ALL=$(date +%s)
T_STAGE=$T_ALL
stage_done() {
  local now
  now=$(date +%s)
  printf '== %-38s %5d s\n' "$1" $((now - T_STAGE))
  T_STAGE=$now
}

rm -rf "$OUT/model" "$OUT/library" "$OUT/tasks" "$OUT/upstream" "$OUT/SHA256SUMS"
mkdir -p "$OUT/model" "$OUT/library"

# 1. Generated text: held-out and upstream tasks (BBH layout), tokenizer corpus, training sets, architecture.
"$LORAHUB" demo-world files --seed "$SEED" --base-wording "$BASE_WORDING" --work "$WORK" --tasks "$OUT/tasks" --upstream "$OUT/upstream"
stage_done "task files and training sets"

# 2. Tokenizer: a 256-piece unigram model (one thread: deterministic).
(cd "$WORK" && spm_train --input=corpus.txt --model_prefix=spiece --vocab_size=$SPM_VOCAB --model_type=unigram \
  --character_coverage=1.0 --hard_vocab_limit=false --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 \
  --num_threads=1 --minloglevel=1 >spm_train.log 2>&1) || { cat "$WORK/spm_train.log" >&2; exit 1; }
stage_done "tokenizer (spm_train)"

# 3. Base model: multi-task pretraining on the upstream tasks, each named by its task code.
"$LORAHUB" --threads "$PRETRAIN_THREADS" pretrain --config "$WORK/config.json" --tokenizer "$WORK/spiece.model" \
  --train "$WORK/pretrain.jsonl" --out "$OUT/model" --steps $PRETRAIN_STEPS --batch-size $PRETRAIN_BATCH \
  --lr $PRETRAIN_LR --bias-lr-factor $BIAS_LR_FACTOR --warmup-ratio 0.05 --weight-decay 0 --max-grad-norm 1 \
  --seed "$SEED" --init-seed "$SEED" --autocast bf16 --log-every 500
# Shipped in bf16 (half the size); the modules are trained against exactly these weights.
"$LORAHUB" -q demo-world to-bf16 "$OUT/model/model.safetensors"
stage_done "base model (pretrain)"

# 4. The library: one LoRA per upstream task, trained on all its wordings; JOBS at once, one thread each.
train_module() {
  local task=$1
  "$LORAHUB" -q --threads 1 train-lora --model "$OUT/model" --train "$WORK/modules/$task.jsonl" \
    --out "$OUT/library/$task" --r $MODULE_RANK --alpha $MODULE_ALPHA --targets q,v --lr $MODULE_LR \
    --max-steps $MODULE_STEPS --batch-size $MODULE_BATCH --dropout 0 --weight-decay 0 --max-grad-norm 1 \
    --warmup-ratio 0.05 --seed "$SEED" --init-seed $MODULE_INIT_SEED --autocast bf16 --log-every 0 |
    sed "s|^|  |"
}
export -f train_module
export LORAHUB OUT WORK SEED MODULE_RANK MODULE_ALPHA MODULE_LR MODULE_STEPS MODULE_BATCH MODULE_INIT_SEED
ls "$WORK/modules" | sed 's/\.jsonl$//' | xargs -P "$JOBS" -I{} bash -c 'train_module {}'
"$LORAHUB" -q demo-world to-bf16 "$OUT"/library/*/adapter_model.safetensors
stage_done "library (train-lora x $(ls "$WORK/modules" | wc -l))"

# 5. Checksums of every generated file (compare two regenerations with diff).
(cd "$OUT" && find model library tasks upstream -type f | LC_ALL=C sort | xargs sha256sum) >"$OUT/SHA256SUMS"
stage_done "checksums"

echo "demo world written to $OUT/ in $(( $(date +%s) - T_ALL )) s: $(du -sh --apparent-size "$OUT" | cut -f1)" \
  "(model $(du -sh --apparent-size "$OUT/model" | cut -f1), library of $(ls "$OUT/library" | wc -l) modules" \
  "$(du -sh --apparent-size "$OUT/library" | cut -f1), tasks $(du -sh --apparent-size "$OUT/tasks" "$OUT/upstream" | cut -f1 | paste -sd+))"
