//! The `config` target: its body is `clusterdns_testkit::fuzzing::files::config`, which the stable
//! replay (`cargo test`) also runs over fuzz/corpus/config and fuzz/regressions/config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clusterdns_testkit::fuzzing::files::config(data);
});
