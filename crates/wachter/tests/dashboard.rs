//! The dashboard as a person uses it, in Debian's headless Chromium driven over WebDriver
//! (chromedriver): log in through the form, see the trend chart drawn, open a host's
//! evidence, download the hosts CSV; and a scanned host whose headers, pages and certificate
//! names carry script and event-handler payloads stays inert on every page that shows it.
//!
//! Everything is a real process on loopback: a lab (127.90/16 and 127.91/16) scanned by
//! `wachter scan` into a SQLite store, `wachter serve` on a free port, chromedriver on
//! another, Chromium started by chromedriver with a fresh profile.
//!
//! The browser comes from `CI_CHROMEDRIVER` and `CI_CHROMIUM` (`.ci/browser` sets them),
//! else `chromedriver` on the PATH; without it the tests are skipped with a message, unless
//! `CI_BROWSER_REQUIRED=1` (as in CI), when they fail.
//!
//! Artefacts (kept after the run, passed or not): a screenshot of every step in
//! `target/test-artefacts/dashboard/<test>-<step>.png`; on a failure also
//! `<test>-<step>-failure.png` and `<test>-<step>-failure.html` (the page source); the logs
//! of chromedriver and `wachter serve` as `<test>-chromedriver.log` and `<test>-serve.log`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use wachter_core::record::ServiceRecord;
use wachter_lab::netscaler::hostile;
use wachter_lab::{Behaviour, HostSpec, Lab, truth};

mod common;
use common::*;

/// Where screenshots, failure pages and process logs are kept.
const ARTEFACTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/test-artefacts/dashboard"
);
const PASSWORD: &str = "a long passphrase for the browser test";
/// The whole of one browser test, lab and scans included.
const TEST_DEADLINE: Duration = Duration::from_secs(300);
/// One wait for the page (a navigation, the chart, a download).
const WAIT: Duration = Duration::from_secs(20);
/// How long a process has to start answering on its port.
const START: Duration = Duration::from_secs(30);

/// Counts the painted (non-transparent) pixels of the trend chart's canvas; -1 without one.
const CANVAS_PIXELS: &str = r#"
const canvas = document.querySelector('#trend-chart canvas');
if (!canvas || !canvas.width || !canvas.height) { return -1; }
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0;
for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { painted++; } }
return painted;
"#;

/// What a payload would have changed had it run, and what markup it would have left.
const INERTNESS: &str = r#"
const handlers = ['onerror', 'onload', 'onclick', 'onmouseover', 'onfocus', 'onanimationstart'];
return {
  title: document.title,
  ready: document.readyState,
  pwned: typeof window.__wachter_pwned !== 'undefined',
  handlers: document.querySelectorAll(handlers.map(h => '[' + h + ']').join(',')).length,
  onerror_or_onload: document.querySelectorAll('[onerror],[onload]').length,
  injected: document.querySelectorAll(
    'img[src="x"], #pwn, iframe, object, embed, base, meta[http-equiv="refresh" i], '
    + '[href^="javascript:" i], [src^="javascript:" i], [action^="javascript:" i]'
  ).length,
  // Every script but ours (`/assets/` of this origin): under the dashboard's CSP an injected
  // one would not run, so only its presence shows the page rendered scanned markup.
  foreign_scripts: [...document.scripts]
    .filter(s => !s.src.startsWith(location.origin + '/assets/')).length,
  text: document.body ? document.body.innerText : '',
};
"#;

// ---------------------------------------------------------------------------------------
// The browser, the server and the lab.

/// chromedriver and the browser it starts, as configured for this machine.
struct BrowserTools {
    chromedriver: PathBuf,
    /// `None`: chromedriver looks for Chrome itself.
    chromium: Option<PathBuf>,
}

