//! Two relay processes on one PostgreSQL: sites on either relay converge, with ops
//! fanned out between the relays by LISTEN/NOTIFY. The test starts its own PostgreSQL
//! (Debian's `postgresql`, which scripts/setup.sh installs) on loopback.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL server in a scratch directory, stopped and removed when dropped.
struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

/// Runs a PostgreSQL tool; as root through the `postgres` user, since initdb refuses root.
fn run_pg(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let path = bin.join(tool);
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"))
}

impl Postgres {
    fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).max())
            .expect("PostgreSQL is installed (scripts/setup.sh installs Debian's postgresql)");
        let dir = std::env::temp_dir().join(format!("quiver-relay-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:", dir.to_str().unwrap()])
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        let out = run_pg(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "quiver",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
            ],
        );
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.display());
        let log = dir.join("log");
        let out = run_pg(
            &bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres { dir, bin, port }
    }

    fn url(&self) -> String {
        format!("postgres://quiver@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        run_pg(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_on_two_relays_sharing_postgres_converge() {
    within(120, async {
        let pg = Postgres::start();
        let url = pg.url();
        let one = Relay::start_with(&["--store", &url]);
        let two = Relay::start_with(&["--store", &url]);
        let t = token("room");
        let mut a = Site::fresh("a", Conn::wt(&one).await, "room", &t).await;
        let mut b = Site::fresh("b", Conn::ws(&two).await, "room", &t).await;
        let mut c = Site::fresh("c", Conn::wt(&two).await, "room", &t).await;
        for i in 0..10 {
            upsert(&mut a.db, &format!("r{i}"), 1.0);
            upsert(&mut b.db, &format!("r{}", i + 5), 2.0);
        }
        let head = a.push().await.max(b.push().await);
        // Live fan-out across relays: each site gets the other relay's ops in session.
        for s in [&mut a, &mut b, &mut c] {
            s.pull_until(head).await;
        }
        assert_eq!(a.state(), b.state());
        assert_eq!(c.state(), a.state());
        c.db.delete("c", &["r3", "r7"]).unwrap();
        upsert(&mut a.db, "r7", 3.0);
        upsert(&mut b.db, "r20", 4.0);
        let head = settle(&mut [&mut a, &mut b, &mut c]).await;
        let want = a.state();
        assert_eq!(want.len(), 16);
        assert_eq!(b.state(), want);
        assert_eq!(c.state(), want);
        // A late joiner on either relay reads the same log.
        let late = Site::fresh("d", Conn::ws(&one).await, "room", &t).await;
        assert_eq!(late.upto, head);
        let mut late = late;
        assert_eq!(late.state(), want);
        // A's ops pushed again by c through the other relay, each twice in one batch: the
        // log holds them all, so nothing is logged anew.
        let ops = [a.ops(), a.ops()].concat();
        assert_eq!(c.push_ops(99, ops).await, head, "nothing new was logged");
    })
    .await
}
