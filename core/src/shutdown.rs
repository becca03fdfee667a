//! Process exit while workers decode. `exit()` runs llama.cpp's (and ggml's) static destructors
//! while our worker threads may still be inside a llama.cpp call, which then touches freed
//! state and can crash the exiting process. An `atexit` handler, registered once the first
//! context exists (after the statics it must outlive were constructed, so it runs before their
//! destructors), stops every worker at its next call and waits for those inside one to leave.
//! A stopped worker parks for good: the process is ending, and dropping its context would be
//! one more llama.cpp call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Set when the process has started to exit.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Worker threads inside llama.cpp calls now.
static BUSY: Mutex<usize> = Mutex::new(0);
static IDLE: Condvar = Condvar::new();
/// How long exit waits for a decode step to finish (a step of a huge batch on a slow machine
/// takes seconds; a longer wait would hold the user's exit for no gain).
const EXIT_WAIT: Duration = Duration::from_secs(10);

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Registers the exit handler, once per process. Call it once a llama context exists.
pub(crate) fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: `atexit` takes a function with no arguments that outlives the process.
        unsafe {
            atexit(stop_workers);
        }
    });
}

/// Runs at `exit()`: no worker starts another llama.cpp call, and those inside one finish it.
extern "C" fn stop_workers() {
    EXITING.store(true, Ordering::SeqCst);
    let mut busy = BUSY.lock();
    let deadline = std::time::Instant::now() + EXIT_WAIT;
    while *busy > 0 {
        if IDLE.wait_until(&mut busy, deadline).timed_out() {
            break;
        }
    }
}

/// A worker inside llama.cpp calls; exit waits for it to be dropped.
pub(crate) struct Busy(());

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = BUSY.lock();
        *busy -= 1;
        if *busy == 0 {
            IDLE.notify_all();
        }
    }
}

/// Marks the calling worker busy until the guard drops. Once the process is exiting it never
/// returns: the thread parks until the process is gone.
pub(crate) fn enter() -> Busy {
    let mut busy = BUSY.lock();
    if EXITING.load(Ordering::SeqCst) {
        drop(busy);
        loop {
            std::thread::park();
        }
    }
    *busy += 1;
    Busy(())
}
