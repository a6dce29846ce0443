//! When and by how much the wasm heap grows ahead of a write.

/// The size of a wasm memory page.
const PAGE_BYTES: usize = 64 * 1024;

/// Grows the wasm heap once for a batch (SQLite's pages and the search copy take about
/// twice the vectors' size) instead of letting the allocator grow it 64 KiB at a time,
/// and when it must grow, by half its size more: each `memory.grow` is a call into the
/// engine that costs milliseconds at a few hundred MiB, so a bulk load grows the heap
/// a dozen times instead of once a batch. Pages grown and
/// not yet written cost no physical memory. Freed at once, the blocks stay in the
/// allocator's free pool; if the engine refuses the extra, the write asks for what it
/// needs itself.
pub fn reserve_heap(bytes: usize) {
    let pages = || core::arch::wasm32::memory_size::<0>();
    let before = pages();
    let _ = Vec::<u8>::new().try_reserve_exact(bytes);
    if pages() > before {
        let _ = Vec::<u8>::new().try_reserve_exact(before * PAGE_BYTES / 2);
    }
}
