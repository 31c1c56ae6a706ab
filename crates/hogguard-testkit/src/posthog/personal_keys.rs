//! `/api/personal_api_keys/`: with a personal API key, only retrieving that key itself is
//! allowed (`PersonalApiKeySelfAccessPermission`); everything else is 403.

use hyper::Method;

use super::auth::Via;
use super::http::{self, ApiRequest, ApiResponse, Reply};
use super::repr;
use super::world::World;

impl World {
    pub(crate) fn personal_api_keys(&mut self, request: &ApiRequest, rest: &[&str]) -> Reply {
        let is_retrieve = match rest {
            [] => false,
            [_] => request.method == Method::GET,
            [_, "roll"] => false,
            _ => return Err(http::not_found("Not found.")),
        };
        // The viewset authenticates only personal API keys (and web sessions, which the
        // stand-in does not have): an OAuth token is not a credential here.
        let principal = self.authenticate(request, false)?;
        if !is_retrieve {
            return Err(http::personal_api_key_unsupported());
        }
        let Via::PersonalKey(own_id) = &principal.via else {
            return Err(http::personal_api_key_unsupported());
        };
        let requested = rest[0];
        let key = if requested == "@current" {
            self.personal_keys.iter().find(|key| &key.id == own_id)
        } else {
            let key = self
                .personal_keys
                .iter()
                .find(|key| key.id == requested && key.user_id == principal.user_id)
                .ok_or_else(|| http::not_found("Not found."))?;
            if &key.id != own_id {
                return Err(http::personal_api_key_unsupported());
            }
            Some(key)
        };
        let key = key.ok_or_else(http::not_authenticated)?;
        Ok(ApiResponse::json(200, &repr::personal_key(key, None)))
    }
}
