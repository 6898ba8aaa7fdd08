//! The input walk through the public API only: a collected bundle as an analyst gets it.

use std::io::{Read, Write};

use wachter_triage::input::{
    EntryKind, EntryMeta, EvidenceKind, InputProblem, Limits, ProblemKind, Visitor, evidence_kind,
    walk,
};

#[derive(Default)]
struct Collect {
    entries: Vec<(EntryMeta, Option<String>)>,
    problems: Vec<InputProblem>,
}

impl Visitor for Collect {
    fn entry(&mut self, meta: &EntryMeta, content: Option<&mut dyn Read>) -> std::io::Result<()> {
        let text = match content {
            Some(r) => {
                let mut s = String::new();
                r.read_to_string(&mut s)?;
                Some(s)
            }
            None => None,
        };
        self.entries.push((meta.clone(), text));
        Ok(())
    }

    fn problem(&mut self, problem: InputProblem) {
        self.problems.push(problem);
    }
}

#[test]
fn input_collected_bundle_reads_as_the_appliance() {
    let dir = std::env::temp_dir().join(format!("wachter-input-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bundle = dir.join("collector_P_192.0.2.1_2020-01-20.tar.gz");

    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let line = "192.0.2.9 - - [10/Jan/2020:22:28:20 +0000] \"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\" 200 1\n";
    for (path, data) in [
        (
            "collector_P_192.0.2.1_2020-01-20/var/log/httpaccess.log",
            line,
        ),
        (
            "collector_P_192.0.2.1_2020-01-20/nsconfig/ns.conf",
            "set ns config\n",
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        builder
            .append_data(&mut h, path, data.as_bytes())
            .expect("append");
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    builder
        .append_link(
            &mut h,
            "collector_P_192.0.2.1_2020-01-20/var/x",
            "../../../etc",
        )
        .expect("link");
    let gz = builder.into_inner().expect("tar").finish().expect("gz");
    std::fs::File::create(&bundle)
        .and_then(|mut f| f.write_all(&gz))
        .expect("write");

    assert_eq!(evidence_kind(&bundle).expect("kind"), EvidenceKind::TarGz);
    let mut seen = Collect::default();
    let summary = walk(&bundle, &Limits::default(), &mut seen).expect("walk");
    let _ = std::fs::remove_dir_all(&dir);

    let paths: Vec<(&str, &EntryKind)> = seen
        .entries
        .iter()
        .map(|(m, _)| (m.path.as_str(), &m.kind))
        .collect();
    assert_eq!(
        paths,
        [
            ("/var/log/httpaccess.log", &EntryKind::File),
            ("/nsconfig/ns.conf", &EntryKind::File),
            ("/var/x", &EntryKind::Symlink("../../../etc".into())),
        ]
    );
    assert_eq!(seen.entries[0].1.as_deref(), Some(line));
    assert_eq!(seen.problems.len(), 1);
    assert_eq!(seen.problems[0].kind, ProblemKind::LinkOutOfRoot);
    assert_eq!((summary.entries, summary.files), (3, 2));
}
