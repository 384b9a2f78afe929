//! The launcher's lines to its child: the child says "devices made" and then "ready"
//! (one byte each), or why it failed; after "devices made" it waits for the launcher's
//! "limits applied". The child's ends close by themselves when it execs.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::Context;

const DEVICES: u8 = b'D';
const READY: u8 = b'R';
const APPLIED: u8 = b'A';
const FAILED: u8 = b'E';

/// The launcher's ends.
pub struct ParentEnd {
    from_child: File,
    to_child: File,
}
/// The child's ends.
pub struct ChildEnd {
    to_parent: File,
    from_parent: File,
}

/// Two close-on-exec pipes, one each way.
pub fn pair() -> anyhow::Result<(ParentEnd, ChildEnd)> {
    let (from_child, to_parent) = pipe()?;
    let (from_parent, to_child) = pipe()?;
    Ok((
        ParentEnd {
            from_child,
            to_child,
        },
        ChildEnd {
            to_parent,
            from_parent,
        },
    ))
}

fn pipe() -> anyhow::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("create a sync pipe");
    }
    // SAFETY: pipe2 just returned these descriptors, and nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((read.into(), write.into()))
}

impl ChildEnd {
    /// Says the container's /dev nodes exist, and waits while the launcher writes the
    /// cgroup limits: a device rule set is deny-all while it is rewritten, so the child
    /// touches no device meanwhile (its `mknod`s came before).
    pub fn devices_made(&mut self) -> anyhow::Result<()> {
        self.to_parent
            .write_all(&[DEVICES])
            .context("write to the launcher")?;
        let mut reply = [0u8; 1];
        match self.from_parent.read(&mut reply) {
            Ok(1) if reply[0] == APPLIED => Ok(()),
            Ok(_) => anyhow::bail!("the launcher gave up"),
            Err(err) => Err(err).context("read from the launcher"),
        }
    }

    pub fn ready(&mut self) -> anyhow::Result<()> {
        self.to_parent
            .write_all(&[READY])
            .context("write to the launcher")
    }

    /// Reports `err` (with its causes) to the launcher.
    pub fn fail(&mut self, err: &anyhow::Error) {
        let mut message = vec![FAILED];
        message.extend_from_slice(format!("{err:#}").as_bytes());
        let _ = self.to_parent.write_all(&message);
    }
}

impl ParentEnd {
    /// Waits until the child's device nodes are made; `Err` is the child's error (or a
    /// note that it died without a word).
    pub fn wait_devices_made(&mut self) -> Result<(), String> {
        self.expect(DEVICES)
    }

    /// Lets the child go on once the limits are written.
    pub fn limits_applied(&mut self) -> Result<(), String> {
        self.to_child
            .write_all(&[APPLIED])
            .map_err(|err| format!("write to the container's init: {err}"))
    }

    /// Waits for the child to be ready to start.
    pub fn wait_ready(mut self) -> Result<(), String> {
        self.expect(READY)
    }

    fn expect(&mut self, wanted: u8) -> Result<(), String> {
        let mut first = [0u8; 1];
        match self.from_child.read(&mut first) {
            Ok(1) if first[0] == wanted => Ok(()),
            Ok(1) if first[0] == FAILED => {
                let mut rest = Vec::new();
                let _ = self.from_child.read_to_end(&mut rest);
                Err(String::from_utf8_lossy(&rest).into_owned())
            }
            Ok(1) => Err(format!(
                "the container's init said {:?} out of turn",
                first[0] as char
            )),
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
        let (mut parent, mut child) = pair().unwrap();
        let launcher = std::thread::spawn(move || {
            parent.wait_devices_made()?;
            parent.limits_applied()?;
            parent.wait_ready()
        });
        child.devices_made().unwrap();
        child.ready().unwrap();
        assert_eq!(launcher.join().unwrap(), Ok(()));

        // A launcher that gives up (drops its ends) releases a waiting child.
        let (parent, mut child) = pair().unwrap();
        drop(parent);
        assert!(child.devices_made().is_err());

        let (mut parent, mut child) = pair().unwrap();
        child.fail(&anyhow::anyhow!("no such file").context("mount /proc"));
        drop(child);
        assert_eq!(
            parent.wait_devices_made(),
            Err("mount /proc: no such file".into())
        );

        let (mut parent, mut child) = pair().unwrap();
        child.ready().unwrap();
        assert!(
            parent
                .wait_devices_made()
                .unwrap_err()
                .contains("out of turn")
        );

        let (parent, child) = pair().unwrap();
        drop(child);
        assert!(parent.wait_ready().unwrap_err().contains("exited before"));
    }
}
