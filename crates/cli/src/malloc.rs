//! glibc malloc: freed memory reused from one image to the next, and handed
//! back to the system every five seconds in a long-running server.
//!
//! glibc serves a large block (a decoded image, an encoder's buffer) from
//! its own mapping, returned to the system when freed, but only until the
//! first such free: then it raises that threshold to the freed size (up
//! to 32 MiB), and later images come from its arenas, which keep what is
//! freed in them. RSS then ratchets up with the sizes a run happens to
//! see, whether or not anything is live: the soak test saw steps of 5 MiB
//! on a 13 MiB heap. Holding the threshold fixed instead cost 7 % of the
//! time of a 2000 px thumbnail (median over the corpus, up to 53 % on a
//! PNG): every image's buffers were mapped and faulted in afresh. So the
//! arenas stay, and a thread hands their free pages back every five
//! seconds (`malloc_trim`): the pages a busy server reuses are faulted in
//! again at most once in that time. The soak served no fewer requests
//! with it than without (3,880 to 4,050 in 90 s against 3,360 to 3,540).
//!
//! glibc's own trimming undid that within each thumbnail: until large
//! blocks have raised its thresholds, a `free` that leaves more than
//! twice the mmap threshold free at the heap's top gives it back at
//! once, so the heap shrank and grew again in every 400 px thumbnail of
//! honeywave (eight `brk` calls each), every page faulted in afresh: 20 %
//! of its time. [`reuse_freed_memory`] starts glibc at the ceiling its
//! dynamic thresholds reach anyway once a large image has been freed (32
//! MiB mapped, 64 MiB trimmed), instead of after it.

use std::time::Duration;

/// Blocks at least this large get their own mapping: the ceiling of
/// glibc's dynamic threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free space at a heap's top that `free` leaves in place: twice the
/// mmap threshold, as glibc's dynamic rule sets it. A fixed 4 MiB kept
/// honeywave's pages but made 2000 px thumbnails up to 55 % slower (kay:
/// 15.8 against 24.8 ms), their buffers given back and faulted in again.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 64 << 20;

/// Sets glibc's thresholds at their ceiling from the start (setting
/// either one stops glibc moving them, so both are set). Every command
/// calls it: `bench-run` measures the pipeline as `serve` runs it. A
/// no-op where the allocator is not glibc's.
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt takes two integers, no pointers; glibc allows it
        // at any time (it takes the main arena's lock). Its result (0 for
        // a value it refuses) leaves glibc's defaults, which still work.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

/// How often free pages go back: often enough that a burst's buffers do
/// not outlive it by much, rarely enough that the pages a busy server
/// reuses are not faulted in again and again.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Starts the trimming thread; a no-op where the allocator is not glibc's.
pub fn keep_rss_to_live_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| loop {
                std::thread::sleep(TRIM_EVERY);
                // SAFETY: malloc_trim takes no pointers; glibc documents it
                // as safe to call from any thread at any time (it takes
                // each arena's lock).
                #[allow(unsafe_code)]
                unsafe {
                    libc::malloc_trim(0);
                }
            });
        if let Err(e) = started {
            tracing::warn!("cannot start the malloc trimming thread: {e}");
        }
    }
}

/// What the allocator holds, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    /// Live allocations: what the program holds.
    pub in_use: u64,
    /// Free space the allocator keeps in its arenas: fragmentation, and
    /// what the next trim may hand back.
    pub free: u64,
}

/// The allocator's own count, where it is glibc's. RSS mixes live memory
/// with the free pages between live blocks; this tells them apart, so a
/// leak shows as `in_use` growing while RSS may only show fragmentation.
pub fn heap() -> Option<Heap> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct;
        // it takes each arena's lock while it counts.
        #[allow(unsafe_code)]
        let m = unsafe { libc::mallinfo2() };
        // uordblks: in use in the arenas; hblkhd: blocks in their own
        // mappings (always in use); fordblks: free in the arenas.
        Some(Heap {
            in_use: (m.uordblks + m.hblkhd) as u64,
            free: m.fordblks as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}
