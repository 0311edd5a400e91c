//! The config loader on arbitrary text: it never panics, and every error is one line that
//! names the file. Seed it with the fixtures: `cargo +nightly fuzz run config
//! fuzz/corpus/config tests/invalid/configs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = lingertop::config::parse(text, "fuzz.toml", &[]) {
        let e = e.to_string();
        assert!(!e.contains('\n') && e.contains("fuzz.toml"), "{e}");
    }
});
