#!/usr/bin/env bash
# Runs every benchmark and writes benchmarks/RESULTS.md (tables + the commands).
# Usage: bash benchmarks/run_all.sh      (about 5 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/RESULTS.md
{
  echo "# Benchmark results"
  echo
  echo "Produced by \`bash benchmarks/run_all.sh\` on $(date -u +%Y-%m-%d) ($(uname -m), $(nproc) CPUs,"
  echo "load average at start $(cut -d' ' -f1-3 /proc/loadavg)). Ratios are measured side by side in"
  echo "the same run (interleaved rounds); the machine is shared, so absolute times vary."
  echo
  echo "## Engine: chain of ops and one XOR training step (issue 2)"
  echo
  echo "Command: \`python benchmarks/bench_engine.py --repeat 9\`"
  echo
  python benchmarks/bench_engine.py --repeat 9
  echo
  echo "## One epoch of an MLP 784-128-10 on 60 000 x 784 float32 (issue 3)"
  echo
  echo "Command: \`python benchmarks/bench_mlp.py --repeats 7\` (library-default threads) and"
  echo "\`--threads 1\`"
  echo
  python benchmarks/bench_mlp.py --repeats 7 | sed -n '/^| contender/,$p'
  echo
  echo "One thread:"
  echo
  python benchmarks/bench_mlp.py --repeats 5 --threads 1 --no-memory | sed -n '/^| contender/,$p'
  echo
  echo "## Gradient checks of large models (issue 4)"
  echo
  echo "Command: \`python benchmarks/bench_check.py\`"
  echo
  echo '```'
  python benchmarks/bench_check.py
  echo '```'
  echo
  echo "## Monitor overhead (issue 5)"
  echo
  echo "Command: \`python benchmarks/bench_monitor.py\`"
  echo
  echo '```'
  python benchmarks/bench_monitor.py
  echo '```'
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
