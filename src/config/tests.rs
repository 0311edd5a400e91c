//! Unit tests of the parent module.

use super::*;

#[test]
fn the_example_file_is_exactly_the_defaults() {
    let text = include_str!("../../config.example.toml");
    let cfg = parse(text, "config.example.toml", &[]).unwrap();
    assert_eq!(cfg, Config::default());
    // And it documents every key: uncommenting nothing still parses, and every key the
    // file format knows appears in it.
    for key in [
        "interval",
        "history",
        "backend",
        "established-every",
        "netns",
        "default",
        "growth-window",
        "min-age",
        "warning",
        "critical",
        "enabled",
        "[alerts.close-wait]",
        "[alerts.time-wait]",
        "[alerts.time-wait-per-remote]",
        "[alerts.port-pressure]",
        "[alerts.fin-wait-1]",
        "[alerts.fin-wait-2]",
        "[alerts.last-ack]",
        "[alerts.closing]",
        "[serve]",
        "listen",
        "top-n",
    ] {
        assert!(text.contains(key), "config.example.toml lacks {key}");
    }
}

#[test]
fn file_values_override_defaults() {
    let cfg = parse(
            "[collector]\ninterval = \"500ms\"\n[alerts.close-wait]\nmin-age = \"1s\"\n[filter]\ndefault = \"!state:listen\"\n",
            "t.toml",
            &[],
        )
        .unwrap();
    assert_eq!(cfg.interval, Duration::from_millis(500));
    assert_eq!(cfg.rules.close_wait.min_age, Duration::from_secs(1));
    assert_eq!(cfg.rules.close_wait.warning, 1);
    assert_eq!(cfg.default_filter.to_string(), "!state:listen");
}

#[test]
fn keys_and_theme_override_defaults_and_bad_ones_name_their_line() {
    let cfg = parse(
        "[keys]\nquit = \"z\"\nhelp = [\"h\", \"f1\"]\n[theme]\ncritical = \"#ff8800\"\n",
        "t.toml",
        &[],
    )
    .unwrap();
    let quit = cfg.keys.iter().find(|(n, _)| n == "quit").unwrap();
    assert_eq!(quit.1, vec!["z".parse().unwrap()]);
    let help = cfg.keys.iter().find(|(n, _)| n == "help").unwrap();
    assert_eq!(help.1.len(), 2);
    assert_eq!(cfg.theme.critical, theme::Colour::Rgb(0xff, 0x88, 0x00));
    for (text, needles) in [
        (
            "[keys]\nquit = \"hyper-q\"\n",
            &["line 2", "keys.quit", "not a key"][..],
        ),
        ("[keys]\nexplode = \"x\"\n", &["line 2", "explode", "quit"]),
        (
            "[keys]\nquit = \"s\"\n",
            &["line 2", "keys.quit", "\"s\"", "sort", "quit"],
        ),
        (
            "[theme]\n\naccent = \"plaid\"\n",
            &["line 3", "theme.accent", "not a colour"],
        ),
    ] {
        let e = parse(text, "k.toml", &[]).unwrap_err().to_string();
        for n in needles {
            assert!(e.contains(n), "{text:?}: missing {n:?} in {e}");
        }
    }
}

#[test]
fn established_every_takes_auto_or_a_number_of_polls() {
    let cfg = parse("[collector]\nestablished-every = 3\n", "t.toml", &[]).unwrap();
    assert_eq!(cfg.established_every, EstablishedEvery::Polls(3));
    let cfg = parse("", "t.toml", &["collector.established-every=1".into()]).unwrap();
    assert_eq!(cfg.established_every, EstablishedEvery::Polls(1));
    let cfg = parse("", "t.toml", &["collector.established-every=auto".into()]).unwrap();
    assert_eq!(cfg.established_every, EstablishedEvery::Auto);
    for bad in ["0", "61", "\"often\""] {
        let e = parse(
            &format!("[collector]\nestablished-every = {bad}\n"),
            "t.toml",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("collector.established-every") && e.contains("\"auto\" or a number"),
            "{e}"
        );
    }
}

#[test]
fn the_backend_is_chosen_in_the_file_and_checked() {
    let cfg = parse("[collector]\nbackend = \"netstat2\"\n", "t.toml", &[]).unwrap();
    assert_eq!(cfg.backend, Backend::Netstat2);
    let cfg = parse("", "t.toml", &["collector.backend=netlink".into()]).unwrap();
    assert_eq!(cfg.backend, Backend::Netlink);
    let e = parse("[collector]\nbackend = \"fast\"\n", "my.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2") && e.contains("collector.backend"),
        "{e}"
    );
    assert!(
        e.contains("auto") && e.contains("netlink") && e.contains("netstat2"),
        "{e}"
    );
}

