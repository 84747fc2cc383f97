//! The parts of Plane's answers plane-orch reads. Unknown keys are ignored, so a newer Plane
//! that adds fields still parses; a field plane-orch needs that is missing is an error.

use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Whether `s` is a UUID in the hyphenated form Plane gives: the only form of id plane-orch
/// ever puts into a request path.
#[must_use]
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// Whether `s` can be the prefix of a ticket id (`CSLOG` in `CSLOG-123`): a letter, then up
/// to 11 letters or digits, compared upper-cased.
#[must_use]
pub fn is_project_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.len() <= 12
        && bytes.all(|c| c.is_ascii_alphanumeric())
}

/// A field read leniently: a value of the wrong JSON type becomes the default, so one hostile
/// work item is skipped (by [`WorkItem::problem`]) instead of failing the whole page.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(d: D) -> Result<T, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// One page of a list endpoint (Plane's cursor pagination envelope).
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub results: Vec<T>,
    /// Whether another page follows; the only reliable end marker.
    #[serde(default)]
    pub next_page_results: bool,
    /// `per_page:page:is_prev`; present on the last page too.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `GET workspaces/{slug}/projects/{id}/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// The readable prefix of ticket ids (CSLOG in CSLOG-123).
    pub identifier: String,
}

/// A workflow state of a project.
#[derive(Debug, Clone, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    /// `backlog`, `unstarted`, `started`, `completed` or `cancelled`.
    #[serde(default)]
    pub group: String,
}

/// A label of a project.
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub id: String,
    pub name: String,
}

/// A work item (issue), as the list and detail endpoints give it without `expand`.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkItem {
    /// Empty when Plane sent something other than a string.
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub name: String,
    /// 0 when Plane sent something other than a positive integer.
    #[serde(deserialize_with = "lenient")]
    pub sequence_id: u64,
    #[serde(default)]
    pub description_html: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    /// The state's UUID.
    #[serde(default, deserialize_with = "lenient")]
    pub state: Option<String>,
    /// Label UUIDs.
    #[serde(default, deserialize_with = "lenient")]
    pub labels: Vec<String>,
    /// The project's UUID.
    #[serde(default, deserialize_with = "lenient")]
    pub project: Option<String>,
    /// Plane's timestamps carry the key owner's offset: kept as given.
    #[serde(default)]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

impl WorkItem {
    /// Why this work item cannot be used, if it cannot: an id that is not a UUID (it would go
    /// into request paths), a sequence id that is not a positive integer, a state, label or
    /// project that is not a UUID.
    #[must_use]
    pub fn problem(&self) -> Option<String> {
        if !is_uuid(&self.id) {
            return Some(format!("its id {:?} is not a UUID", shorten(&self.id)));
        }
        if self.sequence_id == 0 {
            return Some("its sequence_id is not a positive integer".into());
        }
        if let Some(state) = self.state.as_deref().filter(|s| !is_uuid(s)) {
            return Some(format!("its state {:?} is not a UUID", shorten(state)));
        }
        if let Some(label) = self.labels.iter().find(|l| !is_uuid(l)) {
            return Some(format!("its label {:?} is not a UUID", shorten(label)));
        }
        if let Some(project) = self.project.as_deref().filter(|p| !is_uuid(p)) {
            return Some(format!("its project {:?} is not a UUID", shorten(project)));
        }
        None
    }
}

/// At most 60 characters of a hostile value, for a warning.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// A comment, as Plane answers a create (or names the existing one in a 409).
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: String,
}

/// Plane's error bodies come in several shapes: `{"detail"}`, `{"error"}`,
/// `{"error_message"}` or serializer field errors.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// The existing object's id in a 409.
    #[serde(default)]
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_work_items_are_named_not_parsed_away() {
        let page: Page<WorkItem> = serde_json::from_value(serde_json::json!({"results": [
            {"id": "../../../users/me", "name": "a", "sequence_id": 1},
            {"id": "3f2b1c4e-2222-4000-8000-000000000001", "name": "b", "sequence_id": -3},
            {"id": 7, "name": "c", "sequence_id": "x"},
            {"id": "3f2b1c4e-2222-4000-8000-000000000002", "name": "d", "sequence_id": 4,
             "state": "../x", "labels": ["3f2b1c4e-2222-4000-8000-000000000003"]},
            {"id": "3f2b1c4e-2222-4000-8000-000000000004", "name": "e", "sequence_id": 5}
        ]}))
        .unwrap();
        let problems: Vec<Option<String>> = page.results.iter().map(WorkItem::problem).collect();
        assert!(problems[0]
            .as_deref()
            .unwrap()
            .contains("../../../users/me"));
        assert!(problems[1].as_deref().unwrap().contains("sequence_id"));
        assert!(problems[2].is_some());
        assert!(problems[3].as_deref().unwrap().contains("state"));
        assert_eq!(problems[4], None);
        assert!(is_project_identifier("CSLOG") && !is_project_identifier("../X"));
        assert!(!is_project_identifier("1AB") && !is_project_identifier(""));
        assert!(!is_uuid("{3f2b1c4e-2222-4000-8000-000000000004}"));
    }

    #[test]
    fn a_recorded_page_parses() {
        let page: Page<WorkItem> = serde_json::from_str(include_str!(
            "../../tests/fixtures/plane/list-issues-page1.json"
        ))
        .unwrap();
        assert!(page.next_page_results);
        assert_eq!(page.next_cursor.as_deref(), Some("2:1:0"));
        assert_eq!(page.results[1].sequence_id, 4);
        assert_eq!(page.results[1].labels.len(), 1);
        assert_eq!(
            page.results[0].created_at.unwrap().to_rfc3339(),
            "2026-11-27T03:11:32.341507+00:00"
        );
    }
}
