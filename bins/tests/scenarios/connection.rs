//! Scenarios: waiting for a server that starts after the tool, and TLS (sslmode disable /
//! prefer / require / verify-ca / verify-full) against a server with a certificate made here.
use crate::common::*;
use std::process::{Command, Stdio};

#[test]
fn wait_retries_until_a_server_started_after_the_tool_accepts() {
    let s = Scenario::with_example();
    let server = TempServer::init();
    let url = server.url("127.0.0.1", "");
    let child = Command::new(bin_path("migrate-up"))
        .args(["--wait", "60s", "002"])
        .current_dir(s.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("DATABASE_URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.start(&[]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("waiting for the database (attempt 1"),
        "{stderr}"
    );
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(stderr.contains("connected to 127.0.0.1"), "{stderr}");
    let mut c = connect(&url);
    let v: String = c
        .query_one("SELECT version_num::text FROM alembic_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, "002");
}

#[test]
fn wait_gives_up_with_a_clear_error() {
    let s = Scenario::with_example();
    let port = free_port();
    let url = format!("postgresql://app:S3cretPw@127.0.0.1:{port}/db");
    let t0 = std::time::Instant::now();
    let r = s
        .run_env(
            "migrate-current",
            &["--wait", "2s"],
            &[("DATABASE_URL", &url)],
        )
        .code(3);
    assert!(
        t0.elapsed() >= std::time::Duration::from_secs(2),
        "it waited"
    );
    assert!(
        r.stderr.contains("gave up after waiting")
            && r.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("S3cretPw"));
    // the hint says what a user's project can do, not this repository's make targets
    assert!(
        r.stderr.contains("Start it (e.g. docker compose up -d db)") && !r.stderr.contains("make "),
        "{}",
        r.stderr
    );
    // an authentication failure is not retried: it fails at once
    let r = s.run_env(
        "migrate-current",
        &["--wait", "30s"],
        &[(
            "DATABASE_URL",
            &with_db(&s.db.url.replacen("@", "x@", 1), &s.db.name),
        )],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
}

fn openssl(args: &[&str], dir: &std::path::Path) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed by scripts/setup.sh");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, and a server certificate for DNS:localhost signed by it; plus an unrelated CA.
fn make_certificates(dir: &std::path::Path) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    for ca in ["ca", "other-ca"] {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=retort test {ca}"),
            ],
            dir,
        );
    }
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
        dir,
    );
}

#[test]
fn tls_modes_against_a_server_with_a_self_signed_certificate() {
    let s = Scenario::with_example();
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let server = TempServer::init_tls();
    server.add_file("server.crt", &certs.path().join("server.crt"));
    server.add_file("server.key", &certs.path().join("server.key"));
    server.start(&[
        "ssl=on",
        "ssl_cert_file=server.crt",
        "ssl_key_file=server.key",
    ]);
    let ca = certs.path().join("ca.crt").display().to_string();
    let other = certs.path().join("other-ca.crt").display().to_string();
    let run = |url: String, env: &[(&str, &str)]| {
        let mut e: Vec<(&str, &str)> = vec![("DATABASE_URL", url.as_str())];
        e.extend_from_slice(env);
        s.run_env("migrate-current", &[], &e)
    };
    // require encrypts without authenticating the server
    run(server.url("127.0.0.1", "?sslmode=require"), &[]).ok();
    // verify-full with the right root certificate and the certificate's host name
    run(
        server.url(
            "localhost",
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
        &[],
    )
    .ok();
    // ... through the PGSSL* variables too
    run(
        server.url("localhost", ""),
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &ca)],
    )
    .ok();
    // verify-full with a host name the certificate does not name fails, clearly
    let r = run(
        server.url(
            "127.0.0.1",
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
        &[],
    )
    .code(3);
    assert!(
        r.stderr.contains("TLS failed") && r.stderr.contains("verify-full"),
        "{}",
        r.stderr
    );
    // verify-ca does not check the host name
    run(
        server.url("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={ca}")),
        &[],
    )
    .ok();
    // a root certificate that did not sign the server's fails
    let r = run(
        server.url(
            "localhost",
            &format!("?sslmode=verify-full&sslrootcert={other}"),
        ),
        &[],
    )
    .code(3);
    assert!(r.stderr.contains("TLS failed"), "{}", r.stderr);
    // prefer and disable connect too; the server sees TLS only when asked for
    run(server.url("127.0.0.1", "?sslmode=prefer"), &[]).ok();
    run(server.url("127.0.0.1", "?sslmode=disable"), &[]).ok();
    let mut c = connect(&server.url("127.0.0.1", "?sslmode=disable"));
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl WHERE ssl AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no TLS session left behind");
    let r = run(
        server.url("127.0.0.1", "?sslmode=verify-full"),
        &[("HOME", "/nonexistent")],
    );
    assert_eq!(
        r.code, 3,
        "verify-full with no root certificate cannot trust a self-signed server: {}",
        r.stderr
    );
}
