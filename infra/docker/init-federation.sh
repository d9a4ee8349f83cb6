#!/bin/sh
# One-shot set-up of the compose mesh's federation (compose.yaml's `federation` service):
# a CA and metadata key in $MEMNODE_CA_DIR (first run only), then credentials for each
# node NAME in $MEMNODE_CREDENTIALS_ROOT/NAME, issued for the DNS name NAME, handed to
# the user the node runs as (with its data volume, if mounted at $MEMNODE_DATA_ROOT/NAME).
# Running it again keeps what exists.
#
#   init-federation.sh node1 node2 node3
set -eu

ca_dir="${MEMNODE_CA_DIR:-/federation}"
creds_root="${MEMNODE_CREDENTIALS_ROOT:-/credentials}"
data_root="${MEMNODE_DATA_ROOT:-/data-volumes}"
owner="${MEMNODE_OWNER:-10001:10001}"

if [ "$#" -eq 0 ]; then
  echo "usage: $0 NODE_NAME..." >&2
  exit 2
fi

if [ ! -f "$ca_dir/ca.crt" ]; then
  memnode federation init "$ca_dir" --name "memnode compose mesh"
fi
for node in "$@"; do
  if [ ! -f "$creds_root/$node/node.crt" ]; then
    memnode federation issue "$ca_dir" --name "$node" --dns "$node" --out "$creds_root/$node"
  fi
  chown -R "$owner" "$creds_root/$node"
  chmod 0700 "$creds_root/$node"
  if [ -d "$data_root/$node" ]; then
    chown "$owner" "$data_root/$node"
  fi
done
