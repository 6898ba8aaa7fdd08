//! Flags and subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit;

#[derive(Parser, Debug)]
#[command(
    name = "wachter",
    version,
    about = "Find every exposed instance of a vulnerable appliance in a constituency, classify it, and track it until it is fixed.",
    long_about = "wachter scans the networks of a CERT's constituency for internet-facing appliances, records \
exactly what each one answered (TLS certificate, byte-exact HTTP evidence), and keeps the results for \
notification and re-scans.\n\n\
Start with `wachter demo`: it runs a lab of simulated hosts on loopback addresses and scans it, with \
no network and no set-up.",
    after_help = "EXIT CODES:\n  0    done\n  2    bad usage, configuration or input (nothing was scanned)\n  3    wachter failed while working (output not writable, address in use)\n  130  interrupted; the records written so far are complete
  1    (verify) some hosts differ from the lab's ground truth; (outbox send) messages\n       remain in the outbox, waiting for a retry or held\n\n\
CONFIGURATION:\n  A TOML file (--config, $WACHTER_CONFIG, or ./wachter.toml) and WACHTER_* variables\n  (WACHTER_SCAN__RATE=200 sets [scan] rate). Flags win over both.\n  Logging: -v, -vv, or WACHTER_LOG=debug."
)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan targets: reachability, TLS, certificates and HTTP evidence, one JSON record per service.
    #[command(long_about = SCAN_HELP)]
    Scan(Box<ScanArgs>),
    /// Serve simulated hosts on loopback addresses, with a ground-truth manifest.
    Lab(LabArgs),
    /// Run a lab, scan it, report, then serve the dashboard: the whole job in one command,
    /// on loopback only.
    #[command(long_about = DEMO_HELP)]
    Demo(DemoArgs),
    /// Compare scan records with a lab manifest: every host classified exactly?
    Verify(VerifyArgs),
    /// Open findings over the recorded scans, per CVE: is the curve going down?
    Report(ReportArgs),
    /// What changed between two recorded scans: new, fixed, still open, unreachable.
    Diff(DiffArgs),
    /// Look after the database: list scans, migrate, back up, vacuum.
    Db(DbArgs),
    /// Bring other tools' results into the history: wachter JSON Lines, nuclei JSONL,
    /// Shadowserver report CSV.
    Import(ImportArgs),
    /// The constituency: organisations with their networks, domains, contacts and TLP.
    Org(OrgArgs),
    /// Import registry data (RIPE database split files) for abuse contacts.
    Registry(RegistryArgs),
    /// Work out who owns every recorded service: networks, certificate and DNS names,
    /// registry data, ASN and country.
    #[command(long_about = ATTRIBUTE_HELP)]
    Attribute(AttributeArgs),
    /// Print the networks of part of the constituency, ready for `wachter scan @FILE`.
    Targets(TargetsArgs),
    /// Tell owners: one message per organisation with every open host and its evidence,
    /// queued in the outbox (or rendered to files with --dry-run).
    #[command(long_about = CAMPAIGN_HELP)]
    Campaign(CampaignArgs),
    /// The outbox: send queued messages over SMTP, list, show, retry, cancel.
    Outbox(OutboxArgs),
    /// Open findings in the formats CERTs exchange: IntelMQ events, Shadowserver-style CSV,
    /// X-ARF v4, a MISP event, a STIX 2.1 bundle.
    Export(ExportArgs),
    /// Was this appliance compromised? Rule packs over an image root, a bundle or logs.
    #[command(long_about = TRIAGE_HELP)]
    Triage(TriageArgs),
    /// Serve the dashboard and the JSON API over the store (users log in; scripts use
    /// API tokens).
    #[command(long_about = SERVE_HELP)]
    Serve(ServeArgs),
    /// Who may use the dashboard: add, disable and remove users, set passwords and roles.
    #[command(long_about = USER_HELP)]
    User(UserArgs),
    /// API tokens for scripts and other tools: add (the secret is shown once), list,
    /// revoke.
    #[command(long_about = TOKEN_HELP)]
    Token(TokenArgs),
}

const SERVE_HELP: &str = "Serve the dashboard and the JSON API over the store.

