#!/usr/bin/env bash
# What the benchmarks' one-way delay on links needs, installed where this runs as root
# with apt (the kernel here has no netem and no nft queue, only xt NFQUEUE; see
# bench/README.md, "netns"): iptables, and NetfilterQueue in the venv (built against
# libnetfilter-queue). Without them `bench convergence --delay` says why and stops, and
# `bench scale` runs its delayed rows with loss only and says so.
#   usage: bash scripts/bench-tools.sh .venv/bin/pip
set -uo pipefail
pip="${1:-.venv/bin/pip}"
missing=()
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
[ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || missing+=(libnetfilter-queue-dev)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
python3 -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
  || missing+=(python3-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}") \
      || echo "warning: could not install ${missing[*]}; no delay on links" >&2
  else
    echo "bench tools missing (${missing[*]}); the benchmarks run without delay" >&2
  fi
fi
"$pip" install -q 'NetfilterQueue>=1.1' >/dev/null 2>&1 \
  || echo "warning: NetfilterQueue did not install; the benchmarks run without delay" >&2
exit 0
