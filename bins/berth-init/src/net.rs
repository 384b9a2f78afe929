//! eth0 and lo configured with the classic ioctls: no netlink library in a static init.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use berth_vm::protocol::NetConfig;

/// `struct ifreq` with the union as a `sockaddr_in`.
#[repr(C)]
struct IfReqAddr {
    name: [u8; libc::IFNAMSIZ],
    addr: libc::sockaddr_in,
    _pad: [u8; 8],
}

/// `struct ifreq` with the union as an int (flags, mtu).
#[repr(C)]
struct IfReqInt {
    name: [u8; libc::IFNAMSIZ],
    value: libc::c_int,
    _pad: [u8; 20],
}

fn ifname(name: &str) -> [u8; libc::IFNAMSIZ] {
    let mut n = [0u8; libc::IFNAMSIZ];
    let len = name.len().min(libc::IFNAMSIZ - 1);
    n[..len].copy_from_slice(&name.as_bytes()[..len]);
    n
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    }
}

fn generic(ip: Ipv4Addr) -> libc::sockaddr {
    let sin = sockaddr(ip);
    // SAFETY: sockaddr_in and sockaddr are both 16 bytes of plain data; this is how the
    // C API is meant to be used.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

struct Sock(OwnedFd);

impl Sock {
    fn new() -> io::Result<Self> {
        // SAFETY: socket takes integers and returns a new fd.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socket returned a new fd that nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ioctl<T>(&self, req: libc::c_ulong, arg: &mut T) -> io::Result<()> {
        // SAFETY: every caller passes the struct type the request expects (an ifreq layout
        // or an rtentry), which lives for the call.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), req, arg as *mut T) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn up(&self, dev: &str) -> io::Result<()> {
        let mut req = IfReqInt {
            name: ifname(dev),
            value: 0,
            _pad: [0; 20],
        };
        self.ioctl(libc::SIOCGIFFLAGS, &mut req)?;
        req.value |= libc::IFF_UP as libc::c_int;
        self.ioctl(libc::SIOCSIFFLAGS, &mut req)
    }
}

pub fn loopback_up() -> io::Result<()> {
    Sock::new()?.up("lo")
}

/// Waits (up to ~3 s) for `dev` to appear: its driver probes asynchronously.
fn wait_for(sock: &Sock, dev: &str) -> io::Result<()> {
    let mut last = None;
    for _ in 0..300 {
        let mut req = IfReqInt {
            name: ifname(dev),
            value: 0,
            _pad: [0; 20],
        };
        match sock.ioctl(libc::SIOCGIFFLAGS, &mut req) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(last.unwrap_or_else(|| io::Error::other("no such device")))
}

pub fn prefix_to_mask(prefix: u8) -> Ipv4Addr {
    let bits = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    Ipv4Addr::from(bits)
}

/// Address, netmask, MTU, link up, default route.
pub fn configure(dev: &str, cfg: &NetConfig) -> io::Result<()> {
    let sock = Sock::new()?;
    wait_for(&sock, dev)?;
    let mut req = IfReqAddr {
        name: ifname(dev),
        addr: sockaddr(cfg.address),
        _pad: [0; 8],
    };
    sock.ioctl(libc::SIOCSIFADDR, &mut req)?;
    let mut req = IfReqAddr {
        name: ifname(dev),
        addr: sockaddr(prefix_to_mask(cfg.prefix_len)),
        _pad: [0; 8],
    };
    sock.ioctl(libc::SIOCSIFNETMASK, &mut req)?;
    if let Some(mtu) = cfg.mtu {
        let mut req = IfReqInt {
            name: ifname(dev),
            value: mtu as libc::c_int,
            _pad: [0; 20],
        };
        sock.ioctl(libc::SIOCSIFMTU, &mut req)?;
    }
    sock.up(dev)?;
    if let Some(gw) = cfg.gateway {
        // SAFETY: rtentry is plain data (the pointer field may be null).
        let mut rt = unsafe { std::mem::zeroed::<libc::rtentry>() };
        rt.rt_dst = generic(Ipv4Addr::UNSPECIFIED);
        rt.rt_genmask = generic(Ipv4Addr::UNSPECIFIED);
        rt.rt_gateway = generic(gw);
        rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
        sock.ioctl(libc::SIOCADDRT, &mut rt)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_layouts() {
        assert_eq!(prefix_to_mask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(prefix_to_mask(16), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(prefix_to_mask(23), Ipv4Addr::new(255, 255, 254, 0));
        assert_eq!(prefix_to_mask(32), Ipv4Addr::new(255, 255, 255, 255));
        // Both views of struct ifreq are 40 bytes on 64-bit Linux.
        assert_eq!(std::mem::size_of::<IfReqAddr>(), 40);
        assert_eq!(std::mem::size_of::<IfReqInt>(), 40);
        assert_eq!(&ifname("eth0")[..5], b"eth0\0");
    }
}
