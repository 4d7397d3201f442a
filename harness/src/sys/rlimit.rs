//! `RLIMIT_NOFILE` raised to its hard limit, once per process: a namespace
//! costs one fd while it lives (its netlink socket; its nsfs fd only when
//! something asks for it), a capture two, and the common soft limit of
//! 1024 would otherwise cap a topology at a few hundred namespaces.

use std::sync::Once;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (idempotent; errors
/// are ignored: the limit stays what it was). Returns the soft limit now.
pub fn raise_nofile() -> u64 {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit with a valid struct; this process only.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
                l.rlim_cur = l.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            }
        }
    });
    nofile().0
}

/// The (soft, hard) `RLIMIT_NOFILE` now.
pub fn nofile() -> (u64, u64) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit into a valid struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    (l.rlim_cur, l.rlim_max)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let soft = super::raise_nofile();
        assert_eq!(soft, super::nofile().1);
    }
}
