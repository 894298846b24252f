#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| credd_daemon::fuzzing::config(data));
