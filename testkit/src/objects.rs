//! Builders for the Kubernetes objects the fake API server serves, and a kubeconfig
//! pointing at it.

use serde_json::{Value, json};

/// A kubeconfig for `server` (e.g. `http://127.0.0.1:PORT`) with a bearer token the fake
/// ignores.
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: not-checked\n"
    )
}

/// A kubeconfig for `server` whose user reads its bearer token from `token_file`.
pub fn kubeconfig_with_token_file(server: &str, token_file: &std::path::Path) -> String {
    kubeconfig(server).replace(
        "    token: not-checked\n",
        &format!("    tokenFile: {}\n", token_file.display()),
    )
}

pub fn namespace(name: &str) -> Value {
    json!({
        "kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
    })
}

/// A ClusterIP service (`cluster_ip` "None": headless) with named TCP ports.
pub fn service(namespace: &str, name: &str, cluster_ip: &str, ports: &[(&str, u16)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP", "targetPort": p}))
        .collect();
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
            "ports": ports, "selector": {"app": name}, "sessionAffinity": "None",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
        },
        "status": {"loadBalancer": {}},
    })
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone)]
pub struct Ep {
    pub ip: String,
    pub ready: bool,
    pub hostname: Option<String>,
}

/// A ready endpoint.
pub fn ep(ip: &str) -> Ep {
    Ep {
        ip: ip.to_owned(),
        ready: true,
        hostname: None,
    }
}

impl Ep {
    pub fn not_ready(mut self) -> Ep {
        self.ready = false;
        self
    }

    pub fn hostname(mut self, h: &str) -> Ep {
        self.hostname = Some(h.to_owned());
        self
    }
}

/// An IPv4 EndpointSlice of `service`, with the service's named TCP ports.
pub fn endpoint_slice(
    namespace: &str,
    name: &str,
    service: &str,
    endpoints: &[Ep],
    ports: &[(&str, u16)],
) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|e| {
            let mut v = json!({
                "addresses": [e.ip],
                "conditions": {"ready": e.ready, "serving": e.ready, "terminating": false},
                "nodeName": "node-0", "zone": "zone-a",
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": format!("{service}-{}", e.ip.replace('.', "-"))},
            });
            if let Some(h) = &e.hostname {
                v["hostname"] = json!(h);
            }
            v
        })
        .collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP"}))
        .collect();
    json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": name, "namespace": namespace, "generateName": format!("{service}-"),
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "app": service,
            },
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service, "uid": "0", "controller": true, "blockOwnerDeletion": true}],
        },
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
    })
}

/// A pod in `phase` (Pending, Running, Succeeded, Failed) holding `ip`.
pub fn pod(namespace: &str, name: &str, ip: &str, phase: &str) -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": name, "namespace": namespace, "labels": {"app": name},
            "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:conditions": {}, "f:podIP": {}, "f:podIPs": {}}}}],
        },
        "spec": {"nodeName": "node-0", "containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
        "status": {"phase": phase, "hostIP": "10.0.0.2", "podIP": ip, "podIPs": [{"ip": ip}]},
    })
}
