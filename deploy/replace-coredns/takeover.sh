#!/usr/bin/env bash
# Replaces kubeadm's CoreDNS with clusterdns without failing a query:
#   1. refuse if something would go wrong (ClusterIP differs, an autoscaler targets
#      coredns); 2. back CoreDNS's objects up to a file; 3. apply this overlay and wait
#      until every clusterdns replica is ready AND listed in the kube-dns EndpointSlices;
#   4. scale CoreDNS to 0 and wait for its pods to finish their lameduck; 5. delete
#      CoreDNS's Deployment, ConfigMap, ServiceAccount and RBAC (so `kubeadm upgrade`
#      does not bring it back).
# Usage: takeover.sh [BACKUP_FILE]   (default coredns-backup-<time>.yaml here)
# Uses the current kubectl context; needs rights to kube-system and cluster RBAC.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ns=kube-system
backup=${1:-coredns-backup-$(date +%Y%m%d-%H%M%S).yaml}
k() { kubectl -n "$ns" "$@"; }
say() { printf 'takeover: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "${1:-}" = -h ] && { sed -n '2,12p' "$0"; exit 0; }

# 1. Preflight. A server-side dry run catches a ClusterIP that differs from the live
# Service's (immutable) and any object the cluster would refuse.
k get deployment coredns >/dev/null || die "no deployment/coredns in $ns: use deploy/cluster"
kubectl apply -k "$here" --dry-run=server >/dev/null ||
    die "the overlay does not apply cleanly (is spec.clusterIP in kustomization.yaml the live one?)"
if k get deployments -o jsonpath='{.items[*].spec.template.spec.containers[*].command}' |
    grep -qi 'target=deployment/coredns'; then
    die "an autoscaler targets deployment/coredns and would scale it back up: remove it first"
fi

# 2. Backup, without the fields a create refuses (restore-coredns.sh re-creates from it).
say "backing CoreDNS up to $backup"
k get deployment/coredns configmap/coredns serviceaccount/coredns -o yaml >"$backup.tmp"
printf -- '---\n' >>"$backup.tmp"
kubectl get clusterrole/system:coredns clusterrolebinding/system:coredns -o yaml >>"$backup.tmp"
sed -E '/^ *(resourceVersion|uid|creationTimestamp|selfLink):/d' "$backup.tmp" >"$backup"
rm -f "$backup.tmp"

# 3. clusterdns beside CoreDNS, until it really is in the Service.
say "applying clusterdns"
kubectl apply -k "$here"
k rollout status deployment/clusterdns --timeout=10m
want=$(k get pods -l app.kubernetes.io/name=clusterdns,k8s-app=kube-dns \
    --field-selector=status.phase=Running -o jsonpath='{.items[*].status.podIP}')
[ -n "$want" ] || die "no clusterdns pod is running"
for _ in $(seq 120); do
    ready=$(k get endpointslices -l kubernetes.io/service-name=kube-dns -o \
        jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]} {end}')
    missing=0
    for ip in $want; do case " $ready " in *" $ip "*) ;; *) missing=1 ;; esac; done
    [ $missing = 0 ] && break
    sleep 1
done
[ $missing = 0 ] || die "clusterdns pods ($want) never became ready endpoints of kube-dns"
# kube-proxy programs the new endpoints on every node within its sync period (1 s by
# default); give slow nodes some more before anything leaves.
sleep 10

# 4. CoreDNS out: readiness fails at once, queries are still answered for the lameduck.
say "scaling CoreDNS to 0"
k scale deployment/coredns --replicas=0
for _ in $(seq 120); do
    [ -z "$(k get pods -l 'k8s-app=kube-dns,!app.kubernetes.io/name' -o name)" ] && break
    sleep 1
done

# 5. Delete what kubeadm installed. Without the coredns ConfigMap, `kubeadm upgrade`
# treats the DNS addon as skipped.
say "deleting CoreDNS's Deployment, ConfigMap, ServiceAccount and RBAC"
k delete deployment/coredns configmap/coredns serviceaccount/coredns --ignore-not-found
kubectl delete clusterrole/system:coredns clusterrolebinding/system:coredns --ignore-not-found
say "done; CoreDNS's objects are in $backup (restore-coredns.sh $backup goes back)"
say "kubeadm >= 1.32: also pass --skip-phases addon/coredns to 'kubeadm upgrade apply'"
