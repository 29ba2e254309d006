//! The gateway's admit phase: per-app rate limits and concurrency bulkheads from `spec.quotas`.

use crate::support::{Server, client, fixture};

#[test]
fn rate_limit_and_bulkhead_protect_neighbours() {
    let server = Server::start("");
    server.deploy(&fixture("slow"));
    server.deploy(&fixture("site"));

    // A burst of 3 passes; the next requests within the second get 429 with the headers.
    let statuses: Vec<u16> = (0..5).map(|_| server.get("it", "slow", "/").status().as_u16()).collect();
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].iter().all(|&status| status == 429), "{statuses:?}");
    let limited = server.get("it", "slow", "/");
    assert_eq!(limited.status(), 429);
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
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let url = server.app_url("it", "slow", "/?wait=1500");
    let holder = std::thread::spawn(move || client().get(&url).send().unwrap().status().as_u16());
    std::thread::sleep(std::time::Duration::from_millis(400));
    let busy = server.get("it", "slow", "/");
    assert_eq!(busy.status(), 503);
    assert!(busy.headers().contains_key("retry-after"));
    assert!(!holder.is_finished(), "refused while the slot is held, not queued behind it");
    assert_eq!(holder.join().unwrap(), 200);
}
