#![no_main]
// The client's import, then the daemon's checks on every config it writes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for w in credd::fuzzing::aws_config_import(data) {
        credd_daemon::fuzzing::imported_config(w.before.as_deref(), &w.text, &w.profiles, w.access);
    }
});
