#!/usr/bin/env bash
# The at-exit image (MEMSCOPE_EXIT_IMAGE): written by the recorded process
# only, by its forked children too with MEMSCOPE_EXIT_IMAGE_CHILDREN=1 (as
# FILE.PID), and each replays to the figures the process saw of itself.
set -euo pipefail
case "${1:-}" in -h|--help|"")
  echo "Usage: exit_image.sh LIBMEMSCOPE FIXTURE CHECKER WORKDIR [linked]"; exit 0 ;; esac
lib=$1 fixture=$2 checker=$3 work=$4 mode=${5:-preload}
rm -rf "$work" && mkdir -p "$work"
run() {
  if [ "$mode" = linked ]; then env "$@" "$fixture" "$work/stats"
  else env LD_PRELOAD="$lib" "$@" "$fixture" "$work/stats"; fi
}

# 1. the parent only
run MEMSCOPE_EXIT_IMAGE="$work/img"
"$checker" "$work/img" "$work/stats" parent
if ls "$work"/img.[0-9]* >/dev/null 2>&1; then echo "a child wrote an image without MEMSCOPE_EXIT_IMAGE_CHILDREN"; exit 1; fi
# the mappings beside the image (for naming sites): at least the fixture itself
grep -q "$(basename "$fixture")" "$work/img.modules" || { echo "img.modules does not name $fixture"; exit 1; }

# 2. children too
rm -f "$work"/*
run MEMSCOPE_EXIT_IMAGE="$work/img" MEMSCOPE_EXIT_IMAGE_CHILDREN=1
"$checker" "$work/img" "$work/stats" parent
n=0
for child in "$work"/img.[0-9]*; do
  case "$child" in *.modules) continue ;; esac
  pid=${child##*.}
  "$checker" "$child" "$work/stats.$pid"
  n=$((n + 1))
done
[ "$n" -eq 1 ] || { echo "expected 1 child image, found $n"; exit 1; }
echo "exit_image ($mode): ok"
