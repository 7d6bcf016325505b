#!/usr/bin/env python3
"""A large cluster dump for --cluster's load cost: N pods shaped as
`kubectl get pods -A -o json` prints them (containers with env, mounts,
resources, probes; status with conditions and container statuses), N/10
services and N/500 nodes, in one List. Usage: cluster-dump.py PODS OUT."""
import json, sys

pods, out = int(sys.argv[1]), sys.argv[2]
nodes = max(1, pods // 500)
items = []
for n in range(nodes):
    items.append({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": f"node-{n}", "labels": {"kubernetes.io/hostname": f"node-{n}",
                      "node-role.kubernetes.io/worker": "true"}},
        "spec": {"podCIDR": f"10.{64 + n // 256}.{n % 256}.0/24", "podCIDRs": [f"10.{64 + n // 256}.{n % 256}.0/24"]},
        "status": {"addresses": [{"type": "InternalIP", "address": f"172.16.{n // 256}.{n % 256}"},
                                 {"type": "Hostname", "address": f"node-{n}"}]},
    })
for p in range(pods):
    n = p % nodes
    ip = f"10.{64 + n // 256}.{n % 256}.{2 + p // nodes % 250}"
    container = {
        "name": "app", "image": f"registry.example/team-{p % 40}/app:1.{p % 9}",
        "env": [{"name": f"VAR_{i}", "value": f"value-{p}-{i}"} for i in range(8)],
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access", "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10},
    }
    items.append({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"app-{p}-7d9c5b8f6-x{p:05d}", "namespace": f"team-{p % 40}",
                     "creationTimestamp": "2025-05-28T09:14:02Z", "labels": {"app": f"app-{p}", "pod-template-hash": "7d9c5b8f6"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{p}-7d9c5b8f6",
                                          "controller": True, "uid": f"{p:08x}-0000-4000-8000-000000000000"}]},
        "spec": {"nodeName": f"node-{n}", "containers": [container], "serviceAccountName": "default",
                 "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]},
        "status": {"phase": "Running", "hostIP": f"172.16.{n // 256}.{n % 256}", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2025-05-28T09:14:09Z"}
                                  for t in ["Initialized", "Ready", "ContainersReady", "PodScheduled"]],
                   "containerStatuses": [{"name": "app", "ready": True, "restartCount": p % 3, "image": container["image"],
                                          "state": {"running": {"startedAt": "2025-05-28T09:14:08Z"}}}]},
    })
for s in range(pods // 10):
    ip = f"10.96.{s // 250}.{1 + s % 250}"
    items.append({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"svc-{s}", "namespace": f"team-{s % 40}"},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
    })
with open(out, "w") as f:
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, indent=4)