#[test]
fn sets_override_the_file() {
    let cfg = parse(
        "[alerts.close-wait]\nmin-age = \"10s\"\n",
        "t.toml",
        &[
            "alerts.close-wait.min-age=2s".into(),
            "alerts.time-wait.warning=7".into(),
        ],
    )
    .unwrap();
    assert_eq!(cfg.rules.close_wait.min_age, Duration::from_secs(2));
    assert_eq!(cfg.rules.time_wait_total.warning, 7);
    let e = parse("", "t", &["alerts.nope=1".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope") && e.contains("close-wait"), "{e}");
}

#[test]
fn errors_name_file_line_key_and_what_is_allowed() {
    for (text, needles) in [
        (
            "[alerts.close-wait]\nmin_age = \"3s\"\n",
            &["line 2", "min_age", "min-age"][..],
        ),
        (
            "[collector]\n\ninterval = \"fast\"\n",
            &["line 3", "collector.interval", "30s"],
        ),
        (
            "[collector]\ninterval = \"10ms\"\n",
            &["line 2", "100ms to 1d"],
        ),
        (
            "[alerts.port-pressure]\nwarning = 1.5\n",
            &["line 2", "alerts.port-pressure.warning", "0.0 to 1.0"],
        ),
        (
            "[alerts.time-wait]\nwarning = 10\ncritical = 5\n",
            &["line 3", "alerts.time-wait.critical", "at least warning"],
        ),
        (
            "[filter]\ndefault = \"state:nope\"\n",
            &["line 2", "filter.default", "close-wait"],
        ),
        (
            "[serve]\nlisten = \"everywhere\"\n",
            &["line 2", "serve.listen", "127.0.0.1:9797"],
        ),
        (
            "[serve]\ntop-n = 0\n",
            &["line 2", "serve.top-n", "1 to 10000"],
        ),
        ("[collector\n", &["line 1"]),
    ] {
        let e = parse(text, "my.toml", &[]).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(e.contains("my.toml"), "{e}");
        for n in needles {
            assert!(e.contains(n), "{text:?}: missing {n:?} in {e}");
        }
    }
}

#[test]
fn a_bad_value_after_60000_comment_lines_is_reported_at_once() {
    // Before the one-pass key lookup this took minutes (quadratic in the line count);
    // the bound is 50 times what it takes now, in a debug build.
    let comments = "# a comment\n".repeat(60_000);
    for tail in [
        "[alerts.time-wait]\nwarning = 10\ncritical = 5\n",
        "[collector]\ninterval = \"fast\"\n",
    ] {
        let started = std::time::Instant::now();
        let e = parse(&format!("{comments}{tail}"), "big.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 6000"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_zero_threshold_is_refused_not_raised_to_one() {
    for (text, key) in [
        (
            "[alerts.close-wait]\nwarning = 0\n",
            "alerts.close-wait.warning",
        ),
        (
            "[alerts.time-wait]\ncritical = 0\n",
            "alerts.time-wait.critical",
        ),
        (
            "[alerts.last-ack]\nwarning = -1\n",
            "alerts.last-ack.warning",
        ),
    ] {
        let e = parse(text, "t.toml", &[]).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains(key), "{e}");
        assert!(e.contains("enabled = false"), "{e}");
    }
    let e = parse("", "t", &["alerts.time-wait.warning=0".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 or more"), "{e}");
}

use proptest::prelude::*;

/// Text near the config's shape: headers, keys, values and junk.
fn configish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        prop::sample::select(vec![
            "[collector]",
            "[alerts.close-wait]",
            "[alerts.port-pressure]",
            "[serve]",
            "[filter]",
            "[keys]",
            "[theme]",
            "[[x]]",
            "[collector",
            "# c",
        ])
        .prop_map(String::from),
        (
            prop::sample::select(vec![
                "interval", "history", "backend", "warning", "critical", "min-age", "listen",
                "top-n", "default", "quit", "accent", "enabled", "a.b",
            ]),
            prop_oneof![
                any::<i64>().prop_map(|v| v.to_string()),
                any::<f64>().prop_map(|v| v.to_string()),
                any::<String>().prop_map(|v| format!("{v:?}")),
                "\"[a-z0-9:!,. ]{0,12}\"",
                Just("[\"q\", 1]".to_string()),
                Just("{ a = 1 }".to_string()),
            ],
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        any::<String>(),
    ];
    prop::collection::vec(line, 0..8).prop_map(|v| v.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No text panics the loader; every error is one line naming the file.
    #[test]
    fn any_config_loads_or_fails_in_one_line(text in configish(), set in prop::option::of("[a-z.-]{1,20}=[a-z0-9\"]{0,6}")) {
        let sets: Vec<String> = set.into_iter().collect();
        if let Err(e) = parse(&text, "p.toml", &sets) {
            let e = e.to_string();
            prop_assert!(!e.contains('\n'), "{}", e);
            prop_assert!(e.contains("p.toml") || e.starts_with("bad --set"), "{}", e);
        }
    }
}
