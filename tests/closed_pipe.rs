//! A printing command whose reader goes away (`serin crds | head -1`) ends quietly: no panic
//! message, and the status a shell expects from a closed pipe (SIGPIPE), as any Unix filter.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn crds_into_a_closed_pipe_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_serin"))
        .arg("crds")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before serin writes, as `head -1` does after its line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
}
