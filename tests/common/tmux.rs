//! A tmux server of the test's own, one window of 120x40 running a plain bash, to drive the
//! real binary in a real terminal: keys in, the screen read back.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn start(name: &str) -> Tmux {
        let socket = format!("lingertop-test-{name}-{}", std::process::id());
        let t = Tmux { socket };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "40",
                "bash --norc --noprofile",
            ])
            .status()
            .expect("tmux must be installed for this test")
            .success();
        assert!(ok, "tmux new-session failed");
        t.keys(&["export PS1='shell> ' TERM=xterm-256color", "Enter"]);
        t.wait_for("shell> ", Duration::from_secs(5));
        t
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).args(args);
        c
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    pub fn literal(&self, text: &str) {
        assert!(
            self.cmd(&["send-keys", "-t", "t", "-l", text])
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn alternate_screen_on(&self) -> bool {
        let out = self
            .cmd(&["display-message", "-p", "-t", "t", "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Waits until the screen contains `needle`; fails with the screen after `limit`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {needle:?} on screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_until(&self, what: &str, limit: Duration, f: impl Fn(&Tmux) -> bool) {
        let deadline = Instant::now() + limit;
        while !f(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not reached; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The screen once it shows `filter` applied and the row of `server` in the table.
    pub fn wait_for_filtered(&self, filter: &str, server: SocketAddr) -> String {
        let s = self.wait_for(filter, Duration::from_secs(5));
        if s.contains(&server.to_string()) {
            s
        } else {
            self.wait_for(&server.to_string(), Duration::from_secs(5))
        }
    }

    /// The shell is back and in cooked mode with echo on (not left raw by the dashboard).
    pub fn assert_normal_shell(&self) {
        self.wait_until("left the alternate screen", Duration::from_secs(5), |t| {
            !t.alternate_screen_on()
        });
        self.keys(&["clear", "Enter"]);
        // The marker is split on the command line so only the output can match it.
        self.literal(
            "stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo | tr '\\n' ' '; echo :sa''ne",
        );
        self.keys(&["Enter"]);
        self.wait_for("icanon echo :sane", Duration::from_secs(5));
    }

    /// The pid of the shell in the pane (the dashboard runs as its child).
    pub fn shell_pid(&self) -> String {
        let out = self
            .cmd(&["display-message", "-p", "-t", "t", "#{pane_pid}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// This session's own config and state directory: the filter history goes there, never
    /// to the real home, and never to another test's (tests run in parallel, and each
    /// dashboard writes its history whole on Enter).
    pub fn home(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("{}-home", self.socket))
    }

    pub fn start_dashboard(&self, env: &str) {
        // The host's namespace only, as every test of host sockets (tests/common).
        self.start_dashboard_with(env, "--netns host --interval 500ms");
    }

    /// Starts the dashboard with `args`, its config and state in this session's own home.
    pub fn start_dashboard_with(&self, env: &str, args: &str) {
        let bin = env!("CARGO_BIN_EXE_lingertop");
        let cfg = self.home();
        self.literal(&format!(
            "{env} XDG_CONFIG_HOME={} XDG_STATE_HOME={} {bin} {args}",
            cfg.display(),
            cfg.display()
        ));
        self.keys(&["Enter"]);
    }

    /// Starts the dashboard with a config file holding `toml`, then `; echo :ex$?` so the
    /// test can read the exit status once it is back at the shell.
    pub fn start_dashboard_with_config(&self, name: &str, toml: &str) -> std::path::PathBuf {
        let bin = env!("CARGO_BIN_EXE_lingertop");
        let file =
            std::env::temp_dir().join(format!("lingertop-tmux-{name}-{}.toml", std::process::id()));
        std::fs::write(&file, toml).unwrap();
        self.literal(&format!(
            "{bin} --config {} --interval 500ms; echo :e''x$?",
            file.display()
        ));
        self.keys(&["Enter"]);
        file
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
        let _ = std::fs::remove_dir_all(self.home());
    }
}
