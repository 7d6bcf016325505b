//! A mapped file that shrinks while kpcap reads it (truncated by the
//! capture still writing it, or by log rotation) makes the next read past
//! its new end raise SIGBUS, which kills a process silently. Each mapping
//! is registered here; a handler for SIGBUS that finds the faulting address
//! in a registered mapping prints one line naming the file and the offset,
//! and exits 2 like any unreadable input. A fault anywhere else gets the
//! default action.
//!
//! The handler may only do async-signal-safe work: it reads fixed slots of
//! atomics, formats into a stack buffer and calls write(2) and _exit(2).

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

/// Mappings watched at once: one per file a scan reads in parallel.
const SLOTS: usize = 256;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    /// The file's name as UTF-8 (lossy), leaked while registered.
    name: AtomicPtr<u8>,
    name_len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    name: AtomicPtr::new(std::ptr::null_mut()),
    name_len: AtomicUsize::new(0),
};

static WATCHED: [Slot; SLOTS] = [EMPTY; SLOTS];
static INSTALL: Once = Once::new();

/// A mapping being watched; unwatched when dropped.
#[derive(Debug)]
pub struct Watch {
    slot: Option<usize>,
}

/// Watches `len` bytes mapped at `start`, read from the file `name`.
pub fn watch(start: *const u8, len: usize, name: &str) -> Watch {
    install();
    let name: Box<[u8]> = name.as_bytes().into();
    let name_len = name.len();
    let name = Box::into_raw(name) as *mut u8;
    for (index, slot) in WATCHED.iter().enumerate() {
        if slot
            .name
            .compare_exchange(
                std::ptr::null_mut(),
                name,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            slot.name_len.store(name_len, Ordering::Release);
            slot.start.store(start as usize, Ordering::Release);
            slot.len.store(len, Ordering::Release);
            return Watch { slot: Some(index) };
        }
    }
    // Every slot taken: this mapping gets the default action.
    // SAFETY: `name` came from `Box::into_raw` above and was not shared.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(name, name_len)) });
    Watch { slot: None }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some(index) = self.slot else {
            return;
        };
        let slot = &WATCHED[index];
        slot.len.store(0, Ordering::Release);
        slot.start.store(0, Ordering::Release);
        let len = slot.name_len.load(Ordering::Acquire);
        let name = slot.name.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !name.is_null() {
            // SAFETY: stored by `watch` from `Box::into_raw` of `len` bytes.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(name, len)) });
        }
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a plain sigaction with a handler that only does
        // async-signal-safe work (see the module comment).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
    for slot in &WATCHED {
        let (start, len) = (
            slot.start.load(Ordering::Acquire),
            slot.len.load(Ordering::Acquire),
        );
        if len == 0 || address < start || address >= start + len {
            continue;
        }
        let name = slot.name.load(Ordering::Acquire);
        let name_len = slot.name_len.load(Ordering::Acquire);
        let mut line = Line::default();
        line.push(b"kpcap: error: ");
        if !name.is_null() {
            // SAFETY: registered by `watch`, freed only after unregistering.
            line.push(unsafe { std::slice::from_raw_parts(name, name_len) });
        }
        line.push(b": byte ");
        line.number(address - start);
        line.push(b": the file shrank while it was being read (still being written or rotated?); copy it and analyze the copy\n");
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, line.bytes.as_ptr().cast(), line.len);
            libc::_exit(2);
        }
    }
    // Not a watched mapping: the default action, when the faulting access
    // runs again.
    // SAFETY: resetting a signal's disposition is async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// A line built without allocating (a signal handler may not).
struct Line {
    bytes: [u8; 1024],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            bytes: [0; 1024],
            len: 0,
        }
    }
}

impl Line {
    fn push(&mut self, text: &[u8]) {
        let room = self.bytes.len() - self.len;
        let n = text.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
    }

    fn number(&mut self, mut value: usize) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_formatted_without_allocating() {
        let mut line = Line::default();
        line.push(b"byte ");
        line.number(0);
        line.push(b" ");
        line.number(1_234_567_890);
        assert_eq!(&line.bytes[..line.len], b"byte 0 1234567890");
    }

    #[test]
    fn slots_are_given_back() {
        let data = [0u8; 16];
        let watches: Vec<Watch> = (0..SLOTS + 3)
            .map(|_| watch(data.as_ptr(), 16, "f"))
            .collect();
        assert_eq!(watches.iter().filter(|w| w.slot.is_none()).count(), 3);
        drop(watches);
        let again: Vec<Watch> = (0..SLOTS).map(|_| watch(data.as_ptr(), 16, "f")).collect();
        assert!(again.iter().all(|w| w.slot.is_some()));
    }
}
