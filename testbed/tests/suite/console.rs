//! The lab console in a real browser: headless Chromium, driven over WebDriver by
//! chromedriver, clicks through the demo's world as a lab instructor would. Skipped when
//! chromedriver is not installed, unless `TENANTLESS_REQUIRE_BROWSER=1` (CI sets it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and reads its stdout until a line containing `marker`; returns the
/// process and that line.
fn start_until(mut command: Command, marker: &str) -> (Killed, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains(marker) {
            return (child, line);
        }
    }
    panic!("{command:?} ended without printing {marker:?}");
}

/// Runs a `tenantless` command with `--serve` on a free port until its console is up;
/// returns the process and the console's base URL.
fn serve(mut tenantless: Command) -> (Killed, String) {
    tenantless.args(["--serve", "127.0.0.1:0"]);
    let (process, line) = start_until(tenantless, "Lab console on ");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (process, base)
}

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("TENANTLESS_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    path.exists().then_some(path)
}

fn chromium() -> String {
    std::env::var("TENANTLESS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Headless Chromium under chromedriver, or `None` (the test is skipped) when
/// chromedriver is not installed and the browser is not required.
async fn browser() -> Option<(Killed, Client)> {
    let Some(driver) = chromedriver() else {
        assert!(
            std::env::var("TENANTLESS_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "TENANTLESS_REQUIRE_BROWSER=1 but chromedriver is not installed"
        );
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let mut command = Command::new(driver);
    command.arg("--port=0");
    let (process, started) = start_until(command, "started successfully on port");
    let port: u16 = started
        .rsplit("port ")
        .next()
        .and_then(|p| p.trim().trim_end_matches('.').parse().ok())
        .unwrap_or_else(|| panic!("no port in {started:?}"));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1000"],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session in headless Chromium");
    Some((process, client))
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// The texts of the elements `css` finds. A page that changes while they are read (a
/// redirect landing, a playing clock's reload) is read again.
async fn texts(c: &Client, css: &str) -> Vec<String> {
    read_all(c, css, |e| async move { e.text().await }).await
}

/// An attribute of the elements `css` finds (empty where absent), read as [`texts`].
async fn attrs(c: &Client, css: &str, name: &str) -> Vec<String> {
    read_all(c, css, |e| async move {
        e.attr(name).await.map(Option::unwrap_or_default)
    })
    .await
}

async fn read_all<F, Fut>(c: &Client, css: &str, read: F) -> Vec<String>
where
    F: Fn(fantoccini::elements::Element) -> Fut,
    Fut: std::future::Future<Output = Result<String, fantoccini::error::CmdError>>,
{
    let mut last = None;
    for _ in 0..20 {
        let found = match c.find_all(Locator::Css(css)).await {
            Ok(found) => found,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let mut out = Vec::new();
        let mut stale = None;
        for e in found {
            match read(e).await {
                Ok(v) => out.push(v),
                Err(e) => {
                    stale = Some(e);
                    break;
                }
            }
        }
        match stale {
            None => return out,
            Some(e) => last = Some(e),
        }
    }
    panic!("{css}: {last:?}");
}

async fn click_link(c: &Client, text: &str) {
    c.find(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

/// What the timeline says of the mark last clicked.
async fn mark_detail(c: &Client) -> String {
    texts(c, ".timeline-block .detail").await.join("")
}

/// Waits (a bounded while) for the page that has `css`: the browser loads pages on its
/// own time, not the world's.
async fn wait_for(c: &Client, css: &str) {
    c.wait()
        .at_most(std::time::Duration::from_secs(60))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
}

/// Clicks what `at` finds.
async fn click(c: &Client, at: Locator<'_>) {
    c.find(at).await.unwrap().click().await.unwrap();
}

/// Waits (a bounded while) for the page where `xpath` finds something.
async fn wait_for_xpath(c: &Client, xpath: &str, what: &str) {
    c.wait()
        .at_most(std::time::Duration::from_secs(60))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// Verifies an expectation in the console's journal view.
async fn journal_holds(c: &Client, base: &str, expect: &str) -> bool {
    let query = percent_encoding::utf8_percent_encode(expect, percent_encoding::NON_ALPHANUMERIC);
    c.goto(&format!("{base}/journal?expect={query}"))
        .await
        .unwrap();
    wait_for(c, "#verification").await;
    !texts(c, "#verification.held").await.is_empty()
}

/// The journal holds exactly one `lab_action` of this kind (the console journals what a
/// person does, as any other event).
async fn assert_lab_action(c: &Client, base: &str, action: &str) {
    let expect =
        format!(r#"{{ kind = "lab_action", payload = {{ action = "{action}" }}, exactly = 1 }}"#);
    assert!(journal_holds(c, base, &expect).await, "{expect}");
}

fn save(dir: &Path, name: &str, png: Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

#[tokio::test]
async fn a_lab_instructor_clicks_through_the_demo_week_in_a_real_browser() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_tenantless"));
    demo.arg("demo").arg("--dir").arg(dir.path().join("demo"));
    let (_demo, base) = serve(demo);
    let shots = screenshots();

    // The world view lists the device; click through to it.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(texts(&c, "#devices a.device").await, ["DESKTOP-DEMO01"]);
    save(&shots, "world.png", c.screenshot().await.unwrap());
    click_link(&c, "DESKTOP-DEMO01").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/devices/DESKTOP-DEMO01"));

    // The timeline: four failed install attempts, the GRS window, and the install once
    // the window has passed, 24 hours later.
    let app_lane = "g[id^='lane-app-']";
    let failed = attrs(&c, &format!("{app_lane} circle.attempt.failed"), "data-at").await;
    assert_eq!(failed.len(), 4, "{failed:?}");
    let grs = attrs(&c, &format!("{app_lane} rect.grs"), "data-until").await;
    assert_eq!(grs.len(), 1);
    let succeeded = attrs(
        &c,
        &format!("{app_lane} circle.attempt.succeeded"),
        "data-at",
    )
    .await;
    assert_eq!(succeeded.len(), 1);
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert!(
        at(&succeeded[0]) >= at(&grs[0]),
        "installed after the GRS window"
    );
    assert!(at(&succeeded[0]) - at(&failed[3]) >= chrono::Duration::hours(24));
    // Reevaluation ticks: once installed, the app is looked at again at check-ins and
    // skipped within its interval, evaluated again when it has passed.
    let processed = attrs(
        &c,
        &format!("{app_lane} rect.reevaluation.processed"),
        "data-at",
    )
    .await;
    let skipped = attrs(
        &c,
        &format!("{app_lane} rect.reevaluation.skipped"),
        "data-at",
    )
    .await;
    assert!(
        !processed.is_empty() && !skipped.is_empty(),
        "{processed:?} {skipped:?}"
    );
    assert!(
        skipped.iter().all(|t| at(t) > at(&succeeded[0])),
        "{skipped:?}"
    );
    // The IME service: started when installed, stopped on day 3, started again by the
    // health check.
    let starts = attrs(&c, "g#lane-service circle.service-start", "data-at").await;
    let stops = attrs(&c, "g#lane-service circle.service-stop", "data-at").await;
    assert_eq!((starts.len(), stops.len()), (2, 1), "{starts:?} {stops:?}");
    assert!(at(&starts[0]) < at(&stops[0]) && at(&stops[0]) < at(&starts[1]));
    // A click on a mark shows its detail (the console's script runs).
    c.find(Locator::Css(&format!(
        "{app_lane} circle.attempt.succeeded"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let detail = mark_detail(&c).await;
    assert!(detail.contains("exit code 0"), "{detail}");
    save(&shots, "device.png", c.screenshot().await.unwrap());

    // The timeline and the logs lead to each other: the attempt's log records, and from a
    // record back to its moment on the timeline.
    click_link(&c, "Show in the log").await;
    let focus = texts(&c, "#log tr#focus td.message").await;
    assert_eq!(focus, ["[Win32App] lpExitCode 0"]);
    c.find(Locator::Css("#log tr#focus td.time a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let cursor = attrs(&c, "svg.timeline line.cursor", "data-at").await;
    assert_eq!(cursor.len(), 1);
    assert_eq!(at(&cursor[0]), at(&succeeded[0]));
    // Zoom from the week down to a minute around that moment, and back.
    let span = |c: &Client| {
        let c = c.clone();
        async move {
            let svg = c.find(Locator::Css("svg.timeline")).await.unwrap();
            let start = svg.attr("data-start").await.unwrap().unwrap();
            let end = svg.attr("data-end").await.unwrap().unwrap();
            at(&end) - at(&start)
        }
    };
    assert!(span(&c).await > chrono::Duration::days(6));
    for (preset, minutes) in [("Hour", 60), ("Minute", 1)] {
        click_link(&c, preset).await;
        assert_eq!(span(&c).await, chrono::Duration::minutes(minutes));
        assert_eq!(
            attrs(&c, "svg.timeline line.cursor", "data-at").await,
            cursor
        );
        let shown = attrs(&c, &format!("{app_lane} circle.attempt"), "data-at").await;
        assert_eq!(shown, succeeded, "only the attempt at that moment");
    }
    click_link(&c, "All").await;
    assert!(span(&c).await > chrono::Duration::days(6));

    // The session that installed the IME, as a SyncML viewer shows it.
    let sessions_before = texts(&c, "#sessions tbody tr").await.len();
    let ime_session = c
        .find(Locator::XPath(
            "//table[@id='sessions']//tr[contains(., 'MsiInstallJob')]//a",
        ))
        .await
        .unwrap();
    ime_session.click().await.unwrap();
    let exec = texts(&c, "tr.msi-install-job").await;
    assert_eq!(exec.len(), 1, "{exec:?}");
    assert!(
        exec[0].contains("Exec") && exec[0].contains("DownloadInstall"),
        "{exec:?}"
    );
    let xml = texts(&c, "section.from-server pre.xml").await.join("\n");
    assert!(xml.contains("<MsiInstallJob id=\"{6D2F2E4B-3C1A-4E8D-9B7F-1A2B3C4D5E6F}\">"));
    save(&shots, "session.png", c.screenshot().await.unwrap());

    // The registry, key by key down to the app's state message, decoded.
    click_link(&c, "DESKTOP-DEMO01").await;
    click_link(&c, "Registry").await;
    for key in [
        "HKEY_LOCAL_MACHINE",
        "SOFTWARE",
        "Microsoft",
        "IntuneManagementExtension",
        "Win32Apps",
        "00000000-0000-0000-0000-000000000000",
    ] {
        click_link(&c, key).await;
    }
    let app_key = texts(&c, "#subkeys a")
        .await
        .into_iter()
        .find(|k| k.ends_with("_2"))
        .expect("the app's key (id_revision)");
    click_link(&c, &app_key).await;
    click_link(&c, "ComplianceStateMessage").await;
    let decoded = texts(&c, "#values dl.decoded").await.join("\n");
    assert!(
        decoded.contains("ComplianceState\n1 = Installed"),
        "{decoded}"
    );
    save(&shots, "registry.png", c.screenshot().await.unwrap());

    // The logs, filtered for the installer's exit codes.
    click_link(&c, "DESKTOP-DEMO01").await;
    click_link(&c, "Logs").await;
    let q = c
        .find(Locator::Css("#log-filter input[name=q]"))
        .await
        .unwrap();
    q.send_keys("lpExitCode").await.unwrap();
    c.find(Locator::Css("#log-filter button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The filtered page is there when its form shows the filter.
    wait_for(&c, "#log-filter input[name=q][value=lpExitCode]").await;
    let rows = texts(&c, "#log tbody td.message").await;
    assert!(rows.len() >= 5, "{rows:?}");
    assert!(rows.iter().all(|r| r.contains("lpExitCode")), "{rows:?}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.ends_with("lpExitCode 1618"))
            .count(),
        4
    );
    save(&shots, "logs.png", c.screenshot().await.unwrap());

    // Apps as the admin center shows them: the device's install status, and the
    // Discovered apps of inventory.
    click_link(&c, "Tenantless").await;
    click_link(&c, "Apps").await;
    assert_eq!(
        texts(&c, "section.app h2").await,
        ["Contoso Widget Contoso"]
    );
    assert_eq!(texts(&c, "td.install-state").await, ["installed"]);
    let discovered = texts(&c, "#discovered tbody td:first-child").await;
    assert!(
        discovered.contains(&"Contoso Widget".to_owned()),
        "{discovered:?}"
    );
    let scripts = texts(&c, "#scripts tbody tr").await;
    assert_eq!(scripts.len(), 2, "{scripts:?}");

    // The journal, in the scenario files' filter language: an expectation that holds,
    // then one that does not, with its closest events.
    click_link(&c, "Tenantless").await;
    click_link(&c, "Journal").await;
    for (state, held) in [("installed", true), ("failed", false)] {
        let input = c
            .find(Locator::Css("#journal-query input[name=expect]"))
            .await
            .unwrap();
        input.clear().await.unwrap();
        input
            .send_keys(&format!(
                r#"{{ device = "DESKTOP-DEMO01", kind = "ime_install", state = "{state}", at_least = 1 }}"#
            ))
            .await
            .unwrap();
        c.find(Locator::Css("#journal-query button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let class = if held { "held" } else { "failed" };
        wait_for(&c, &format!("#verification.{class}")).await;
        let misses = texts(&c, "#near-misses tbody tr").await;
        assert_eq!(misses.is_empty(), held, "{misses:?}");
    }
    assert!(texts(&c, "#events tbody tr").await.is_empty());

    // A sync from the console: the device opens a new management session.
    click_link(&c, "Tenantless").await;
    click_link(&c, "DESKTOP-DEMO01").await;
    c.find(Locator::Id("action-sync"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let new_row = format!("//table[@id='sessions']/tbody/tr[{}]", sessions_before + 1);
    c.wait()
        .at_most(std::time::Duration::from_secs(60))
        .for_element(Locator::XPath(&new_row))
        .await
        .expect("the synced session in the list");
    let sessions_after = texts(&c, "#sessions tbody tr").await.len();
    assert_eq!(sessions_after, sessions_before + 1);
    // Recorded in the journal like any other action.
    assert_lab_action(&c, &base, "sync").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_scenario_report_is_one_html_file_that_opens_offline_with_its_timeline() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrong-expectation.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tenantless"))
        .arg("run")
        .arg(&fixture)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the scenario fails on purpose");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        !text.contains("/assets/"),
        "nothing is fetched from elsewhere"
    );

    c.goto(&format!("file://{}", html.display())).await.unwrap();
    let title = texts(&c, "section.scenario.failed h2").await;
    assert_eq!(title, ["FAIL A deliberately wrong expectation"]);
    let failure = texts(&c, "table.expectations tr.failed pre")
        .await
        .join("\n");
    assert!(failure.contains("closest events:"), "{failure}");
    assert!(
        failure.contains("missed: outcome = \"aborted\""),
        "{failure}"
    );
    assert_eq!(texts(&c, "section.scenario h3").await, ["LAB-01"]);
    // The timeline is there, and its inlined script runs from the file.
    let sessions = c
        .find_all(Locator::Css("svg.timeline g#lane-sessions circle"))
        .await
        .unwrap();
    assert!(sessions.len() >= 5, "{} sessions drawn", sessions.len());
    sessions.last().unwrap().click().await.unwrap();
    let detail = mark_detail(&c).await;
    assert!(detail.contains("management session"), "{detail}");
    save(&screenshots(), "report.png", c.screenshot().await.unwrap());
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_ripley_maneuver_from_the_console_gets_an_app_out_of_the_grs() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/in-the-grs.toml");
    let mut lab = Command::new(env!("CARGO_BIN_EXE_tenantless"));
    lab.arg("lab").arg(&fixture);
    let (_lab, base) = serve(lab);
    c.goto(&format!("{base}/devices/LAB-GRS")).await.unwrap();
    assert_eq!(
        texts(&c, "#apps tbody td:nth-child(2)").await,
        ["Error (4)"],
        "the required app failed and waits in the GRS (the available one is not tried)"
    );
    assert_eq!(texts(&c, "g[id^='lane-app-'] rect.grs").await.len(), 1);
    c.find(Locator::Css("#apps button.ripley"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(std::time::Duration::from_secs(60))
        .for_element(Locator::XPath("//table[@id='apps']//td[.='Installed (1)']"))
        .await
        .expect("installed at once, not 24 hours later");
    let succeeded = attrs(&c, "g[id^='lane-app-'] circle.attempt.succeeded", "data-at").await;
    let failed = attrs(&c, "g[id^='lane-app-'] circle.attempt.failed", "data-at").await;
    let grs = attrs(&c, "g[id^='lane-app-'] rect.grs", "data-until").await;
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert!(
        at(&succeeded[0]) < at(&failed[0]) + chrono::Duration::hours(24),
        "well before the GRS would have expired"
    );
    assert_eq!(
        grs, succeeded,
        "the window drawn up to the Ripley maneuver's attempt"
    );
    save(&screenshots(), "ripley.png", c.screenshot().await.unwrap());

    // Company Portal: the available app, installed when the user asks.
    c.goto(&format!("{base}/devices/LAB-GRS/company-portal"))
        .await
        .unwrap();
    assert_eq!(texts(&c, "#portal td.portal-status").await, ["Available"]);
    click(&c, Locator::Css("#portal button.install")).await;
    let installed = "//td[@class='portal-status' and .='Installed']";
    wait_for_xpath(&c, installed, "installed once the user asked").await;
    assert_lab_action(&c, &base, "companyPortalInstall").await;

    // A second user signs in from the console: a session of their own, then out again.
    c.goto(&format!("{base}/devices/LAB-GRS")).await.unwrap();
    assert_eq!(texts(&c, "#time-zone").await, ["UTC (UTC+00:00)"]);
    let signed_in = texts(&c, "#signed-in form").await;
    assert_eq!(signed_in.len(), 1, "the primary user: {signed_in:?}");
    c.find(Locator::Id("sign-in-user"))
        .await
        .unwrap()
        .send_keys("bob@contoso.com")
        .await
        .unwrap();
    click(&c, Locator::Id("action-sign-in")).await;
    let bob = "//dd[@id='signed-in']/form[contains(., 'Session 2: bob@contoso.com')]";
    wait_for_xpath(&c, bob, "Bob in session 2").await;
    assert_lab_action(&c, &base, "signIn").await;
    let logon = r#"{ kind = "gateway_call", payload = { reason = "UserLogOn" }, at_least = 1 }"#;
    assert!(
        journal_holds(&c, &base, logon).await,
        "Bob's logon made the IME check in"
    );
    c.goto(&format!("{base}/devices/LAB-GRS")).await.unwrap();
    click(&c, Locator::XPath(&format!("{bob}/button"))).await;
    let gone = "//dd[@id='signed-in' and not(contains(., 'bob@contoso.com'))]";
    wait_for_xpath(&c, gone, "Bob signed out").await;
    assert_lab_action(&c, &base, "signOut").await;

    // The clock: a step goes to the next moment a device has something to do; played,
    // it moves on by itself (a minute of world time every second) until paused.
    c.goto(&format!("{base}/")).await.unwrap();
    let clock = |c: &Client| {
        let c = c.clone();
        async move { texts(&c, "#clock").await.join("") }
    };
    let before = clock(&c).await;
    c.find(Locator::Id("step"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(std::time::Duration::from_secs(60))
        .for_element(Locator::XPath(&format!(
            "//strong[@id='clock' and text()!='{before}']"
        )))
        .await
        .expect("the stepped clock");
    let stepped = clock(&c).await;
    assert!(stepped > before, "{before} -> {stepped}");
    c.find(Locator::Id("play"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#pause").await;
    c.wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(Locator::XPath(&format!(
            "//strong[@id='clock' and text()!='{stepped}']"
        )))
        .await
        .expect("the played clock moves (the page reloads itself)");
    c.find(Locator::Id("pause"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#play").await;
    assert_lab_action(&c, &base, "ripley").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_world_view_pages_a_fleet_fifty_devices_at_a_time() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut world = testbed::World::start(testbed::WorldOptions {
        fast_keys: true,
        ..testbed::WorldOptions::default()
    })
    .await
    .unwrap();
    let names: Vec<String> = (0..51).map(|n| format!("FLEET-{n:02}")).collect();
    for name in &names {
        world.create_device(name, Default::default()).unwrap();
    }
    world.enroll_all(&names).await.unwrap();
    let console = testbed::console::Console::bind(world, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", console.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(console.serve(async {
        let _ = stopped.await;
    }));
    let page = |n: usize| {
        let url = format!("{base}/?page={n}");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let rows = |html: &str| html.matches("class=\"device\"").count();
    let first = page(0).await;
    assert_eq!(rows(&first), 50);
    assert!(first.contains("Page 1 of 2, 51 devices"), "{first}");
    assert!(first.contains("FLEET-00") && !first.contains("FLEET-50"));
    let second = page(1).await;
    assert_eq!(rows(&second), 1);
    assert!(second.contains("FLEET-50"));
    // Past the end: the last page.
    assert_eq!(rows(&page(9).await), 1);
    let _ = stop.send(());
    served.await.unwrap().unwrap().stop().await;
}
