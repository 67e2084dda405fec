//! The process's memory allocator, for the binaries that run surveyor (`surveyor` and
//! `surveyor-bench`): mimalloc, and how it gives freed memory back to the system ([`tune`]).

/// mimalloc: the reconciler allocates many short-lived strings on several threads, where
/// glibc's allocator spent a third of the initial load's CPU time (see docs/benchmarks.md).
/// Declared here, it is the allocator of every binary that links this crate (both call
/// [`tune`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc gives freed memory back to the system a second after it was freed (its arenas ten
/// seconds after): a sync that follows a large load then stacks on pages the load no longer
/// uses, and a 100k-entity reconcile peaked at 200–230 MB. Given back at once, it peaked at
/// 168–180 MB, but every page freed was faulted in again soon after: a tenth of an e2e run's
/// CPU went to page faults and zeroing pages. A tenth of a second keeps the pages a busy
/// reconcile reuses and gives back what a finished one freed (docs/benchmarks.md).
/// `MIMALLOC_PURGE_DELAY` in the environment, mimalloc's own setting, overrides it.
pub const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the bindings do not name it); a test
/// holds it to that option's default of 1,000 ms.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets how the allocator gives memory back; call it first thing in `main`. Besides the purge
/// delay: no transparent huge pages for this process. mimalloc asks for them on its arenas,
/// and each 2 MiB range it had given back and touched again was zeroed whole (5% of an e2e
/// run's CPU); without them a 100k reconcile peaks 20–30 MB lower (docs/benchmarks.md).
/// `MIMALLOC_ALLOW_THP` in the environment leaves that to mimalloc.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, which it reads on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory of ours; what
        // it returns is only whether the kernel knows the setting.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_is_tuned_unless_mimallocs_own_settings_say_otherwise() {
        // One test, since it reads the option, sets it, and reads it again.
        // SAFETY: reads one of mimalloc's options.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let set = std::env::var("MIMALLOC_PURGE_DELAY").ok();
        let from_env = set.and_then(|v| v.parse().ok());
        assert_eq!(
            get(),
            from_env.unwrap_or(1000),
            "mimalloc 3's purge delay defaults to 1,000 ms"
        );
        tune();
        assert_eq!(
            get(),
            from_env.unwrap_or(PURGE_DELAY_MS),
            "the environment's setting is kept; without one, ours is set"
        );
        #[cfg(target_os = "linux")]
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            // SAFETY: PR_GET_THP_DISABLE reads a flag of the process.
            let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
            assert_eq!(disabled, 1, "no transparent huge pages for the process");
        }
    }
}
