//! The C library functions libwebp calls, for wasm32-unknown-unknown (the
//! Worker), which has no libc. The wasi targets link wasi-libc instead.
//! Allocations go through Rust's allocator, so they count in the same
//! linear memory the Worker's memory tests measure.

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::ffi::{c_int, c_void};

/// Each block starts with its size, so `free` can rebuild the layout; 16
/// keeps the payload aligned as C's `max_align_t`.
const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

unsafe fn allocate(size: usize, zeroed: bool) -> *mut c_void {
    let Some(layout) = layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout is non-zero-sized (HEADER > 0); the size is
    // written into the header the block starts with.
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

/// # Safety
/// C's `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    unsafe { allocate(size, false) }
}

/// # Safety
/// C's `calloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => unsafe { allocate(total, true) },
        None => std::ptr::null_mut(),
    }
}

/// # Safety
/// C's `free`: `ptr` is null or came from `malloc`/`calloc` above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
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

/// # Safety
/// C's `qsort`. libwebp sorts Huffman trees and palettes with it (a few
/// hundred entries at most). An insertion sort: no allocation, and unlike
/// `slice::sort_by`, no panic if the comparator were inconsistent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qsort(
    base: *mut c_void,
    count: usize,
    size: usize,
    compare: Option<unsafe extern "C" fn(*const c_void, *const c_void) -> c_int>,
) {
    let Some(compare) = compare else { return };
    if size == 0 || count < 2 {
        return;
    }
    let base = base.cast::<u8>();
    // SAFETY: the caller's array holds `count` elements of `size` bytes;
    // swaps stay inside it and never overlap.
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
