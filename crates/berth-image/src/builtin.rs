//! Images berth makes itself, so a first run needs no network. `hello-world` is a real
//! image — one layer holding a static program, and a config with `Cmd` — assembled here
//! byte for byte and reproducibly, so its ID is the same on every machine.

use std::io::Write;

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::digest::Digest;

/// The reference the built-in image answers to.
pub const HELLO_WORLD: &str = "docker.io/library/hello-world:latest";

const MESSAGE: &str = "
Hello from berth!
This message shows that your installation appears to be working correctly.

To generate this message, berth took the following steps:
 1. The berth client contacted the berth daemon.
 2. The daemon provided the \"hello-world\" image, which it builds itself, offline.
 3. The daemon created a new container from that image which runs the
    executable that produces the output you are currently reading.
 4. The daemon streamed that output to the berth client, which sent it
    to your terminal.

To try something more ambitious, you can run a shell in a busybox image:
 $ berth import busybox-rootfs.tar busybox
 $ berth run -it busybox sh
";

/// Fixed timestamp of the built-in image (reproducible IDs).
const CREATED: &str = "2026-01-01T00:00:00Z";
const CREATED_UNIX: u64 = 1_767_225_600;

/// A built-in image: its uncompressed layer tar and its config JSON.
pub struct BuiltinImage {
    pub layer_tar: Vec<u8>,
    pub config: Vec<u8>,
}

/// The `hello-world` image for this machine's architecture, or `None` on an architecture
/// we have no program for.
pub fn hello_world() -> Option<BuiltinImage> {
    let (arch, program) = hello_program(std::env::consts::ARCH, MESSAGE.as_bytes())?;
    let layer_tar = single_file_tar("hello", &program, 0o755);
    let config = ImageConfig {
        architecture: arch.to_string(),
        os: "linux".into(),
        created: Some(CREATED.into()),
        config: Some(ContainerConfig {
            env: Some(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ]),
            cmd: Some(vec!["/hello".into()]),
            working_dir: Some("/".into()),
            ..Default::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![Digest::of(&layer_tar)],
        },
        history: vec![
            History {
                created: Some(CREATED.into()),
                created_by: Some("COPY hello / # built into berth".into()),
                ..Default::default()
            },
            History {
                created: Some(CREATED.into()),
                created_by: Some("CMD [\"/hello\"]".into()),
                empty_layer: true,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let config = serde_json::to_vec(&config).expect("config serialises");
    Some(BuiltinImage { layer_tar, config })
}

/// A static ELF executable that writes `msg` to stdout and exits 0: a 64-byte ELF header,
/// one PT_LOAD program header, then the machine code and the message.
fn hello_program(arch: &str, msg: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    const BASE: u64 = 0x400000;
    const CODE_OFFSET: u64 = 64 + 56;
    let len = u32::try_from(msg.len()).ok()?;
    let (docker_arch, machine, code): (&str, u16, Vec<u8>) = match arch {
        "x86_64" => {
            let mut c = Vec::new();
            c.extend([0xb8, 1, 0, 0, 0]); // mov eax, 1 (write)
            c.extend([0xbf, 1, 0, 0, 0]); // mov edi, 1 (stdout)
            c.extend([0x48, 0x8d, 0x35]); // lea rsi, [rip + msg]
            c.extend(16u32.to_le_bytes()); // msg is 16 bytes after the end of this instruction
            c.push(0xba); // mov edx, len
            c.extend(len.to_le_bytes());
            c.extend([0x0f, 0x05]); // syscall
            c.extend([0xb8, 60, 0, 0, 0]); // mov eax, 60 (exit)
            c.extend([0x31, 0xff]); // xor edi, edi
            c.extend([0x0f, 0x05]); // syscall
            ("amd64", 62, c)
        }
        "aarch64" => {
            if len > 0xffff {
                return None;
            }
            let words: [u32; 8] = [
                0xd280_0020,              // mov x0, #1
                0x1000_00e1,              // adr x1, msg (28 bytes ahead)
                0xd280_0002 | (len << 5), // mov x2, #len
                0xd280_0808,              // mov x8, #64 (write)
                0xd400_0001,              // svc #0
                0xd280_0000,              // mov x0, #0
                0xd280_0ba8,              // mov x8, #93 (exit)
                0xd400_0001,              // svc #0
            ];
            (
                "arm64",
                183,
                words.iter().flat_map(|w| w.to_le_bytes()).collect(),
            )
        }
        _ => return None,
    };
    let file_size = CODE_OFFSET + code.len() as u64 + msg.len() as u64;
    let mut elf = Vec::with_capacity(file_size as usize);
    // ELF header
    elf.extend(b"\x7fELF");
    elf.extend([2, 1, 1, 0]); // 64-bit, little endian, version 1, System V ABI
    elf.extend([0u8; 8]);
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(machine.to_le_bytes());
    elf.extend(1u32.to_le_bytes()); // version
    elf.extend((BASE + CODE_OFFSET).to_le_bytes()); // entry
    elf.extend(64u64.to_le_bytes()); // program headers offset
    elf.extend(0u64.to_le_bytes()); // section headers offset
    elf.extend(0u32.to_le_bytes()); // flags
    elf.extend(64u16.to_le_bytes()); // header size
    elf.extend(56u16.to_le_bytes()); // program header size
    elf.extend(1u16.to_le_bytes()); // program header count
    elf.extend([0u8; 6]); // no section headers
    // Program header: PT_LOAD, readable + executable, the whole file at BASE.
    elf.extend(1u32.to_le_bytes());
    elf.extend(5u32.to_le_bytes());
    elf.extend(0u64.to_le_bytes());
    elf.extend(BASE.to_le_bytes());
    elf.extend(BASE.to_le_bytes());
    elf.extend(file_size.to_le_bytes());
    elf.extend(file_size.to_le_bytes());
    elf.extend(0x1000u64.to_le_bytes());
    elf.extend(&code);
    elf.extend(msg);
    Some((docker_arch, elf))
}

fn single_file_tar(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(CREATED_UNIX);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).expect("in-memory tar");
    let mut out = b.into_inner().expect("in-memory tar");
    out.flush().expect("in-memory tar");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn image_is_reproducible() {
        let a = hello_world().unwrap();
        let b = hello_world().unwrap();
        assert_eq!(Digest::of(&a.config), Digest::of(&b.config));
        assert_eq!(Digest::of(&a.layer_tar), Digest::of(&b.layer_tar));
        let cfg: ImageConfig = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(cfg.rootfs.diff_ids, vec![Digest::of(&a.layer_tar)]);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn program_prints_the_message() {
        let (_, elf) = hello_program("x86_64", b"hi there\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hello");
        std::fs::write(&p, &elf).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&p).output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hi there\n");
    }
}
