//! The sample configuration `generate-config` prints; `config.sample.yaml` is this with the tokens
//! left empty, and a test keeps the two in step.

use super::secret::random_token;

/// Tokens to write into the sample; `None` leaves them empty (how `config.sample.yaml` is made).
pub struct SampleTokens {
    pub as_token: String,
    pub hs_token: String,
    pub admin_token: String,
    pub tenant_token: String,
}

impl SampleTokens {
    pub fn random() -> Self {
        Self {
            as_token: random_token(),
            hs_token: random_token(),
            admin_token: random_token(),
            tenant_token: random_token(),
        }
    }
}

pub fn render(tokens: Option<&SampleTokens>) -> String {
    let token = |pick: fn(&SampleTokens) -> &String| {
        tokens
            .map(|t| pick(t).clone())
            .unwrap_or_else(|| "\"\"".to_owned())
    };
    TEMPLATE
        .replace("{as_token}", &token(|t| &t.as_token))
        .replace("{hs_token}", &token(|t| &t.hs_token))
        .replace("{admin_token}", &token(|t| &t.admin_token))
        .replace("{tenant_token}", &token(|t| &t.tenant_token))
}

const TEMPLATE: &str = r#"# openmeet-appservice configuration.
#
# Every secret can be given inline (`as_token: ...`) or as a file (`as_token_file: /run/secrets/as_token`).
# Any value can be overridden from the environment: OPENMEET_AS__SECTION__KEY, e.g.
# OPENMEET_AS__DATABASE__URL or OPENMEET_AS__TENANTS__0__API_TOKEN. Unknown keys are an error.
# Print a fresh copy with new random tokens: `openmeet-appservice generate-config`.

homeserver:
  # The client-server API base the daemon calls.
  url: http://127.0.0.1:8008
  # The part after ':' in user ids and room aliases.
  server_name: matrix.openmeet.net
  # Upper bound for one call to the homeserver, in seconds.
  timeout_seconds: 30
  # The room version of new rooms ("10", "11", "12", ...); leave it out for the homeserver's default.
  # room_version: "12"
  # Seconds between checks of the as_token (whoami) and of Synapse reaching us (ping). While the
  # token is refused, the daemon asks at most once per interval and jobs wait.
  check_interval_seconds: 120
  # Seconds between loop-back probes: the sender posts a marker in its private probe room and the
  # daemon measures how long until Synapse delivers it back (openmeet_as_probe_* metrics). 0: off.
  probe_interval_seconds: 60

appservice:
  # The registration's id; Synapse names the appservice by it (and the ping URL carries it).
  id: openmeet
  # The appservice's own user: @openmeet-bot:matrix.openmeet.net.
  sender_localpart: openmeet-bot
  # Tenant bots are @{bot_prefix}{lowercase tenant id}:{server_name}.
  bot_prefix: openmeet-bot-
  # The token the daemon presents to Synapse. Changing it means re-registering and restarting Synapse.
  as_token: {as_token}
  # The token Synapse presents to the daemon. May be a list during a rotation: all are accepted,
  # the first is the one `registration` prints. (hs_token_file: one token per line.)
  hs_token: {hs_token}
  # Where Synapse reaches the daemon's appservice listener; goes into the registration.
  url: http://127.0.0.1:8009
  # Rules before send (tenants[].rules): the token Synapse's synapse-http-antispam module
  # presents (its `authorization`) when it points at this daemon (base_url: the url above and
  # /_openmeet/antispam; docs/operations.md). Leave it out to turn the callbacks off.
  # (antispam_token_file: a file holding it.)
  # antispam_token_file: /run/secrets/antispam_token

# More homeservers, for tenants that have their own Matrix server (compliance, region). Each has an
# id ([a-z0-9-]+, not "default"), a homeserver section and an appservice section shaped like the
# two above; appservice id, sender_localpart and bot_prefix default to the ones above. Each
# homeserver's Synapse loads its own registration: `openmeet-appservice registration --homeserver ID`.
# Tokens must differ from every other homeserver's. Tenants pick one with `homeserver: ID`. Each
# homeserver is checked and probed on its own (its check_interval_seconds, probe_interval_seconds):
# one that is down or refuses its as_token pauses only its own tenants' jobs.
# homeservers:
#   - id: eu-tenant-a
#     homeserver:
#       url: https://matrix-a.example.org
#       server_name: matrix-a.example.org
#     appservice:
#       as_token_file: /run/secrets/eu-tenant-a/as_token
#       hs_token_file: /run/secrets/eu-tenant-a/hs_token
#       url: http://openmeet-appservice:8009

listen:
  # Synapse only. Use 0.0.0.0:8009 in a container.
  appservice: 127.0.0.1:8009
  # OpenMeet core only.
  platform: 127.0.0.1:8010
  # Prometheus /metrics, /health/live and /health/ready.
  metrics: 127.0.0.1:9100

