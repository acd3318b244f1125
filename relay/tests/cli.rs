//! The relay's command line, run as a user would run it. (Building this test
//! also makes cargo build the `relay` binary that the pod-level tests use.)

use std::process::Command;

fn relay() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relay"));
    command.env_clear();
    command
}

#[test]
fn help_lists_the_env_vars() {
    let output = relay().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("RESULT_PATH"), "{help}");
    assert!(help.contains("WATCH_DIR"), "{help}");
}

#[test]
fn says_plainly_that_it_delivers_nothing_yet() {
    let output = relay().env("WATCH_DIR", "/tmp").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not implemented"));
}
