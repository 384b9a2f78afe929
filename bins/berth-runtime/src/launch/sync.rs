//! The launcher's line to its child: one pipe, on which the child says "ready" (one
//! byte) or why it failed, then closes it by exec'ing.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::Context;

const READY: u8 = b'R';
const FAILED: u8 = b'E';

/// The launcher's end.
pub struct ParentEnd(File);
/// The child's end.
pub struct ChildEnd(File);

/// A close-on-exec pipe: the child's end closes by itself when the payload runs.
pub fn pair() -> anyhow::Result<(ParentEnd, ChildEnd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("create the sync pipe");
    }
    // SAFETY: pipe2 just returned these descriptors, and nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((ParentEnd(read.into()), ChildEnd(write.into())))
}

impl ChildEnd {
    pub fn ready(&mut self) -> anyhow::Result<()> {
        self.0.write_all(&[READY]).context("write to the launcher")
    }

    /// Reports `err` (with its causes) to the launcher.
    pub fn fail(&mut self, err: &anyhow::Error) {
        let mut message = vec![FAILED];
        message.extend_from_slice(format!("{err:#}").as_bytes());
        let _ = self.0.write_all(&message);
    }
}

impl ParentEnd {
    /// Waits for the child: `Ok` once it is ready, else its error (or a note that it
    /// died without a word).
    pub fn wait(mut self) -> Result<(), String> {
        let mut first = [0u8; 1];
        match self.0.read(&mut first) {
            Ok(1) if first[0] == READY => Ok(()),
            Ok(1) if first[0] == FAILED => {
                let mut rest = Vec::new();
                let _ = self.0.read_to_end(&mut rest);
                Err(String::from_utf8_lossy(&rest).into_owned())
            }
            Ok(_) => Err("the container's init exited before it was ready".into()),
            Err(err) => Err(format!("read from the container's init: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_failure_and_silence_are_told_apart() {
        let (parent, mut child) = pair().unwrap();
        child.ready().unwrap();
        assert_eq!(parent.wait(), Ok(()));

        let (parent, mut child) = pair().unwrap();
        child.fail(&anyhow::anyhow!("no such file").context("mount /proc"));
        drop(child);
        assert_eq!(parent.wait(), Err("mount /proc: no such file".into()));

        let (parent, child) = pair().unwrap();
        drop(child);
        assert!(parent.wait().unwrap_err().contains("exited before"));
    }
}
