"""The commented configuration file that ``wats-supervisor config init`` writes.

Every key is present at its default, with a comment saying what it does; a test checks that
this file loads to exactly the built-in defaults and mentions every setting, so it cannot drift
from the models. Full reference: docs/configuration.md.
"""

from __future__ import annotations

__all__ = ["DEFAULT_CONFIG_TEMPLATE"]

DEFAULT_CONFIG_TEMPLATE = """\
# wats-supervisor configuration (TOML). Every setting is shown at its default.
# Reference: docs/configuration.md. Check a file with: wats-supervisor config validate
# Unknown keys are errors, so a misspelt key is reported instead of ignored.

[instance]
# Several instances can run on one machine, each with its own data, logs, lock and bus.
# --instance NAME on the command line overrides this.
name = "default"

[server]
# URL of the WATS server, e.g. "https://yourcompany.wats.com".
# Empty: run the embedded WATS-compatible server (the "server" worker) and deliver to it.
url = ""
# NAME of the environment variable that holds the API token. The token itself never goes here.
token_env = "WATS_TOKEN"
# PEM file of the CA certificates that signed the server's TLS certificate, for a server with a
# private CA. Empty: the usual public CAs. The certificate is always verified.
ca_bundle = ""

[server.embedded]
# Where the embedded server listens (used only when url is empty).
host = "127.0.0.1"
port = 8080
# Its data folder (reports, credentials.json). Empty: <instance data>/server.
data_dir = ""

[station]
# The station name written on every report: the host name ("hostname"), or name below ("config").
name_source = "hostname"
name = ""
location = "Unknown"
purpose = "Development"

[health]
# How often to check the server (GET /api/App/Version), and how long to wait for an answer.
interval_seconds = 30.0
timeout_seconds = 10.0

[sync]
# How often to refresh processes, levels and product groups, and the per-request timeout.
# A sync also runs at start and whenever the server comes back online.
interval_seconds = 300.0
timeout_seconds = 30.0

[supervisor]
# Every worker sends a heartbeat each interval; one silent for misses * interval + grace is
# killed (whole process tree) and restarted.
heartbeat_interval_seconds = 1.0
heartbeat_misses = 3
heartbeat_grace_seconds = 0.4
# On stop: SIGTERM, wait this long, then SIGKILL whatever is left of the tree.
stop_grace_seconds = 5.0
# Restart delay: first restart after backoff_first_seconds, then backoff_base_seconds doubling
# up to backoff_max_seconds; back to the first delay after backoff_reset_after_seconds healthy.
backoff_first_seconds = 0.0
backoff_base_seconds = 0.1
backoff_max_seconds = 30.0
backoff_reset_after_seconds = 60.0
# Flapping breaker: more than flap_max_restarts restarts within flap_window_seconds marks the
# worker FAILED (and raises an alarm); it is retried after flap_cooldown_seconds.
flap_max_restarts = 10
flap_window_seconds = 60.0
flap_cooldown_seconds = 300.0
# A worker failing the same way at this many starts in a row (its port is taken, ...) is
# marked FAILED with that reason instead; also retried after flap_cooldown_seconds.
start_failure_limit = 3
# A worker exits when the supervisor's heartbeat has been missing this long.
orphan_timeout_seconds = 2.0
# A control request routed to a worker is answered "timeout" after this long.
request_timeout_seconds = 5.0
# A started worker must send its first heartbeat within this time, or it counts as hung.
startup_timeout_seconds = 10.0
# After a worker has crashed once, keep a pre-imported spare process ready this long so the next
# restart skips Python's start-up cost (0 = never keep a spare).
warm_spare_seconds = 300.0

# Workers. The built-in ones are shown; a [workers.NAME] table overrides the keys it sets
# (e.g. enabled = false) or adds a new worker. role decides the stop order: producers first,
# then consumers, then services. args is passed to the worker as a table.
# The server worker runs only when [server] url is empty.
[workers.health]
enabled = true
target = "wats.workers.health:HealthWorker"
role = "service"
args = {}

[workers.sync]
enabled = true
target = "wats.workers.sync:SyncWorker"
role = "service"
args = {}

[workers.server]
enabled = true
target = "wats.workers.server:ServerWorker"
role = "service"
args = {}

# The report pipeline: watch folders -> convert (sandboxed) -> durable queue -> upload.
# The watcher and converter run only when [[converters]] are configured.
[workers.watcher]
enabled = true
target = "wats.workers.watcher:WatcherWorker"
role = "producer"
args = {}

[workers.converter]
enabled = true
target = "wats.workers.converter:ConverterWorker"
role = "consumer"
args = {}

[workers.uploader]
enabled = true
target = "wats.workers.uploader:UploaderWorker"
role = "consumer"
args = {}

[logging]
# debug, info, warning, error or critical.
level = "info"
# The supervisor's JSON-lines log. Empty: <instance data>/logs/supervisor.jsonl.
file = ""

[paths]
# Override the instance's folders. Empty: the platform defaults (see docs/configuration.md).
# Relative paths are relative to this file's folder.
data_dir = ""
runtime_dir = ""
# A site's own converter files (converter = "name.py"). Empty: <instance data>/site-converters.
converters_dir = ""

# Converters: one [[converters]] table per watch folder (none by default). Only name,
# converter and watch_folder are required; every key is in docs/configuration.md. Example:
#   [[converters]]
#   name = "ict-json"                # names its folders and its report ids: keep it stable
#   converter = "wsjf"               # built-in: wsjf wsxf atml teststand-xml openhtf csv;
#                                    # or "package.module:Class" or "my_converter.py"
#   watch_folder = "/data/ict/out"   # where the station writes its result files; must exist
#   create_watch_folder = false      # true: create it where missing (never for a share)
#   post_action = "move"             # move (to done), delete, archive (+ archive_folder) or keep
#   station = ""                     # a [stations.NAME] preset; empty: the [station] section
#
# Hub mode: one machine delivering for several stations defines a preset per station, e.g.
#   [stations.ict-02]
#   name = "ICT-02"
#   location = "Plant 1 / Line 2"
#   purpose = "Production"

[queue]
# The durable report queue (pending/, failed/, completed/). Empty folder: <instance data>/queue.
folder = ""
# Keep uploaded reports in completed/ (false: delete them once the server has them).
keep_completed = true
# Retention of completed/: the newest N, none older than this many days (0 = no limit).
completed_max_count = 10000
completed_max_age_days = 30
# Uploads at once, and transient failures (connection, timeout, 429, 5xx) before failed/.
max_in_flight = 4
max_attempts = 50
# Backoff between attempts: base * 2^attempts, capped, with jitter.
retry_base_seconds = 5
retry_max_seconds = 600
# The uploader rescans pending/ this often even without a report.queued event.
rescan_seconds = 30

[bus]
# Local processes always meet on private sockets in the runtime dir (owner only); this section
# adds network listeners for a monitor on another machine (a hub). See docs/bus.md, "Security".
# listen_host: empty = no network listener. Anything but loopback requires CurveZMQ: server_key.
listen_host = ""
events_port = 7700
control_port = 7701
# Key folder (0700). Empty: <instance data>/bus-keys. Make keys: wats-supervisor keys generate
key_dir = ""
# The hub's secret key file (server.key_secret); required when listen_host is not loopback.
server_key = ""
# Folder of client public keys (*.key) admitted to the listeners. Empty: <key_dir>/authorized.
authorized_keys = ""
# On a machine watching a hub: the hub's host, its public key file (server.key), and this
# machine's secret key file (empty: <key_dir>/client.key_secret), for `events` and `monitor`.
hub = ""
hub_public_key = ""
client_key = ""

# No settings yet. `wats-supervisor login` keeps the API token encrypted in
# <instance data>/credentials/, never in this file (docs/credentials.md).
[credentials]
"""
