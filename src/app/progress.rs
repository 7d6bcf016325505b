//! Progress on stderr while a capture is read: bytes, packets, rate and,
//! when the size is known, a bar and an ETA. Drawn only when stderr is a terminal
//! (never in pipes, files or CI) and not under `--quiet`, and only for a
//! read that lasts over half a second.

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpcap::capture::progress;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Whether progress may be drawn at all.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// The progress line of one capture being read; cleared when dropped.
pub struct Meter {
    bar: ProgressBar,
    done: Arc<AtomicBool>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

impl Meter {
    /// Starts following `progress::position()` for the capture `name`,
    /// whose input is `path` (its size is the bar's length, for a file).
    pub fn start(name: &str, path: Option<&Path>, shown: bool) -> Meter {
        progress::restart();
        let total = path
            .filter(|p| p.as_os_str() != "-")
            .and_then(|p| std::fs::metadata(p).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
        let template = match total {
            Some(_) => {
                "{prefix} [{wide_bar}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} ETA {eta}"
            }
            None => "{prefix} {bytes} {msg} {binary_bytes_per_sec}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(short(name));
        let done = Arc::new(AtomicBool::new(false));
        let drawer = shown.then(|| {
            let (bar, done) = (bar.clone(), Arc::clone(&done));
            // Parked between draws: dropping the meter wakes it at once.
            std::thread::spawn(move || {
                std::thread::park_timeout(Duration::from_millis(500));
                if done.load(Ordering::Relaxed) {
                    return;
                }
                bar.set_draw_target(ProgressDrawTarget::stderr());
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(progress::position());
                    bar.set_message(format!("{} pkts", HumanCount(progress::records())));
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            })
        });
        Meter { bar, done, drawer }
    }
}

impl Drop for Meter {
    /// Stops the drawing thread before the line is cleared, so nothing is
    /// drawn after it (warnings follow on stderr).
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(drawer) = self.drawer.take() {
            drawer.thread().unpark();
            let _ = drawer.join();
        }
        self.bar.finish_and_clear();
    }
}

/// A name short enough to leave the line room in 80 columns: its last 16
/// characters (the bar takes what the rest leaves).
fn short(name: &str) -> String {
    let count = name.chars().count();
    if count <= 16 {
        return name.to_string();
    }
    let tail: String = name.chars().skip(count - 15).collect();
    format!("…{tail}")
}
