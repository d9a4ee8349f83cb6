#!/usr/bin/env bash
# The system tools the tests use, installed where this runs as root with apt (a fresh
# machine, CI). Each test that needs one skips with a reason where it is still missing.
#   ip, nft, tcpdump       multi-host tests in network namespaces (iproute2, nftables, tcpdump)
#   promtool               /metrics and infra/prometheus/alerts.yaml (Debian's prometheus)
#   chromium               the status dashboard in a real headless browser
set -uo pipefail
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test tools missing (${missing[*]}); the tests that need them will skip" >&2
  exit 0
fi
(apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}") \
  || echo "warning: could not install ${missing[*]}; the tests that need them will skip" >&2
exit 0
