use super::*;
use crate::cli::{Cli, Command};

#[test]
fn listen_takes_addresses_and_host_names_and_names_what_was_typed() {
    let what = "--listen or LATCHKEY_LISTEN";
    let ip = listen_address("127.0.0.1:8080", what, 8080).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ip.to_string(), "127.0.0.1:8080");
    let named = listen_address("localhost:9000", what, 8080).unwrap_or_else(|e| panic!("{e}"));
    assert!(named.ip().is_loopback() && named.port() == 9000, "{named}");
    for bad in ["localhost", "8080", ":8080", "localhost:http"] {
        let e = listen_address(bad, what, 8080).map(|_| ()).unwrap_err();
        assert!(
            e.to_string().contains("--listen or LATCHKEY_LISTEN"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn errors_name_the_setting_as_it_was_given() {
    let e = serve(&["--listen", "127.0.0.1"], None)
        .map(drop)
        .unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("--listen \"127.0.0.1\""), "{e}");
    assert!(!e.contains("LATCHKEY_LISTEN"), "{e}");
    let e = serve(&["--max-body-size", "10"], None)
        .map(drop)
        .unwrap_err();
    assert_eq!(e.to_string(), "--max-body-size must be at least 1024 bytes");
    let e = serve(&[], Some("external_url = \"ftp://x\"\n"))
        .map(drop)
        .unwrap_err();
    let e = e.to_string();
    assert!(
        e.starts_with("`external_url` in ") && e.contains("latchkey.toml"),
        "{e}"
    );
    let e = serve(&["--http-idle-timeout", "0"], None)
        .map(drop)
        .unwrap_err();
    assert!(
        e.to_string().starts_with("--http-idle-timeout must be"),
        "{e}"
    );
}

/// `latchkey [--config FILE] serve ARGS`, with `file` as the file.
fn serve(args: &[&str], file: Option<&str>) -> anyhow::Result<(Settings, ServeSettings)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("latchkey.toml");
    let mut line: Vec<String> = vec!["latchkey".into()];
    if let Some(text) = file {
        std::fs::write(&path, text)?;
        line.extend(["--config".into(), path.display().to_string()]);
    }
    line.push("serve".into());
    line.extend(args.iter().map(|a| (*a).to_owned()));
    let (cli, file_only): (Cli, _) = parse_command_line(line)?;
    let settings = Settings::resolve(&cli.global, &file_only)?;
    let Command::Serve(args) = cli.command else {
        bail!("not serve");
    };
    Ok((settings, ServeSettings::resolve(&args)?))
}

#[test]
fn flags_win_over_the_file() {
    let file = "listen = \"127.0.0.1:9000\"\nadmin_mode = true\nexternal_url = \"https://id.example.com/\"\n";
    let (_, s) = serve(&["--listen", "127.0.0.1:9001"], Some(file)).unwrap();
    assert_eq!(s.listen.port(), 9001);
    assert!(s.admin_mode);
    assert_eq!(s.external_url, "https://id.example.com");
    let (_, s) = serve(&[], Some(file)).unwrap();
    assert_eq!(s.listen.port(), 9000);
    // Global options from the file, and the file-only keys.
    let (g, _) = serve(
        &[],
        Some("database_pool_size = 7\nlog_format = \"json\"\nscopes = [\"api\", \"openid\"]\n"),
    )
    .unwrap();
    assert_eq!(g.pool_size, 7);
    assert_eq!(g.log_format, LogFormat::Json);
    assert_eq!(g.scopes.names().len(), 2);
}

#[test]
fn the_file_is_checked_like_the_flags() {
    for (bad, says) in [
        ("lisen = \"x\"", "`lisen` is not a setting"),
        ("no_migrate = true", "`no_migrate` is not a setting"),
        ("config = \"other.toml\"", "`config` is not a setting"),
        (
            "admin_mode = [1]",
            "must be a string, a number or a boolean",
        ),
        (
            "http_idle_timeout = \"soon\"",
            "gives these options their defaults",
        ),
        ("log_format = \"xml\"", "gives these options their defaults"),
        ("scopes = \"api\"", "invalid configuration file"),
        ("listen = ", "invalid configuration file"),
    ] {
        let e = serve(&[], Some(bad)).unwrap_err();
        assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
    }
    assert!(serve(&[], None).is_ok());
}

#[test]
fn backend_dependent_defaults() {
    let (sqlite, serve_s) = serve(&[], None).unwrap();
    assert_eq!(sqlite.pool_size, 4);
    assert_eq!(serve_s.token_cache_ms(), 10_000);
    let (pg, _) = serve(&[], Some("database_url = \"postgres://h/db\"")).unwrap();
    assert_eq!(pg.pool_size, 20);
    assert_eq!(serve_s.token_cache_ms(), 10_000);
    let (_, set) = serve(&["--token-cache-seconds", "3"], None).unwrap();
    assert_eq!(set.token_cache_ms(), 3_000);
    assert!(serve(&["--token-cache-seconds", "3601"], None).is_err());
}

#[test]
fn http_limits() {
    let (_, s) = serve(&[], None).unwrap();
    assert_eq!(s.http.header_timeout, Duration::from_secs(10));
    assert_eq!(s.http.body_timeout, Duration::from_secs(30));
    assert_eq!(s.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(s.http.write_timeout, Duration::from_secs(60));
    assert_eq!(s.http.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(s.http.max_connections, None);
    assert_eq!(s.http.max_streamed_lists, 16);
    let file = "http_idle_timeout = 5\nmax_connections = 100\nshutdown_timeout = 0\n";
    let (_, s) = serve(&["--http-idle-timeout", "7"], Some(file)).unwrap();
    assert_eq!(s.http.idle_timeout, Duration::from_secs(7));
    assert_eq!(s.http.max_connections, Some(100));
    assert_eq!(s.http.shutdown_timeout, Duration::ZERO);
    for bad in [
        "http_header_timeout = 0",
        "max_connections = 0",
        "max_streamed_lists = 0",
    ] {
        assert!(serve(&[], Some(bad)).is_err(), "{bad}");
    }
}

#[test]
fn proxies_limits_and_metrics() {
    let (_, s) = serve(&[], None).unwrap();
    assert!(s.observe.trusted_proxies.is_empty());
    assert_eq!(s.observe.limits, LimitSettings::default());
    assert_eq!(s.observe.limits.api, 0);
    assert!(matches!(&s.observe.metrics_access, MetricsAccess::Allow(n) if n.len() == 2));
    assert_eq!(s.metrics_listen, None);
    let file = "trusted_proxies = \"10.0.0.0/8\"\nrate_limit_api = 50\nmetrics_listen = \"127.0.0.1:9100\"\n";
    let (_, s) = serve(&["--rate-limit-unauthenticated", "0"], Some(file)).unwrap();
    assert!(!s.observe.trusted_proxies.is_empty());
    assert_eq!(s.observe.limits.api, 50);
    assert_eq!(s.observe.limits.unauthenticated, 0);
    assert!(matches!(s.observe.metrics_access, MetricsAccess::Elsewhere));
    assert_eq!(s.metrics_listen.map(|a| a.port()), Some(9100));
    for bad in [
        "trusted_proxies = \"10.0.0.0/40\"",
        "metrics_allow = \"everyone\"",
        "metrics_listen = \"nope\"",
    ] {
        assert!(serve(&[], Some(bad)).is_err(), "{bad}");
    }
}

#[test]
fn defaults_and_errors() {
    let (_, s) = serve(&[], None).unwrap();
    assert_eq!(s.external_url, "http://127.0.0.1:8080");
    assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(
        derived_external_url("0.0.0.0:80".parse().unwrap()),
        "http://localhost:80"
    );
    assert!(serve(&["--listen", "nope"], None).is_err());
    assert!(serve(&["--external-url", "ftp://x"], None).is_err());
}