database:
  # sqlite://PATH for one machine (the default), postgres://user:pass@host/db for production and
  # for more than one replica. (url_file: a file holding the URL, when it carries a password.)
  # libpq's parameters go in the query (?sslmode=verify-full); GSS encryption is off unless
  # ?gssencmode= (or PGGSSENCMODE) asks for it, and TLS to a server on loopback unless ?sslmode=
  # (or PGSSLMODE) does.
  url: sqlite://./data/openmeet-appservice.db
  # Apply pending migrations when `serve` starts; otherwise run `openmeet-appservice migrate`.
  migrate_on_start: true
  # Connection pool size.
  max_connections: 10
  # How long a request waits for a database connection (or, on SQLite, for the write lock) before
  # it is answered as an outage (503).
  acquire_timeout_ms: 5000

tenants:
  # One entry per OpenMeet tenant: its id (kept as given in room aliases), a display name, and the
  # token OpenMeet core presents on the platform API for this tenant. `homeserver: ID` puts its
  # bot and rooms on one of `homeservers` (default: the top-level one); it cannot change while the
  # tenant has rooms (a reload that does so is refused).
  - id: lsdfaopkljdfs
    name: OpenMeet
    api_token: {tenant_token}
    # homeserver: eu-tenant-a
    # Where this tenant's events (room.ready, member.joined, ...) are POSTed as JSON, signed the
    # Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature); leave it out for
    # none (GET /v1/tenants/{id}/events serves them either way). A new webhook starts with the
    # events after it was configured. The secret is whsec_ and the base64 of 24 to 64 random bytes
    # (what Standard Webhooks libraries expect; `echo whsec_$(openssl rand -base64 32)`), or any
    # other string of 16+ characters used as the HMAC key as it is. (secret_file: a file holding it.)
    # webhook:
    #   url: https://api.openmeet.net/matrix/events
    #   secret_file: /run/secrets/webhook-lsdfaopkljdfs
    # Public rooms are listed in the tenant's own room directory (clients show it as the network
    # "OpenMeet: {name}"). true also lists them in the homeserver's server-wide directory, which
    # every user of every tenant browses; Synapse then has to allow the tenant bots in its
    # room_list_publication_rules (its default allows no one; a refusal is only a warning).
    server_directory: false
    # Rules before send, applied in this tenant's rooms to users below applies_below_level
    # (default 50: moderators and up are trusted; the tenant bots never): blocked words (whole
    # words, any case), blocked link domains (a domain and its subdomains, with or without
    # https://), and a message rate per user and room. A refused message, join or invite gets an
    # audit entry (GET /v1/tenants/{id}/moderation, action refuse) and a rule.refused event. Needs
    # Synapse's synapse-http-antispam module pointed at the daemon (appservice.antispam_token).
    # rules:
    #   blocked_words: [casino]
    #   blocked_link_domains: [spam.example]
    #   applies_below_level: 50
    #   rate_limit: {messages: 10, per_seconds: 60}

# Guards GET /v1/status on the platform listener; leave it out to turn that route off.
admin_token: {admin_token}

jobs:
  # false: this process serves the APIs and queues jobs, but runs none (another replica does).
  enabled: true
  # Names this process's job leases; keep it stable across restarts (a restarted process then
  # takes its unfinished jobs back at once). Default: {hostname}:{appservice port}.
  # worker_id: openmeet-appservice-0
  # Jobs this process runs at once, and per tenant (so one tenant cannot starve the others).
  max_parallel: 16
  per_tenant: 4
  # Attempts before a job that keeps failing (network, 5xx) is dead.
  max_attempts: 10
  # Seconds a claim holds without renewal; a crashed worker's jobs are taken again after it.
  lease_seconds: 60

# How long rows are kept; a background pruner deletes older ones in small batches.
retention:
  # Processed inbox events (the verbatim events of managed rooms: the chat the bots saw), Synapse's
  # transactions and quarantined bodies, in days.
  inbox_days: 7
  # Jobs that ended (succeeded, failed, dead, cancelled), in days; a room's latest job is kept.
  # Moderation audit entries (GET moderation) and the events feed (GET events) are kept as long.
  jobs_days: 30

# The power level each role gets, merged over these defaults (list only what you change). The tenant
# bot is at 100; a group `guest` is not a member. `staff`: the level tenant staff (PUT staff/{user})
# hold in every managed room of the tenant, without being members.
roles:
  event: {host: 100, moderator: 50, speaker: 25, participant: 0, guest: 0}
  group: {owner: 100, admin: 75, moderator: 50, member: 0}
  staff: {admin: 75, moderator: 50}

logging:
  # A tracing filter: info, debug, or e.g. openmeet_appservice=debug,info.
  level: info
  # human or json.
  format: human
"#;
