//! The registration one homeserver's Synapse loads (`app_service_config_files`), rendered from
//! that homeserver's resolved config; the namespaces and their checks live in
//! `config::Namespaces`.
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#registration>

use serde::Serialize;

use crate::config::HomeserverConfig;

/// What `openmeet-appservice registration` prints, field for field as Synapse reads it.
#[derive(Debug, Serialize)]
pub struct Registration {
    pub id: String,
    pub url: String,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    pub rate_limited: bool,
    pub receive_ephemeral: bool,
    /// The third-party protocols whose networks the appservice lists rooms for: `openmeet`, one
    /// network (room directory) per tenant (DESIGN §7.5).
    pub protocols: Vec<String>,
    pub namespaces: RegistrationNamespaces,
}

#[derive(Debug, Serialize)]
pub struct RegistrationNamespaces {
    pub users: Vec<Namespace>,
    pub aliases: Vec<Namespace>,
    pub rooms: Vec<Namespace>,
}

#[derive(Debug, Serialize)]
pub struct Namespace {
    pub exclusive: bool,
    pub regex: String,
}

impl Registration {
    pub fn of(homeserver: &HomeserverConfig<'_>) -> Self {
        let exclusive = |regex: &str| Namespace {
            exclusive: true,
            regex: regex.to_owned(),
        };
        let appservice = homeserver.appservice;
        Self {
            id: appservice.id.clone(),
            url: appservice.url.as_str().trim_end_matches('/').to_owned(),
            as_token: appservice.as_token.expose().to_owned(),
            hs_token: appservice.hs_tokens[0].expose().to_owned(),
            sender_localpart: appservice.sender_localpart.clone(),
            rate_limited: false,
            receive_ephemeral: false,
            protocols: vec![crate::rooms::directory::PROTOCOL.to_owned()],
            namespaces: RegistrationNamespaces {
                users: homeserver
                    .namespaces
                    .user_patterns()
                    .iter()
                    .map(|regex| exclusive(regex))
                    .collect(),
                aliases: vec![exclusive(homeserver.namespaces.alias_pattern())],
                rooms: Vec::new(),
            },
        }
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("the registration is plain data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn checked_in_example_is_rendered_from_the_sample_config() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        // What `make sample` renders it from: the sample with a placeholder for each token.
        let placeholders = crate::config::sample::SampleTokens {
            as_token: "YOUR-as-TOKEN-FROM-CONFIG".into(),
            hs_token: "YOUR-hs-TOKEN-FROM-CONFIG".into(),
            admin_token: "YOUR-admin-TOKEN-FROM-CONFIG".into(),
            tenant_token: "YOUR-api-TOKEN-FROM-CONFIG".into(),
        };
        let sample = crate::config::sample::render(Some(&placeholders));
        let config = Config::from_yaml(std::path::Path::new("sample"), &sample, [])
            .unwrap_or_else(|e| panic!("{e}"));
        let example =
            std::fs::read_to_string(root.join("registration/example.yaml")).unwrap_or_default();
        assert!(
            example == Registration::of(&config.default_homeserver()).to_yaml(),
            "registration/example.yaml is stale: regenerate it with `make sample`"
        );
    }
}
