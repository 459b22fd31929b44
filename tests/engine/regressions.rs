//! Every input a fuzzing run found, kept under fuzz/regressions/<target>/,
//! goes through the same sniff + decode as the fuzz target. Each must end
//! in an answer (accepted, or refused with a reason), without a panic (not
//! even one the engine would catch), and
//! without one allocation out of proportion to the input: the allocator
//! below records the largest single request made on the test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use imgpipe::engine::{Engine, Limits};

struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the slot is gone while the thread is being torn down.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No single buffer for these small inputs needs more than this.
const CEILING: usize = 64 << 20;

#[test]
fn fuzz_findings_are_refused_without_a_panic_or_a_huge_allocation() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut seen = 0;
    for target in std::fs::read_dir(&root).expect("fuzz/regressions") {
        let target = target.unwrap().path();
        for input in std::fs::read_dir(&target).unwrap() {
            let input = input.unwrap().path();
            let bytes = std::fs::read(&input).unwrap();
            let what = input.strip_prefix(&root).unwrap().display().to_string();
            LARGEST.with(|l| l.set(0));
            let outcome = std::panic::catch_unwind(|| Engine::new(Limits::default()).decode(&bytes).map(|_| ()));
            let largest = LARGEST.with(Cell::get);
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    assert!(e.is_image_fault(), "{what}: refused as {e:?}, not as an image fault");
                    // The engine catches a decoder's panic; a fuzz finding
                    // must be refused before the decoder gets there.
                    assert!(!e.to_string().contains("the decoder failed on this file"), "{what}: a decoder panicked");
                }
                Err(_) => panic!("{what}: panicked"),
            }
            assert!(largest <= CEILING, "{what}: {} bytes in, one allocation of {largest} bytes", bytes.len());
            seen += 1;
        }
    }
    assert!(seen > 0, "no inputs under {}", root.display());
}
