# Sourced by the GPU scripts. `step NAME LIMIT_S COMMAND...` runs COMMAND under a time limit, logs its output
# to $STEP_DIR/NAME.log, appends {"step", "rc", "seconds"} (or why it was skipped) to $STEP_DIR/steps.jsonl,
# and returns COMMAND's exit status (1 when skipped): a failed step never aborts the script (no `set -e`).
# Set STEP_DIR and BUDGET_S first; no step starts with less than STEP_MIN_LEFT_S (default 30) of the budget
# left, and a step's limit is cut to what is left.
step() {
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET_S - SECONDS))
  if (( left < ${STEP_MIN_LEFT_S:-30} )); then
    echo "{\"step\": \"$name\", \"skipped\": \"budget spent at ${SECONDS}s\"}" | tee -a "$STEP_DIR/steps.jsonl"
    return 1
  fi
  (( limit > left )) && limit=$left
  echo "== $name (limit ${limit}s, at ${SECONDS}s)"
  local t0=$SECONDS
  timeout --kill-after=20 "$limit" "$@" > "$STEP_DIR/$name.log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0))}" | tee -a "$STEP_DIR/steps.jsonl"
  tail -n "${STEP_TAIL:-5}" "$STEP_DIR/$name.log"
  return $rc
}
