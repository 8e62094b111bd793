//! The `cluster_file` target: its body is `clusterdns_testkit::fuzzing::files::cluster_file`, which the stable
//! replay (`cargo test`) also runs over fuzz/corpus/cluster_file and fuzz/regressions/cluster_file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clusterdns_testkit::fuzzing::files::cluster_file(data);
});
