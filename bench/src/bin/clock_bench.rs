//! `clock-bench`: what reading the clocks costs, the CPU limit's (`engine_js::thread_cpu_time`,
//! `CLOCK_THREAD_CPUTIME_ID`) beside the wall clock it replaced (`Instant::now`), measured in
//! the same run. A function call reads the CPU clock twice per stretch of JavaScript (before and
//! after) and once more each time QuickJS calls the interrupt handler.

use std::hint::black_box;
use std::time::{Duration, Instant};

const READS: u32 = 5_000_000;

fn per_read(mut read: impl FnMut()) -> Duration {
    for _ in 0..READS / 10 {
        read();
    }
    let started = Instant::now();
    for _ in 0..READS {
        read();
    }
    started.elapsed() / READS
}

fn main() {
    let wall = per_read(|| {
        black_box(Instant::now());
    });
    let cpu = per_read(|| {
        black_box(engine_js::thread_cpu_time());
    });
    println!("| clock read | ns per read | per function call (2 reads) | ratio to Instant::now |");
    println!("|---|---|---|---|");
    for (name, cost) in [("Instant::now (wall, the baseline)", wall), ("thread CPU time (the CPU limit)", cpu)] {
        let ns = cost.as_secs_f64() * 1e9;
        println!("| {name} | {ns:.1} | {:.1} ns | {:.2} |", 2.0 * ns, ns / (wall.as_secs_f64() * 1e9));
    }
}
