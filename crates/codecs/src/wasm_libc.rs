//! The C library functions libwebp and libaom call, for
//! wasm32-unknown-unknown (the Worker), which has no libc. The wasi targets
//! link wasi-libc instead. Allocations go through Rust's allocator, so they
//! count in the same linear memory the Worker's memory tests measure. The
//! rest (strings, numbers, and stdio that always fails) is C, in
//! `wasm_libc.c`: C's variadic functions cannot be written in stable Rust.
//!
//! The exported symbols exist only on that target (natively they would
//! replace the real libc's); the code behind them is compiled everywhere,
//! so the unit tests below run natively.
#![cfg_attr(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    allow(dead_code)
)]

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::ffi::{c_int, c_void};

/// Each block starts with its size, so `free` can rebuild the layout; 16
/// keeps the payload aligned as C's `max_align_t`.
const HEADER: usize = 16;

type Compare = unsafe extern "C" fn(*const c_void, *const c_void) -> c_int;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

/// `malloc` (`zeroed`: `calloc`); null when the size cannot be allocated.
fn allocate(size: usize, zeroed: bool) -> *mut c_void {
    let Some(layout) = layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout is non-zero-sized (HEADER > 0); the size is
    // written into the header the block starts with, which is aligned for
    // it and inside the block.
    unsafe {
        let block = if zeroed {
            alloc_zeroed(layout)
        } else {
            alloc(layout)
        };
        if block.is_null() {
            return std::ptr::null_mut();
        }
        block.cast::<usize>().write(size);
        block.add(HEADER).cast()
    }
}

/// `calloc`: null when `count * size` overflows.
fn allocate_array(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => allocate(total, true),
        None => std::ptr::null_mut(),
    }
}

/// `realloc`: a new block with the old contents, the old one released;
/// null (the old block kept) when the size cannot be allocated.
///
/// # Safety
/// `ptr` is null or came from [`allocate`] and was not released yet.
unsafe fn reallocate(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return allocate(size, false);
    }
    let grown = allocate(size, false);
    if grown.is_null() {
        return grown;
    }
    // SAFETY: `ptr` is HEADER bytes into a live block whose header holds
    // its size; the copy is of the smaller of the two sizes, and the two
    // blocks are distinct.
    unsafe {
        let old = ptr.cast::<u8>().sub(HEADER).cast::<usize>().read();
        std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), grown.cast::<u8>(), old.min(size));
        release(ptr);
    }
    grown
}

