//! The gateway's admit phase: per-app rate limits and concurrency bulkheads from `spec.quotas`.

use crate::support::{Server, client, fixture};

#[test]
fn rate_limit_and_bulkhead_protect_neighbours() {
    let server = Server::start("");
    server.deploy(&fixture("slow"));
    server.deploy(&fixture("site"));

    // A burst of 3 passes; the next requests get 429 with the headers (sent back to back, some
    // are refused however slowly a busy machine sends them).
    let statuses: Vec<u16> = (0..3).map(|_| server.get("it", "slow", "/").status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200]);
    let limited = (0..50)
        .map(|_| server.get("it", "slow", "/"))
        .find(|response| response.status() == 429)
        .expect("the rate limit refuses requests past the burst");
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit-limit"], "3");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    assert!(limited.text().unwrap().contains("2 requests per second"));
    // The neighbour is not affected, and says how much of its own burst is left.
    let neighbour = server.get("it", "site", "/");
    assert_eq!(neighbour.status(), 200);
    assert_eq!(neighbour.headers()["ratelimit-limit"], "200", "the platform default burst");

    // One slot: while a request holds it, the next is refused at once with 503, not queued.
    // The holder retries past the rate limit until it holds the slot (3 s); meanwhile requests
    // are refused with 503, or with 429 when the rate limit answers first.
    let url = server.app_url("it", "slow", "/?wait=3000");
    let holder = std::thread::spawn(move || {
        loop {
            match client().get(&url).send().unwrap().status().as_u16() {
                429 => std::thread::sleep(std::time::Duration::from_millis(20)),
                status => return status,
            }
        }
    });
    let busy = crate::support::wait_for("a request refused with 503 while the slot is held", || {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let response = server.get("it", "slow", "/");
        match response.status().as_u16() {
            503 => Ok(response),
            status => Err(format!("status {status}")),
        }
    });
    assert_eq!(busy.status(), 503);
    assert!(busy.headers().contains_key("retry-after"));
    assert!(!holder.is_finished(), "refused while the slot is held, not queued behind it");
    assert_eq!(holder.join().unwrap(), 200);
}
