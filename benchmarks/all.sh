#!/bin/sh
# Every benchmark of benchmarks/README.md in one sitting, one after another (none overlaps
# another), each with the command its section quotes. Output: benchmarks/runs/<date>.txt.
#   sh benchmarks/all.sh            (as root, from the repository, after `make install`)
# Left out, each quoted in its section with its own command: the 1 M annotations fill
# (commons.py --n 1000000, ~20 min per store), the Zarr and gateway climate runs, slurm.py
# (a two-node cluster in network namespaces) and the knowledge service through the hub.
set -u
cd "$(dirname "$0")/.."
mkdir -p benchmarks/runs
out="benchmarks/runs/$(date -u +%Y-%m-%d).txt"
py=.venv/bin/python
{
  echo "# benchmarks/all.sh — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
  echo "# $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out"
run() {
  echo "" >> "$out"
  echo "## $* (load $(cut -d' ' -f1-3 /proc/loadavg))" >> "$out"
  start=$(date +%s)
  timeout 1800 "$py" "$@" >> "$out" 2>&1 || echo "(exit status $?)" >> "$out"
  echo "## took $(( $(date +%s) - start )) s" >> "$out"
}
run benchmarks/spawn.py --repeat 3 --burst 10
run benchmarks/spawn.py --collaboration --repeat 5
run benchmarks/memory.py --idle 10
run benchmarks/dates.py --rows 1000000 --sample 5000
run benchmarks/pca.py
run benchmarks/climate.py --repeat 3 --pandas-sample 20
run benchmarks/reports.py --n 20 --workers 2
run benchmarks/workshop.py --seats 30
run benchmarks/cluster.py --repeat 5
run benchmarks/commons.py --n 100000 --bulk 20000 --http 400 --plain 10000
run benchmarks/media.py --minutes 2
run benchmarks/knowledge.py --triples 1000000 --repeat 3
run benchmarks/metrics.py --rounds 10 --block 200 --hub
run benchmarks/sites.py
run benchmarks/sites_browser.py --points 10000 100000 --kinds canvas --webgl-points 100000 1000000 --lonboard-points
echo "" >> "$out"; echo "# done $(date -u '+%H:%M UTC')" >> "$out"
