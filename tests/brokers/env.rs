//! The brokers and the Python consumers of the broker scenarios, started and
//! stopped here (`../shared/brokers.md` has the recipe).

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const REDIS_PASSWORD: &str = "s3cret-for-tests";
const RABBIT_BOOT: Duration = Duration::from_secs(120);

/// A free TCP port on loopback (nothing listens on it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process in its own process group, so that stopping it stops
/// every process it started (RabbitMQ's shell wrapper, beam, its helpers).
pub struct Server {
    child: Option<Child>,
    name: String,
}

impl Server {
    fn spawn(name: &str, cmd: &mut Command) -> Server {
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (scripts/test.sh installs it)"));
        Server {
            child: Some(child),
            name: name.into(),
        }
    }

    fn signal_group(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on the group this child leads.
            unsafe {
                libc::kill(-(c.id() as i32), sig);
            }
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.signal_group(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it lingers.
    fn stop(&mut self) {
        self.signal_group(libc::SIGTERM);
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.child = Some(c);
        }
        self.kill();
        let _ = &self.name;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_listening(port: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Certificates for the TLS listener, made with openssl.
pub struct Tls {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Tls {
    fn make(dir: &Path) -> Tls {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut a = vec!["req", "-x509", "-days", "2", "-subj"];
            let subj = format!("/CN=tripseal test {ca}");
            a.push(&subj);
            a.extend(ec);
            let (key, crt) = (format!("{ca}.key"), format!("{ca}.pem"));
            a.extend(["-keyout", &key, "-out", &crt]);
            a.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            a.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(dir, &a);
        }
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        for who in ["server", "client"] {
            let (key, csr, crt, ext) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.pem"),
                format!("{who}.ext"),
            );
            let subj = format!("/CN={who}");
            let mut a = vec!["req", "-new", "-subj", &subj];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr]);
            openssl(dir, &a);
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    &crt,
                ],
            );
        }
        // PKCS#8, which rustls reads.
        openssl(
            dir,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "client.key",
                "-out",
                "client.pk8",
            ],
        );
        Tls {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.pk8"),
        }
    }
}

// Fields drop in order: RabbitMQ stops before its port mapper.
struct Rabbit {
    server: Option<Server>,
    _epmd: Server,
}

// Fields drop in order: the servers stop before their directory goes.
pub struct Brokers {
    pub python: PathBuf,
    /// A private network for hosts in network namespaces; RabbitMQ and the
    /// first Redis listen on its address too.
    pub fleet: FleetNet,
    pub tls: Tls,
    pub redis_port: u16,
    /// The same Redis, over TLS with client certificates required.
    pub redis_tls_port: u16,
    pub redis_auth_port: u16,
    pub amqp_port: u16,
    pub amqps_port: u16,
    epmd_port: u16,
    dist_port: u16,
    _redis: Server,
    _redis_auth: Server,
    rabbit: Mutex<Rabbit>,
    dir: tempfile::TempDir,
}

/// A child process killed when dropped, so that a failed scenario leaves
/// none running (holding the test's output open).
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bridge with a private address, made for this run and removed with it:
/// hosts in network namespaces reach the brokers through it.
pub struct FleetNet {
    pub bridge: String,
    /// The first three octets of the network (a /24).
    pub net: String,
    /// The brokers' address on it.
    pub addr: String,
}