/// The browser, or `None` (after saying why) when the tests should skip.
fn browser_tools() -> Option<BrowserTools> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let chromedriver = from_env("CI_CHROMEDRIVER").or_else(|| on_path("chromedriver"));
    let chromium = from_env("CI_CHROMIUM");
    let missing = match (&chromedriver, &chromium) {
        (None, _) => Some("no chromedriver (set CI_CHROMEDRIVER or put it on the PATH)".into()),
        (Some(driver), _) if !driver.is_file() => Some(format!("{} is missing", driver.display())),
        (_, Some(browser)) if !browser.is_file() => {
            Some(format!("{} is missing", browser.display()))
        }
        _ => None,
    };
    if let Some(reason) = missing {
        if std::env::var("CI_BROWSER_REQUIRED").as_deref() == Ok("1") {
            panic!("CI_BROWSER_REQUIRED=1 but {reason}");
        }
        eprintln!("skipped: {reason} (run `eval \"$(bash .ci/browser)\"`)");
        return None;
    }
    Some(BrowserTools {
        chromedriver: chromedriver?,
        chromium,
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn artefacts() -> PathBuf {
    let dir = PathBuf::from(ARTEFACTS);
    std::fs::create_dir_all(&dir).expect("cannot create target/test-artefacts/dashboard");
    dir.canonicalize().unwrap_or(dir)
}

/// Whether an HTTP server answers `GET path` on 127.0.0.1:`port` (any status).
fn answers_http(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut start = [0u8; 7];
    stream.read_exact(&mut start).is_ok() && &start == b"HTTP/1."
}

/// A child process, killed on drop together with the processes it started (its own
/// process group: chromedriver's browser must not outlive a failed test).
struct Process {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Process {
        let file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { child, name, log }
    }

    /// The port the process says it listens on: the digits after the first `marker` in its
    /// log (it was started on port 0, so no other process can take the port meanwhile).
    async fn port_from_log(&mut self, marker: &str) -> u16 {
        let deadline = Instant::now() + START;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let port = log.split_once(marker).and_then(|(_, rest)| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u16>().ok().filter(|p| *p != 0)
            });
            if let Some(port) = port {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before listening: {log}", self.name);
            }
            if Instant::now() > deadline {
                panic!(
                    "{} named no port within {START:?} ({marker:?}): {log}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the process answers HTTP on `port`, failing early if it exits.
    async fn wait_until_answering(&mut self, port: u16, path: &str) {
        let deadline = Instant::now() + START;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before answering: {}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let path = path.to_string();
            if tokio::task::spawn_blocking(move || answers_http(port, &path))
                .await
                .unwrap_or(false)
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not answer on 127.0.0.1:{port} within {START:?}: {}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The group we made at spawn (its id is the child's): the child and what it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wachter serve` over `db` on a free loopback port.
struct Dashboard {
    _process: Process,
    base: String,
}

async fn serve(test: &str, db: &str) -> Dashboard {
    let mut process = Process::spawn(
        "wachter serve",
        &mut wachter_command(&["serve", "--db", db, "--listen", "127.0.0.1:0"]),
        artefacts().join(format!("{test}-serve.log")),
    );
    // It prints the address it got: `... http://127.0.0.1:PORT/`.
    let port = process.port_from_log("http://127.0.0.1:").await;
    process.wait_until_answering(port, "/login").await;
    Dashboard {
        _process: process,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// `wachter scan` of the lab's hosts into `db`, the records also written to `records`;
/// returns the records.
async fn scan(db: &str, scope: &str, lab: &Lab, records: &Path) -> Vec<ServiceRecord> {
    let targets = lab
        .manifest()
        .iter()
        .map(|h| format!("{}\n", truth::target_line(h)))
        .collect::<String>();
    let targets = temp(
        &format!(
            "{}-targets.txt",
            records.file_stem().unwrap_or_default().to_string_lossy()
        ),
        &targets,
    );
    let out = wachter_async(&[
        "scan",
        "--scope",
        scope,
        "--ports",
        "18443",
        "--db",
        db,
        "-o",
        &records.display().to_string(),
        &format!("@{}", targets.display()),
    ])
    .await;
    assert_exit(&out, 0);
    std::fs::read_to_string(records)
        .expect("the scan's records")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a wachter.service/1 record"))
        .collect()
}

/// Asserts the scan classified every lab host exactly (the lab's ground truth).
fn assert_classified(lab: &Lab, records: &[ServiceRecord]) {
    for host in lab.manifest() {
        let record = records.iter().find(|r| r.ip == host.ip);
        let diffs = truth::differences(host, record);
        assert!(
            diffs.is_empty(),
            "{} {}: {}",
            host.ip,
            host.behaviour,
            diffs.join("; ")
        );
    }
}

/// The sender a campaign needs to queue its messages, set for one child process only (no
/// test runs `wachter outbox send`: nothing is ever sent).
const SENDER: &str = "Test CERT <cert@test-cert.test>";

/// `wachter campaign new --cve CVE-2019-19781 --json` over `db` with `more` arguments;
/// returns its JSON (`campaign_id`, `messages`, …).
async fn queue_campaign(db: &str, more: &[&str]) -> Value {
    let args: Vec<String> = [
        "campaign",
        "new",
        "--cve",
        "CVE-2019-19781",
        "--json",
        "--db",
        db,
    ]
    .iter()
    .chain(more)
    .map(|a| a.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wachter_command(&args)
            .env("WACHTER_NOTIFY__FROM", SENDER)
            .stdin(Stdio::null())
            .output()
            .expect("running wachter campaign new")
    })
    .await
    .expect("the campaign's thread");
    assert_exit(&out, 0);
    let campaign: Value = serde_json::from_slice(&out.stdout).expect("the campaign as JSON");
    assert!(
        campaign["messages"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "the campaign queued no message: {campaign:#}"
    );
    campaign
}

/// `wachter org add NAME --network NETWORK …` then `wachter attribute`, over `db`; returns
/// the organisation's id.
async fn own_and_attribute(db: &str, name: &str, network: &str, more: &[&str]) -> i64 {
    let mut args = vec!["org", "add", name, "--network", network, "--db", db];
    args.extend(more);
    assert_exit(&wachter_async(&args).await, 0);
    assert_exit(&wachter_async(&["attribute", "--db", db]).await, 0);
    let organisations = wachter_json(&["org", "list", "--json", "--db", db]).await;
    organisations
        .as_array()
        .and_then(|all| all.iter().find(|o| o["name"] == name))
        .and_then(|o| o["id"].as_i64())
        .unwrap_or_else(|| panic!("no organisation {name:?} in {organisations:#}"))
}

/// One Chromium session over a chromedriver of its own.
struct Browser {
    client: Client,
    test: &'static str,
    downloads: PathBuf,
    profile: PathBuf,
    _driver: Process,
}

impl Browser {
    async fn start(tools: &BrowserTools, test: &'static str) -> Browser {
        let scratch =
            std::env::temp_dir().join(format!("wachter-browser-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let (profile, downloads) = (scratch.join("profile"), scratch.join("downloads"));
        for dir in [&profile, &downloads] {
            std::fs::create_dir_all(dir).expect("browser scratch folder");
        }
        let mut driver = Process::spawn(
            "chromedriver",
            Command::new(&tools.chromedriver).args([
                "--port=0",
                "--allowed-ips=127.0.0.1",
                "--log-level=INFO",
            ]),
            artefacts().join(format!("{test}-chromedriver.log")),
        );
        let port = driver.port_from_log("started successfully on port ").await;
        driver.wait_until_answering(port, "/status").await;

        let mut chrome = json!({
            "args": [
                "--headless=new",
                "--no-sandbox", // CI runs as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--window-size=1280,1024",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        });
        if let Some(binary) = &tools.chromium {
            chrome["binary"] = json!(binary.display().to_string());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome);
        // An alert a payload opens stays open for `get_alert_text` to find.
        capabilities.insert("unhandledPromptBehavior".into(), json!("ignore"));
        capabilities.insert(
            "timeouts".into(),
            json!({ "script": 10_000, "pageLoad": 30_000, "implicit": 0 }),
        );
        let client = tokio::time::timeout(
            START,
            ClientBuilder::native()
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .unwrap_or_else(|_| panic!("no browser session within {START:?}"))
        .unwrap_or_else(|e| {
            panic!(
                "chromedriver gave no session: {e}\n{}",
                std::fs::read_to_string(&driver.log).unwrap_or_default()
            )
        });
        Browser {
            client,
            test,
            downloads,
            profile: scratch,
            _driver: driver,
        }
    }

    fn artefact(&self, name: &str) -> PathBuf {
        artefacts().join(format!("{}-{name}", self.test))
    }

    /// Keeps a screenshot of the page as `<test>-<step>.png`.
    async fn screenshot(&self, step: &str) {
        match self.client.screenshot().await {
            Ok(png) => {
                let path = self.artefact(&format!("{step}.png"));
                if let Err(e) = std::fs::write(&path, png) {
                    eprintln!("cannot write {}: {e}", path.display());
                }
            }
            Err(e) => eprintln!("no screenshot at {step}: {e}"),
        }
    }

    /// Keeps the page as it is (screenshot and source), then fails the test.
    async fn fail(&self, step: &str, what: String) -> ! {
        self.screenshot(&format!("{step}-failure")).await;
        let source = self.client.source().await.unwrap_or_default();
        let _ = std::fs::write(self.artefact(&format!("{step}-failure.html")), source);
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        panic!(
            "{} at {step} ({url}): {what} (screenshot and page source in {})",
            self.test,
            artefacts().display()
        );
    }

    async fn check(&self, step: &str, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(step, what()).await;
        }
    }

    async fn ok<T, E: std::fmt::Display>(&self, step: &str, what: &str, r: Result<T, E>) -> T {
        match r {
            Ok(value) => value,
            Err(e) => self.fail(step, format!("{what}: {e}")).await,
        }
    }

    async fn js(&self, step: &str, script: &str) -> Value {
        let result = self.client.execute(script, Vec::new()).await;
        self.ok(step, "running a script", result).await
    }

    /// Waits (at most [`WAIT`]) until `script` returns true.
    async fn wait_for(&self, step: &str, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Value::Bool(true)) = self.client.execute(script, Vec::new()).await {
                return;
            }
            if Instant::now() > deadline {
                self.fail(step, format!("waited {WAIT:?} for {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_load(&self, step: &str) {
        self.wait_for(
            step,
            "the page to load",
            "return document.readyState === 'complete'",
        )
        .await;
    }

    async fn goto(&self, step: &str, url: &str) {
        let result = self.client.goto(url).await;
        self.ok(step, &format!("opening {url}"), result).await;
        self.wait_for_load(step).await;
    }

    /// Opens the hosts list and waits for its table with links to the hosts.
    async fn open_hosts(&self, step: &str, base: &str) {
        self.goto(step, &format!("{base}/hosts")).await;
        self.wait_for(
            step,
            "the hosts table with links",
            "return document.querySelectorAll('table#hosts a.host-link').length > 0",
        )
        .await;
    }

    /// Follows the link of the host at `ip` in the hosts table, and waits for its page with
    /// the evidence.
    async fn open_host(&self, step: &str, ip: &str) {
        let link = format!(
            "//table[@id='hosts']//tr[@data-service-id][contains(., '{ip}')]\
             //a[contains(concat(' ', normalize-space(@class), ' '), ' host-link ')]"
        );
        self.click(step, &format!("the link of {ip}"), Locator::XPath(&link))
            .await;
        self.wait_for(
            step,
            &format!("the page of {ip} with its evidence"),
            "return /^\\/hosts\\/\\d+$/.test(location.pathname) && document.readyState === 'complete' \
             && !!document.querySelector('section#evidence pre.raw')",
        )
        .await;
    }

    async fn click(&self, step: &str, what: &str, locator: Locator<'_>) {
        let found = self.client.find(locator).await;
        let element = self.ok(step, &format!("finding {what}"), found).await;
        let clicked = element.click().await;
        self.ok(step, &format!("clicking {what}"), clicked).await;
    }

    async fn type_into(&self, step: &str, css: &str, text: &str) {
        let found = self.client.find(Locator::Css(css)).await;
        let field = self.ok(step, &format!("finding {css}"), found).await;
        let typed = field.send_keys(text).await;
        self.ok(step, &format!("typing into {css}"), typed).await;
    }

    /// Logs in through the form as a person does, starting from the overview's address
    /// (which sends an anonymous visitor to the login page), and lands on the overview.
    async fn log_in(&self, base: &str, user: &str) {
        self.goto("01-login", &format!("{base}/")).await;
        self.wait_for(
            "01-login",
            "the login form",
            "return location.pathname === '/login' && !!document.querySelector('form#login')",
        )
        .await;
        self.type_into("01-login", "form#login input[name=username]", user)
            .await;
        self.type_into("01-login", "form#login input[name=password]", PASSWORD)
            .await;
        self.screenshot("01-login").await;
        self.click(
            "01-login",
            "the login button",
            Locator::Css("form#login button[type=submit]"),
        )
        .await;
        self.wait_for(
            "02-overview",
            "the overview after logging in",
            "return location.pathname === '/' && document.readyState === 'complete' \
             && !!document.querySelector('section#totals')",
        )
        .await;
    }

    /// Waits for a file to appear whole in the download folder (Chromium writes
    /// `*.crdownload` first, then renames it).
    async fn downloaded(&self, step: &str, name: &str) -> String {
        let path = self.downloads.join(name);
        let deadline = Instant::now() + WAIT;
        loop {
            let partial = std::fs::read_dir(&self.downloads)
                .map(|dir| {
                    dir.flatten()
                        .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"))
                })
                .unwrap_or(false);
            if !partial && let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
            if Instant::now() > deadline {
                let present: Vec<String> = std::fs::read_dir(&self.downloads)
                    .map(|dir| {
                        dir.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                self.fail(
                    step,
                    format!("no {name} downloaded within {WAIT:?} (found {present:?})"),
                )
                .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What shows that something scanned ran or left markup on the page: a payload changed
    /// the title or set its global, an alert is open, an element carries an event handler
    /// or a `javascript:` URL. Also returns the page's visible text.
    async fn inertness_problems(&self, step: &str) -> (Vec<String>, String) {
        let mut problems = Vec::new();
        if let Ok(text) = self.client.get_alert_text().await {
            problems.push(format!("an alert is open: {text:?}"));
            let _ = self.client.dismiss_alert().await;
        }
        self.wait_for_load(step).await;
        let page = self.js(step, INERTNESS).await;
        let title = page["title"].as_str().unwrap_or_default();
        // What a payload sets it to; a page may quote a payload in its title, as text.
        if title == "PWNED" {
            problems.push(format!("a payload set the title: {title:?}"));
        }
        if page["pwned"] != json!(false) {
            problems.push(format!("a payload set window.{}", hostile::MARKER));
        }
        for key in [
            "onerror_or_onload",
            "handlers",
            "injected",
            "foreign_scripts",
        ] {
            if page[key] != json!(0) {
                problems.push(format!(
                    "scanned markup reached the DOM: {key} = {}",
                    page[key]
                ));
            }
        }
        let text = page["text"].as_str().unwrap_or_default().to_string();
        (problems, text)
    }

    /// Asserts the page is inert (see [`Browser::inertness_problems`]); returns its text.
    async fn assert_inert(&self, step: &str) -> String {
        let (problems, text) = self.inertness_problems(step).await;
        self.check(step, problems.is_empty(), || problems.join("; "))
            .await;
        text
    }

    /// Scrolls `css` into view and keeps a screenshot of it as `<test>-<step>.png`.
    async fn screenshot_of(&self, step: &str, css: &str) {
        let script = format!(
            "const e = document.querySelector({}); if (e) {{ e.scrollIntoView(); }} return !!e;",
            json!(css)
        );
        let _ = self.client.execute(&script, Vec::new()).await;
        self.screenshot(step).await;
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The path of `href` (an absolute URL or a path).
fn path_of(href: &str) -> &str {
    href.split_once("://").map_or(href, |(_, rest)| {
        rest.find('/').map_or("/", |slash| &rest[slash..])
    })
}

/// Runs a browser test within [`TEST_DEADLINE`], or skips it when there is no browser (see
/// [`browser_tools`]).
async fn with_browser<F: std::future::Future<Output = ()>>(test: impl FnOnce(BrowserTools) -> F) {
    let Some(tools) = browser_tools() else {
        return;
    };
    tokio::time::timeout(TEST_DEADLINE, test(tools))
        .await
        .expect("the browser test hung");
}

/// Makes `user` an admin of `db`, serves the dashboard over it, and logs a browser in as
/// them through the form (landing on the overview).
async fn logged_in(
    tools: &BrowserTools,
    test: &'static str,
    db: &str,
    user: &str,
) -> (Dashboard, Browser) {
    add_user(db, user, "admin", PASSWORD);
    let dashboard = serve(test, db).await;
    let browser = Browser::start(tools, test).await;
    browser.log_in(&dashboard.base, user).await;
    (dashboard, browser)
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_logs_in_sees_the_trend_opens_a_host_and_downloads_the_csv() {
    with_browser(person).await;
}

async fn person(tools: BrowserTools) {
    let db = fresh_sqlite("dashboard-person");
    // Two scans, so the trend has two points: the first finds two appliances vulnerable,
    // the second finds one of them patched since.
    let first = [
        ("127.90.0.1", Behaviour::NsVulnerable),
        ("127.90.0.2", Behaviour::NsVulnerable),
        ("127.90.0.3", Behaviour::NsPatched),
        ("127.90.0.4", Behaviour::NsMitigated),
    ];
    let mut second = first;
    second[0].1 = Behaviour::NsPatched;
    for (round, hosts) in [first, second].iter().enumerate() {
        let lab = lab_at(hosts).await;
        let records = work_dir().join(format!("dashboard-person-{round}.jsonl"));
        let found = scan(&db, "127.90.0.0/16", &lab, &records).await;
        assert_classified(&lab, &found);
        lab.stop().await;
    }

    // a. Log in through the form, land on the overview.
    let (dashboard, browser) = logged_in(&tools, "person", &db, "anna").await;
    let base = dashboard.base.as_str();

    // b. The trend chart is drawn from the data: a canvas with painted pixels.
    browser
        .wait_for(
            "02-overview",
            "the trend chart to be drawn",
            r#"return !!document.querySelector('#trend-chart[data-drawn="true"]')"#,
        )
        .await;
    let painted = browser.js("02-overview", CANVAS_PIXELS).await;
    browser
        .check("02-overview", painted.as_i64().unwrap_or(-1) > 0, || {
            format!("the trend chart's canvas is blank ({painted} painted pixels)")
        })
        .await;
    let counts = browser
        .js(
            "02-overview",
            "return document.querySelector('table#counts')?.innerText ?? ''",
        )
        .await;
    let counts = counts.as_str().unwrap_or_default();
    browser
        .check("02-overview", counts.contains("CVE-2019-19781"), || {
            format!("the counts table names no CVE: {counts:?}")
        })
        .await;
    browser.screenshot("02-overview").await;

    // c. From the hosts list, open the host still vulnerable and see its evidence.
    browser.open_hosts("03-hosts", base).await;
    browser.screenshot("03-hosts").await;
    browser.open_host("04-host", "127.90.0.2").await;
    let host = browser
        .js(
            "04-host",
            "return { h1: document.querySelector('h1')?.innerText ?? '', \
                      evidence: document.querySelector('section#evidence')?.innerText ?? '', \
                      findings: document.querySelector('section#findings')?.innerText ?? '' }",
        )
        .await;
    let text = |key: &str| host[key].as_str().unwrap_or_default().to_string();
    browser
        .check("04-host", text("h1").contains("127.90.0.2:18443"), || {
            format!("the heading names another host: {:?}", text("h1"))
        })
        .await;
    for expected in ["/vpn/../vpns/", "[global]"] {
        browser
            .check("04-host", text("evidence").contains(expected), || {
                format!("the evidence lacks {expected:?}: {:?}", text("evidence"))
            })
            .await;
    }
    browser
        .check("04-host", text("findings").contains("vulnerable"), || {
            format!("the findings do not say vulnerable: {:?}", text("findings"))
        })
        .await;
    browser.screenshot("04-host").await;
    browser
        .screenshot_of("04-host-evidence", "section#evidence")
        .await;

    // d. Download the hosts list as CSV with the button on the hosts page.
    browser.goto("05-download", &format!("{base}/hosts")).await;
    let href = browser
        .js(
            "05-download",
            "return document.querySelector('a#download-csv')?.getAttribute('href') ?? ''",
        )
        .await;
    let href = href.as_str().unwrap_or_default().to_string();
    browser
        .check(
            "05-download",
            path_of(&href).starts_with("/api/v1/hosts?") && href.contains("format=csv"),
            || format!("the download link is {href:?}"),
        )
        .await;
    browser
        .click(
            "05-download",
            "the CSV download",
            Locator::Css("a#download-csv"),
        )
        .await;
    let csv = browser.downloaded("05-download", "wachter-hosts.csv").await;
    browser.screenshot("05-download").await;
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    for column in ["ip", "port", "cve", "state"] {
        assert!(
            header.iter().any(|c| c == column),
            "the CSV header {header:?} lacks {column:?}:\n{csv}"
        );
    }
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    for (ip, _) in &second {
        assert!(
            rows.iter()
                .any(|row| row.split(',').any(|cell| cell.trim_matches('"') == *ip)),
            "the CSV lists no row for {ip}:\n{csv}"
        );
    }
    let vulnerable = rows
        .iter()
        .filter(|row| row.contains("127.90.0.2") && row.contains("CVE-2019-19781"))
        .count();
    assert_eq!(
        vulnerable, 1,
        "one CVE-2019-19781 finding for 127.90.0.2:\n{csv}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_scanned_content_stays_inert_in_the_browser() {
    with_browser(hostile_host).await;
}

async fn hostile_host(tools: BrowserTools) {
    let db = fresh_sqlite("dashboard-hostile");
    let lab = lab_at(&[
        ("127.91.0.1", Behaviour::NsHostile),
        ("127.91.0.2", Behaviour::NsVulnerable),
    ])
    .await;
    let records = work_dir().join("dashboard-hostile.jsonl");
    let found = scan(&db, "127.91.0.0/16", &lab, &records).await;
    // The payloads change nothing about the classification: a vulnerable NetScaler.
    assert_classified(&lab, &found);
    let hostile_host: &HostSpec = &lab.manifest()[0];
    assert_eq!(hostile_host.behaviour, Behaviour::NsHostile);
    lab.stop().await;
    // Its owner's name and notes carry payloads too, and so does the campaign that told
    // it and the triage report its owner sent: every list and detail page has some.
    let owner = format!("Owner {}", hostile::NOTE);
    let organisation = own_and_attribute(
        &db,
        &owner,
        "127.91.0.0/24",
        &[
            "--contact",
            "security:owner@hostile.test",
            "--notes",
            hostile::BODY,
        ],
    )
    .await;
    let campaign = queue_campaign(&db, &["--name", hostile::SERVER]).await;
    let campaign_id = campaign["campaign_id"].as_i64().expect("the campaign's id");
    let report = work_dir().join("dashboard-hostile-report.json");
    std::fs::write(&report, hostile_triage_report().to_string()).expect("the hostile report");
    let imported = wachter_json(&[
        "triage",
        "--import",
        &report.display().to_string(),
        "--label",
        hostile::LINK,
        "--host",
        "127.91.0.1:18443",
        "--json",
        "--db",
        &db,
    ])
    .await;
    let imported = imported["id"].as_i64().expect("the imported report's id");
    let (dashboard, browser) = logged_in(&tools, "hostile", &db, "hanna").await;
    let base = dashboard.base.as_str();
    browser.assert_inert("02-overview").await;
    browser.screenshot("02-overview").await;

    browser.open_hosts("03-hosts", base).await;
    let text = browser.assert_inert("03-hosts").await;
    browser
        .check("03-hosts", text.contains("127.91.0.1"), || {
            format!("the hosts list does not show the hostile host: {text:?}")
        })
        .await;
    browser.screenshot("03-hosts").await;

    browser.open_host("04-host", "127.91.0.1").await;
    let text = browser.assert_inert("04-host").await;
    browser.screenshot("04-host").await;
    browser
        .screenshot_of("04-host-certificate", "section#certificate")
        .await;
    browser
        .screenshot_of("04-host-evidence", "section#evidence")
        .await;
    // The payloads are on the page, as text a person can read.
    let sections = browser
        .js(
            "04-host",
            "return { certificate: document.querySelector('section#certificate')?.innerText ?? '', \
                      evidence: document.querySelector('section#evidence')?.innerText ?? '' }",
        )
        .await;
    let section = |key: &str| sections[key].as_str().unwrap_or_default().to_string();
    browser
        .check("04-host", text.contains("<script>"), || {
            format!("no <script> is visible as text: {text:?}")
        })
        .await;
    for (where_, expected) in [
        ("certificate", hostile::CERT_CN),
        ("certificate", hostile::CERT_SANS[1]),
        ("evidence", hostile::SERVER),
        ("evidence", hostile::NOTE),
        ("evidence", "onerror="),
    ] {
        browser
            .check("04-host", section(where_).contains(expected), || {
                format!(
                    "the {where_} section does not show {expected:?} as text: {:?}",
                    section(where_)
                )
            })
            .await;
    }

    // Back to the overview, the hostile host now among the newest findings.
    browser.goto("05-overview", &format!("{base}/")).await;
    browser.assert_inert("05-overview").await;
    browser.screenshot("05-overview").await;

    // Every other page of the navigation, and the scan's own page (its diff lists hosts).
    let links = browser
        .js(
            "06-pages",
            "return [...document.querySelectorAll('nav a[href^=\"/\"]')].map(a => a.getAttribute('href'))",
        )
        .await;
    let mut pages: Vec<String> = links
        .as_array()
        .map(|links| {
            links
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    browser.goto("06-pages", &format!("{base}/scans")).await;
    let scan_page = browser
        .js(
            "06-pages",
            "return document.querySelector('a[href^=\"/scans/\"]')?.getAttribute('href') ?? ''",
        )
        .await;
    pages.extend(
        scan_page
            .as_str()
            .filter(|p| !p.is_empty())
            .map(String::from),
    );
    browser
        .check("06-pages", pages.len() >= 6, || {
            format!("the navigation has too few pages: {pages:?}")
        })
        .await;
    for page in &pages {
        let step = format!("06-page{}", page.replace('/', "-"));
        browser.goto(&step, &format!("{base}{page}")).await;
        browser.assert_inert(&step).await;
    }

    // The pages of the hostile owner, campaign and report: inert, their payloads shown as
    // text (so the check above ran over pages that do carry them).
    for (page, expected) in [
        ("/organisations".to_string(), "onerror="),
        (format!("/organisations/{organisation}"), "onerror="),
        (format!("/organisations/{organisation}"), "<base href="),
        ("/campaigns".into(), "<script>"),
        (format!("/campaigns/{campaign_id}"), "<script>"),
        ("/triage".into(), "javascript:"),
        (format!("/triage/{imported}"), "<script>"),
        (format!("/triage/{imported}"), "onerror="),
    ] {
        let step = format!("07-page{}", page.replace('/', "-"));
        browser.goto(&step, &format!("{base}{page}")).await;
        let text = browser.assert_inert(&step).await;
        browser
            .check(&step, text.contains(expected), || {
                format!("{page} does not show {expected:?} as text: {text:?}")
            })
            .await;
        browser.screenshot(&step).await;
    }
    browser.close().await;
}

/// A triage report of the shape `wachter triage --json` writes (a compromise, so the
/// import accepts it), with payloads in every text the dashboard shows.
fn hostile_triage_report() -> Value {
    json!({
        "evidence": hostile::BODY,
        "kind": "directory",
        "verdict": "compromised",
        "reason": hostile::SERVER,
        "hits": [{
            "rule": hostile::NOTE,
            "severity": "compromise",
            "cves": [hostile::CERT_CN],
            "source": hostile::LINK,
            "description": hostile::BODY,
            "path": hostile::CERT_SANS[1],
            "line": 1,
            "excerpt": hostile::BODY,
        }],
        "more_hits": { hostile::SERVER: 2 },
        "coverage": [{
            "path": hostile::NOTE,
            "kind": "http_access",
            "compressed": false,
            "lines": 1,
            "first": hostile::SERVER,
            "last": hostile::LINK,
        }],
        "problems": [{ "path": hostile::LINK, "kind": "path_traversal", "detail": hostile::BODY }],
        "more_problems": {},
        "summary": { "entries": 1, "files": 1, "bytes_read": 1 },
        "rules": 1,
        "areas": [hostile::SERVER],
    })
}

/// The inertness check itself, on a page that does render the payloads as markup (a
/// `data:` URL, no CSP): it must see them run, or the test above proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inertness_check_sees_payloads_that_run() {
    with_browser(inertness_selftest).await;
}

async fn inertness_selftest(tools: BrowserTools) {
    let browser = Browser::start(&tools, "selftest").await;
    // Without a CSP the payloads run; under the dashboard's own CSP (as a meta element)
    // nothing runs, and the markup checks alone must still see what was rendered raw.
    let no_policy = String::new();
    let dashboard_policy = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        wachter_web::security::CONTENT_SECURITY_POLICY
    );
    let markup = ["onerror_or_onload", "injected", "foreign_scripts"];
    for (step, policy, ran) in [
        ("01-unescaped", &no_policy, true),
        ("02-unescaped-under-csp", &dashboard_policy, false),
    ] {
        let page = format!(
            "<!DOCTYPE html><html><head>{policy}<title>unescaped</title></head><body>\
             <pre>{}</pre><p>{}</p><p>{}</p></body></html>",
            hostile::BODY,
            hostile::NOTE,
            hostile::CERT_CN
        );
        browser
            .goto(step, &format!("data:text/html,{}", percent_encode(&page)))
            .await;
        let (problems, _) = browser.inertness_problems(step).await;
        browser.screenshot(step).await;
        let all = problems.join("; ");
        for expected in markup {
            assert!(
                all.contains(expected),
                "{step}: the check missed {expected:?}: {all}"
            );
        }
        for effect in ["set the title", "set window.__wachter_pwned"] {
            assert_eq!(
                all.contains(effect),
                ran,
                "{step}: payloads {} have run: {all}",
                if ran { "should" } else { "should not" }
            );
        }
    }
    browser.close().await;
}

/// `text` with everything but unreserved characters percent-encoded (for a `data:` URL).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every API answer — lists, details, CSV, the two outbox actions, 400, 401 and 404 — is
/// what the OpenAPI document says, checked by the OpenAPI projects' own code
/// (`openapi-spec-validator` on the document, `openapi-core` on each request and response;
/// `tests/interop/validate_openapi.py`) against a real `wachter serve` over a scanned lab
/// owned by an organisation, a campaign that told it, a saved and an imported triage
/// report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answer_matches_the_openapi_document() {
    let Some(python) = wachter_notify::testing::interop_python() else {
        return;
    };
    let db = fresh_sqlite("dashboard-api");
    let lab = lab_at(&[
        ("127.92.0.1", Behaviour::NsVulnerable),
        ("127.92.0.2", Behaviour::NsPatched),
        ("127.92.0.3", Behaviour::Https),
    ])
    .await;
    let records = work_dir().join("dashboard-api.jsonl");
    scan(&db, "127.92.0.0/16", &lab, &records).await;
    lab.stop().await;
    // The lab's owner, and a campaign that queued a message to it (never sent).
    let organisation = own_and_attribute(
        &db,
        "Lab Owner",
        "127.92.0.0/24",
        &[
            "--sector",
            "healthcare",
            "--contact",
            "security:security@lab-owner.test",
            "--notes",
            "runs the lab",
        ],
    )
    .await;
    let campaign = queue_campaign(&db, &[]).await;
    let campaign_id = campaign["campaign_id"].as_i64().expect("the campaign's id");
    let ticket = query_texts(&db, "SELECT ticket FROM messages ORDER BY id")
        .and_then(|row| row.into_iter().next())
        .expect("the queued message's ticket");
    let evidence = work_dir().join("dashboard-api-evidence");
    std::fs::create_dir_all(evidence.join("var/log")).expect("an evidence folder");
    std::fs::write(evidence.join("var/log/httpaccess.log"), "").expect("an empty log");
    let triage = wachter(&[
        "triage",
        &evidence.display().to_string(),
        "--save",
        "--db",
        &db,
    ]);
    assert!(
        triage.status.code().is_some_and(|c| [0, 5].contains(&c)),
        "triage --save: {}",
        String::from_utf8_lossy(&triage.stderr)
    );
    // The same report as its owner would send it, imported about the vulnerable host.
    let report = work_dir().join("dashboard-api-report.json");
    let owners_run = wachter(&["triage", &evidence.display().to_string(), "--json"]);
    std::fs::write(&report, &owners_run.stdout).expect("the owner's report");
    let imported = wachter_json(&[
        "triage",
        "--import",
        &report.display().to_string(),
        "--host",
        "127.92.0.1:18443",
        "--json",
        "--db",
        &db,
    ])
    .await;
    let imported = imported["id"].as_i64().expect("the imported report's id");
    // An analyst's write token: the outbox actions need both.
    add_user(&db, "api", "analyst", PASSWORD);
    let token = wachter_json(&[
        "token", "add", "--user", "api", "--scope", "write", "--json", "--db", &db,
    ])
    .await;
    let token = token["token"].as_str().expect("a token secret").to_string();
    let dashboard = serve("api", &db).await;

    let host = query_ints(&db, "SELECT id FROM services WHERE ip = '127.92.0.1'")
        .and_then(|ids| ids.first().copied())
        .expect("the vulnerable host's service");
    let paths = [
        "/api/v1/overview".to_string(),
        "/api/v1/hosts".into(),
        "/api/v1/hosts?cve=CVE-2019-19781&state=open&network=127.92.0.0/24&since=2020-01-01&limit=5".into(),
        "/api/v1/hosts?format=csv".into(),
        format!("/api/v1/hosts/{host}"),
        "/api/v1/hosts/999999".into(),
        "/api/v1/hosts?state=bogus".into(),
        "/api/v1/organisations".into(),
        "/api/v1/organisations?format=csv".into(),
        "/api/v1/organisations/999999".into(),
        "/api/v1/organisations?sector=healthcare".into(),
        format!("/api/v1/organisations/{organisation}"),
        "malformed:/api/v1/organisations/x".into(),
        format!("/api/v1/hosts?organisation={organisation}&format=csv"),
        "/api/v1/scans".into(),
        "/api/v1/scans?format=csv".into(),
        "/api/v1/scans/1".into(),
        "malformed:/api/v1/scans/x".into(),
        "/api/v1/scans/-1".into(),
        "/api/v1/campaigns".into(),
        "/api/v1/campaigns?format=csv".into(),
        "/api/v1/campaigns/999999".into(),
        format!("/api/v1/campaigns/{campaign_id}"),
        format!("/api/v1/campaigns/{campaign_id}/messages"),
        format!("/api/v1/campaigns/{campaign_id}/messages?format=csv"),
        format!("/api/v1/hosts?campaign={campaign_id}"),
        "/api/v1/triage".into(),
        "/api/v1/triage?format=csv".into(),
        "/api/v1/triage/1".into(),
        format!("/api/v1/triage/{imported}"),
        "/api/v1/me".into(),
        "anonymous:/api/v1/me".into(),
        "anonymous:/api/v1/hosts".into(),
        // The outbox actions: refused without a token, unknown tickets, then a retry (of a
        // message that is queued, so nothing changes) and a cancel.
        format!("anonymous:post:/api/v1/messages/{ticket}/cancel"),
        "post:/api/v1/messages/NO-SUCH-1/retry".into(),
        format!("post:/api/v1/messages/{ticket}/retry"),
        format!("post:/api/v1/messages/{ticket}/cancel"),
    ];
    let script = wachter_notify::testing::interop_scripts().join("validate_openapi.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&dashboard.base)
        .arg(&token)
        .args(&paths)
        .output()
        .expect("running the OpenAPI validator");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the API does not match its document:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(&stdout).expect("the validator's JSON summary");
    assert_eq!(summary["openapi"], "3.1.0");
    let checked = &summary["checked"];
    assert_eq!(checked.as_object().map(|o| o.len()), Some(paths.len()));
    for (path, status) in [
        (format!("/api/v1/hosts/{host}"), 200),
        ("/api/v1/hosts/999999".into(), 404),
        ("/api/v1/hosts?state=bogus".into(), 400),
        ("/api/v1/triage/1".into(), 200),
        (format!("/api/v1/triage/{imported}"), 200),
        ("anonymous:/api/v1/me".into(), 401),
        (format!("/api/v1/organisations/{organisation}"), 200),
        ("malformed:/api/v1/organisations/x".into(), 400),
        ("malformed:/api/v1/scans/x".into(), 400),
        ("/api/v1/scans/-1".into(), 400),
        (format!("/api/v1/campaigns/{campaign_id}"), 200),
        (format!("/api/v1/campaigns/{campaign_id}/messages"), 200),
        (format!("/api/v1/hosts?campaign={campaign_id}"), 200),
        (
            format!("anonymous:post:/api/v1/messages/{ticket}/cancel"),
            401,
        ),
        ("post:/api/v1/messages/NO-SUCH-1/retry".into(), 404),
        (format!("post:/api/v1/messages/{ticket}/retry"), 200),
        (format!("post:/api/v1/messages/{ticket}/cancel"), 200),
    ] {
        assert_eq!(checked[&path], status, "{path}");
    }
    // The cancel reached the store (the validator checked only the answer's shape).
    assert_eq!(
        query_texts(
            &db,
            &format!("SELECT state FROM messages WHERE ticket = '{ticket}'")
        ),
        Some(vec!["cancelled".to_string()])
    );
}
