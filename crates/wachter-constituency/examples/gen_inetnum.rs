//! Writes a synthetic RIPE inetnum split file the size of the real one, with the role and
//! organisation files its handles point to, so the import can be timed; `--parse` then
//! times the import and prints JSON.
//!
//! ```text
//! cargo run --release -p wachter-constituency --example gen_inetnum -- \
//!     /tmp/rpsl/ripe.db.inetnum.gz [--objects 4000000] [--roles 100000] [--seed 1] \
//!     [--parse | --parse-only] [--stream]
//! ```
//!
//! The role and organisation files are written next to the inetnum file as
//! `ripe.db.role.gz` and `ripe.db.organisation.gz`. Output is deterministic for a seed.
//! Networks lie in 10.0.0.0/8, 100.64.0.0/10 and the documentation blocks; mail addresses
//! are under example.net. `--parse-only` skips generation (a clean peak RSS for the import).
//! `--stream` reads roles and organisations first and streams the networks
//! ([`RegistryImport::stream_networks`], counted, not kept) instead of collecting them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use wachter_constituency::rpsl::RegistryImport;

struct Options {
    out: PathBuf,
    objects: u64,
    roles: u64,
    seed: u64,
    generate: bool,
    parse: bool,
    stream: bool,
}

fn usage() -> String {
    "usage: gen_inetnum OUT.gz [--objects N] [--roles M] [--seed S] [--parse | --parse-only] [--stream]"
        .to_string()
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        out: PathBuf::new(),
        objects: 4_000_000,
        roles: 100_000,
        seed: 1,
        generate: true,
        parse: false,
        stream: false,
    };
    let mut out = None;
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{name} {value:?} is not a number"))
        };
        match arg.as_str() {
            "--objects" => options.objects = number("--objects")?,
            "--roles" => options.roles = number("--roles")?.max(1),
            "--seed" => options.seed = number("--seed")?,
            "--parse" => options.parse = true,
            "--parse-only" => {
                options.parse = true;
                options.generate = false;
            }
            "--stream" => options.stream = true,
            "-h" | "--help" => return Err(usage()),
            other if other.starts_with('-') => return Err(format!("unknown flag {other}")),
            other => out = Some(PathBuf::from(other)),
        }
    }
    options.out = out.ok_or_else(usage)?;
    Ok(options)
}

use wachter_core::order::SplitMix64 as Rng;

fn gzip_writer(path: &Path) -> std::io::Result<BufWriter<GzEncoder<File>>> {
    Ok(BufWriter::with_capacity(
        1 << 20,
        GzEncoder::new(File::create(path)?, Compression::fast()),
    ))
}

fn finish(writer: BufWriter<GzEncoder<File>>) -> std::io::Result<()> {
    writer
        .into_inner()
        .map_err(|e| e.into_error())?
        .finish()?
        .sync_all()
}

const COUNTRIES: [&str; 8] = ["NL", "DE", "BE", "FR", "AT", "CH", "LU", "DK"];

/// (first address, size) of the blocks networks are drawn from, with their weights.
const BLOCKS: [(u32, u32, u64); 5] = [
    (0x0a00_0000, 1 << 24, 70), // 10.0.0.0/8
    (0x6440_0000, 1 << 22, 25), // 100.64.0.0/10
    (0xc000_0200, 256, 2),      // 192.0.2.0/24
    (0xc633_6400, 256, 2),      // 198.51.100.0/24
    (0xcb00_7100, 256, 1),      // 203.0.113.0/24
];

fn write_inetnums(options: &Options, rng: &mut Rng) -> std::io::Result<()> {
    let organisations = (options.roles / 2).max(1);
    let mut out = gzip_writer(&options.out)?;
    writeln!(
        out,
        "% Synthetic RIPE Database inetnum split file (wachter gen_inetnum, seed {}).\n% Nothing here is a real network or contact.\n",
        options.seed
    )?;
    let total_weight: u64 = BLOCKS.iter().map(|b| b.2).sum();
    for i in 0..options.objects {
        let mut pick = rng.below(total_weight);
        let &(base, size, _) = BLOCKS
            .iter()
            .find(|b| {
                let hit = pick < b.2;
                pick = pick.saturating_sub(b.2);
                hit
            })
            .unwrap_or(&BLOCKS[0]);
        // Mostly aligned blocks from /20 to /30, some ranges that are no single CIDR.
        let (offset, len) = if rng.below(5) == 0 {
            let len = (4 + rng.below(1020) as u32).min(size);
            let start = (rng.below(u64::from(size - len + 1)) as u32) & !3;
            (start, len)
        } else {
            let prefix =
                [20, 22, 23, 24, 24, 24, 25, 26, 27, 28, 29, 29, 30][rng.below(13) as usize];
            let len = (1u32 << (32 - prefix)).min(size);
            let start = (rng.below(u64::from(size / len)) as u32) * len;
            (start, len)
        };
        let first = Ipv4Addr::from(base + offset);
        let last = Ipv4Addr::from(base + offset + len - 1);
        writeln!(out, "inetnum:        {first} - {last}")?;
        writeln!(out, "netname:        SYNTH-NET-{i}")?;
        writeln!(out, "descr:          Synthetic network {i}")?;
        let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
        if rng.below(50) == 0 {
            writeln!(out, "country:        {country} # {country} EU")?;
        } else {
            writeln!(out, "country:        {country}")?;
        }
        let kind = rng.below(100);
        if (kind < 85 && rng.below(2) == 0) || (85..97).contains(&kind) {
            writeln!(
                out,
                "org:            ORG-S{}-SYNTH",
                rng.below(organisations)
            )?;
        }
        writeln!(out, "admin-c:        DUMY-RIPE")?;
        writeln!(out, "tech-c:         DUMY-RIPE")?;
        if kind < 85 {
            writeln!(out, "abuse-c:        AR{}-SYNTH", rng.below(options.roles))?;
        }
        writeln!(out, "status:         ASSIGNED PA")?;
        writeln!(out, "mnt-by:         SYNTH-MNT")?;
        writeln!(out, "created:        2020-01-01T00:00:00Z")?;
        writeln!(out, "last-modified:  2024-01-01T00:00:00Z")?;
        writeln!(out, "source:         RIPE # Filtered\n")?;
    }
    finish(out)
}

