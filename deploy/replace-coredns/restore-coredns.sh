#!/usr/bin/env bash
# Puts kubeadm's CoreDNS back in place of clusterdns without failing a query, from the
# backup takeover.sh wrote: CoreDNS first (until ready and in the kube-dns Service), then
# clusterdns's autoscaler and replicas out, then clusterdns's objects deleted. The
# kube-dns Service stays as it is.
# Usage: restore-coredns.sh BACKUP_FILE
set -euo pipefail
ns=kube-system
backup=${1:?usage: restore-coredns.sh BACKUP_FILE (written by takeover.sh)}
k() { kubectl -n "$ns" "$@"; }
say() { printf 'restore: %s\n' "$*" >&2; }

say "re-creating CoreDNS from $backup"
kubectl create -f "$backup" --save-config
# The backup holds the Deployment at 0 replicas if it was taken after a scale-down;
# CoreDNS as kubeadm ships it runs 2.
[ "$(k get deployment coredns -o jsonpath='{.spec.replicas}')" = 0 ] &&
    k scale deployment/coredns --replicas=2
k rollout status deployment/coredns --timeout=10m
want=$(k get pods -l 'k8s-app=kube-dns,!app.kubernetes.io/name' \
    --field-selector=status.phase=Running -o jsonpath='{.items[*].status.podIP}')
for _ in $(seq 120); do
    ready=$(k get endpointslices -l kubernetes.io/service-name=kube-dns -o \
        jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]} {end}')
    missing=0
    for ip in $want; do case " $ready " in *" $ip "*) ;; *) missing=1 ;; esac; done
    [ $missing = 0 ] && break
    sleep 1
done
[ $missing = 0 ] || { say "CoreDNS never became ready endpoints of kube-dns; clusterdns left running"; exit 1; }
sleep 10

say "scaling clusterdns to 0"
k delete deployment/clusterdns-autoscaler horizontalpodautoscaler/clusterdns --ignore-not-found
k scale deployment/clusterdns --replicas=0
for _ in $(seq 120); do
    [ -z "$(k get pods -l app.kubernetes.io/name=clusterdns -o name)" ] && break
    sleep 1
done

# Everything of the kit carries app.kubernetes.io/name; the kube-dns Service does not.
say "deleting clusterdns's objects"
sel='app.kubernetes.io/name in (clusterdns,clusterdns-autoscaler)'
k delete deployment,configmap,serviceaccount,role,rolebinding,poddisruptionbudget,horizontalpodautoscaler -l "$sel"
kubectl delete clusterrole,clusterrolebinding -l "$sel"
say "done: CoreDNS serves kube-dns again"
