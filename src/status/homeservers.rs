//! What the status knows of each homeserver: from the running daemon (each homeserver's health)
//! or asked of each homeserver now by the command (`whoami`, each bot's profile).

use std::collections::HashMap;

use ruma::api::client::account::whoami;
use ruma::api::client::profile::get_profile;
use ruma::{OwnedUserId, UserId};

use super::HomeserverStatus;
use crate::app::App;
use crate::config::{Config, HomeserverConfig, Tenant};
use crate::matrix::{Client, RetryKind};
use crate::observability::health::TokenState;

/// What is known of the homeservers: each one's token state and last ping, each bot's
/// registration.
#[derive(Debug, Clone)]
pub struct HomeserverView {
    /// In config order, the default one first.
    pub homeservers: Vec<HomeserverState>,
    pub registered: HashMap<OwnedUserId, bool>,
}

/// What is known of one homeserver.
#[derive(Debug, Clone)]
pub struct HomeserverState {
    pub id: String,
    pub token: TokenState,
    /// `None` from the command (it cannot know the daemon's ping).
    pub ping: Option<bool>,
}

impl HomeserverView {
    /// What the running daemon has seen, without calling any homeserver.
    pub fn of_daemon(app: &App) -> Self {
        let config = app.config();
        let registered = config
            .tenants
            .iter()
            .map(|tenant| config.bot_user_id(tenant))
            .map(|bot| {
                let known = app.known_registered(&bot);
                (bot, known)
            })
            .collect();
        let homeservers = app
            .links()
            .iter()
            .map(|link| HomeserverState {
                id: link.id.clone(),
                token: link.health.token(),
                ping: Some(link.health.ping_ok()),
            })
            .collect();
        Self {
            homeservers,
            registered,
        }
    }

    /// Asks each homeserver now: `whoami` as its sender for the token, then each of its tenant
    /// bots' profile (404: not registered). What it could not learn stays unknown; the second
    /// value says why, one sentence per homeserver that could not tell everything.
    pub async fn check(app: &App) -> (Self, Vec<String>) {
        let config = app.config();
        let mut view = Self {
            homeservers: Vec::new(),
            registered: HashMap::new(),
        };
        let mut problems = Vec::new();
        for homeserver in config.homeservers() {
            let Some(link) = app.link(homeserver.id) else {
                continue;
            };
            let tenants: Vec<_> = config
                .tenants
                .iter()
                .filter(|tenant| tenant.homeserver == homeserver.id)
                .collect();
            let (token, problem) = check_one(&link.client, &homeserver, &tenants, &mut view).await;
            view.homeservers.push(HomeserverState {
                id: homeserver.id.to_owned(),
                token,
                ping: None,
            });
            problems.extend(problem);
        }
        (view, problems)
    }

    pub(super) fn registered(&self, bot: &UserId) -> Option<bool> {
        self.registered.get(bot).copied()
    }

    pub(super) fn token(&self, id: &str) -> TokenState {
        self.homeservers
            .iter()
            .find(|homeserver| homeserver.id == id)
            .map_or(TokenState::Unknown, |homeserver| homeserver.token)
    }
}

/// One homeserver's part of [`HomeserverView::check`]: its token's state, and a sentence when it
/// could not tell everything.
async fn check_one(
    client: &Client,
    homeserver: &HomeserverConfig<'_>,
    tenants: &[&Tenant],
    view: &mut HomeserverView,
) -> (TokenState, Option<String>) {
    let (id, url) = (homeserver.id, &homeserver.homeserver.url);
    match client.send(whoami::v3::Request::new(), None).await {
        Ok(_) => {}
        Err(error) if error.retry_kind() == RetryKind::CredentialRejected => {
            let problem = format!(
                "the homeserver {id} at {url} refuses this config's as_token ({}): bot registration is unknown; see `openmeet-appservice check --homeserver {id}`",
                error.errcode()
            );
            return (TokenState::Rejected, Some(problem));
        }
        Err(error) => {
            let problem = format!(
                "the homeserver {id} at {url} could not be asked ({error}): token and bot registration are unknown"
            );
            return (TokenState::Unknown, Some(problem));
        }
    }
    let mut problem = None;
    for tenant in tenants {
        let bot = homeserver.bot_user_id(tenant);
        match client
            .send(get_profile::v3::Request::new(bot.clone()), None)
            .await
        {
            Ok(_) => {
                view.registered.insert(bot, true);
            }
            Err(error) if error.is_not_found() => {
                view.registered.insert(bot, false);
            }
            Err(error) => {
                problem.get_or_insert_with(|| {
                    format!("could not look up the profile of {bot} ({error}): its registration is unknown")
                });
            }
        }
    }
    (TokenState::Accepted, problem)
}

/// Whether a homeserver that accepts our token made its last ping; `None`: unknown (the command).
pub(super) fn ready_ping(view: &HomeserverView) -> Option<bool> {
    let mut known = view
        .homeservers
        .iter()
        .filter_map(|h| h.ping.map(|ping| ping && h.token == TokenState::Accepted));
    let first = known.next()?;
    Some(first || known.any(|healthy| healthy))
}

pub(super) fn homeserver_status(config: &Config, state: &HomeserverState) -> HomeserverStatus {
    HomeserverStatus {
        id: state.id.clone(),
        server_name: config
            .homeserver_by_id(&state.id)
            .map(|h| h.homeserver.server_name.to_string())
            .unwrap_or_default(),
        as_token: super::token_label(state.token).to_owned(),
        ping: state.ping,
        healthy: state
            .ping
            .map(|ping| ping && state.token == TokenState::Accepted),
        tenants: config
            .tenants
            .iter()
            .filter(|tenant| tenant.homeserver == state.id)
            .map(|tenant| tenant.id.clone())
            .collect(),
    }
}
