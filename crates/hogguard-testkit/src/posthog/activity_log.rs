//! `GET /api/projects/{id}/activity_log/`: `ActivityLogViewSet` (`scope_object =
//! "activity_log"`), cursor-paginated 100 rows at a time, newest first.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::Method;

use super::auth::ViewTeam;
use super::http::{self, ApiRequest, ApiResponse, Reply};
use super::repr::{self, CursorPage};
use super::world::World;

const PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

/// A cursor as DRF encodes one: base64 of a query string, here `o=<offset>`.
fn encode_cursor(offset: usize) -> String {
    STANDARD.encode(format!("o={offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let decoded = STANDARD.decode(cursor).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split('&')
        .find_map(|pair| pair.strip_prefix("o="))
        .and_then(|offset| offset.parse().ok())
}

impl World {
    pub(crate) fn activity_log(&mut self, request: &ApiRequest, raw_project_id: &str) -> Reply {
        let principal = self.authenticate(request, true)?;
        let required = (request.method == Method::GET).then_some("activity_log:read");
        let project = self.resolve_project(raw_project_id);
        self.check_scopes(
            &principal,
            required,
            "activity_log",
            &ViewTeam::Team(project.clone()),
        )?;
        let project = project?;
        self.check_project_member(&principal, &project)?;
        if request.method != Method::GET {
            return Err(http::method_not_allowed(&request.method));
        }
        let offset = match request.query_param("cursor") {
            Some(cursor) => {
                decode_cursor(cursor).ok_or_else(|| http::not_found("Invalid cursor"))?
            }
            None => 0,
        };
        let page_size = request
            .query_param("page_size")
            .and_then(|size| size.parse::<usize>().ok())
            .filter(|size| *size > 0)
            .map_or(PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE));
        let include_organization_rows = request
            .query_param("include_organization_scoped")
            .is_some_and(|value| matches!(value, "1" | "true"));
        let scopes: Option<Vec<&str>> = request
            .query_param("scopes")
            .map(|scopes| scopes.split(',').map(str::trim).collect());
        let mut rows: Vec<(usize, &_)> = self
            .activity
            .iter()
            .enumerate()
            .filter(|(_, row)| {
                row.team_id == Some(project.id)
                    || (include_organization_rows
                        && row.team_id.is_none()
                        && row.organization_id == project.organization_id)
            })
            .filter(|(_, row)| {
                request
                    .query_param("user")
                    .is_none_or(|user| row.user_id.is_some_and(|id| id.to_string() == user))
            })
            .filter(|(_, row)| {
                request
                    .query_param("scope")
                    .is_none_or(|scope| row.scope == scope)
            })
            .filter(|(_, row)| {
                scopes
                    .as_ref()
                    .is_none_or(|scopes| scopes.contains(&row.scope.as_str()))
            })
            .filter(|(_, row)| {
                request
                    .query_param("item_id")
                    .is_none_or(|item| row.item_id == item)
            })
            .collect();
        rows.sort_by(|(a_index, a), (b_index, b)| {
            b.created_at.cmp(&a.created_at).then(b_index.cmp(a_index))
        });
        let link = |offset: usize| {
            let mut query: Vec<String> = request
                .query
                .iter()
                .filter(|(name, _)| name != "cursor")
                .map(|(name, value)| {
                    format!(
                        "{}={}",
                        http::percent_encode(name),
                        http::percent_encode(value)
                    )
                })
                .collect();
            query.push(format!(
                "cursor={}",
                http::percent_encode(&encode_cursor(offset))
            ));
            format!("{}{}?{}", self.base_url, request.path, query.join("&"))
        };
        let next = (offset + page_size < rows.len()).then(|| link(offset + page_size));
        let previous = (offset > 0).then(|| link(offset.saturating_sub(page_size)));
        let results = rows
            .into_iter()
            .skip(offset)
            .take(page_size)
            .map(|(_, row)| repr::activity(self, row))
            .collect();
        Ok(ApiResponse::json(
            200,
            &CursorPage {
                next,
                previous,
                results,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(encode_cursor(100), "bz0xMDA=");
        assert_eq!(decode_cursor(&encode_cursor(300)), Some(300));
        assert_eq!(decode_cursor("not base64!"), None);
    }
}
