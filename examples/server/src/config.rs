//! The server's configuration: a TOML file, command-line flags and environment variables.
//! Services are `modelservice::ServiceSpec`s read through serde, so the file takes exactly the
//! fields the core accepts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use modelservice::ServiceSpec;
use serde::Deserialize;

/// Default listening address: loopback only, so nothing is exposed unless asked for.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default request body limit (bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default limit on a request until its answer starts (seconds): reading the body, and the
/// whole generation of an answer that is not streamed.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 600;
/// Default wait for a request head, on a new or an idle keep-alive connection (seconds).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// A tiny OpenAI-compatible HTTP server over modelservice.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// A TOML file declaring `listen`, `api_keys`, `admin_keys`, `max_body_bytes`,
    /// `request_timeout_secs`, `idle_timeout_secs`, `max_connections` and `[[services]]`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on (overrides the file). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Shortcut: serve this GGUF file as one service (with --access-name and --name).
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,

    /// Access name of the --model service, the `model` of requests (e.g. u-8105f7322477/test).
    #[arg(long, requires = "model")]
    pub access_name: Option<String>,

    /// Display name of the --model service (default: the access name's last segment).
    #[arg(long, requires = "model")]
    pub name: Option<String>,

    /// Instances of the --model service.
    #[arg(long, requires = "model")]
    pub instances: Option<usize>,

    /// Parallel sequence slots per instance of the --model service.
    #[arg(long, requires = "model")]
    pub slots: Option<usize>,

    /// Context length per slot of the --model service.
    #[arg(long, requires = "model")]
    pub context_length: Option<u32>,

    /// Waiting requests the --model service queues before answering 429.
    #[arg(long, requires = "model")]
    pub queue_size: Option<usize>,

    /// CPU threads of the --model service.
    #[arg(long, requires = "model")]
    pub threads: Option<usize>,

    /// Largest accepted request body in bytes (overrides the file).
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Seconds a request may take until its answer starts (body, and a whole unstreamed answer).
    #[arg(long, value_name = "SECONDS")]
    pub request_timeout_secs: Option<u64>,

    /// Seconds a connection may wait for a request head (slow clients, idle keep-alive).
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout_secs: Option<u64>,

    /// Most connections open at once; one more is answered 503 and closed.
    #[arg(long, value_name = "COUNT")]
    pub max_connections: Option<usize>,
}

/// The configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    #[serde(default)]
    pub admin_keys: Vec<String>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
}

/// Everything the server runs with, once flags, file and environment are merged.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub api_keys: Vec<String>,
    pub admin_keys: Vec<String>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub services: Vec<ServiceSpec>,
}

/// Environment variable with comma-separated API keys.
pub const ENV_API_KEYS: &str = "MODELSERVICE_API_KEYS";
/// Environment variable with comma-separated admin keys.
pub const ENV_ADMIN_KEYS: &str = "MODELSERVICE_ADMIN_KEYS";

fn env_keys(var: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Config {
    pub fn load(mut args: Args) -> Result<Config, String> {
        let mut file = FileConfig::default();
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            file = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            // Model paths in the file are relative to the file, not to the working directory.
            let base = path.parent().unwrap_or(Path::new("."));
            for spec in &mut file.services {
                if spec.model.is_relative() {
                    spec.model = base.join(&spec.model);
                }
            }
        }

        let mut services = file.services;
        if let Some(model) = args.model.take() {
            let access_name = args.access_name.clone().unwrap_or_else(|| {
                model
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "model".into())
            });
            let name = args.name.clone().unwrap_or_else(|| {
                access_name
                    .rsplit('/')
                    .next()
                    .unwrap_or(&access_name)
                    .to_owned()
            });
            let mut spec = ServiceSpec::new(name, access_name, model);
            if let Some(v) = args.instances {
                spec.instances = v;
            }
            if let Some(v) = args.slots {
                spec.slots = v;
            }
            spec.context_length = args.context_length.or(spec.context_length);
            if let Some(v) = args.queue_size {
                spec.queue_size = v;
            }
            spec.threads = args.threads.or(spec.threads);
            services.push(spec);
        }

        let mut api_keys = file.api_keys;
        // Keys come from the file or the environment, never from flags, so they stay out of `ps`.
        api_keys.extend(env_keys(ENV_API_KEYS));
        let mut admin_keys = file.admin_keys;
        admin_keys.extend(env_keys(ENV_ADMIN_KEYS));
        if api_keys.is_empty() && admin_keys.is_empty() {
            return Err(format!(
                "no API key configured: set {ENV_API_KEYS}=<key>[,<key>...] or `api_keys = [...]` in the config file"
            ));
        }

        Ok(Config {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address")),
            api_keys,
            admin_keys,
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
            request_timeout: Duration::from_secs(
                args.request_timeout_secs
                    .or(file.request_timeout_secs)
                    .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS)
                    .max(1),
            ),
            idle_timeout: Duration::from_secs(
                args.idle_timeout_secs
                    .or(file.idle_timeout_secs)
                    .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS)
                    .max(1),
            ),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                .max(1),
            services,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_services_are_core_specs_with_paths_relative_to_the_file() {
        let dir =
            std::env::temp_dir().join(format!("modelservice-server-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("services.toml");
        std::fs::write(
            &path,
            "api_keys = [\"k\"]\nmax_body_bytes = 1000\n\n[[services]]\nname = \"test\"\n\
             access_name = \"u-1/test\"\nmodel = \"models/m.gguf\"\nslots = 2\n",
        )
        .unwrap();
        let args = Args::parse_from(["server", "--config", path.to_str().unwrap()]);
        let config = Config::load(args).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.max_body_bytes, 1000);
        let mut expected = ServiceSpec::new("test", "u-1/test", dir.join("models/m.gguf"));
        expected.slots = 2;
        assert_eq!(config.services, vec![expected]);

        std::fs::write(&path, "api_keys = [\"k\"]\nlisten_on = \"0.0.0.0:1\"\n").unwrap();
        let args = Args::parse_from(["server", "--config", path.to_str().unwrap()]);
        let err = Config::load(args).unwrap_err();
        assert!(err.contains("listen_on"), "{err}");

        // A misspelt service field is refused by name, as the core's ServiceSpec refuses it.
        std::fs::write(
            &path,
            "api_keys = [\"k\"]\n\n[[services]]\nname = \"test\"\naccess_name = \"u-1/test\"\n\
             model = \"m.gguf\"\nslotz = 2\n",
        )
        .unwrap();
        let args = Args::parse_from(["server", "--config", path.to_str().unwrap()]);
        let err = Config::load(args).unwrap_err();
        assert!(err.contains("unknown field `slotz`"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
