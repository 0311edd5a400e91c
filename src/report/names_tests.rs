//! `--resolve` in every snapshot format: `remote_name` present (the name, or null) only
//! when names were asked for, the compact JSON still serde's bytes, the table's
//! `name:port`, and a hostile PTR name neutralised for each output as any outside text.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::tests::fixture;
use super::*;
use crate::resolve::{Known, Names};

/// The fixture's remotes: 10.0.0.5 named, 10.0.0.9 looked up without a name, [::1] named
/// with a terminal escape and a spreadsheet formula in it.
fn names() -> Names {
    let mut n = Names::default();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    n.insert(ip("10.0.0.5"), Known::Name(Arc::from("db.example")));
    n.insert(ip("10.0.0.9"), Known::NoName);
    n.insert(ip("::1"), Known::Name(Arc::from("=cmd\u{1b}[2J.example")));
    n
}

fn written(format: Format, pretty: bool, names: Option<&Names>) -> String {
    fixture(|snapshot, alerts, pressure| {
        let v = SnapshotView {
            snapshot,
            backend: "netlink",
            polls: 2,
            interval: Some(Duration::from_secs(185)),
            total_connections: 7,
            filter: String::new(),
            alerts,
            pressure,
            names,
        };
        let mut out = Vec::new();
        write_snapshot(format, pretty, &v, &mut out).unwrap();
        if format == Format::Json && !pretty {
            let mut by_serde = Vec::new();
            json::write_compact_by_serde(&v, &mut by_serde).unwrap();
            by_serde.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&by_serde),
                "the compact document by hand is serde's"
            );
        }
        String::from_utf8(out).unwrap()
    })
}

fn connection<'a>(doc: &'a serde_json::Value, remote: &str) -> &'a serde_json::Value {
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["remote"] == remote)
        .unwrap_or_else(|| panic!("no connection to {remote}: {doc}"))
}

#[test]
fn json_has_remote_name_only_when_asked_the_name_or_null() {
    let n = names();
    for pretty in [true, false] {
        let doc: serde_json::Value =
            serde_json::from_str(&written(Format::Json, pretty, Some(&n))).unwrap();
        assert_eq!(
            connection(&doc, "10.0.0.5:5432")["remote_name"],
            "db.example"
        );
        assert_eq!(
            connection(&doc, "10.0.0.9:51000")["remote_name"],
            serde_json::Value::Null
        );
        // Exact in JSON (decoded, it is what the DNS said); escaped on the wire.
        assert_eq!(
            connection(&doc, "[::1]:45000")["remote_name"],
            "=cmd\u{1b}[2J.example"
        );
        // The port figures name their destination too.
        let toward_db = doc["port_pressure"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["remote"] == "10.0.0.5:5432")
            .unwrap_or_else(|| panic!("no port figure toward 10.0.0.5: {doc}"));
        assert_eq!(toward_db["remote_name"], "db.example");
        let c = connection(&doc, "0.0.0.0:0");
        assert!(c.get("remote_name").is_some_and(|v| v.is_null()), "{c}");

        let plain: serde_json::Value =
            serde_json::from_str(&written(Format::Json, pretty, None)).unwrap();
        let c = connection(&plain, "10.0.0.5:5432");
        assert!(c.get("remote_name").is_none(), "not asked: absent: {c}");
    }
    assert!(!written(Format::Json, false, Some(&n)).contains('\u{1b}'));
}

#[test]
fn ndjson_connection_lines_carry_remote_name() {
    let n = names();
    let text = written(Format::Ndjson, false, Some(&n));
    let db: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["type"] == "connection" && l["remote"] == "10.0.0.5:5432")
        .collect();
    assert!(!db.is_empty());
    assert!(
        db.iter().all(|l| l["remote_name"] == "db.example"),
        "{db:?}"
    );
    assert!(!written(Format::Ndjson, false, None).contains("remote_name"));
}

#[test]
fn csv_appends_remote_name_neutralised_only_when_asked() {
    let n = names();
    let text = written(Format::Csv, false, Some(&n));
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().ends_with(",send_q,remote_name"),
        "{text}"
    );
    let db = text.lines().find(|l| l.contains("10.0.0.5:5432")).unwrap();
    assert!(db.ends_with(",db.example"), "{db}");
    let lo = text.lines().find(|l| l.contains("[::1]:45000")).unwrap();
    // A spreadsheet never runs it; a terminal never obeys it.
    assert!(lo.ends_with(",'=cmd\\x1b[2J.example"), "{lo}");
    let none = text.lines().find(|l| l.contains("10.0.0.9:51000")).unwrap();
    assert!(none.ends_with(','), "no name: an empty cell: {none}");
    assert!(!written(Format::Csv, false, None).contains("remote_name"));
}

#[test]
fn the_table_shows_name_and_port_and_escapes_a_hostile_name() {
    let n = names();
    let text = written(Format::Table, false, Some(&n));
    assert!(text.contains("db.example:5432"), "{text}");
    assert!(
        text.contains("10.0.0.9:51000"),
        "no name: the address: {text}"
    );
    assert!(text.contains("=cmd\\x1b[2J.example:45000"), "{text}");
    assert!(!text.contains('\u{1b}'));
    assert!(!written(Format::Table, false, None).contains("db.example"));
}

#[test]
fn an_alerts_remote_is_named_too() {
    let n = names();
    let text = fixture(|snapshot, alerts, pressure| {
        // A TIME_WAIT-toward-one-remote alert, as the rule would raise it for 10.0.0.5.
        let mut toward = alerts[0].clone();
        toward.remote = Some("10.0.0.5:5432".parse().unwrap());
        let alerts = [toward];
        let v = SnapshotView {
            snapshot,
            backend: "netlink",
            polls: 2,
            interval: None,
            total_connections: 7,
            filter: String::new(),
            alerts: &alerts,
            pressure,
            names: Some(&n),
        };
        let mut out = Vec::new();
        write_snapshot(Format::Json, false, &v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    });
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["alerts"][0]["remote_name"], "db.example", "{doc}");
}