The dashboard shows the case at a glance (counts per state and CVE, the trend of open
findings over scans, the newest findings) and every organisation, host (with its evidence),
scan, campaign and triage report; every list downloads as CSV. The API (/api/v1, described
by /api/v1/openapi.json) serves the same data as JSON to other tools. All assets are in the
binary: it works air-gapped.

Nobody can log in until a user exists: `wachter user add NAME --role admin` first. Scripts
authenticate with `Authorization: Bearer TOKEN` (`wachter token add`).

It listens on 127.0.0.1:8460 unless told otherwise ([serve] listen, WACHTER_SERVE__LISTEN,
--listen); port 0 picks a free port, and the address actually used is printed. wachter
speaks plain HTTP: to serve anything beyond this machine, put a TLS-terminating reverse
proxy in front (session cookies are marked Secure). Ctrl-C (or SIGTERM) stops it after the
requests in flight.

Examples:
  wachter user add alice --role admin
  wachter serve
  wachter serve --db postgres://wachter@db.cert.example/case --listen 127.0.0.1:9000
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8460/api/v1/overview";

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on (default: [serve] listen, 127.0.0.1:8460).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    /// Store connections kept open for requests (default: [serve] pool_size, 4).
    #[arg(long, value_name = "N")]
    pub pool_size: Option<usize>,
    /// How long a login lasts, in hours (default: [serve] session_hours, 12).
    #[arg(long, value_name = "HOURS")]
    pub session_hours: Option<u64>,
}

const USER_HELP: &str = "Who may use the dashboard, and what they may do.

Roles: viewer (reads everything), analyst (also retries and cancels messages in the
outbox), admin (also manages users and everyone's API tokens in the dashboard).

Passwords have at least 12 characters. They are asked twice on the terminal, or read from
the first line of standard input with --password-stdin (for scripts; never put a password
on the command line, where other users see it). The prompt turns the terminal's echo off
and refuses to ask when it cannot. The store keeps only an Argon2id hash.

Examples:
  wachter user add alice --role admin
  printf '%s\\n' \"$PASSWORD\" | wachter user add ci-reader --password-stdin
  wachter user list --json
  wachter user role bob analyst
  wachter user passwd bob            # also logs bob out everywhere; API tokens stay
  wachter user passwd bob --revoke-tokens   # and revokes bob's API tokens
  wachter user disable bob           # logs bob out; bob's API tokens are refused
  wachter user enable bob
  wachter user remove bob            # with bob's sessions and API tokens

The store always keeps an enabled admin: the only one cannot be demoted, disabled or
removed (make another user admin first).";

#[derive(Args, Debug, Clone)]
pub struct UserArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", global = true)]
    pub db: Option<String>,
    #[command(subcommand)]
    pub action: UserAction,
}

/// The roles, as the command line accepts them.
const ROLES: [&str; 3] = ["viewer", "analyst", "admin"];

#[derive(Subcommand, Debug, Clone)]
pub enum UserAction {
    /// Add a user (the database is created if missing).
    Add {
        /// The login name (unique, case-insensitive).
        name: String,
        /// viewer, analyst or admin.
        #[arg(long, default_value = "viewer", value_parser = ROLES)]
        role: String,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a user, with their sessions and API tokens.
    Remove { name: String },
    /// Set a new password; the user's sessions end, but their API tokens stay live unless
    /// --revoke-tokens is given.
    Passwd {
        name: String,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Also revoke the user's API tokens (after a suspected compromise: a token works
        /// without the password).
        #[arg(long)]
        revoke_tokens: bool,
    },
    /// Change a user's role. The only enabled admin cannot be demoted: make another user
    /// admin first.
    Role {
        name: String,
        /// viewer, analyst or admin.
        #[arg(value_parser = ROLES)]
        role: String,
    },
    /// Stop a user from logging in, without removing them: their sessions end and their
    /// API tokens are refused until `wachter user enable`. The only enabled admin cannot
    /// be disabled.
    #[command(
        long_about = "Stop a user from logging in, without removing them (someone on leave, an \
account that may have leaked).

Their sessions end at once and their API tokens are refused while they are disabled; the \
tokens are kept, and work again after `wachter user enable NAME` (revoke them with \
`wachter token revoke ID` if they should not). `wachter user list` shows who is disabled. \
The only enabled admin cannot be disabled: make another user admin first."
    )]
    Disable {
        /// The login name (case-insensitive).
        name: String,
    },
    /// Let a disabled user log in again (their live API tokens work again too).
    Enable {
        /// The login name (case-insensitive).
        name: String,
    },
}

