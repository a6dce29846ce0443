//! The relay's certificate rotates: new connections get the new one, whose hash is
//! served first, sessions begun under the old one go on, and a client that trusts only
//! the old hash is turned away.

mod common;

use common::*;
use quiver_relay::client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_serves_new_sessions_and_keeps_old_ones() {
    within(60, async {
        let dir = Scratch::new();
        let data = dir.0.join("relay.db");
        let relay = Relay::start_over(&data, &["--cert-rotate-secs", "3"]);
        let t = token("room");
        let mut old = Site::fresh("old", Conn::wt(&relay).await, "room", &t).await;
        let first = client::certificate_hashes(&relay.ws).await.unwrap();
        assert_eq!(first.len(), 1);
        let line = relay.wait_for_line("quiver-relay certificate-sha256").await;
        let hashes = client::certificate_hashes(&relay.ws).await.unwrap();
        assert_eq!(hashes.len(), 2, "the new hash, then the old one still valid");
        assert_eq!(hashes[1], first[0]);
        let hex: String = hashes[0].iter().map(|b| format!("{b:02x}")).collect();
        assert!(line.ends_with(&hex), "{line} is the served hash {hex}");
        // Trusting only the old hash no longer connects; trusting the new one does.
        let stale = client::endpoint(&first).unwrap();
        assert!(client::Conn::webtransport(&stale, &relay.wt).await.is_err());
        let fresh = client::endpoint(&hashes[..1]).unwrap();
        let conn = client::Conn::webtransport(&fresh, &relay.wt).await.unwrap();
        let conn = Conn {
            inner: conn,
            _endpoint: Some(fresh),
        };
        let mut new = Site::fresh("new", conn, "room", &t).await;
        // The session from before the rotation still syncs with the new one.
        upsert(&mut old.db, "x", 1.0);
        let head = old.push().await;
        new.pull_until(head).await;
        assert_eq!(new.state(), old.state());
    })
    .await
}
