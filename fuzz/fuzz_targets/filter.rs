//! The filter language on arbitrary text: parsing never panics, errors are one line at a
//! column inside (or just past) the text, what parses prints back to the same filter and
//! matches a connection without panicking; the sanitisers' output carries no control.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lingertop::model::{Connection, Filter, TcpState};
use lingertop::sanitize;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Filter::parse(text) {
        Ok(f) => {
            let printed = f.to_string();
            assert_eq!(Filter::parse(&printed).as_ref(), Ok(&f), "{printed:?}");
            let c = Connection::new(
                "127.0.0.1:5000".parse().unwrap(),
                "[::1]:443".parse().unwrap(),
                TcpState::CloseWait,
            );
            let _ = f.matches(&c);
        }
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e}");
        }
    }
    for out in [
        sanitize::terminal(text),
        sanitize::csv_cell(text),
        sanitize::prometheus_label(text),
        sanitize::message(text),
    ] {
        assert!(!out.chars().any(sanitize::is_unsafe), "{out:?}");
    }
    assert_eq!(
        sanitize::unescape(&sanitize::terminal(text)).as_deref(),
        Some(text)
    );
});
