//! The configuration file and its environment overrides.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (`--config`, `WACHTER_CONFIG`,
//! or `./wachter.toml` when present), `WACHTER_*` environment variables (`__` separates
//! sections: `WACHTER_SCAN__RATE=200`), then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The relay password's environment variable, after `WACHTER_`.
const SMTP_PASSWORD: &str = "NOTIFY__SMTP__PASSWORD";

/// Everything the config file can set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub scan: ScanConfig,
    pub store: StoreConfig,
    pub notify: NotifyConfig,
    pub serve: ServeConfig,
}

/// `[serve]`: how `wachter serve` runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address and port to listen on. wachter speaks plain HTTP: beyond loopback, put a
    /// TLS-terminating proxy in front.
    pub listen: String,
    /// Store connections kept open for requests (more requests at once wait for one).
    pub pool_size: usize,
    /// How long a login lasts, in hours.
    pub session_hours: u64,
    /// Names a reverse proxy forwards requests under (`cert.example`, or with a port);
    /// requests naming any other host are refused (DNS rebinding).
    pub public_hosts: Vec<String>,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let defaults = wachter_web::ServeOptions::default();
        let exposure = wachter_web::Exposure::default();
        ServeConfig {
            listen: defaults.listen.to_string(),
            pool_size: defaults.pool_size,
            session_hours: defaults.session_hours,
            public_hosts: exposure.public_hosts,
            max_connections: exposure.max_connections,
        }
    }
}

/// `[notify]`: who the messages come from, and the rules for telling owners.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The reporting CERT, as named in every message and export.
    pub reporter: String,
    /// The sender: `Example CERT <cert@example.org>`. Campaigns that queue mail refuse the
    /// built-in `.invalid` address.
    pub from: String,
    /// Where replies go (a ticket queue); `from` when unset.
    pub reply_to: Option<String>,
    /// A page about the case or the scan, linked from every message.
    pub url: Option<String>,
    /// Tickets read `<prefix>-<number>`.
    pub ticket_prefix: String,
    /// The language of messages to contacts without one (`en`, `nl`).
    pub language: String,
    /// TLP of messages and exports: clear, green, amber, amber+strict, red.
    pub tlp: String,
    /// A finding still open is told again after this long: `7d`, `36h`, `90m`.
    pub repeat_after: String,
    /// A folder of edited templates (`wachter campaign templates --out DIR` writes one).
    pub templates: Option<PathBuf>,
    /// Never written to: addresses, `@domain` (subdomains too), `org:Name`.
    pub do_not_contact: Vec<String>,
    /// Networks whose findings are never told (besides the scan's opt-out file).
    pub suppress: Vec<String>,
    /// Sector → the sector CERT's mailbox, copied on reminders and written to when an
    /// organisation has no usable address (`healthcare = "Z-CERT <cert@z-cert.nl>"`).
    pub escalation: std::collections::BTreeMap<String, String>,
    /// From which round the sector CERT is copied (2 = the first reminder).
    pub escalate_from_round: i64,
    /// The relay: host, port, security (starttls, tls, none), username, password, ca_file,
    /// timeout_secs, hello_name. Put the password in WACHTER_NOTIFY__SMTP__PASSWORD.
    pub smtp: wachter_notify::smtp::SmtpConfig,
    pub send: SendConfig,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        let reporter = wachter_notify::Reporter::default();
        NotifyConfig {
            reporter: reporter.org.clone(),
            from: format!("{} <{}>", reporter.org, reporter.from),
            reply_to: None,
            url: None,
            ticket_prefix: reporter.ticket_prefix,
            language: "en".into(),
            tlp: "amber".into(),
            repeat_after: "7d".into(),
            templates: None,
            do_not_contact: Vec::new(),
            suppress: Vec::new(),
            escalation: Default::default(),
            escalate_from_round: 2,
            smtp: Default::default(),
            send: SendConfig::default(),
        }
    }
}

/// `[notify.send]`: how the outbox is worked through.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendConfig {
    /// Messages per minute to the relay, all recipients together. 0 = unlimited.
    pub rate_per_minute: u32,
    /// Seconds between two messages to the same address.
    pub recipient_gap_secs: u64,
    /// The first retry after a temporary failure; each further retry waits twice as long.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// Attempts before a message is held for an analyst.
    pub max_attempts: i64,
    /// A message left `sending` this long (its sender was killed) is sent again. Keep it
    /// well above the longest a delivery may take (a relay may use each of the dozen or so
    /// replies' `timeout_secs`); a sender whose claim went stale has its outcome ignored.
    pub stale_after_secs: u64,
}

impl Default for SendConfig {
    fn default() -> Self {
        SendConfig {
            rate_per_minute: 60,
            recipient_gap_secs: 10,
            retry_base_secs: 300,
            retry_max_secs: 6 * 3600,
            max_attempts: 12,
            stale_after_secs: 600,
        }
    }
}

/// `[store]`: where results are kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Where every scan is recorded: a SQLite file (created on first use) or a
    /// `postgres://user@host/database` URL shared by a team.
    pub db: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            db: "wachter.db".into(),
        }
    }
}

