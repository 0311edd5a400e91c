//! `watch --resolve`: lines are written at once, with the remote's name once it has
//! come (null until then), on a lookup of the test's own.

use std::time::Duration;

use serde_json::Value;

use super::tests::{close_sequence, lines};
use super::*;

#[test]
fn resolve_names_event_lines_once_the_name_has_come_and_never_waits() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lookup: crate::resolve::Lookup = std::sync::Arc::new(|ip| {
            Box::pin(async move { (ip.is_loopback()).then(|| "lo.example.".to_string()) })
        });
        let r = Resolver::with_lookup(lookup, Duration::from_secs(2)).unwrap();
        let ups = close_sequence();
        let mut stream =
            Stream::new(Filter::parse("port:5000").unwrap(), true).with_names(Some(r.clone()));
        // The first line is written at once: the name is still on its way.
        let first = lines(&mut stream, &ups[..2]);
        assert_eq!(first[0]["remote_name"], Value::Null, "{}", first[0]);
        r.changed().await;
        let later = lines(&mut stream, &ups[2..]);
        assert!(!later.is_empty());
        for l in &later {
            assert_eq!(l["remote"], "127.0.0.1:5000");
            assert_eq!(l["remote_name"], "lo.example", "{l}");
        }
        // Not asked: no field; asked without a resolver: null.
        let plain = lines(&mut Stream::new(Filter::default(), true), &ups);
        assert!(plain.iter().all(|l| l.get("remote_name").is_none()));
        let without = lines(
            &mut Stream::new(Filter::default(), true).with_names(None),
            &ups,
        );
        assert!(without.iter().all(|l| l["remote_name"].is_null()));
    });
}