fn write_roles(options: &Options, path: &Path, rng: &mut Rng) -> std::io::Result<()> {
    let mut out = gzip_writer(path)?;
    writeln!(out, "% Synthetic roles (wachter gen_inetnum).\n")?;
    for r in 0..options.roles {
        writeln!(out, "role:           Synthetic Abuse Role {r}")?;
        writeln!(out, "address:        Dummy address for AR{r}-SYNTH")?;
        writeln!(out, "e-mail:         unread@ripe.net")?;
        match rng.below(20) {
            0 => writeln!(out, "abuse-mailbox:  abuse-{r}@example.net (preferred)")?,
            1 => writeln!(
                out,
                "abuse-mailbox:  abuse-{r}@example.net <abuse-{r}@example.net>"
            )?,
            2 => writeln!(
                out,
                "abuse-mailbox:  abuse-{r}@example.net, cert-{r}@example.net,"
            )?,
            _ => writeln!(out, "abuse-mailbox:  abuse-{r}@example.net")?,
        }
        writeln!(out, "nic-hdl:        AR{r}-SYNTH")?;
        writeln!(out, "mnt-by:         SYNTH-MNT")?;
        writeln!(out, "source:         RIPE # Filtered\n")?;
    }
    finish(out)
}

fn write_organisations(options: &Options, path: &Path, rng: &mut Rng) -> std::io::Result<()> {
    let mut out = gzip_writer(path)?;
    writeln!(out, "% Synthetic organisations (wachter gen_inetnum).\n")?;
    for o in 0..(options.roles / 2).max(1) {
        writeln!(out, "organisation:   ORG-S{o}-SYNTH")?;
        writeln!(out, "org-name:       Synthetic Organisation {o}")?;
        writeln!(out, "org-type:       OTHER")?;
        writeln!(out, "abuse-c:        AR{}-SYNTH", rng.below(options.roles))?;
        writeln!(out, "mnt-ref:        SYNTH-MNT")?;
        writeln!(out, "source:         RIPE # Filtered\n")?;
    }
    finish(out)
}

/// Peak resident set size of this process, from the kernel's high-water mark.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

fn run(options: &Options) -> Result<(), String> {
    let dir = options.out.parent().unwrap_or(Path::new("."));
    let roles = dir.join("ripe.db.role.gz");
    let organisations = dir.join("ripe.db.organisation.gz");
    if options.generate {
        let started = Instant::now();
        let mut rng = Rng(options.seed);
        let failed = |path: &Path| {
            let path = path.display().to_string();
            move |e: std::io::Error| format!("{path}: {e}")
        };
        write_inetnums(options, &mut rng).map_err(failed(&options.out))?;
        write_roles(options, &roles, &mut rng).map_err(failed(&roles))?;
        write_organisations(options, &organisations, &mut rng).map_err(failed(&organisations))?;
        eprintln!(
            "wrote {} inetnums, {} roles, {} organisations in {:.1} s",
            options.objects,
            options.roles,
            (options.roles / 2).max(1),
            started.elapsed().as_secs_f64()
        );
    }
    if options.parse {
        let started = Instant::now();
        let mut import = RegistryImport::new();
        let (mut streamed, mut cidrs) = (0usize, 0usize);
        if options.stream {
            import.read_path(&roles).map_err(|e| e.to_string())?;
            import
                .read_path(&organisations)
                .map_err(|e| e.to_string())?;
            import
                .stream_networks_path(&options.out, |network| {
                    streamed += 1;
                    cidrs += network.networks().len();
                })
                .map_err(|e| e.to_string())?;
        } else {
            for path in [&options.out, &roles, &organisations] {
                import.read_path(path).map_err(|e| e.to_string())?;
            }
        }
        let data = import.finish();
        let seconds = started.elapsed().as_secs_f64();
        cidrs += data
            .networks
            .iter()
            .map(|n| n.networks().len())
            .sum::<usize>();
        let report = serde_json::json!({
            "mode": if options.stream { "stream" } else { "collect" },
            "objects": data.stats.objects,
            "networks": data.networks.len() + streamed,
            "cidrs": cidrs,
            "problems": data.problems_total,
            "seconds": (seconds * 100.0).round() / 100.0,
            "peak_rss_mb": peak_rss_mb(),
        });
        println!("{report}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match options().and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen_inetnum: {message}");
            ExitCode::FAILURE
        }
    }
}