/// `[scan]`: how scans behave unless a flag says otherwise.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// Ports scanned for targets without their own port.
    pub ports: String,
    /// The scope: networks a connection may go to (required, here or with --scope; the IANA
    /// special-purpose ranges are excluded unless named explicitly).
    pub scope: Vec<String>,
    /// A file with more scope networks, one per line.
    pub scope_file: Option<PathBuf>,
    /// Opt-out list honoured by every scan (--opt-out adds to it): networks never contacted.
    pub opt_out_file: Option<PathBuf>,
    /// New connections per second, all targets together. 0 = unlimited.
    pub rate: u32,
    /// New connections per second to one IPv4 /24 (IPv6 /48). 0 = unlimited.
    pub per_network_rate: u32,
    /// Probes in flight at once.
    pub concurrency: usize,
    pub connect_timeout_ms: u64,
    pub tls_timeout_ms: u64,
    pub response_timeout_ms: u64,
    /// The whole budget for one service, every connection and request included.
    pub target_timeout_ms: u64,
    /// Extra connection attempts after a connect timeout.
    pub retries: u32,
    /// Body bytes kept per response.
    pub max_body: usize,
    pub user_agent: String,
    /// A nameserver `ip:port` for hostname targets; the system resolver when unset.
    pub resolver: Option<String>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            ports: "443".into(),
            scope: Vec::new(),
            scope_file: None,
            opt_out_file: None,
            rate: 1000,
            per_network_rate: 20,
            concurrency: 512,
            connect_timeout_ms: 5000,
            tls_timeout_ms: 10_000,
            response_timeout_ms: 10_000,
            target_timeout_ms: 30_000,
            retries: 1,
            max_body: 64 * 1024,
            user_agent: wachter_net::DEFAULT_USER_AGENT.into(),
            resolver: None,
        }
    }
}

impl Config {
    /// Loads defaults, then the file, then the environment.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let from_env = std::env::var_os("WACHTER_CONFIG").map(PathBuf::from);
        match explicit.map(Path::to_path_buf).or(from_env) {
            Some(path) => {
                if !path.is_file() {
                    anyhow::bail!("config file {} does not exist", path.display());
                }
                figment = figment.merge(Toml::file(path));
            }
            None => {
                let local = Path::new("wachter.toml");
                if local.is_file() {
                    figment = figment.merge(Toml::file(local));
                }
            }
        }
        figment = figment.merge(
            Env::prefixed("WACHTER_")
                .ignore(&["CONFIG", "LOG", SMTP_PASSWORD])
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .context("invalid configuration (file or WACHTER_* environment)")?;
        // A password is taken as it is written: figment would read `12345678` as a number
        // (and print it in the error) or strip quotes from `"pw"`.
        if let Some(password) = std::env::var_os(format!("WACHTER_{SMTP_PASSWORD}")) {
            config.notify.smtp.password = Some(
                password
                    .into_string()
                    .map_err(|_| anyhow::anyhow!("WACHTER_{SMTP_PASSWORD} is not UTF-8"))?,
            );
        }
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("custom.toml", "[scan]\nrate = 50\nports = \"443,8443\"\n")?;
            jail.set_env("WACHTER_SCAN__RATE", "70");
            let config = Config::load(Some(Path::new("custom.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.scan.rate, 70);
            assert_eq!(config.scan.ports, "443,8443");
            assert_eq!(config.scan.per_network_rate, 20);
            Ok(())
        });
    }

    #[test]
    fn the_relay_password_is_taken_as_written() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("wachter.toml", "[notify.smtp]\nhost = \"relay.test\"\n")?;
            for password in ["12345678", "\"quoted\"", "true", "[a,b]"] {
                jail.set_env("WACHTER_NOTIFY__SMTP__PASSWORD", password);
                let config = Config::load(None).map_err(|e| e.to_string())?;
                assert_eq!(config.notify.smtp.password.as_deref(), Some(password));
                assert_eq!(config.notify.smtp.host, "relay.test");
            }
            Ok(())
        });
    }

    #[test]
    fn the_server_section_reads_its_overrides() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.serve.listen, "127.0.0.1:8460");
            assert_eq!(config.serve.pool_size, 4);
            assert_eq!(config.serve.session_hours, 12);
            assert!(config.serve.public_hosts.is_empty());
            assert_eq!(config.serve.max_connections, 512);
            jail.create_file(
                "wachter.toml",
                "[serve]\nsession_hours = 8\npublic_hosts = [\"cert.example\"]\n",
            )?;
            jail.set_env("WACHTER_SERVE__LISTEN", "127.0.0.2:9000");
            jail.set_env("WACHTER_SERVE__POOL_SIZE", "2");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.serve.listen, "127.0.0.2:9000");
            assert_eq!(config.serve.pool_size, 2);
            assert_eq!(config.serve.session_hours, 8);
            assert_eq!(config.serve.public_hosts, ["cert.example"]);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("wachter.toml", "[scan]\nrat = 50\n")?;
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }
}
