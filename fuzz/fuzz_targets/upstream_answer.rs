//! The `upstream_answer` target: its body is `clusterdns_testkit::fuzzing::upstream_answer::run`, which the stable
//! replay (`cargo test`) also runs over fuzz/corpus/upstream_answer and fuzz/regressions/upstream_answer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clusterdns_testkit::fuzzing::upstream_answer::run(data);
});
