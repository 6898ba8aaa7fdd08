//! `wachter org`, `wachter registry`, `wachter attribute`, `wachter targets` and
//! `wachter report --by`: who owns what, and who to tell.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::anyhow;
use wachter_constituency::attribute::{Attributor, Facts, RegistryIndex, certificate_names};
use wachter_constituency::mmdb::{Geo, GeoDb};
use wachter_constituency::org::{self, Contact, ContactSource, OrgFormat, Organisation};
use wachter_constituency::securitytxt::{Contact as SecurityContact, SecurityTxt};
use wachter_core::record::ServiceRecord;
use wachter_net::probe::Target;
use wachter_store::report::{self, Owner};
use wachter_store::{AttributionRow, RegistryRow, same_name};

use crate::cases::{emit, json, open};
use crate::cli::{
    AttributeArgs, Failure, GroupBy, OrgAction, OrgAddArgs, OrgArgs, RegistryAction, RegistryArgs,
    ReportArgs, TargetsArgs,
};
use crate::config::Config;

pub fn org(args: OrgArgs, config: &Config) -> Result<u8, Failure> {
    match args.action {
        OrgAction::Add(add) => {
            let store = open(&args.db, config, false)?;
            let replace = add.replace;
            let org = organisation_from_flags(add)?;
            if !replace
                && store
                    .organisation(&org.name)
                    .map_err(Failure::failed)?
                    .is_some()
            {
                return Err(Failure::usage(anyhow!(
                    "{} exists; --replace changes it (or edit a file and `wachter org import` it)",
                    org.name
                )));
            }
            store
                .upsert_organisations(std::slice::from_ref(&org))
                .map_err(Failure::failed)?;
            emit(format!(
                "{} {} in {}\n",
                if replace { "saved" } else { "added" },
                org.name,
                store.location()
            ))
        }
        OrgAction::List { json: as_json } => {
            let store = open(&args.db, config, true)?;
            let orgs = store.organisations().map_err(Failure::failed)?;
            if as_json {
                return json(&orgs);
            }
            let mut text = format!(
                "  {:<40} {:<12} {:<13} {:>8} {:>7} {:>8}\n",
                "organisation", "sector", "tlp", "networks", "domains", "contacts"
            );
            for o in &orgs {
                let o = &o.organisation;
                let _ = writeln!(
                    text,
                    "  {:<40} {:<12} {:<13} {:>8} {:>7} {:>8}",
                    o.name,
                    o.sector.as_deref().unwrap_or("-"),
                    o.tlp.map_or("-".to_string(), |t| t.to_string()),
                    o.networks.len(),
                    o.domains.len(),
                    o.contacts.len()
                );
            }
            let _ = writeln!(text, "\n{} organisations", orgs.len());
            emit(text)
        }
        OrgAction::Show {
            name,
            json: as_json,
        } => {
            let store = open(&args.db, config, true)?;
            let Some(stored) = store.organisation(&name).map_err(Failure::failed)? else {
                return Err(Failure::usage(anyhow!("no organisation {name:?}")));
            };
            let findings: Vec<_> = store
                .findings_with_owners()
                .map_err(Failure::failed)?
                .into_iter()
                .filter(|f| {
                    f.organisation
                        .as_deref()
                        .is_some_and(|o| same_name(o) == same_name(&stored.organisation.name))
                })
                .collect();
            if as_json {
                return json(&serde_json::json!({
                    "organisation": stored,
                    "findings": findings,
                }));
            }
            let o = &stored.organisation;
            let mut text = format!("{}\n", o.name);
            let list = |items: Vec<String>| {
                if items.is_empty() {
                    "-".to_string()
                } else {
                    items.join(", ")
                }
            };
            let _ = writeln!(text, "  sector    {}", o.sector.as_deref().unwrap_or("-"));
            let _ = writeln!(
                text,
                "  tlp       {}",
                o.tlp.map_or("-".to_string(), |t| t.to_string())
            );
            let _ = writeln!(
                text,
                "  networks  {}",
                list(o.networks.iter().map(ToString::to_string).collect())
            );
            let _ = writeln!(text, "  domains   {}", list(o.domains.clone()));
            let _ = writeln!(
                text,
                "  asns      {}",
                list(o.asns.iter().map(|a| format!("AS{a}")).collect())
            );
            for c in &o.contacts {
                let _ = writeln!(
                    text,
                    "  contact   {} ({}{}, {})",
                    c.email,
                    c.role.as_str(),
                    c.language
                        .as_deref()
                        .map(|l| format!(", {l}"))
                        .unwrap_or_default(),
                    c.source.as_str()
                );
            }
            if let Some(notes) = &o.notes {
                let _ = writeln!(text, "  notes     {notes}");
            }
            let open_findings: Vec<_> = findings
                .iter()
                .filter(|f| report::is_open(&f.state))
                .collect();
            let _ = writeln!(
                text,
                "\n  {} findings, {} open (as last attributed)",
                findings.len(),
                open_findings.len()
            );
            for f in open_findings {
                let _ = writeln!(text, "    {}:{}  {}  {}", f.ip, f.port, f.cve, f.state);
            }
            emit(text)
        }
        OrgAction::Import {
            file,
            format,
            keep_going,
            json: as_json,
        } => {
            let format = match format.as_deref() {
                Some("csv") => OrgFormat::Csv,
                Some(_) => OrgFormat::Toml,
                None => OrgFormat::from_path(&file).ok_or_else(|| {
                    Failure::usage(anyhow!(
                        "{}: say --format toml or --format csv (the extension does not tell)",
                        file.display()
                    ))
                })?,
            };
            let text = read_capped(&file, org::MAX_FILE)?;
            let parsed = org::parse(&text, format, &file.display().to_string());
            if !parsed.problems.is_empty() && !keep_going {
                let mut message = format!(
                    "{}: {} problems; nothing was imported (--keep-going imports the {} sound organisations)",
                    file.display(),
                    parsed.problems.len(),
                    parsed.organisations.len()
                );
                for p in &parsed.problems {
                    let _ = write!(message, "\n  {p}");
                }
                return Err(Failure::usage(anyhow!(message)));
            }
            let store = open(&args.db, config, false)?;
            let changes = store
                .upsert_organisations(&parsed.organisations)
                .map_err(Failure::failed)?;
            if as_json {
                return json(&serde_json::json!({
                    "added": changes.added,
                    "updated": changes.updated,
                    "problems": parsed.problems,
                }));
            }
            let mut text = format!(
                "{}: {} organisations added, {} updated in {}\n",
                file.display(),
                changes.added,
                changes.updated,
                store.location()
            );
            if !parsed.problems.is_empty() {
                let _ = writeln!(text, "skipped {}:", parsed.problems.len());
                for p in &parsed.problems {
                    let _ = writeln!(text, "  {p}");
                }
            }
            emit(text)
        }
        OrgAction::Export { format, output } => {
            let store = open(&args.db, config, true)?;
            let orgs: Vec<Organisation> = store
                .organisations()
                .map_err(Failure::failed)?
                .into_iter()
                .map(|o| o.organisation)
                .collect();
            let text = match format.as_str() {
                "csv" => org::to_csv(&orgs),
                _ => org::to_toml(&orgs),
            }
            .map_err(|e| Failure::failed(anyhow!(e)))?;
            match output {
                Some(path) => std::fs::write(&path, text)
                    .map(|_| crate::exit::OK)
                    .map_err(|e| Failure::failed(anyhow!("{}: {e}", path.display()))),
                None => emit(text),
            }
        }
        OrgAction::Remove { name } => {
            let store = open(&args.db, config, true)?;
            if store.remove_organisation(&name).map_err(Failure::failed)? {
                emit(format!("removed {name}\n"))
            } else {
                Err(Failure::usage(anyhow!("no organisation {name:?}")))
            }
        }
    }
}

