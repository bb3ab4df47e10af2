//! `tenants`: the platform's tenants, each with its bot and its platform API token.

use super::checks::required;
use super::file::TenantSection;
use super::rules::Rules;
use super::secret::{self, Secret};
use super::webhook::{self, Webhook};

#[derive(Debug, Clone)]
pub struct Tenant {
    /// The platform's tenant id, case kept (it appears in aliases as given).
    pub id: String,
    pub name: String,
    pub api_token: Secret,
    /// The id of the homeserver its rooms and bot live on (`default`: the top-level one).
    pub homeserver: String,
    /// Where the tenant's events are POSTed, signed (DESIGN §7.4); `None`: no webhook.
    pub webhook: Option<Webhook>,
    /// Its public rooms are also listed in the server-wide directory, not only in its own
    /// (DESIGN §7.5).
    pub server_directory: bool,
    /// Rules before send (DESIGN §7.3); `None`: no rules, messages pass.
    pub rules: Option<Rules>,
}

impl Tenant {
    /// Every tenant that validates; `homeservers` are the ids a tenant may name, the default (the
    /// top-level homeserver) first.
    pub fn validate_all(
        sections: Vec<TenantSection>,
        homeservers: &[&str],
        p: &mut Vec<String>,
    ) -> Vec<Self> {
        let mut tenants = Vec::new();
        for (index, tenant) in sections.into_iter().enumerate() {
            let at = format!("tenants[{index}]");
            let tenant_id = required(p, &format!("{at}.id"), tenant.id).filter(|id| {
                let ok = id.chars().all(|c| c.is_ascii_alphanumeric() || "._=".contains(c));
                if !ok {
                    p.push(format!("{at}.id {id:?} may only hold letters, digits and . _ =: it is the last '-' segment of room aliases and part of the bot's user id."));
                }
                ok
            });
            let name = required(p, &format!("{at}.name"), tenant.name);
            let api_token = secret::resolve(
                &format!("{at}.api_token"),
                tenant.api_token.as_deref(),
                tenant.api_token_file.as_deref(),
                p,
            );
            let webhook = webhook::validate(&format!("{at}.webhook"), tenant.webhook, p);
            let rules =
                (tenant.rules).and_then(|rules| Rules::validate(rules, &format!("{at}.rules"), p));
            let homeserver = (tenant.homeserver)
                .unwrap_or_else(|| homeservers.first().copied().unwrap_or_default().to_owned());
            if !homeservers.contains(&homeserver.as_str()) {
                p.push(format!(
                    "{at}.homeserver {homeserver:?} is not a configured homeserver: use one of {} (or leave it out for the top-level one).",
                    homeservers.join(", ")
                ));
            }
            if let (Some(id), Some(name), Some(api_token)) = (tenant_id, name, api_token) {
                if tenants
                    .iter()
                    .any(|t: &Tenant| t.id.eq_ignore_ascii_case(&id))
                {
                    p.push(format!("{at}.id {id:?} is listed twice (ids differing only in case share one bot user): remove one."));
                }
                tenants.push(Tenant {
                    id,
                    name,
                    api_token,
                    homeserver,
                    webhook,
                    server_directory: tenant.server_directory.unwrap_or(false),
                    rules,
                });
            }
        }
        tenants
    }
}
