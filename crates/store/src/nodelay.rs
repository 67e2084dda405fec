//! TCP_NODELAY for Postgres connections.
//!
//! sqlx 0.9.0 stopped disabling Nagle's algorithm on its TCP sockets (sqlx issue #4335, fixed
//! upstream after 0.9.0). With Nagle on, every statement of a bulk write waits out the
//! server's delayed ACK (~40 ms): 100k entities took 50 s over TCP against 1.3 s over a Unix
//! socket. sqlx exposes no socket hook, so after each connect we find the process's TCP sockets
//! to the database's port and set TCP_NODELAY on them. Setting it on any other TCP socket is
//! harmless. Remove this module once a sqlx release sets it again.

/// Sets TCP_NODELAY on every TCP socket of this process whose peer port is `port`.
#[cfg(target_os = "linux")]
pub(crate) fn apply(port: u16) {
    use std::os::fd::BorrowedFd;

    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .map(|target| target.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor was listed as open a moment ago and is only borrowed for two
        // socket-option calls. Were it closed and reused meanwhile, the calls act on (or fail
        // on) whatever descriptor has that number: peer_addr fails on non-sockets, and
        // TCP_NODELAY on an unrelated TCP socket only turns off write coalescing.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let to_db = sock
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port);
        if to_db && !sock.tcp_nodelay().unwrap_or(true) {
            let _ = sock.set_tcp_nodelay(true);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn apply(_port: u16) {}
