//! Socket activation: the service manager (systemd's `credd.socket`, launchd's `Sockets`) binds
//! the HTTP port and keeps it open while the daemon restarts or is upgraded, so no other user can
//! take the port in between and receive the owner's SDK requests.

use std::os::fd::{FromRawFd, RawFd};

/// The listening socket a service manager passed us, with its descriptor number (for errors).
pub struct Inherited {
    pub socket: std::net::TcpListener,
    pub fd: RawFd,
}

/// Takes the HTTP listener the service manager passed, if it passed one.
///
/// # Safety
/// Call it before any other thread runs: it removes `LISTEN_PID`, `LISTEN_FDS` and
/// `LISTEN_FDNAMES` from the environment (commands the daemon runs must not believe the sockets
/// are theirs), and it takes ownership of the descriptors those variables name.
pub unsafe fn take() -> Result<Option<Inherited>, String> {
    // SAFETY: the caller guarantees no other thread reads or writes the environment.
    let fds: Vec<RawFd> = unsafe { platform::passed() }?;
    let mut found = None;
    for fd in fds {
        // SAFETY: the service manager passed this descriptor to us alone; we own it from here
        // (one not used is closed when dropped).
        let socket = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        let sock = socket2::SockRef::from(&socket);
        let usable = sock.r#type().is_ok_and(|t| t == socket2::Type::STREAM)
            && sock.is_listener().unwrap_or(false)
            && socket.local_addr().is_ok();
        if usable && found.is_none() {
            found = Some(Inherited { socket, fd });
        } else {
            tracing::warn!(
                fd,
                "ignoring a socket the service manager passed that is not a listening TCP socket"
            );
        }
    }
    Ok(found)
}

#[cfg(not(target_os = "macos"))]
mod platform {
    use std::os::fd::RawFd;

    /// systemd's protocol (`sd_listen_fds`): `LISTEN_PID` is ours, `LISTEN_FDS` descriptors from 3.
    ///
    /// # Safety
    /// As [`super::take`].
    pub(super) unsafe fn passed() -> Result<Vec<RawFd>, String> {
        // SAFETY: forwarded from the caller.
        let fds = unsafe { sd_notify::listen_fds_and_unset_env() }
            .map_err(|e| format!("the sockets passed by systemd (LISTEN_FDS): {e}"))?;
        Ok(fds.collect())
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use std::os::fd::RawFd;

    unsafe extern "C" {
        /// libSystem: the descriptors of the plist's `Sockets` entry `name`, in a malloc'ed
        /// array the caller frees.
        fn launch_activate_socket(
            name: *const libc::c_char,
            fds: *mut *mut libc::c_int,
            cnt: *mut libc::size_t,
        ) -> libc::c_int;
    }

    /// launchd's protocol: the agent's `Sockets` entry named `Listeners`.
    ///
    /// # Safety
    /// As [`super::take`].
    pub(super) unsafe fn passed() -> Result<Vec<RawFd>, String> {
        let mut fds: *mut libc::c_int = std::ptr::null_mut();
        let mut count: libc::size_t = 0;
        // SAFETY: a NUL-terminated name and two out-pointers of the right types.
        let rc = unsafe { launch_activate_socket(c"Listeners".as_ptr(), &mut fds, &mut count) };
        match rc {
            0 => {}
            // Not started by launchd, or without that socket: bind it ourselves.
            libc::ESRCH | libc::ENOENT => return Ok(Vec::new()),
            errno => {
                return Err(format!(
                    "the sockets passed by launchd: {}",
                    std::io::Error::from_raw_os_error(errno)
                ));
            }
        }
        // SAFETY: on success `fds` holds `count` descriptors, allocated by launchd for us.
        let out = unsafe { std::slice::from_raw_parts(fds, count) }.to_vec();
        // SAFETY: the array (not the descriptors) is ours to free.
        unsafe { libc::free(fds.cast()) };
        Ok(out)
    }
}
