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
//! glibc's own trimming undid that within each thumbnail: a `free` that
//! leaves more than the trim threshold free at the heap's top gives it
//! back at once. That threshold starts at 128 KiB (and is twice the mmap
//! threshold once glibc has raised that), so the heap shrank and grew
//! again in every 400 px thumbnail of honeywave (eight `brk` calls each),
//! its pages faulted in afresh: a fifth of its time.
//! [`reuse_freed_memory`] starts the threshold higher, as glibc's own
//! rule would after freeing a block that large, and leaves the rule on.
//! Setting the thresholds instead (`mallopt`) turns the rule off: fixed
//! at 4 MiB mapped and trimmed, honeywave kept its pages but 2000 px
//! thumbnails were up to 55 % slower (kay: 24.8 against 15.8 ms).
//!
//! Each arena keeps up to the trim threshold free at its top, and
//! `malloc_trim` trims only the main arena's top. glibc makes up to eight
//! arenas a core as threads contend, so the higher threshold alone left
//! the soak's memory at rest at 30 MiB against 13. One arena a core (a
//! transform a core by default) brings it back to 12 MiB.

use std::time::Duration;

/// Where glibc's mmap threshold starts (the trim threshold is twice
/// it). Measured: a 400 px thumbnail of honeywave needed more than 2 MiB
/// of trim threshold, a 2000 px one of bythewater more than 4 (started
/// at 2 MiB, it took 35.8 ms against 29.3, six `brk` calls a thumbnail);
/// at 4 MiB no corpus image at 400 or 2000 px was slower than before.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const START_THRESHOLD: usize = 4 << 20;

/// Raises glibc's dynamic thresholds to [`START_THRESHOLD`] the way its
/// own rule does (mallopt(3): freeing a mapped block sets the mmap
/// threshold to its size and the trim threshold to twice that), by
/// freeing such a block; larger images raise them further, as before.
/// Caps the arenas at one a core. Called first in `main`, before any
/// thread: `bench-run` measures the pipeline as `serve` runs it. A
/// no-op where the allocator is not glibc's.
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Above the 128 KiB the threshold starts at, so mapped; kept
        // opaque so the compiler does not elide the allocation.
        let block: Vec<u8> = Vec::with_capacity(START_THRESHOLD);
        drop(std::hint::black_box(block));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt takes two integers, no pointers. M_ARENA_MAX
        // leaves the dynamic thresholds on; a refused value (result 0)
        // leaves glibc's default, which still works.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
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
