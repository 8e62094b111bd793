//! The `tcp_framing` target: its body is `clusterdns_testkit::fuzzing::tcp_framing::run`, which the stable
//! replay (`cargo test`) also runs over fuzz/corpus/tcp_framing and fuzz/regressions/tcp_framing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clusterdns_testkit::fuzzing::tcp_framing::run(data);
});
