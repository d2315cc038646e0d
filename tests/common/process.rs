//! Ports and child processes: a free loopback port, and a guard that kills a child process
//! (our own, by its handle) when the test ends, passed or not.

use std::process::Child;

/// A free loopback port: bind port 0, note what the kernel chose, let it go.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// Kills the child (SIGKILL, by its handle) and reaps it on drop, so no test leaves a process
/// behind, even when it panics. `None` once the test has taken the child to wait for it.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// Kills and reaps the child now, if it is still held.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
