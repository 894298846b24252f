#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| credd_proto::fuzzing::control_frame(data));
