//! What the server's benches share: their environment knobs, and `modelservice-server` started on
//! a port of its choosing, with its services given as the core's own `ServiceSpec`s (as its
//! config file takes them).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use modelservice::ServiceSpec;

/// `key` from the environment, else `default`.
pub fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A started server: its process (the caller stops it), its base URL (`http://127.0.0.1:<port>`)
/// and its stdout, to be held open: the server may still write to it.
pub struct Started {
    pub child: Child,
    pub base: String,
    pub stdout: BufReader<ChildStdout>,
}

/// Starts `modelservice-server` with `services` and one API key, `key`; its config is written to
/// `<dir>/<name>.toml`, its log (at `warn`) goes to `stderr`.
pub fn start_server(
    dir: &Path,
    name: &str,
    key: &str,
    services: &[ServiceSpec],
    stderr: Stdio,
) -> Started {
    #[derive(serde::Serialize)]
    struct File<'a> {
        services: &'a [ServiceSpec],
    }
    let services = toml::to_string(&File { services }).expect("services as TOML");
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\napi_keys = [\"{key}\"]\n{services}"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelservice-server"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start modelservice-server");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("modelservice-server did not start: {line:?}"))
        .to_owned();
    Started {
        child,
        base,
        stdout,
    }
}
