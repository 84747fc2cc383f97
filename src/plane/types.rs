//! The parts of Plane's answers plane-orch reads. Unknown keys are ignored, so a newer Plane
//! that adds fields still parses; a field plane-orch needs that is missing is an error.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

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
    pub id: String,
    pub name: String,
    pub sequence_id: u64,
    #[serde(default)]
    pub description_html: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    /// The state's UUID.
    #[serde(default)]
    pub state: Option<String>,
    /// Label UUIDs.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The project's UUID.
    #[serde(default)]
    pub project: Option<String>,
    /// Plane's timestamps carry the key owner's offset: kept as given.
    #[serde(default)]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<FixedOffset>>,
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
