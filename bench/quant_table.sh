#!/usr/bin/env bash
# The quantization quality table of the W4A4 issue: quantizes MODEL with each method variant,
# evaluates every result against MODEL itself (perplexity, mean KL divergence, top-1 agreement)
# and prints one markdown table.
#
# Usage: bench/quant_table.sh MODEL TEXT OUTDIR [CTX] [CHUNKS] [-- extra quantize options]
#   TEXT   evaluation text; "generate" writes one: 8 samples the FP model generates from BOS
#          with seeds 1001..1008 (calibration uses other seeds, so the texts are disjoint).
#   CHUNKS 0 = every window of the text.
# Environment: FP4LM (default build/bin/fp4lm), THREADS (default 0 = all).
set -euo pipefail
fp4lm="${FP4LM:-build/bin/fp4lm}"
model="$1"; text="$2"; out="$3"; ctx="${4:-512}"; chunks="${5:-0}"
shift $(( $# < 5 ? $# : 5 ))
[ "${1:-}" = "--" ] && shift
extra=("$@")
threads="${THREADS:-0}"
mkdir -p "$out"

if [ "$text" = "generate" ]; then
  text="$out/eval_text.txt"
  : > "$text"
  for seed in 1001 1002 1003 1004 1005 1006 1007 1008; do
    "$fp4lm" generate -m "$model" -p "" -n $((ctx - 8)) --temp 1 --top-k 0 --top-p 1 \
      --min-p 0 --seed "$seed" -t "$threads" --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])' >> "$text"
  done
fi

eval_json() {  # model [ref]
  local args=(eval -m "$1" --perplexity "$text" --ctx "$ctx" -t "$threads" --json)
  [ "$chunks" != 0 ] && args+=(--chunks "$chunks")
  [ -n "${2:-}" ] && args+=(--ref-model "$2")
  "$fp4lm" "${args[@]}" 2>/dev/null
}

field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); v=d[sys.argv[2]]; print('-' if v is None else ('%.4f' % v if isinstance(v, float) else v))" "$1" "$2"; }

fp32="$(eval_json "$model")"
echo "model: $model; text: $text; ctx $ctx; $(field "$fp32" scored_tokens) tokens scored"
echo
echo "| variant | PPL | PPL / FP32 | mean KLD | top-1 agreement % | quantize s |"
echo "|---|---|---|---|---|---|"
echo "| FP32 | $(field "$fp32" ppl) | 1.0000 | 0 | 100 | - |"

# The paper methods alone are "--no-gptq --no-rotation"; fp4lm's defaults add GPTQ and the
# per-head value rotation. Each row changes one thing against the default llm-fp4 row.
variants=(
  "rtn|--method rtn"
  "llm-fp4 (paper: no gptq, no rotation)|--method llm-fp4 --no-gptq --no-rotation"
  "llm-fp4 + gptq|--method llm-fp4 --no-rotation"
  "llm-fp4 + gptq + rotation (default)|--method llm-fp4"
  "llm-fp4 default, E2M1 only|--method llm-fp4 --e2m1-only"
  "llm-fp4 default, no sink|--method llm-fp4 --no-sink"
  "mergequant (paper)|--method mergequant --no-gptq --no-rotation"
  "mergequant + gptq + rotation|--method mergequant"
  "mergequant default, no sink|--method mergequant --no-sink"
)
for v in "${variants[@]}"; do
  name="${v%%|*}"
  read -r -a opts <<< "${v#*|}"
  file="$out/$(echo "$name" | tr -c 'a-z0-9\n' '_').gguf"
  start=$(date +%s.%N)
  "$fp4lm" quantize -m "$model" -o "$file" -q -t "$threads" "${opts[@]}" "${extra[@]}" > /dev/null
  seconds=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $start))")
  r="$(eval_json "$file" "$model")"
  echo "| $name | $(field "$r" ppl) | $(field "$r" ppl_ratio) | $(field "$r" kld_mean) | $(field "$r" top1_agreement) | $seconds |"
done
