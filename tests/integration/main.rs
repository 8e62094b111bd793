//! Whole behaviours of clusterdns through its real interfaces: DNS over UDP and TCP
//! sockets on 127.0.0.1, the cluster file, the config file and the binary.

mod autopath;
mod binary;
mod blocks;
mod client;
mod config_files;
mod corefile_import;
mod dual_stack;
mod explain;
mod file_source;
mod forward;
mod harness;
mod hosts;
mod http;
mod kube_dns_configmap;
mod kube_source;
mod kube_token;
mod kube_watch;
mod layout;
mod loadbalance;
mod logs;
mod netns;
mod nodelocal_mode;
mod nodelocal_netns;
mod nodelocal_steering;
mod observe;
mod operations;
mod readme;
mod search_path;
mod spec_edges;
mod spec_generated;
mod spec_sample;
mod transfer;
mod upstream;
mod wire;
mod zone_options;