fn organisation_from_flags(add: OrgAddArgs) -> Result<Organisation, Failure> {
    let usage = |e: String| Failure::usage(anyhow!(e));
    let networks = add
        .networks
        .iter()
        .map(|n| org::parse_network(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let asns = add
        .asns
        .iter()
        .map(|a| {
            a.trim_start_matches("AS")
                .trim_start_matches("as")
                .parse::<u32>()
                .map_err(|_| format!("{a:?} is not an AS number"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let contacts = add
        .contacts
        .iter()
        .map(|c| {
            let mut parts = c.splitn(3, ':');
            let (Some(role), Some(email)) = (parts.next(), parts.next()) else {
                return Err(format!("{c:?}: write ROLE:EMAIL[:LANGUAGE]"));
            };
            Ok(Contact {
                email: email.to_string(),
                role: role.parse()?,
                language: parts.next().map(str::to_string),
                name: None,
                source: ContactSource::Manual,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let organisation = Organisation {
        name: add.name,
        sector: add.sector,
        tlp: add.tlp.map(|t| t.parse()).transpose().map_err(usage)?,
        networks,
        domains: add.domains,
        asns,
        contacts,
        notes: add.notes,
    };
    org::validate(organisation).map_err(usage)
}

/// Reads a whole file, refusing one larger than `cap` (imported files are untrusted).
pub(crate) fn read_capped(path: &std::path::Path, cap: usize) -> Result<String, Failure> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(anyhow!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::usage(anyhow!("{}: {e}", path.display())))?;
    if bytes.len() > cap {
        return Err(Failure::usage(anyhow!(
            "{}: larger than {} MiB; refused",
            path.display(),
            cap >> 20
        )));
    }
    String::from_utf8(bytes)
        .map_err(|e| Failure::usage(anyhow!("{}: not UTF-8 text ({e})", path.display())))
}

/// `wachter report --by org|sector|asn`.
pub fn report_by_owner(args: &ReportArgs, by: GroupBy, config: &Config) -> Result<u8, Failure> {
    let store = open(&args.db, config, true)?;
    let findings = store.findings_with_owners().map_err(Failure::failed)?;
    let owner = match by {
        GroupBy::Org => Owner::Organisation,
        GroupBy::Sector => Owner::Sector,
        GroupBy::Asn => Owner::Asn,
    };
    let report = report::by_owner(&findings, owner, args.cve.as_deref());
    if args.json {
        return json(&report);
    }
    let mut text = String::new();
    if findings.iter().all(|f| f.method.is_none()) && !findings.is_empty() {
        text.push_str("no service has been attributed yet: run `wachter attribute` first\n\n");
    }
    let heading = match owner {
        Owner::Organisation => "organisation",
        Owner::Sector => "sector",
        Owner::Asn => "AS",
    };
    let _ = writeln!(
        text,
        "  {:<44} {:>6} {:>10} {:>9} {:>8} {:>8} {:>9}",
        heading, "open", "vulnerable", "mitigated", "patched", "services", "overlaps"
    );
    for g in &report.groups {
        let _ = writeln!(
            text,
            "  {:<44} {:>6} {:>10} {:>9} {:>8} {:>8} {:>9}",
            g.owner, g.open, g.vulnerable, g.mitigated, g.patched, g.services, g.overlapping
        );
    }
    if !report.unattributed.is_empty() {
        let _ = writeln!(
            text,
            "\nopen findings no organisation claims ({}):",
            report.unattributed.len()
        );
        for f in &report.unattributed {
            let network = match (f.asn, &f.holder) {
                (Some(asn), Some(holder)) => format!("AS{asn} {holder}"),
                (Some(asn), None) => format!("AS{asn}"),
                _ => String::new(),
            };
            let _ = writeln!(
                text,
                "  {}:{}  {}  {}  {}  {}",
                f.ip,
                f.port,
                f.cve,
                f.state,
                network,
                if f.abuse_mailboxes.is_empty() {
                    match f.method {
                        None => "never attributed".to_string(),
                        Some(_) => "no contact known".to_string(),
                    }
                } else {
                    f.abuse_mailboxes.join(", ")
                }
            );
        }
    }
    emit(text)
}

/// `wachter registry import`: RIPE split files into the store, networks streamed in
/// batches so memory stays flat in the number of networks.
pub fn registry(args: RegistryArgs, config: &Config) -> Result<u8, Failure> {
    use wachter_constituency::rpsl::{RegistryImport, RegistryNetwork};
    let RegistryAction::Import {
        files,
        strict,
        json: as_json,
    } = args.action;
    for file in &files {
        if !file.is_file() {
            return Err(Failure::usage(anyhow!("{}: no such file", file.display())));
        }
    }
    let store = open(&args.db, config, false)?;
    // Roles and organisations first: networks resolve against them as they stream past.
    // What a file holds is read from its first object, not its name.
    let mut network_files = Vec::new();
    let mut other_files = Vec::new();
    for file in &files {
        match first_class(file)?.as_deref() {
            Some("role" | "organisation") => other_files.push(file),
            Some("inetnum" | "inet6num") => network_files.push(file),
            // Anything else (a full dump, aut-num…) is streamed: memory stays flat, and a
            // network read before its role is reported as dangling.
            _ => network_files.push(file),
        }
    }
    // An import replaces the previous one whole: without a network file it would leave none.
    if network_files.is_empty() {
        return Err(Failure::usage(anyhow!(
            "no network file (ripe.db.inetnum.gz, ripe.db.inet6num.gz) among the files, only roles and organisations: an import replaces the previous one, so give the network files with them"
        )));
    }
    let names = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let import_id = store
        .begin_registry_import("ripe", &names)
        .map_err(Failure::failed)?;
    let outcome = (|| -> Result<(u64, wachter_constituency::rpsl::RegistryData), Failure> {
        let mut import = RegistryImport::new();
        for file in &other_files {
            import
                .read_path(file)
                .map_err(|e| Failure::usage(anyhow!("{e}")))?;
        }
        let mut written = 0u64;
        let mut batch: Vec<RegistryRow> = Vec::with_capacity(REGISTRY_BATCH);
        let mut failure: Option<Failure> = None;
        let flush = |batch: &mut Vec<RegistryRow>, failure: &mut Option<Failure>| {
            if failure.is_none()
                && !batch.is_empty()
                && let Err(e) = store.write_registry_networks(import_id, batch)
            {
                *failure = Some(Failure::failed(e));
            }
            batch.clear();
        };
        let mut add = |network: RegistryNetwork,
                       batch: &mut Vec<RegistryRow>,
                       failure: &mut Option<Failure>| {
            for net in network.networks() {
                batch.push(registry_row(&network, net));
                written += 1;
            }
            if batch.len() >= REGISTRY_BATCH {
                flush(batch, failure);
            }
        };
        for file in &network_files {
            import
                .stream_networks_path(file, |network| add(network, &mut batch, &mut failure))
                .map_err(|e| Failure::usage(anyhow!("{e}")))?;
        }
        let data = import.finish();
        for network in data.networks.iter().cloned() {
            add(network, &mut batch, &mut failure);
        }
        flush(&mut batch, &mut failure);
        if let Some(failure) = failure {
            return Err(failure);
        }
        Ok((written, data))
    })();
    let (written, data) = match outcome {
        Ok(done) => done,
        Err(failure) => {
            let _ = store.abort_registry_import(import_id);
            return Err(failure);
        }
    };
    if strict && data.problems_total > 0 {
        let _ = store.abort_registry_import(import_id);
        let mut message = format!(
            "{} problems; nothing was imported (without --strict the {written} sound networks are)",
            data.problems_total
        );
        for problem in data.problems.iter().take(50) {
            let _ = write!(message, "\n  {problem}");
        }
        return Err(Failure::usage(anyhow!(message)));
    }
    if let Err(e) =
        store.finish_registry_import(import_id, written as usize, data.skipped_objects as usize)
    {
        let _ = store.abort_registry_import(import_id);
        return Err(Failure::failed(e));
    }
    if as_json {
        return json(&serde_json::json!({
            "networks": written,
            "objects": data.stats.objects,
            "skipped_objects": data.skipped_objects,
            "problems_total": data.problems_total,
            "problems": data.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    }
    let mut text = format!(
        "imported {written} networks from {} objects into {} ({} objects skipped, {} problems)\n",
        data.stats.objects,
        store.location(),
        data.skipped_objects,
        data.problems_total
    );
    for problem in data.problems.iter().take(50) {
        let _ = writeln!(text, "  {problem}");
    }
    if data.problems_total > 50 {
        let _ = writeln!(
            text,
            "  … {} more (--json lists up to 10,000)",
            data.problems_total - 50
        );
    }
    emit(text)
}

/// The class of a split file's first well-formed object (`None` for an empty file).
fn first_class(path: &std::path::Path) -> Result<Option<String>, Failure> {
    use wachter_constituency::rpsl;
    let reader = rpsl::open(path).map_err(|e| Failure::usage(anyhow!("{e}")))?;
    for object in rpsl::objects(reader, &rpsl::source_name(path)).take(100) {
        match object {
            Ok(object) => return Ok(Some(object.class().to_string())),
            Err(e) if e.is_fatal() => return Err(Failure::usage(anyhow!("{e}"))),
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// Registry rows per store transaction.
const REGISTRY_BATCH: usize = 10_000;

fn registry_row(
    network: &wachter_constituency::rpsl::RegistryNetwork,
    net: ipnet::IpNet,
) -> RegistryRow {
    RegistryRow {
        network: net.to_string(),
        netname: network.netname.clone(),
        country: network.country.as_deref().map(str::to_string),
        org_handle: network.org.as_deref().map(str::to_string),
        org_name: network.org_name.as_deref().map(str::to_string),
        abuse_mailboxes: network.abuse_mailboxes.to_vec(),
        abuse_source: network.abuse_source.to_string(),
    }
}

/// `wachter attribute`: every recorded service, its owner and how that was decided.
/// What `wachter attribute` did.
pub struct AttributionSummary {
    pub services: usize,
    pub claimed: u64,
    pub by_method: BTreeMap<&'static str, u64>,
    pub contested: u64,
    pub organisations: usize,
    pub registry_networks: usize,
    pub problems: Vec<String>,
    pub security_txt_found: u64,
}

pub async fn attribute(args: AttributeArgs, config: &Config) -> Result<u8, Failure> {
    let summary = attribute_services(&args, config).await?;
    let AttributionSummary {
        services: attributed,
        claimed,
        by_method: tally,
        contested,
        organisations,
        registry_networks,
        problems,
        security_txt_found,
    } = summary;
    if args.json {
        return json(&serde_json::json!({
            "services": attributed,
            "claimed": claimed,
            "by_method": tally,
            "contested": contested,
            "organisations": organisations,
            "registry_networks": registry_networks,
            "domain_problems": problems,
            "security_txt_contacts": security_txt_found,
        }));
    }
    let mut text = format!(
        "attributed {} services: {} to one of {} organisations, {} contested by another organisation\n",
        attributed, claimed, organisations, contested
    );
    for (method, count) in &tally {
        let _ = writeln!(text, "  {method:<12} {count:>8}");
    }
    if registry_networks == 0 {
        text.push_str(
            "no registry data (wachter registry import ripe.db.inetnum.gz …) for abuse contacts\n",
        );
    }
    if args.security_txt {
        let _ = writeln!(
            text,
            "security.txt gave a contact for {security_txt_found} services"
        );
    }
    for problem in &problems {
        let _ = writeln!(text, "not used: {problem}");
    }
    emit(text)
}

/// Decides and stores every service's owner (see `ATTRIBUTE_HELP`); prints nothing.
pub async fn attribute_services(
    args: &AttributeArgs,
    config: &Config,
) -> Result<AttributionSummary, Failure> {
    let store = open(&args.db, config, true)?;
    let stored = store.organisations().map_err(Failure::failed)?;
    let organisations: Vec<Organisation> = stored.iter().map(|o| o.organisation.clone()).collect();
    let (attributor, problems) = Attributor::new(&organisations);
    let organisations_with_contacts: std::collections::HashSet<i64> = stored
        .iter()
        .filter(|o| !o.organisation.contacts.is_empty())
        .map(|o| o.id)
        .collect();
    for problem in &problems {
        tracing::warn!(%problem, "organisation domain not used");
    }

    let mut networks = Vec::new();
    store
        .registry_networks(|id, network| {
            if let Ok(net) = network.parse::<ipnet::IpNet>() {
                networks.push((net, id));
            }
        })
        .map_err(Failure::failed)?;
    let registry_networks = networks.len();
    let registry = RegistryIndex::from_networks(networks);

    let geo = if args.mmdb.is_empty() {
        None
    } else {
        Some(GeoDb::open(&args.mmdb).map_err(Failure::usage)?)
    };

    // Services a page at a time: memory holds the indexes and one page, not the store.
    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut contested = 0u64;
    let mut security_txt_found = 0u64;
    let mut attributed = 0usize;
    let mut after = 0i64;
    loop {
        let services = store
            .services_page(after, ATTRIBUTE_PAGE)
            .map_err(Failure::failed)?;
        let Some(last) = services.last() else {
            break;
        };
        after = last.service_id;
        attributed += services.len();
        // Only the registry rows some service falls in are read back.
        let mut wanted: Vec<i64> = services
            .iter()
            .filter_map(|s| s.ip.parse::<IpAddr>().ok())
            .flat_map(|ip| registry.matches(ip).into_iter().map(|(_, id)| id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let registry_rows = store.registry_rows(&wanted).map_err(Failure::failed)?;

        let ptr_names = if args.reverse_dns {
            reverse_names(&services, args.resolver, &REVERSE_DNS_TIMEOUT).await?
        } else {
            HashMap::new()
        };

        let mut rows = Vec::with_capacity(services.len());
        for service in &services {
            let ip: Option<IpAddr> = service.ip.parse().ok();
            let geo_answer = match (&geo, ip) {
                (Some(geo), Some(ip)) => geo.lookup(ip),
                _ => Geo::default(),
            };
            let cert_names = certificate_names(service.cert_subject.as_deref(), &service.cert_sans);
            let no_names = Vec::new();
            let ptr = ptr_names.get(&service.ip).unwrap_or(&no_names);
            let facts = Facts {
                ip,
                hostname: &service.hostname,
                cert_names: &cert_names,
                ptr_names: ptr,
                asn: geo_answer.asn,
            };
            let claim = attributor.claim(&facts);
            // The most specific registry network names the network; the abuse contact comes
            // from it or, when it has none, from the nearest covering network that has one.
            let registry_matches = ip.map(|ip| registry.matches(ip)).unwrap_or_default();
            let registry_hit = registry_matches.first().copied();
            let registry_row = registry_hit.and_then(|(_, id)| registry_rows.get(&id));
            let abuse_row = registry_matches
                .iter()
                .filter_map(|(_, id)| registry_rows.get(id))
                .find(|r| !r.abuse_mailboxes.is_empty());
            let method = match (&claim, registry_row) {
                (Some(c), _) => c.method.as_str(),
                (None, Some(_)) => "registry",
                (None, None) => "none",
            };
            *tally.entry(method).or_default() += 1;
            if claim.as_ref().is_some_and(|c| !c.contested_by.is_empty()) {
                contested += 1;
            }
            let detail = serde_json::json!({
                "name": claim.as_ref().and_then(|c| c.name.clone()),
                "contested_by": claim.as_ref().map(|c| c.contested_by.iter().map(|&i| organisations[i].name.clone()).collect::<Vec<_>>()).unwrap_or_default(),
                "certificate_names": cert_names,
                "ptr_names": ptr,
                "registry": registry_row.map(|r| serde_json::json!({
                    "netname": r.netname, "org": r.org_handle, "org_name": r.org_name,
                    "abuse_source": abuse_row.map(|a| a.abuse_source.clone()),
                })),
                "geo_databases": geo_answer.sources.iter().map(|d| d.attribution()).collect::<Vec<_>>(),
            });
            rows.push(AttributionRow {
                service_id: service.service_id,
                organisation_id: claim.as_ref().map(|c| stored[c.organisation].id),
                method: method.to_string(),
                matched: claim.as_ref().map(|c| c.matched.clone()),
                also_matched: claim.as_ref().map_or(0, |c| c.contested_by.len() as i64),
                asn: geo_answer.asn.map(i64::from),
                holder: geo_answer.holder.clone(),
                country: geo_answer
                    .country
                    .clone()
                    .or_else(|| registry_row.and_then(|r| r.country.clone())),
                registry_network: registry_hit.map(|(net, _)| net.to_string()),
                abuse_mailboxes: abuse_row
                    .map(|r| r.abuse_mailboxes.clone())
                    .unwrap_or_default(),
                detail,
            });
        }
        if args.security_txt {
            // Services whose owner gives no one to tell.
            let needy: Vec<(usize, Target)> = rows
                .iter()
                .enumerate()
                .filter(|(_, row)| {
                    let org_contacts = row
                        .organisation_id
                        .is_some_and(|id| organisations_with_contacts.contains(&id));
                    !org_contacts && row.abuse_mailboxes.is_empty()
                })
                .filter_map(|(i, row)| {
                    let service = &services[i];
                    let name = security_txt_name(service, &row.detail)?;
                    Some((
                        i,
                        Target {
                            ip: service.ip.parse().ok()?,
                            port: service.port,
                            hostname: Some(name),
                        },
                    ))
                })
                .collect();
            let found = fetch_security_txt(&args.scope, config, needy).await?;
            for (i, url, txt) in found {
                let row = &mut rows[i];
                let contact = txt.best_contact();
                if let Some(SecurityContact::Email(email)) = &contact {
                    row.abuse_mailboxes.push(email.clone());
                    security_txt_found += 1;
                }
                if let Some(detail) = row.detail.as_object_mut() {
                    detail.insert(
                        "security_txt".into(),
                        serde_json::json!({
                            "url": url,
                            "contact": contact.map(|c| format!("{c:?}")),
                            "errors": txt.errors().map(|f| f.code.as_str()).collect::<Vec<_>>(),
                        }),
                    );
                }
            }
        }
        for chunk in rows.chunks(10_000) {
            store.write_attributions(chunk).map_err(Failure::failed)?;
        }
    }

    let claimed: u64 = tally
        .iter()
        .filter(|(m, _)| !matches!(**m, "registry" | "none"))
        .map(|(_, n)| n)
        .sum();
    Ok(AttributionSummary {
        services: attributed,
        claimed,
        by_method: tally,
        contested,
        organisations: organisations.len(),
        registry_networks,
        problems,
        security_txt_found,
    })
}

/// The name to ask a service for its security.txt under: the name it was scanned under,
/// else a (non-wildcard) certificate name, else its PTR name.
fn security_txt_name(
    service: &wachter_store::ServiceFacts,
    detail: &serde_json::Value,
) -> Option<String> {
    let from_list = |key: &str| {
        detail[key]
            .as_array()?
            .iter()
            .filter_map(|n| n.as_str())
            .find(|n| !n.starts_with("*."))
            .map(str::to_string)
    };
    Some(service.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| from_list("certificate_names"))
        .or_else(|| from_list("ptr_names"))
        .filter(|name| wachter_constituency::domains::Name::parse(name).is_ok())
}

/// Fetches `/.well-known/security.txt` from each target through the scan's own machinery:
/// the scope guard, rate limits and deadlines apply, requests are recorded like any probe.
async fn fetch_security_txt(
    scope: &[String],
    config: &Config,
    targets: Vec<(usize, Target)>,
) -> Result<Vec<(usize, String, SecurityTxt)>, Failure> {
    use std::sync::Arc;
    use wachter_core::addr::IpRange;
    use wachter_core::check::{RequestSpec, StaticPlan};
    use wachter_core::scope::ScopePolicy;
    use wachter_net::connect::{ConnectOptions, Connector};
    use wachter_net::probe::{ProbeConfig, Prober};
    let scope: Vec<IpRange> = scope
        .iter()
        .map(|s| {
            s.parse::<IpRange>()
                .map_err(|e| Failure::usage(anyhow!("--scope {s}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let opt_out = match &config.scan.opt_out_file {
        Some(path) => wachter_scan::inputs::read_network_list(path).map_err(Failure::usage)?,
        None => Vec::new(),
    };
    let policy = Arc::new(ScopePolicy::new(&scope, &opt_out));
    let connector = Arc::new(Connector::new(policy, ConnectOptions::default()));
    let probe = ProbeConfig {
        check: Arc::new(StaticPlan::new(vec![RequestSpec::get(
            "security_txt",
            SECURITY_TXT_PATH,
        )])),
        target_timeout: std::time::Duration::from_secs(15),
        ..ProbeConfig::default()
    };
    let prober = Arc::new(
        Prober::new(connector, probe)
            .map_err(|e| Failure::failed(anyhow!("cannot set up OpenSSL: {e}")))?,
    );
    let now = time::OffsetDateTime::now_utc();
    let mut tasks = tokio::task::JoinSet::new();
    let mut found = Vec::new();
    let mut collect = |done: Result<(usize, String, ServiceRecord), tokio::task::JoinError>| {
        let Ok((i, url, record)) = done else {
            return;
        };
        let Some(body) = record
            .http
            .iter()
            .find(|x| x.name == "security_txt" && x.status == Some(200))
            .and_then(|x| x.body.as_ref())
        else {
            return;
        };
        found.push((i, url.clone(), SecurityTxt::parse(&body.0, &url, now)));
    };
    for (i, target) in targets {
        let prober = prober.clone();
        tasks.spawn(async move {
            let url = format!(
                "https://{}{SECURITY_TXT_PATH}",
                target.hostname.as_deref().unwrap_or_default()
            );
            (i, url, prober.probe(&target).await)
        });
        while tasks.len() >= 64 {
            if let Some(done) = tasks.join_next().await {
                collect(done);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        collect(done);
    }
    found.sort_by_key(|(i, _, _)| *i);
    Ok(found)
}

const SECURITY_TXT_PATH: &str = "/.well-known/security.txt";

/// Services attributed (and written) per round.
const ATTRIBUTE_PAGE: i64 = 20_000;

/// The deadline of one reverse lookup.
const REVERSE_DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// PTR names of every distinct address, looked up concurrently (at most 64 in flight, one
/// deadline each). Names that are not valid host names are dropped.
async fn reverse_names(
    services: &[wachter_store::ServiceFacts],
    resolver: Option<std::net::SocketAddr>,
    timeout: &std::time::Duration,
) -> Result<HashMap<String, Vec<String>>, Failure> {
    use wachter_net::dns::{Dns, DnsConfig, ReverseResolution};
    let config = match resolver {
        Some(addr) => DnsConfig::Server(addr),
        None => DnsConfig::System,
    };
    let dns = Dns::new(&config, *timeout, 64).map_err(Failure::usage)?;
    let mut addresses: Vec<&str> = services.iter().map(|s| s.ip.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    let mut tasks = tokio::task::JoinSet::new();
    let mut names = HashMap::new();
    for address in addresses {
        let Ok(ip) = address.parse::<IpAddr>() else {
            continue;
        };
        let dns = dns.clone();
        let key = address.to_string();
        tasks.spawn(async move { (key, dns.reverse(ip).await) });
        // Keep the number of tasks bounded too (the resolver bounds queries).
        while tasks.len() >= 256 {
            if let Some(Ok((key, answer))) = tasks.join_next().await {
                collect_ptr(&mut names, key, answer);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok((key, answer)) = done {
            collect_ptr(&mut names, key, answer);
        }
    }
    fn collect_ptr(
        names: &mut HashMap<String, Vec<String>>,
        key: String,
        answer: ReverseResolution,
    ) {
        if let ReverseResolution::Names(found) = answer {
            names.insert(key, found);
        }
    }
    Ok(names)
}

/// `wachter targets`: the networks of organisations, sectors or a country, merged, one
/// CIDR per line (a target file for `wachter scan @FILE`); counts go to stderr.
pub fn targets(args: TargetsArgs, config: &Config) -> Result<u8, Failure> {
    use wachter_constituency::delegated::{self, OnMalformed};
    use wachter_core::addr::{IpRange, RangeSet};
    if args.orgs.is_empty() && args.sectors.is_empty() && args.country.is_none() {
        return Err(Failure::usage(anyhow!(
            "say which part of the constituency: --org NAME, --sector SECTOR, or --country CC --delegated FILE"
        )));
    }
    let mut ranges: Vec<IpRange> = Vec::new();
    if !args.orgs.is_empty() || !args.sectors.is_empty() {
        let store = open(&args.db, config, true)?;
        let orgs = store.organisations().map_err(Failure::failed)?;
        for name in &args.orgs {
            let Some(org) = orgs
                .iter()
                .find(|o| same_name(&o.organisation.name) == same_name(name))
            else {
                return Err(Failure::usage(anyhow!("no organisation {name:?}")));
            };
            if org.organisation.networks.is_empty() {
                eprintln!("wachter: {} lists no networks", org.organisation.name);
            }
            ranges.extend(
                org.organisation
                    .networks
                    .iter()
                    .map(|n| IpRange::from_net(*n)),
            );
        }
        for sector in &args.sectors {
            let members: Vec<_> = orgs
                .iter()
                .filter(|o| {
                    o.organisation
                        .sector
                        .as_deref()
                        .is_some_and(|s| same_name(s) == same_name(sector))
                })
                .collect();
            if members.is_empty() {
                return Err(Failure::usage(anyhow!(
                    "no organisation of sector {sector:?}"
                )));
            }
            for org in members {
                ranges.extend(
                    org.organisation
                        .networks
                        .iter()
                        .map(|n| IpRange::from_net(*n)),
                );
            }
        }
    }
    if let Some(country) = &args.country {
        for file in &args.delegated {
            let reader = std::fs::File::open(file)
                .map(std::io::BufReader::new)
                .map_err(|e| Failure::usage(anyhow!("{}: {e}", file.display())))?;
            let found = delegated::country_networks(
                reader,
                &file.display().to_string(),
                country,
                delegated::DELEGATED,
                OnMalformed::Refuse,
            )
            .map_err(|e| Failure::usage(anyhow!("{e}")))?;
            ranges.extend(found.addresses.ranges().iter().copied());
        }
    }
    let merged = RangeSet::from_ranges(ranges);
    let mut text = String::new();
    let (mut networks, mut addresses) = (0u64, 0u128);
    for range in merged.ranges() {
        if args.ipv4 && range.family() != wachter_core::addr::Family::V4 {
            continue;
        }
        addresses = addresses.saturating_add(range.len());
        for net in range.to_cidrs() {
            let _ = writeln!(text, "{net}");
            networks += 1;
        }
    }
    eprintln!("wachter: {networks} networks, {addresses} addresses");
    emit(text)
}
