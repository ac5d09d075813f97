//! The PostgreSQL harness itself: a server it starts answers real queries,
//! runs as an unprivileged user, keeps each test's database apart, and is
//! gone (with its data directory) once dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use exactly_protocol_tests::Postgres;

#[test]
fn postgres_starts_answers_and_is_gone_after_drop() {
    let t = Instant::now();
    let pg = Postgres::start().unwrap_or_else(|e| panic!("{e}"));
    println!("PostgreSQL up on port {} in {:?}", pg.port(), t.elapsed());
    let pid = pg.pid().expect("the server runs");
    // Never root: PostgreSQL refuses it, and the harness must not need it.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert!(
        !uid_line.split_whitespace().skip(1).any(|u| u == "0"),
        "the server runs as root: {uid_line}"
    );
    let a = pg.create_database("harness").expect("create database");
    let b = pg.create_database("harness").expect("create database");
    assert_ne!(a, b, "each call makes a database of its own");
    let db = a
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("dbname="))
        .expect("dbname");
    pg.execute(
        db,
        "CREATE TABLE t (v bigint PRIMARY KEY); INSERT INTO t VALUES (1)",
    )
    .expect("create and insert");
    // Errors are the server's, with the statement in its log.
    let dup = pg.execute(db, "INSERT INTO t VALUES (1)");
    assert!(dup.is_err(), "a duplicate key must fail");
    assert!(
        pg.log()
            .contains("duplicate key value violates unique constraint"),
        "the server log records client errors"
    );
    let log = pg.log_path();
    drop(pg);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the server outlived its handle"
    );
    assert!(!log.exists(), "the data directory outlived its handle");
}