impl FleetNet {
    fn make() -> FleetNet {
        // A /24 no interface here has an address in (one left by a run that
        // was killed included).
        let used = Command::new("ip")
            .args(["-4", "-o", "addr"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let n = (0..250)
            .map(|i| (std::process::id() + i) % 250 + 1)
            .find(|n| !used.contains(&format!(" 10.231.{n}.")))
            .expect("a free 10.231.N.0/24");
        let net = format!("10.231.{n}");
        let f = FleetNet {
            bridge: format!("tsbr{}", std::process::id() % 100_000),
            addr: format!("{net}.1"),
            net,
        };
        let _ = Command::new("ip")
            .args(["link", "del", &f.bridge])
            .stderr(Stdio::null())
            .status();
        // A bridge takes the lowest MAC of its ports unless it has one of
        // its own: each host added later could change it under the hosts
        // that had already resolved it, which then talk to a MAC nobody has
        // until their ARP entry is probed again (a host silent for tens of
        // seconds, "ip neigh" in DELAY).
        let pid = std::process::id();
        let mac = format!(
            "02:54:53:{:02x}:{:02x}:{:02x}",
            (pid >> 16) & 0xff,
            (pid >> 8) & 0xff,
            pid & 0xff
        );
        ip(&["link", "add", &f.bridge, "address", &mac, "type", "bridge"]);
        ip(&["addr", "add", &format!("{}/24", f.addr), "dev", &f.bridge]);
        ip(&["link", "set", &f.bridge, "up"]);
        f
    }
}

impl Drop for FleetNet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// `ip ARGS`, which must succeed (the suite runs as root).
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Brokers {
    pub fn start() -> Brokers {
        let python = PathBuf::from(std::env::var_os("TRIPSEAL_TEST_PYTHON").expect(
            "TRIPSEAL_TEST_PYTHON must name a Python with celery[redis]; \
             ./scripts/test.sh makes one and runs the whole suite",
        ));
        let dir = tempfile::Builder::new()
            .prefix("tripseal-brokers")
            .tempdir()
            .unwrap();
        let tls_dir = dir.path().join("tls");
        std::fs::create_dir(&tls_dir).unwrap();
        let tls = Tls::make(&tls_dir);

        let fleet = FleetNet::make();
        let t = Instant::now();
        let (epmd_port, dist_port, amqp_port, amqps_port) =
            (free_port(), free_port(), free_port(), free_port());
        let rmq = dir.path().join("rmq");
        std::fs::create_dir(&rmq).unwrap();
        std::fs::write(
            rmq.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{amqp_port}\n\
                 listeners.tcp.fleet = {}:{amqp_port}\n\
                 loopback_users = none\n\
                 listeners.ssl.default = 127.0.0.1:{amqps_port}\n\
                 distribution.listener.interface = 127.0.0.1\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = true\n",
                fleet.addr,
                tls.ca.display(),
                tls.server_cert.display(),
                tls.server_key.display()
            ),
        )
        .unwrap();
        std::fs::write(rmq.join("advanced.config"), "[].\n").unwrap();
        std::fs::write(rmq.join("enabled_plugins"), "[].\n").unwrap();
        let epmd = Server::spawn(
            "epmd",
            Command::new(epmd_binary())
                .args(["-address", "127.0.0.1", "-port"])
                .arg(epmd_port.to_string()),
        );
        let redis_port = free_port();
        let redis_tls_port = free_port();
        let redis_auth_port = free_port();
        let redis_tls_args = [
            "--tls-port".to_string(),
            redis_tls_port.to_string(),
            "--tls-cert-file".into(),
            tls.server_cert.display().to_string(),
            "--tls-key-file".into(),
            tls.server_key.display().to_string(),
            "--tls-ca-cert-file".into(),
            tls.ca.display().to_string(),
            "--tls-auth-clients".into(),
            "yes".into(),
        ];
        let mut redis_tls_args: Vec<&str> = redis_tls_args.iter().map(String::as_str).collect();
        // Protected mode refuses clients not on loopback when there is no
        // password; this one listens on loopback and the test's network only.
        redis_tls_args.extend(["--bind", "127.0.0.1", &fleet.addr, "--protected-mode", "no"]);
        let brokers = Brokers {
            python,
            tls,
            redis_port,
            redis_tls_port,
            redis_auth_port,
            amqp_port,
            amqps_port,
            epmd_port,
            dist_port,
            _redis: redis_server(dir.path(), redis_port, &redis_tls_args),
            _redis_auth: redis_server(
                dir.path(),
                redis_auth_port,
                &["--requirepass", REDIS_PASSWORD],
            ),
            rabbit: Mutex::new(Rabbit {
                server: None,
                _epmd: epmd,
            }),
            dir,
            fleet,
        };
        brokers.restart_rabbit();
        println!(
            "brokers: redis 127.0.0.1:{redis_port}, rabbitmq 127.0.0.1:{amqp_port} \
             (tls {amqps_port}), up in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        brokers
    }

    fn rabbit_env(&self, cmd: &mut Command) {
        let m = self.dir.path().join("rmq");
        cmd.env("HOME", &m)
            .env("RABBITMQ_CONFIG_FILE", m.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", m.join("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", m.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", m.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", m.join("log"))
            .env("RABBITMQ_NODENAME", "tripseal-test@localhost")
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string());
    }

    /// Starts RabbitMQ (again, on the same ports and data) and waits for it.
    pub fn restart_rabbit(&self) {
        let mut cmd = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        self.rabbit_env(&mut cmd);
        let server = Server::spawn("rabbitmq-server", &mut cmd);
        self.rabbit.lock().unwrap().server = Some(server);
        wait_listening(self.amqp_port, RABBIT_BOOT, "rabbitmq");
        wait_listening(self.amqps_port, RABBIT_BOOT, "rabbitmq (tls)");
    }

    /// `rabbitmqctl ARGS` against the test's node; its standard output.
    pub fn rabbitmqctl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl");
        self.rabbit_env(&mut cmd);
        let out = cmd
            .args(["-n", "tripseal-test@localhost", "-q"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills RabbitMQ with SIGKILL, as a crash would.
    pub fn kill_rabbit(&self) {
        if let Some(mut s) = self.rabbit.lock().unwrap().server.take() {
            s.kill();
        }
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}//", self.amqp_port)
    }

    pub fn amqps_url(&self, ca: &Path) -> String {
        format!(
            "amqps://guest:guest@127.0.0.1:{}//?ssl_ca_certs={}&ssl_certfile={}&ssl_keyfile={}",
            self.amqps_port,
            ca.display(),
            self.tls.client_cert.display(),
            self.tls.client_key.display()
        )
    }

    pub fn rediss_url(&self, ca: &Path) -> String {
        format!(
            "rediss://127.0.0.1:{}/0?ssl_ca_certs={}&ssl_certfile={}&ssl_keyfile={}",
            self.redis_tls_port,
            ca.display(),
            self.tls.client_cert.display(),
            self.tls.client_key.display()
        )
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.redis_port)
    }

    /// Another Redis, on `port`; stopped when dropped.
    pub fn start_redis(&self, port: u16, args: &[&str]) -> Server {
        redis_server(self.dir.path(), port, args)
    }

    fn script(&self, name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(name)
    }

    /// `celery -b URL events --dump`, running until dropped.
    pub fn celery_dump(&self, url: &str) -> Dump {
        let celery = self.python.with_file_name("celery");
        let out = self.dir.path().join(format!("dump-{}.txt", free_port()));
        let child = Command::new(celery)
            .args(["-b", url, "events", "--dump"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .env("PYTHONUNBUFFERED", "1")
            .process_group(0)
            .spawn()
            .expect("celery from TRIPSEAL_TEST_PYTHON's environment");
        Dump {
            server: Server {
                child: Some(child),
                name: "celery events".into(),
            },
            out,
        }
    }

    /// Takes the messages waiting in durable queue `name` (at least `want`,
    /// or all there are when `want` is 0), then deletes the queue.
    pub fn drain_queue(&self, name: &str, want: usize) -> Vec<Value> {
        self.read_queue(name, want, "delete")
    }

    /// Takes `want` messages from queue `name`, which stays.
    pub fn take_from_queue(&self, name: &str, want: usize) -> Vec<Value> {
        self.read_queue(name, want, "keep")
    }

    fn read_queue(&self, name: &str, want: usize, then: &str) -> Vec<Value> {
        let out = Command::new(&self.python)
            .arg(self.script("drain_queue.py"))
            .args([&self.amqp_url(), name, &want.to_string(), then])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "drain_queue.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn epmd_binary() -> PathBuf {
    if let Ok(p) = which("epmd") {
        return p;
    }
    std::fs::read_dir("/usr/lib/erlang")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/epmd"))
        .find(|p| p.exists())
        .expect("epmd (installed with rabbitmq-server)")
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .ok_or(())
}

fn redis_server(dir: &Path, port: u16, args: &[&str]) -> Server {
    let data = dir.join(format!("redis-{port}"));
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::spawn(
        "redis-server",
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&data)
            .args(args),
    );
    wait_listening(port, Duration::from_secs(20), "redis-server");
    server
}

pub struct Dump {
    server: Server,
    out: PathBuf,
}

impl Dump {
    pub fn output(&mut self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        self.server.kill();
    }
}

/// `tests/python/receiver.py`: the stock `app.events.Receiver`.
pub struct Receiver {
    child: Option<Child>,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts a receiver for `want` events and waits until its queue is bound.
    pub fn start(b: &Brokers, url: &str, want: usize, env: &[(&str, &str)]) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.jsonl");
        let mut child = Command::new(&b.python)
            .arg(b.script("receiver.py"))
            .arg(url)
            .arg(&out)
            .arg(want.to_string())
            .arg("120")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("TRIPSEAL_TEST_PYTHON runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.trim() == "ready" => {}
            other => {
                let _ = child.kill();
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("receiver.py did not get ready ({other:?}): {err}");
            }
        }
        Receiver {
            child: Some(child),
            out,
            _dir: dir,
        }
    }

    pub fn out_path(&self) -> &Path {
        &self.out
    }

    /// Waits for the receiver to have its events, and returns them.
    pub fn wait(mut self) -> Vec<Value> {
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "receiver.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.events()
    }

    /// For a receiver whose broker died: lets it read what reached its socket
    /// before the broker went (it exits on the broken connection), then
    /// returns what it received.
    pub fn abandon(mut self) -> Vec<Value> {
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.events()
    }

    /// Gives the receiver `wait` to take what it will, stops it, and
    /// returns what it received (for events it should refuse).
    pub fn stop_after(mut self, wait: Duration) -> Vec<Value> {
        std::thread::sleep(wait);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.events()
    }

    fn events(&self) -> Vec<Value> {
        // A receiver killed mid-write may leave a last line unfinished.
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
