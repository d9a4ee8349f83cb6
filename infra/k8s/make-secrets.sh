#!/usr/bin/env bash
# Make the mesh's two Secrets from a federation made by `memnode federation init`:
#
#   memnode-federation     per pod POD (memnode-0, memnode-1, ...): POD.node.crt and
#                          POD.node.key, issued by `memnode federation issue` for the
#                          pod's DNS names; and ca.crt, denied.txt, federation.json
#   memnode-metadata-key   metadata.key: the key TEAM metadata is hashed with (node
#                          and sidecar both need it)
#
# The CA's private key (FEDERATION_DIR/ca.key) is read here, on the admin's machine, to
# sign; it is never put in a Secret. Prints the Secrets as YAML (kubectl create secret
# ... --dry-run=client -o yaml; without kubectl, the same YAML written here), or applies
# them with --apply.
#
#   memnode federation init ./fed                       # once; keep ./fed off the cluster
#   infra/k8s/make-secrets.sh --namespace mem --replicas 3 ./fed | kubectl apply -f -
#
# Options: --replicas N (3), --namespace NS (default), --statefulset NAME (memnode),
# --service NAME (memnode-gossip, the headless Service), --cluster-domain D
# (cluster.local), --days N (365), --apply. Env: MEMNODE (the memnode command),
# KUBECTL (kubectl). Issue for more pods than you run to scale up without a new Secret.
set -euo pipefail

replicas=3 namespace=default statefulset=memnode service=memnode-gossip
domain=cluster.local days=365 apply=0 fed=""
memnode="${MEMNODE:-memnode}" kubectl="${KUBECTL:-kubectl}"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --replicas) replicas="$2"; shift 2 ;;
    --namespace) namespace="$2"; shift 2 ;;
    --statefulset) statefulset="$2"; shift 2 ;;
    --service) service="$2"; shift 2 ;;
    --cluster-domain) domain="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --apply) apply=1; shift ;;
    -h|--help) usage ;;
    -*) echo "make-secrets.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$fed" ] || usage; fed="$1"; shift ;;
  esac
done
[ -n "$fed" ] || usage
case "$replicas" in ''|*[!0-9]*) echo "make-secrets.sh: --replicas needs a number" >&2; exit 2 ;; esac
if [ ! -f "$fed/ca.key" ] || [ ! -f "$fed/metadata.key" ]; then
  echo "make-secrets.sh: $fed is not a federation directory (no ca.key / metadata.key):" \
    "make one with \`memnode federation init $fed\`" >&2
  exit 2
fi
has_kubectl=0
if command -v "$kubectl" >/dev/null 2>&1; then has_kubectl=1; fi
if [ "$apply" = 1 ] && [ "$has_kubectl" = 0 ]; then
  echo "make-secrets.sh: --apply needs kubectl (or print the YAML and apply it elsewhere)" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0700 "$work"

# One directory of files per Secret: the file name is the key.
mkdir "$work/federation" "$work/metadata-key"
cp "$fed/metadata.key" "$work/metadata-key/metadata.key"
for ((i = 0; i < replicas; i++)); do
  pod="$statefulset-$i"
  "$memnode" federation issue "$fed" --name "$pod" --days "$days" --out "$work/$pod" \
    --dns "$pod.$service.$namespace.svc.$domain" --dns "$pod.$service.$namespace.svc" \
    --dns "$pod.$service.$namespace" --dns "$pod.$service" >&2
  cp "$work/$pod/node.crt" "$work/federation/$pod.node.crt"
  cp "$work/$pod/node.key" "$work/federation/$pod.node.key"
  if [ "$i" = 0 ]; then
    cp "$work/$pod/ca.crt" "$work/$pod/denied.txt" "$work/$pod/federation.json" \
      "$work/federation/"
  fi
done

secret_yaml() {  # NAME DIR: a Secret with one key per file of DIR
  local name="$1" dir="$2" file
  if [ "$has_kubectl" = 1 ]; then
    local args=()
    for file in "$dir"/*; do args+=("--from-file=$(basename "$file")=$file"); done
    "$kubectl" create secret generic "$name" --namespace "$namespace" "${args[@]}" \
      --dry-run=client -o yaml \
      | "$kubectl" label --local -f - app.kubernetes.io/name=memnode \
          app.kubernetes.io/instance=memnode -o yaml
  else
    printf 'apiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n'
    printf '  name: %s\n  namespace: %s\n  labels:\n' "$name" "$namespace"
    printf '    app.kubernetes.io/name: memnode\n    app.kubernetes.io/instance: memnode\n'
    printf 'data:\n'
    for file in "$dir"/*; do
      printf '  %s: %s\n' "$(basename "$file")" "$(base64 < "$file" | tr -d '\n')"
    done
  fi
}

emit() {
  echo "---"
  secret_yaml memnode-federation "$work/federation"
  echo "---"
  secret_yaml memnode-metadata-key "$work/metadata-key"
}

if [ "$apply" = 1 ]; then
  emit | "$kubectl" apply -f -
else
  emit
fi
echo "make-secrets.sh: Secrets for $replicas pods of $statefulset in namespace $namespace" \
  "($([ "$apply" = 1 ] && echo applied || echo printed))" >&2
