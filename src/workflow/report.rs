//! The Plane comment as a small report for the reviewer: the summary, then the branch, its
//! commits and diffstat, the review link, and what the run took. Every piece of text is
//! escaped; the only attribute written is the link's, escaped for an attribute.

use crate::git::LISTED_COMMITS;
use crate::ticket::{escape_html, text_to_html, Ticket};

/// The comment's HTML.
#[must_use]
pub fn comment_html(ticket: &Ticket) -> String {
    let mut html = text_to_html(ticket.summary.as_deref().unwrap_or_default());
    if let Some(b) = &ticket.branch {
        let mut line = format!(
            "<p><strong>Branch</strong> <code>{}</code>",
            escape_html(&b.name)
        );
        if ticket.plane_sync.branch_pushed_at.is_some() {
            line.push_str(" (pushed)");
        }
        line.push_str(&format!(
            ": {} commit{}, {} file{} changed, +{} −{}</p>",
            b.commit_count,
            plural(b.commit_count as u64),
            b.files_changed,
            plural(b.files_changed),
            b.insertions,
            b.deletions
        ));
        html.push_str(&line);
        if !b.commits.is_empty() {
            html.push_str("<ul>");
            for c in b.commits.iter().take(LISTED_COMMITS) {
                html.push_str(&format!(
                    "<li><code>{}</code> {}</li>",
                    escape_html(c.sha.get(..7).unwrap_or(&c.sha)),
                    escape_html(&c.subject)
                ));
            }
            let more = b
                .commit_count
                .saturating_sub(b.commits.len().min(LISTED_COMMITS));
            if more > 0 {
                html.push_str(&format!("<li>and {more} more</li>"));
            }
            html.push_str("</ul>");
        }
        if b.uncommitted + b.untracked > 0 {
            html.push_str(&format!(
                "<p>Not committed: {} changed and {} untracked file(s) in the worktree.</p>",
                b.uncommitted, b.untracked
            ));
        }
        if let Some(url) = &b.review_url {
            html.push_str(&format!(
                "<p><strong>Review</strong>: <a href=\"{}\">{}</a></p>",
                html_escape::encode_double_quoted_attribute(url),
                escape_html(url)
            ));
        }
    }
    if let Some(usage) = usage_line(ticket) {
        html.push_str(&format!("<p>{}</p>", escape_html(&usage)));
    }
    if let Some(s) = &ticket.session {
        let mut place = Vec::new();
        if ticket.branch.is_none() {
            if let Some(branch) = &s.branch {
                place.push(format!("branch <code>{}</code>", escape_html(branch)));
            }
        }
        place.push(format!("session <code>{}</code>", escape_html(&s.name)));
        html.push_str(&format!("<p>plane-orch: {}</p>", place.join(", ")));
    }
    html
}

/// What the run took, when known: its duration from approval to completion. Token and cost
/// figures join this line once the ticket records them.
fn usage_line(ticket: &Ticket) -> Option<String> {
    let (from, to) = (ticket.approved_at?, ticket.completed_at?);
    let secs = (to - from).num_seconds().max(0);
    Some(format!("Duration: {}", duration(secs)))
}

fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{now, BranchCommit, BranchState, NewTicket, SessionInfo, TicketId};

    #[test]
    fn the_report_lists_ten_commits_then_the_rest_and_escapes_everything() {
        let mut t = Ticket::new(
            NewTicket::manual(TicketId::parse("A-1").unwrap(), "t"),
            now(),
        );
        t.summary = Some("did <it>".into());
        t.session = Some(Box::new(SessionInfo {
            name: "plane-A-1".into(),
            backend: "tmux".into(),
            workdir: "/w".into(),
            branch: Some("claude/a-1".into()),
            agent_session: None,
            started_at: None,
        }));
        t.branch = Some(Box::new(BranchState {
            name: "claude/a-1".into(),
            base: Some("b".into()),
            head: Some("h".into()),
            commits: (0..10)
                .map(|i| BranchCommit {
                    sha: format!("{i:040}"),
                    subject: format!("<b>change</b> {i}"),
                })
                .collect(),
            commit_count: 13,
            files_changed: 1,
            insertions: 5,
            deletions: 2,
            uncommitted: 0,
            untracked: 0,
            unpushed: None,
            review_url: Some("https://x.example/c?a=1&b=\"2\"".into()),
            checked_at: now(),
        }));
        let html = comment_html(&t);
        assert!(html.starts_with("<p>did &lt;it&gt;</p>"), "{html}");
        assert!(
            html.contains("<code>claude/a-1</code>: 13 commits, 1 file changed, +5 −2"),
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;change&lt;/b&gt; 9</li><li>and 3 more</li>"),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://x.example/c?a=1&amp;b=&quot;2&quot;\""),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
        assert_eq!(html.matches("<li>").count(), 11);
    }
}
