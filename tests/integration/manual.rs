//! The shell completions load in real bash, zsh and fish and complete real words; the man
//! pages render with the real `man`. Needs bash, zsh, fish and man-db (`.ci/run` installs
//! them).

use std::path::Path;
use std::process::Command;

use crate::common::lingertop;

/// Runs `shell -c script` with the real binary's completion script in a file, and returns
/// stdout; fails on a non-zero status.
fn in_shell(shell: &str, script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("lingertop.{shell}"));
    let out = lingertop()
        .args(["completions", shell])
        .output()
        .expect("run lingertop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&file, &out.stdout).unwrap();
    let run = Command::new(shell)
        .arg("-c")
        .arg(script.replace("FILE", file.to_str().unwrap()))
        // zsh and fish read their start-up files from here: an empty one, not the user's.
        .env("HOME", dir.path())
        .env("ZDOTDIR", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{shell} must be installed for this test: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{shell}: {stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

#[test]
fn bash_loads_the_completions_and_completes_commands_and_values() {
    // The issue's own check: the script registers a completion for lingertop.
    let bin = env!("CARGO_BIN_EXE_lingertop");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{bin}' completions bash); complete -p lingertop"
        ))
        .output()
        .expect("bash must be installed for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("_lingertop") && text.ends_with("lingertop\n"),
        "{text}"
    );

    // And the function it registered completes what the command line really takes.
    let complete = |words: &str| {
        in_shell(
            "bash",
            &format!(
                "source FILE; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _lingertop lingertop \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ),
        )
    };
    let commands = complete("lingertop s");
    assert!(
        commands.lines().any(|l| l == "snapshot") && commands.lines().any(|l| l == "serve"),
        "{commands}"
    );
    let formats = complete("lingertop snapshot --format ''");
    for f in ["table", "json", "csv"] {
        assert!(formats.lines().any(|l| l == f), "{formats}");
    }
}

#[test]
fn zsh_loads_the_completions() {
    // compinit, then the script as a user would source it: it registers _lingertop.
    let out = in_shell(
        "zsh",
        "autoload -Uz compinit && compinit -u -D; source FILE; \
         print -r -- $_comps[lingertop]; whence -w _lingertop",
    );
    assert_eq!(out, "_lingertop\n_lingertop: function\n");
}

#[test]
fn fish_loads_the_completions_and_completes() {
    let out = in_shell(
        "fish",
        "source FILE; complete -C 'lingertop sn'; complete -C 'lingertop snapshot --fail-on '",
    );
    let words: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    for w in ["snapshot", "warning", "critical"] {
        assert!(words.contains(&w), "{out}");
    }
}

/// Renders a page file with the real `man`, at a fixed width, as plain text.
fn man_l(page: &Path) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man (man-db) must be installed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l {}: {stderr}", page.display());
    // groff warnings (bad macros, unbreakable lines) mean the roff is wrong somewhere.
    assert!(!stderr.contains("warning"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_renders_the_page_with_its_sections() {
    let dir = tempfile::tempdir().unwrap();
    let man1 = dir.path().join("man1");
    let out = lingertop()
        .args(["man", "--dir"])
        .arg(&man1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.lines().count() >= 7,
        "one page per command: {listed}"
    );

    let page = man_l(&man1.join("lingertop.1"));
    for heading in [
        "\nNAME\n",
        "\nSYNOPSIS\n",
        "\nFILTER LANGUAGE\n",
        "\nCONFIGURATION\n",
        "\nEXIT STATUS\n",
    ] {
        assert!(page.contains(heading), "no {heading:?} in:\n{page}");
    }
    assert!(page.contains("collector.interval = \"2s\""), "{page}");
    assert!(page.contains("state:close-wait,time-wait"), "{page}");

    // A command's page has its flags.
    let snapshot = man_l(&man1.join("lingertop-snapshot.1"));
    assert!(snapshot.contains("--fail-on"), "{snapshot}");

    // `man lingertop` finds it the way an installed page is found, through MANPATH.
    let out = Command::new("man")
        .arg("lingertop")
        .env("MANPATH", dir.path())
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("EXIT STATUS"), "{text}");

    // `lingertop man` alone prints the same main page.
    let printed = lingertop().arg("man").output().unwrap();
    let file = std::fs::read(man1.join("lingertop.1")).unwrap();
    assert_eq!(printed.stdout, file);
}

#[test]
fn a_broken_config_does_not_break_completions_or_the_man_page() {
    let out = lingertop()
        .args([
            "--config",
            "/nonexistent/lingertop.toml",
            "completions",
            "bash",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
}
