//! The `query_chain` target: its body is `clusterdns_testkit::fuzzing::query_chain::run`, which the stable
//! replay (`cargo test`) also runs over fuzz/corpus/query_chain and fuzz/regressions/query_chain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clusterdns_testkit::fuzzing::query_chain::run(data);
});
