# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tripseal_global_optspecs
    string join \n config= v/verbose q/quiet h/help V/version
end

function __fish_tripseal_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tripseal_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tripseal_using_subcommand
    set -l cmd (__fish_tripseal_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tripseal -n "__fish_tripseal_needs_command" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_needs_command" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_needs_command" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_needs_command" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_needs_command" -s V -l version -d 'Print version'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "init" -d 'Scan what the rules select and write a new (unsigned) baseline'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "check" -d 'Rescan what the baseline\'s rules select and report every difference'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "update" -d 'Accept the present state as the next generation of the baseline (the replaced one is kept as <db>.prev)'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "diff" -d 'Compare two baselines: OLD is the reference, NEW the one under review'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "watch" -d 'Watch what the baseline\'s rules select and report drift as it happens (runs in the foreground until SIGTERM or SIGINT)'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "flush" -d 'Deliver the events that wait in the outbox of a baseline'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "keygen" -d 'Make an operator key pair: KEY (PKCS#8 PEM, mode 0600) and KEY.pub'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "sign" -d 'Seal a baseline with an operator\'s private key (on the operator\'s machine)'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "verify" -d 'Show a baseline\'s digest and signatures; exit 0 only if a trusted key signed exactly this content'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "digest" -d 'Print a baseline\'s canonical digest; --message writes the exact bytes a signature covers (for checking it with openssl)'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "show" -d 'Print a baseline\'s header and entries'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "rules" -d 'Validate a rules file, or explain which rule governs a path'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "audit" -d 'Check a configuration against its project\'s security guide'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "collect" -d 'Consume the fleet\'s events (a RabbitMQ quorum queue or a Redis Stream), keep the fleet\'s state, and flag hosts that went silent, rolled back, run an unpublished baseline or lost events (runs until SIGTERM or SIGINT)'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "fleet" -d 'The fleet as the collector sees it: status, drift, acknowledgements, and the baselines hosts may use'
complete -c tripseal -n "__fish_tripseal_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -l rules -d 'Rules file [default: /etc/tripseal/rules.toml, else ./rules/celery-worker.toml, else the rules built into tripseal]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -l db -d 'Baseline to write [default: /var/lib/tripseal/<host>.db if that directory exists, else ./baselines/<host>.db]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -l var -d 'Set a rules variable, overriding its value in [vars]; repeatable' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -l root -d 'Read the tree at DIR (a release directory, an unpacked wheel or image, a container\'s root file system) instead of the installed one; the rules must name a role' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -l as -d 'With --root: the path DIR will have on the hosts; what is at DIR/x is recorded as PREFIX/x' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -l force -d 'Replace a baseline that already exists at the --db path'
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand init" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l db -d 'Baseline to check against [default: as for init]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l trust -d 'Trusted public keys: a key file, a directory of them, or a glob [default: /etc/tripseal/trusted.d/]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l format -d 'human, json, or events: the events themselves, as JSON lines on standard output (through the outbox, like --emit stdout)' -r -f -a "human\t''
json\t''
events\t''"
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l emit -d 'Send events to SINK (repeatable): stdout, file:PATH, syslog, syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT, a Celery broker URL (amqp://, pyamqp://, amqps://, redis://, rediss://) [default: the configuration\'s [events] emit]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l reread -d 'With --fast: re-read this share of the entries whatever their stat fields say, drawn at random on every run (0 to 100, "%" optional)' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l expiry-warning -d 'Warn (and send fim-baseline-expiring) when the seal expires within this period' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l cert-warning -d 'Report (and send fim-cert-expiring) a certificate the rules select that expires within this period' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l allow-unsigned -d 'Do not verify the baseline\'s seal (first set-up, tests). Says so loudly'
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l allow-rollback -d 'Accept a validly signed generation older than one accepted before'
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -l fast -d 'Re-read only entries whose dev, inode, size, mtime or ctime moved; trust the recorded content of the others (for a role baseline, as this host\'s stat cache recorded them at its last check)'
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand check" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l rules -d 'New rules for the next generation [default: the baseline\'s own]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l var -d 'Set a rules variable (with --rules); repeatable' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l db -d 'Baseline to update [default: as for init]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l format -r -f -a "human\t''
json\t''"
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l root -d 'Read the tree at DIR (a release directory, an unpacked wheel or image, a container\'s root file system) instead of the installed one; the rules must name a role' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l as -d 'With --root: the path DIR will have on the hosts; what is at DIR/x is recorded as PREFIX/x' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l only-packaged -d 'Accept only drift whose content is what its package (dpkg, a Python wheel) records, at this evidence or stronger; the rest stays drift [bare: host-records-only]' -r -f -a "host-records-only\t'dpkg\'s md5sums and a wheel\'s RECORD, which root on the host can edit'
verified-by-archive\t'The package file in apt\'s cache, checked through the archive\'s signed InRelease'"
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l trust -d 'Keys that must verify generation N\'s seal before the apt keyrings it records are trusted to check packages through their archive [default: /etc/tripseal/trusted.d/]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -l accept-errors -d 'Record entries that cannot be read instead of refusing'
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tripseal -n "__fish_tripseal_using_subcommand diff" -l trust -d 'Trusted public keys: a key file, a directory of them, or a glob [default: /etc/tripseal/trusted.d/]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand diff" -l format -r -f -a "human\t''
json\t''"
complete -c tripseal -n "__fish_tripseal_using_subcommand diff" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand diff" -l allow-unsigned -d 'Do not verify the baseline\'s seal (first set-up, tests). Says so loudly'
complete -c tripseal -n "__fish_tripseal_using_subcommand diff" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand diff" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand diff" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l db -d 'Baseline to watch against [default: as for init]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l trust -d 'Trusted public keys: a key file, a directory of them, or a glob [default: /etc/tripseal/trusted.d/]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l rescan -d 'Full rescan period, the backstop (e.g. 1h, 30m, 90s)' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l heartbeat -d 'Heartbeat period' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l emit -d 'Send events to SINK (repeatable), as for check [default: the configuration\'s [events] emit, else stdout]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l expiry-warning -d 'Send fim-baseline-expiring when the seal expires within this period (at start and at every rescan)' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l cert-warning -d 'Send fim-cert-expiring for a certificate the rules select that expires within this period (after the first comparison, then daily)' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l backend -d 'What tells the daemon of changes' -r -f -a "auto\t'fanotify where it works (root, Linux 5.9 or later), else inotify'
inotify\t'A watch per directory; works unprivileged'
fanotify\t'One mark per file system, and the process behind each change'"
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -l allow-unsigned -d 'Do not verify the baseline\'s seal (first set-up, tests). Says so loudly'
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tripseal -n "__fish_tripseal_using_subcommand flush" -l db -d 'The baseline whose outbox to flush [default: as for init]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand flush" -l emit -d 'Only these sinks [default: every sink that has events waiting]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand flush" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand flush" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand flush" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand flush" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand keygen" -l out -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand keygen" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand keygen" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand keygen" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand sign" -l key -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand sign" -l expires -d 'Stop vouching for it after WHEN: a period from now (30d, 12h) or a UTC date or time (2027-01-31, 2027-01-31T12:00:00Z). Signed with the content, so an old generation cannot be replayed for ever' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand sign" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand sign" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand sign" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand sign" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand verify" -l trust -r
complete -c tripseal -n "__fish_tripseal_using_subcommand verify" -l expiry-warning -d 'Warn when the seal expires within this period' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand verify" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand verify" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand verify" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand verify" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand digest" -l message -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand digest" -l expires -d 'The message of a signature made with this expiry (a UTC date or time, as `verify` shows it) instead of one without' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand digest" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand digest" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand digest" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand digest" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand show" -l format -r -f -a "human\t''
json\t''"
complete -c tripseal -n "__fish_tripseal_using_subcommand show" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand show" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand show" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand show" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and not __fish_seen_subcommand_from check explain help" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and not __fish_seen_subcommand_from check explain help" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and not __fish_seen_subcommand_from check explain help" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and not __fish_seen_subcommand_from check explain help" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and not __fish_seen_subcommand_from check explain help" -f -a "check" -d 'Validate a rules file; errors name the file, line and column'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and not __fish_seen_subcommand_from check explain help" -f -a "explain" -d 'Print the rule that governs PATH and why (exit 1 when none does)'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and not __fish_seen_subcommand_from check explain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from check" -l var -d 'Set a rules variable; repeatable' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from check" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from explain" -l rules -d 'Rules file [default: as for init]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from explain" -l var -d 'Set a rules variable; repeatable' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from explain" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from explain" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from explain" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a rules file; errors name the file, line and column'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Print the rule that governs PATH and why (exit 1 when none does)'
complete -c tripseal -n "__fish_tripseal_using_subcommand rules; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and not __fish_seen_subcommand_from celery help" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and not __fish_seen_subcommand_from celery help" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and not __fish_seen_subcommand_from celery help" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and not __fish_seen_subcommand_from celery help" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and not __fish_seen_subcommand_from celery help" -f -a "celery" -d 'The Celery configuration, read as text (never imported), against Celery\'s security guide: serializers, auth signing, broker TLS, readable passwords, workers that run as root (exit 1 with findings)'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and not __fish_seen_subcommand_from celery help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -l app-dir -d 'An application directory: celeryconfig.py, celery.py, Django settings, .env [default: /srv/app]; repeatable' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -l celery-config -d 'A Celery configuration file (Python or NAME=value), or a directory of them [default: /etc/celery, and celery* in /etc/default, /etc/conf.d, /etc/sysconfig]; repeatable. `--config FILE` names one too: this command reads none of tripseal\'s own settings' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -l unit -d 'A systemd unit, or a directory of them [default: the system\'s unit directories]; repeatable' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -l format -r -f -a "human\t''
json\t''"
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from celery" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "celery" -d 'The Celery configuration, read as text (never imported), against Celery\'s security guide: serializers, auth signing, broker TLS, readable passwords, workers that run as root (exit 1 with findings)'
complete -c tripseal -n "__fish_tripseal_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -l from -d 'A fleet feed, as the hosts\' sink URL names it (repeatable): amqp://HOST/?queue=NAME (also amqps://) or redis+stream://HOST/DB (also rediss+stream://; ?key=, ?group=) [default: the configuration\'s [collector] from]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -l store -d 'The collector\'s state [default: /var/lib/tripseal/collector.db if that directory exists, else ./baselines/collector.db]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -l emit -d 'Send the collector\'s own events (fim-host-silent, ...) to SINK (repeatable) [default: the configuration\'s [events] emit, else stdout]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -l check-period -d 'The period assumed for hosts that run scheduled checks only (a daemon announces its heartbeat\'s); silent after three of them' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -l listen -d 'Serve the status page (/), Prometheus metrics (/metrics) and the fleet as JSON (/api/hosts) on ADDR, e.g. 127.0.0.1:9817. They have no authentication: an address other than loopback needs --listen-beyond-loopback' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -l listen-beyond-loopback -d 'Accept a --listen address other than loopback: anyone who can reach it reads every host\'s name, baseline and drifted paths (put it behind a reverse proxy with authentication, or a firewall)'
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand collect" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -f -a "status" -d 'One line per host, worst first (exit 1 when any host has a problem)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -f -a "drift" -d 'The open drift of HOST (or HOST/INSTANCE); exit 1 when some is not acknowledged'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -f -a "ack" -d 'Acknowledge HOST\'s drift at PATH... (hidden until it changes again), its lost events (--lost) or its older generation (--rollback)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -f -a "publish" -d 'Publish a signed baseline as one that hosts of its role (or its host) may use, after verifying its seal with the collector\'s trust store'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and not __fish_seen_subcommand_from status drift ack publish help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from status" -l store -d 'The collector\'s state [default: /var/lib/tripseal/collector.db if that directory exists, else ./baselines/collector.db]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from status" -l format -r -f -a "human\t''
json\t''"
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from status" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from drift" -l store -d 'The collector\'s state [default: /var/lib/tripseal/collector.db if that directory exists, else ./baselines/collector.db]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from drift" -l format -r -f -a "human\t''
json\t''"
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from drift" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from drift" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from drift" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from drift" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -l by -d 'Who acknowledges [default: $SUDO_USER, else $USER]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -l store -d 'The collector\'s state [default: /var/lib/tripseal/collector.db if that directory exists, else ./baselines/collector.db]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -l lost -d 'Accept the events HOST is known to have lost'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -l rollback -d 'Accept the generation HOST uses now as its highest'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from ack" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from publish" -l store -d 'The collector\'s state [default: /var/lib/tripseal/collector.db if that directory exists, else ./baselines/collector.db]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from publish" -l trust -d 'Trusted public keys [default: /etc/tripseal/trusted.d/]' -r
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from publish" -l config -d 'Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]' -r -F
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from publish" -s v -l verbose -d 'Say more: the summary of check and diff even when nothing drifted; twice, debugging detail (also TRIPSEAL_LOG=debug)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from publish" -s q -l quiet -d 'Say less: warnings and errors only'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from publish" -s h -l help -d 'Print help'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "status" -d 'One line per host, worst first (exit 1 when any host has a problem)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "drift" -d 'The open drift of HOST (or HOST/INSTANCE); exit 1 when some is not acknowledged'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "ack" -d 'Acknowledge HOST\'s drift at PATH... (hidden until it changes again), its lost events (--lost) or its older generation (--rollback)'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "publish" -d 'Publish a signed baseline as one that hosts of its role (or its host) may use, after verifying its seal with the collector\'s trust store'
complete -c tripseal -n "__fish_tripseal_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "init" -d 'Scan what the rules select and write a new (unsigned) baseline'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "check" -d 'Rescan what the baseline\'s rules select and report every difference'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "update" -d 'Accept the present state as the next generation of the baseline (the replaced one is kept as <db>.prev)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "diff" -d 'Compare two baselines: OLD is the reference, NEW the one under review'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "watch" -d 'Watch what the baseline\'s rules select and report drift as it happens (runs in the foreground until SIGTERM or SIGINT)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "flush" -d 'Deliver the events that wait in the outbox of a baseline'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "keygen" -d 'Make an operator key pair: KEY (PKCS#8 PEM, mode 0600) and KEY.pub'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "sign" -d 'Seal a baseline with an operator\'s private key (on the operator\'s machine)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "verify" -d 'Show a baseline\'s digest and signatures; exit 0 only if a trusted key signed exactly this content'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "digest" -d 'Print a baseline\'s canonical digest; --message writes the exact bytes a signature covers (for checking it with openssl)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "show" -d 'Print a baseline\'s header and entries'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "rules" -d 'Validate a rules file, or explain which rule governs a path'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "audit" -d 'Check a configuration against its project\'s security guide'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "collect" -d 'Consume the fleet\'s events (a RabbitMQ quorum queue or a Redis Stream), keep the fleet\'s state, and flag hosts that went silent, rolled back, run an unpublished baseline or lost events (runs until SIGTERM or SIGINT)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "fleet" -d 'The fleet as the collector sees it: status, drift, acknowledgements, and the baselines hosts may use'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and not __fish_seen_subcommand_from init check update diff watch flush keygen sign verify digest show rules audit collect fleet help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and __fish_seen_subcommand_from rules" -f -a "check" -d 'Validate a rules file; errors name the file, line and column'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and __fish_seen_subcommand_from rules" -f -a "explain" -d 'Print the rule that governs PATH and why (exit 1 when none does)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "celery" -d 'The Celery configuration, read as text (never imported), against Celery\'s security guide: serializers, auth signing, broker TLS, readable passwords, workers that run as root (exit 1 with findings)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "status" -d 'One line per host, worst first (exit 1 when any host has a problem)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "drift" -d 'The open drift of HOST (or HOST/INSTANCE); exit 1 when some is not acknowledged'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "ack" -d 'Acknowledge HOST\'s drift at PATH... (hidden until it changes again), its lost events (--lost) or its older generation (--rollback)'
complete -c tripseal -n "__fish_tripseal_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "publish" -d 'Publish a signed baseline as one that hosts of its role (or its host) may use, after verifying its seal with the collector\'s trust store'