/// `free`.
///
/// # Safety
/// `ptr` is null or came from [`allocate`] and was not released yet.
unsafe fn release(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` is HEADER bytes into a block whose header holds the
    // size it was allocated with, so the layout is the same.
    unsafe {
        let block = ptr.cast::<u8>().sub(HEADER);
        let size = block.cast::<usize>().read();
        if let Some(layout) = layout(size) {
            dealloc(block, layout);
        }
    }
}

/// `qsort`. libwebp sorts Huffman trees and palettes with it, libaom
/// palettes, tiles and candidate lists (a few hundred entries at most). An insertion sort: no allocation, and unlike
/// `slice::sort_by`, no panic if the comparator were inconsistent.
///
/// # Safety
/// `base` holds `count` elements of `size` bytes each, and `compare`
/// reads only the two elements it is given.
unsafe fn sort(base: *mut c_void, count: usize, size: usize, compare: Option<Compare>) {
    let Some(compare) = compare else { return };
    if size == 0 || count < 2 {
        return;
    }
    let base = base.cast::<u8>();
    // SAFETY: every offset is below `count * size`, inside the caller's
    // array, and the two swapped elements are distinct, so never overlap.
    unsafe {
        for i in 1..count {
            let mut j = i;
            while j > 0 {
                let (a, b) = (base.add((j - 1) * size), base.add(j * size));
                if compare(a.cast(), b.cast()) <= 0 {
                    break;
                }
                std::ptr::swap_nonoverlapping(a, b, size);
                j -= 1;
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod exports {
    use super::*;

    /// # Safety
    /// C's `malloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
        allocate(size, false)
    }

    /// # Safety
    /// C's `calloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
        allocate_array(count, size)
    }

    /// # Safety
    /// C's `realloc`: `ptr` is null or came from the functions here.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: C's contract for `realloc`, stated above, is
        // `reallocate`'s.
        unsafe { reallocate(ptr, size) }
    }

    /// # Safety
    /// C's `free`: `ptr` is null or came from `malloc`/`calloc` above.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn free(ptr: *mut c_void) {
        // SAFETY: C's contract for `free`, stated above, is `release`'s.
        unsafe { release(ptr) }
    }

    /// # Safety
    /// C's `qsort`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn qsort(
        base: *mut c_void,
        count: usize,
        size: usize,
        compare: Option<Compare>,
    ) {
        // SAFETY: C's contract for `qsort` (`count` records of `size` bytes
        // at `base`, and a comparator over them) is `sort`'s.
        unsafe { sort(base, count, size, compare) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_sized_and_zeroed_when_asked() {
        for size in [0usize, 1, 15, 16, 17, 4096, 1 << 20] {
            for zeroed in [false, true] {
                let p = allocate(size, zeroed);
                assert!(!p.is_null());
                assert_eq!(p as usize % HEADER, 0, "aligned");
                // SAFETY: `p` holds `size` bytes.
                let bytes = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), size) };
                if zeroed {
                    assert!(bytes.iter().all(|&b| b == 0));
                }
                bytes.fill(0xAB);
                // SAFETY: from `allocate`, released once.
                unsafe { release(p) };
            }
        }
        // SAFETY: null is a no-op.
        unsafe { release(std::ptr::null_mut()) };
    }

    #[test]
    fn realloc_keeps_the_contents_it_can() {
        // SAFETY: each block is from `allocate`/`reallocate` and used
        // within its size; each is released once.
        unsafe {
            let p = reallocate(std::ptr::null_mut(), 8).cast::<u8>();
            assert!(!p.is_null());
            for i in 0..8 {
                p.add(i).write(i as u8);
            }
            let grown = reallocate(p.cast(), 4096).cast::<u8>();
            assert_eq!(
                std::slice::from_raw_parts(grown, 8),
                [0, 1, 2, 3, 4, 5, 6, 7]
            );
            let shrunk = reallocate(grown.cast(), 3).cast::<u8>();
            assert_eq!(std::slice::from_raw_parts(shrunk, 3), [0, 1, 2]);
            let refused = reallocate(shrunk.cast(), usize::MAX);
            assert!(refused.is_null());
            assert_eq!(std::slice::from_raw_parts(shrunk, 3), [0, 1, 2], "kept");
            release(shrunk.cast());
        }
    }

    #[test]
    fn impossible_sizes_are_null_not_a_crash() {
        assert!(allocate(usize::MAX, false).is_null());
        assert!(allocate(usize::MAX - 8, true).is_null());
        assert!(allocate_array(usize::MAX / 2, 3).is_null());
        let p = allocate_array(3, 5);
        assert!(!p.is_null());
        // SAFETY: from `allocate`, released once.
        unsafe { release(p) };
    }

    unsafe extern "C" fn by_first_u16(a: *const c_void, b: *const c_void) -> c_int {
        // SAFETY: the elements are at least 2 bytes (the tests' records).
        let (a, b) = unsafe {
            (
                a.cast::<u8>().cast::<[u8; 2]>().read(),
                b.cast::<u8>().cast::<[u8; 2]>().read(),
            )
        };
        u16::from_le_bytes(a).cmp(&u16::from_le_bytes(b)) as c_int
    }

    unsafe extern "C" fn inconsistent(_: *const c_void, _: *const c_void) -> c_int {
        1
    }

    #[test]
    fn sorts_records_of_any_size_like_the_standard_sort() {
        // Records of 5 bytes: a 2-byte key and a payload that must travel
        // with it.
        let mut seed = 7u32;
        let mut records: Vec<[u8; 5]> = (0..300)
            .map(|i| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let key = ((seed >> 16) % 97) as u16;
                let [k0, k1] = key.to_le_bytes();
                [k0, k1, i as u8, (i >> 8) as u8, 0xEE]
            })
            .collect();
        let mut expected = records.clone();
        expected.sort_by_key(|r| u16::from_le_bytes([r[0], r[1]]));
        // SAFETY: `records` holds 300 elements of 5 bytes.
        unsafe { sort(records.as_mut_ptr().cast(), 300, 5, Some(by_first_u16)) };
        // Insertion sort is stable, as `sort_by_key` is.
        assert_eq!(records, expected);
    }

    #[test]
    fn odd_arguments_do_not_panic() {
        let mut v = [3u8, 1, 2, 9];
        // SAFETY: `v` holds 4 one-byte elements.
        unsafe {
            sort(v.as_mut_ptr().cast(), 4, 1, Some(inconsistent));
            sort(v.as_mut_ptr().cast(), 4, 1, None);
            sort(v.as_mut_ptr().cast(), 4, 0, Some(inconsistent));
            sort(v.as_mut_ptr().cast(), 1, 1, Some(inconsistent));
        }
        v.sort();
        assert_eq!(v, [1, 2, 3, 9]);
    }
}
