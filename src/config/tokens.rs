//! The tokens of every party must differ: a shared token would let one party act as another, and
//! an hs_token shared between homeservers would hide which of them is calling.

use super::appservice::Appservice;
use super::secret::Secret;
use super::tenants::Tenant;

/// `appservices` are each homeserver's registration with the key it was read from.
pub fn check_distinct(
    appservices: &[(String, &Appservice)],
    tenants: &[Tenant],
    admin_token: Option<&Secret>,
    p: &mut Vec<String>,
) {
    let mut tokens: Vec<(String, &Secret)> = Vec::new();
    for (at, appservice) in appservices {
        tokens.push((format!("{at}.as_token"), &appservice.as_token));
        for token in &appservice.hs_tokens {
            tokens.push((format!("{at}.hs_token"), token));
        }
        if let Some(token) = &appservice.antispam_token {
            tokens.push((format!("{at}.antispam_token"), token));
        }
    }
    for tenant in tenants {
        tokens.push(("a tenant's api_token".to_owned(), &tenant.api_token));
    }
    if let Some(token) = admin_token {
        tokens.push(("admin_token".to_owned(), token));
    }
    for (i, (first, a)) in tokens.iter().enumerate() {
        if let Some((second, _)) = tokens[i + 1..].iter().find(|(_, b)| a == b) {
            p.push(format!(
                "{first} and {second} hold the same token: give each its own random token."
            ));
        }
    }
}