const TOKEN_HELP: &str = "API tokens: how scripts and other tools use the API.

A token belongs to a user and never grants more than the user's role. Scope read allows
GET requests; scope write also the actions the role allows (an analyst's outbox retry and
cancel). The secret (wachter_…) is printed once, when the token is made: the store keeps
only its SHA-256. Send it as `Authorization: Bearer wachter_…`. Revoked and expired tokens
are refused at once.

Examples:
  wachter token add --user alice --name grafana
  wachter token add --user alice --name outbox-bot --scope write --expires-days 90 --json
  wachter token list
  wachter token revoke 3";

#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", global = true)]
    pub db: Option<String>,
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum TokenAction {
    /// Make a token for a user and print its secret (once).
    Add {
        /// Whose token it is.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// What it is for (shown in lists).
        #[arg(long, value_name = "LABEL", default_value = "")]
        name: String,
        /// read (GET only) or write (also the actions the user's role allows; not for
        /// viewers).
        #[arg(long, default_value = "read", value_parser = ["read", "write"])]
        scope: String,
        /// Refused after this many days (default: until revoked).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
        /// Print the token (with its secret) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the tokens (never their secrets), newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it is refused from now on.
    Revoke { id: i64 },
}

const TRIAGE_HELP: &str =
    "Was this NetScaler compromised? Check the evidence an owner can collect, offline.

PATH is an appliance file-system root (a mounted or extracted image with /var, /flash,
/netscaler, /nsconfig), a collected bundle (.tar or .tar.gz, read in place: nothing is
extracted), or a folder of logs. Rotated and gzipped logs (httpaccess.log.4.gz) are read;
multi-line shell-history records are joined.

The rules are data (built-in packs: the Mandiant/Citrix CVE-2019-19781 scanner and its
2023 successor, Fox-IT's iocitrix, the x1sec and j81blog checks, NCSC-NL's 2025 checks,
Sigma web-log rules, wachter's own), with the originals' known bugs fixed to their evident intent; add
your own with --rules FILE.toml. Every hit names the file, line, rule and source; the log
coverage (first and last timestamp of every log) says how far back \"clean\" reaches.

The evidence is treated as hostile: entries escaping the root, links out of it, device
files, compression bombs and oversized files are never followed or opened and are reported
as problems of their own.

EXIT CODES (triage):
  0  no sign of compromise within the evidence's coverage
  1  compromised: an indicator of compromise or post-exploitation was found
  4  exploitation attempted: successful scanning or failed exploitation, no compromise
  5  not enough data: neither web access logs nor the appliance's file system
  2  bad usage (PATH unreadable, a broken rule file, --org or --host naming nothing
     stored, a file --import refuses)

Keep the result for the case with --save (--db, --org NAME, --label TEXT, --host): the
dashboard lists saved reports; the saved id is printed (on stderr with --json). --host
IP, IP:PORT or a service id (as in the dashboard's /hosts/ID) ties the report to the
scanned appliance, and to its organisation unless --org says otherwise.
  wachter triage bundle.tar.gz --save --org \"Ziekenhuis Demo\" --label \"vpn01, 2024-03-02\"

An owner who ran the triage themselves (`wachter triage PATH --json > report.json`) sends
the report; --import keeps it as if saved here (nothing is triaged; exit 0 once kept). The
file is checked first: at most 64 MiB, JSON, the shape of a `--json` report with a
verdict that agrees with its hits; anything else is refused (exit 2) and nothing is kept.
  wachter triage --import report.json --org \"Ziekenhuis Demo\" --host 192.0.2.10:443";

#[derive(Args, Debug, Clone)]
#[command(group = clap::ArgGroup::new("keeping").args(["save", "import"]).multiple(true))]
pub struct TriageArgs {
    /// An image root, a .tar/.tar.gz bundle, or a folder of logs.
    #[arg(required_unless_present = "import")]
    pub path: Option<PathBuf>,
    /// More rule packs (TOML, the format of the built-in ones), added to the built-in packs.
    #[arg(long, value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Only these packs (by name), e.g. --pack mandiant-2019 --pack sigma.
    #[arg(long, value_name = "NAME")]
    pub pack: Vec<String>,
    /// Most bytes read from one file (after decompression).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 30)]
    pub max_file: u64,
    /// Print the report as JSON (with --import: what was kept, with its id).
    #[arg(long)]
    pub json: bool,
    /// Keep the report in the database (shown by `wachter serve` under Triage): the JSON
    /// report, its verdict and its number of hits.
    #[arg(long)]
    pub save: bool,
    /// Keep a report made elsewhere (`wachter triage PATH --json`, run by the appliance's
    /// owner) instead of triaging here: checked to be such a report, then saved as --save
    /// would (--org, --label, --host, --db apply).
    #[arg(
        long,
        value_name = "REPORT.json",
        conflicts_with_all = ["path", "rules", "pack", "max_file"]
    )]
    pub import: Option<PathBuf>,
    /// With --save or --import: the organisation the appliance belongs to (by name;
    /// checked before the evidence is read).
    #[arg(long, value_name = "NAME", requires = "keeping")]
    pub org: Option<String>,
    /// With --save or --import: a label for the report (default: the evidence's path, or
    /// the imported file's).
    #[arg(long, value_name = "TEXT", requires = "keeping")]
    pub label: Option<String>,
    /// With --save or --import: the scanned appliance the report is about, by IP, IP:PORT
    /// or service id (as in the dashboard's /hosts/ID); it must be in the database. Its
    /// organisation is the report's unless --org names another.
    #[arg(long, value_name = "IP[:PORT]|ID", requires = "keeping")]
    pub host: Option<String>,
    /// With --save or --import: the database, a SQLite file or a postgres:// URL (default:
    /// [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", requires = "keeping")]
    pub db: Option<String>,
}

const CAMPAIGN_HELP: &str = "Tell owners about open findings of one CVE.

`wachter campaign new --cve CVE-2019-19781` gathers the open findings (vulnerable,
mitigated), groups them per organisation (run `wachter attribute` first) and writes one
message per recipient: every host with its address, name, certificate names, build,
state, evidence (request, answer, matched bytes) and when it was seen; advice per state,
and whether to assume compromise. Messages go to the outbox; `wachter outbox send`
delivers them.

Who is told: the organisation's security, abuse and technical contacts; without those,
its network's registry abuse mailbox, then its sector CERT ([notify.escalation]).
Services no organisation owns go to their registry abuse mailbox. Findings with a message
still in the outbox, or told less than [notify] repeat_after ago (default 7d), wait;
reminders copy the sector CERT. Opt-out
networks ([scan] opt_out_file, [notify] suppress) and the do-not-contact list are never
written to. Every finding not told is listed with the reason.

Check first with --dry-run DIR: every message is written there (.eml, .txt, .html) with
plan.json, and nothing is queued. Templates: `wachter campaign templates --out DIR`, edit,
then --templates DIR (English and Dutch are built in; a contact's language picks one).";

#[derive(Args, Debug, Clone)]
pub struct CampaignArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", global = true)]
    pub db: Option<String>,
    #[command(subcommand)]
    pub action: CampaignAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum CampaignAction {
    /// Plan and queue a campaign (or render it with --dry-run).
    New(CampaignNewArgs),
    /// List campaigns with their messages by state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One campaign: its messages, and every finding it did not tell, with the reason.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Write the built-in templates to a folder, to edit.
    Templates {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CampaignNewArgs {
    /// The CVE to tell owners about.
    #[arg(long)]
    pub cve: String,
    /// A name for the campaign (default: the CVE and today's date).
    #[arg(long)]
    pub name: Option<String>,
    /// Language for contacts without one (default: [notify] language, `en`).
    #[arg(long)]
    pub language: Option<String>,
    /// clear, green, amber, amber+strict or red (default: [notify] tlp, amber).
    #[arg(long)]
    pub tlp: Option<String>,
    /// Tell a finding again only after this long: 7d, 36h (default: [notify] repeat_after).
    #[arg(long, value_name = "DURATION")]
    pub repeat_after: Option<String>,
    /// A folder of edited templates (default: [notify] templates, else the built-in ones).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Render every message into DIR for review; queue nothing.
    #[arg(long, value_name = "DIR")]
    pub dry_run: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct OutboxArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", global = true)]
    pub db: Option<String>,
    #[command(subcommand)]
    pub action: OutboxAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum OutboxAction {
    /// Deliver due messages through [notify.smtp]. Exit 1 while messages remain in the
    /// outbox afterwards (waiting for a retry, or held: rejected, or out of attempts), or
    /// when the relay itself failed (the run stops then).
    Send(OutboxSendArgs),
    /// Every message with its state, attempts and last error.
    List {
        /// Only this campaign's messages.
        #[arg(long)]
        campaign: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Print one message exactly as it is (or was) sent.
    Show { ticket: String },
    /// Queue held messages again (after fixing the address or the relay).
    Retry {
        tickets: Vec<String>,
        /// Every held message.
        #[arg(long, conflicts_with = "tickets")]
        all: bool,
    },
    /// Cancel messages not sent yet; their findings count as not told.
    Cancel {
        #[arg(required = true)]
        tickets: Vec<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct OutboxSendArgs {
    /// Keep running until no message waits for a retry (each is sent or held).
    #[arg(long)]
    pub wait: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// intelmq (JSON Lines events), shadowserver (CSV), xarf (X-ARF v4, JSON Lines), misp
    /// (one event), stix (a 2.1 bundle).
    #[arg(long)]
    pub format: String,
    /// Only this CVE (default: every CVE with open findings).
    #[arg(long)]
    pub cve: Option<String>,
    /// TLP of the export (default: [notify] tlp); formats that know only TLP 1.0 get
    /// CLEAR as WHITE and AMBER+STRICT as AMBER with the restriction in words.
    #[arg(long)]
    pub tlp: Option<String>,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
}

const ATTRIBUTE_HELP: &str =
    "Work out who owns every recorded service, and keep how it was decided.

In order, the first that answers wins:
  1. network      the most specific organisation network holding the address
                  (overlaps are counted and reported)
  2. hostname     the name the target was scanned with, under an organisation's domain
  3. certificate  a name in the service's TLS certificate (CN first, then SANs;
                  wildcards count); other organisations it names contest the claim
  4. reverse_dns  the address's PTR name (with --reverse-dns)
  5. asn          the address's AS (from --mmdb) is one an organisation runs
Services no organisation claims keep what is known about their network: the registry
network and its abuse mailbox (from `wachter registry import`), ASN, holder and country
(from --mmdb). Nothing is dropped: `wachter report --by org` lists the unattributed.";

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The file to import.
    pub file: PathBuf,
    /// wachter, nuclei or shadowserver (default: recognised from the first line).
    #[arg(long)]
    pub format: Option<String>,
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    /// Import the good rows even when some are broken (they are listed either way).
    #[arg(long)]
    pub keep_going: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    /// Only this CVE (default: every CVE with findings).
    #[arg(long)]
    pub cve: Option<String>,
    /// Findings per owner instead of per scan: organisation, sector or AS (run
    /// `wachter attribute` first); unattributed findings are listed, never dropped.
    #[arg(long, value_enum)]
    pub by: Option<GroupBy>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Org,
    Sector,
    Asn,
}

#[derive(Args, Debug, Clone)]
pub struct OrgArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", global = true)]
    pub db: Option<String>,
    #[command(subcommand)]
    pub action: OrgAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum OrgAction {
    /// Add an organisation (or change one, with --replace).
    Add(OrgAddArgs),
    /// List the organisations.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One organisation: networks, domains, contacts, and its services' open findings.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Read organisations from a TOML or CSV file (by extension, or --format). Existing
    /// ones (same name) are updated. A file with problems is refused, every problem named
    /// with its line, unless --keep-going.
    Import {
        file: PathBuf,
        #[arg(long, value_parser = ["toml", "csv"])]
        format: Option<String>,
        #[arg(long)]
        keep_going: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write the organisations as TOML or CSV (stdout, or -o FILE).
    Export {
        #[arg(long, value_parser = ["toml", "csv"], default_value = "toml")]
        format: String,
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Remove an organisation (its services become unattributed).
    Remove { name: String },
}

#[derive(Args, Debug, Clone)]
pub struct OrgAddArgs {
    /// The organisation's name (unique, case-insensitive).
    pub name: String,
    /// healthcare, government, energy, …
    #[arg(long)]
    pub sector: Option<String>,
    /// clear, green, amber, amber+strict, red.
    #[arg(long)]
    pub tlp: Option<String>,
    /// A network the organisation holds (repeat): 192.0.2.0/24, 2001:db8::/48.
    #[arg(long = "network", value_name = "CIDR")]
    pub networks: Vec<String>,
    /// A domain of the organisation (repeat): names in certificates and DNS under it
    /// count as the organisation's.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// An AS the organisation runs (repeat): 64496 or AS64496.
    #[arg(long = "asn", value_name = "ASN")]
    pub asns: Vec<String>,
    /// A contact (repeat): ROLE:EMAIL[:LANGUAGE], ROLE one of security, abuse,
    /// management, technical (security:csirt@example.nl:nl).
    #[arg(long = "contact", value_name = "ROLE:EMAIL[:LANG]")]
    pub contacts: Vec<String>,
    /// Free text for the analyst (how to reach them, what they run).
    #[arg(long)]
    pub notes: Option<String>,
    /// Replace an organisation of the same name.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", global = true)]
    pub db: Option<String>,
    #[command(subcommand)]
    pub action: RegistryAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum RegistryAction {
    /// Import RIPE database split files (ripe.db.inetnum.gz, ripe.db.inet6num.gz,
    /// ripe.db.role.gz, ripe.db.organisation.gz; any order, gzip or plain): every network
    /// with its abuse mailbox (inetnum abuse-c, else its organisation's). Replaces the
    /// previous RIPE import once complete. Malformed objects are listed with their line and
    /// skipped; with --strict any of them refuses the import.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        strict: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct AttributeArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    /// MaxMind-format databases (GeoLite2/DB-IP ASN or Country; repeat) for ASN, holder
    /// and country.
    #[arg(long, value_name = "FILE")]
    pub mmdb: Vec<PathBuf>,
    /// Look up the PTR name of every address (bounded concurrency, one deadline each).
    #[arg(long)]
    pub reverse_dns: bool,
    /// DNS server for --reverse-dns (default: the system resolver).
    #[arg(long, value_name = "IP:PORT")]
    pub resolver: Option<SocketAddr>,
    /// For services whose owner lists no contact: fetch
    /// https://NAME/.well-known/security.txt (RFC 9116) from the service itself, NAME being
    /// the name it was scanned under, else its certificate's, else its PTR name; the first
    /// mailto: contact is kept. Needs --scope: it connects like a scan does.
    #[arg(long, requires = "scope")]
    pub security_txt: bool,
    /// Where --security-txt may connect (as for `wachter scan`; the configured opt-out list
    /// applies).
    #[arg(long, value_name = "CIDR|RANGE", value_delimiter = ',')]
    pub scope: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TargetsArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    /// The networks of this organisation (repeat).
    #[arg(long = "org", value_name = "NAME")]
    pub orgs: Vec<String>,
    /// The networks of every organisation of this sector (repeat).
    #[arg(long = "sector", value_name = "SECTOR")]
    pub sectors: Vec<String>,
    /// A country's address space from RIR delegated statistics (needs --delegated).
    #[arg(long, value_name = "CC", requires = "delegated")]
    pub country: Option<String>,
    /// RIR delegated-extended statistics files (delegated-ripencc-extended-latest; repeat).
    #[arg(long, value_name = "FILE", requires = "country")]
    pub delegated: Vec<PathBuf>,
    /// IPv4 only.
    #[arg(long)]
    pub ipv4: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DiffArgs {
    /// The earlier scan id.
    pub from: i64,
    /// The later scan id.
    pub to: i64,
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    #[arg(long)]
    pub cve: Option<String>,
    /// Print as JSON (with every finding).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The database: a SQLite file, or a postgres:// URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB", global = true)]
    pub db: Option<String>,
    #[command(subcommand)]
    pub action: DbAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum DbAction {
    /// List the recorded scans.
    Scans {
        #[arg(long)]
        json: bool,
    },
    /// Create the database or bring its schema up to date (also done on every open).
    Migrate,
    /// Write a consistent copy of the database to FILE: a SQLite store (while scans may
    /// keep writing), or for PostgreSQL a `pg_dump --format=custom` archive (`pg_restore`).
    Backup { target: PathBuf },
    /// Reclaim space and refresh the query planner's statistics.
    Vacuum,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The lab's manifest (`wachter lab --manifest`).
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Records of a scan of that lab (JSON Lines).
    #[arg(value_name = "RECORDS")]
    pub records: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

const SCAN_HELP: &str = "Scan targets: reachability, TLS, certificates and HTTP evidence, one JSON record per service.

TARGETS can be:
  192.0.2.0/24  2001:db8::/120  192.0.2.10-192.0.2.20   networks and ranges (crossed with --ports)
  192.0.2.7  192.0.2.7:8443  [2001:db8::7]:443           addresses, with or without a port
  vpn.example.nl  vpn.example.nl:8443                     hostnames (every A/AAAA, name kept for SNI/Host)
  192.0.2.7,vpn.example.nl                                address with the name to present (no DNS)
  @FILE                                                   a file of the above, or masscan -oL/-oJ/-oD,
                                                          zmap CSV or nmap XML output
  -                                                       the same from standard input

A scope is required and nothing outside it is contacted: --scope (or [scan] scope in the config)
lists the networks you may touch (--scope 0.0.0.0/0,::/0 means the public Internet); the opt-out
file of the config is always honoured and --opt-out adds to it; loopback, private and other IANA special-purpose
ranges are refused unless the scope names them explicitly (e.g. --scope 127.0.0.0/8).

Networks are visited in a keyed random order (--seed); --shard i/n splits a scan across workers
(same --seed everywhere). Records go to stdout (or --output) as JSON Lines (schema
wachter.service/1, see docs/record-schema.md); a summary goes to stderr, or to stdout with --output.

Examples:
  wachter scan --scope 192.0.2.0/24 192.0.2.0/24
  wachter scan --scope @constituency.txt --ports 443,8443 @targets.txt -o results.jsonl
  masscan ... -oL open.txt && wachter scan --scope @constituency.txt @open.txt";

#[derive(Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScanArgs {
    /// Targets (see above); at least one.
    #[arg(required_unless_present = "resume", value_name = "TARGETS")]
    pub targets: Vec<String>,
    /// Continue an interrupted scan recorded in the database: same targets, order and
    /// settings; targets already recorded are not probed again.
    #[arg(long, value_name = "SCAN_ID", conflicts_with = "no_db")]
    #[serde(skip)]
    pub resume: Option<i64>,
    /// Ports for targets without their own: `443`, `80,443`, `8000-8100`.
    #[arg(short, long)]
    pub ports: Option<String>,
    /// Networks a connection may go to (CIDR, range, or @file); repeatable.
    #[arg(long, value_name = "NETS")]
    pub scope: Vec<String>,
    /// Opt-out file: networks never to contact (one per line).
    #[arg(long, value_name = "FILE")]
    pub opt_out: Option<PathBuf>,
    /// Seed of the random order (printed in the summary; required with --shard).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Take shard i of n (1-based): `--shard 2/4`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// New connections per second, 0 = unlimited.
    #[arg(long)]
    pub rate: Option<u32>,
    /// New connections per second to one IPv4 /24 or IPv6 /48, 0 = unlimited.
    #[arg(long)]
    pub per_network_rate: Option<u32>,
    /// Probes in flight at once.
    #[arg(short = 'c', long)]
    pub concurrency: Option<usize>,
    /// Connect timeout in milliseconds.
    #[arg(long, value_name = "MS")]
    pub connect_timeout: Option<u64>,
    /// TLS handshake timeout in milliseconds.
    #[arg(long, value_name = "MS")]
    pub tls_timeout: Option<u64>,
    /// Timeout of one HTTP exchange in milliseconds.
    #[arg(long, value_name = "MS")]
    pub response_timeout: Option<u64>,
    /// Total budget for one service in milliseconds.
    #[arg(long, value_name = "MS")]
    pub target_timeout: Option<u64>,
    /// Extra connection attempts after a connect timeout.
    #[arg(long)]
    pub retries: Option<u32>,
    /// TCP connect only (port discovery): no TLS, no HTTP.
    #[arg(long)]
    pub discover: bool,
    /// Check pack: `netscaler` (fingerprint, build, CVE-2019-19781 probes, CVE rules) or
    /// `none` (only `GET /` and the --path requests).
    #[arg(long, default_value = "netscaler")]
    pub check: String,
    /// With --check none: request this path (byte for byte) after `/`; repeatable.
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// Nameserver for hostname targets (`ip:port`); the system resolver by default.
    #[arg(long)]
    pub resolver: Option<SocketAddr>,
    /// Write records here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The database the scan is recorded in: a SQLite file (created on first use), or a
    /// postgres://user@host/db URL (default: [store] db, `wachter.db`).
    #[arg(long, value_name = "DB")]
    pub db: Option<String>,
    /// Do not record the scan in a database.
    #[arg(long, conflicts_with = "db")]
    pub no_db: bool,
    /// Write only records of open ports (the summary still counts every service).
    #[arg(long)]
    pub open_only: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LabArgs {
    /// Loopback addresses to serve (CIDR or range inside 127.0.0.0/8).
    #[arg(long, default_value = "127.20.0.0/24")]
    pub hosts: String,
    /// Port every host listens on.
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    /// Weighted behaviours, e.g. `https=5,http=3,tarpit=1` (default: every behaviour once).
    #[arg(long)]
    pub mix: Option<String>,
    /// Fraction of addresses that get a host; the others are closed.
    #[arg(long, default_value_t = 1.0)]
    pub density: f64,
    /// Seed of the behaviour assignment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the ground-truth manifest (JSON Lines) here.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Key type of lab certificates: rsa or ecdsa.
    #[arg(long, default_value = "rsa")]
    pub key: String,
    /// Milliseconds between the bytes of a slow-drip host.
    #[arg(long, default_value_t = 500)]
    pub drip_ms: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
}

const DEMO_HELP: &str =
    "Run a lab of simulated hosts on loopback, scan it, compare every host with the
lab's ground truth, attribute the hosts to a demo constituency and render the
CVE-2019-19781 notifications for review (nothing is sent). No network and no set-up.

Then it serves the dashboard over the demo's database on a free loopback port, with a
user `demo` (role admin) and a fresh random password, and prints the URL and the
password: `Dashboard: http://127.0.0.1:PORT/ (user demo, password …)`. It serves until
Ctrl-C, also when standard output is not a terminal (a pipe, a file): pass --no-serve to
end right after the report, as scripts and tests do.

Examples:
  wachter demo
  wachter demo --no-serve --json > demo.json";

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Loopback block for the demo lab.
    #[arg(long, default_value = "127.77.0.0/27")]
    pub hosts: String,
    /// Port of the demo lab.
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// The database the demo scan is recorded in: a SQLite file or a postgres:// URL.
    #[arg(long, value_name = "DB", default_value = "wachter-demo.db")]
    pub db: String,
    /// Where the demo's notifications are rendered for review (a dry run: nothing is sent).
    #[arg(long, value_name = "DIR", default_value = "wachter-demo-mail")]
    pub mail_dir: std::path::PathBuf,
    /// End after the report instead of serving the dashboard.
    #[arg(long)]
    pub no_serve: bool,
}

/// An error with the exit code it deserves.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: exit::USAGE,
            error: error.into(),
        }
    }

    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: exit::FAILURE,
            error: error.into(),
        }
    }
}

pub async fn run(cli: Cli) -> Result<u8, Failure> {
    let config = crate::config::Config::load(cli.config.as_deref()).map_err(Failure::usage)?;
    match cli.command {
        Command::Scan(args) => crate::scan::run(*args, &config).await,
        Command::Lab(args) => crate::demo::run_lab(args).await,
        Command::Demo(args) => crate::demo::run_demo(args, &config).await,
        Command::Verify(args) => crate::demo::run_verify(args),
        Command::Report(args) => crate::cases::report(args, &config),
        Command::Diff(args) => crate::cases::diff(args, &config),
        Command::Db(args) => crate::cases::db(args, &config),
        Command::Import(args) => crate::cases::import(args, &config),
        Command::Org(args) => crate::constituency::org(args, &config),
        Command::Registry(args) => crate::constituency::registry(args, &config),
        Command::Attribute(args) => crate::constituency::attribute(args, &config).await,
        Command::Targets(args) => crate::constituency::targets(args, &config),
        Command::Campaign(args) => crate::notify::campaign(args, &config),
        Command::Outbox(args) => crate::notify::outbox(args, &config),
        Command::Export(args) => crate::notify::export(args, &config),
        Command::Triage(args) => crate::triage::run(args, &config),
        Command::Serve(args) => crate::serve::serve(args, &config).await,
        Command::User(args) => crate::serve::user(args, &config),
        Command::Token(args) => crate::serve::token(args, &config),
    }
}
