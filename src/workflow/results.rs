//! What a ticket's work left on its branch, for the person reviewing it: the branch's commits
//! and diffstat (looked at when the ticket is completed and again at update-plane), its review
//! page, and what update-plane warns about before anything goes to Plane.

use anyhow::Result;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::app::App;
use crate::config::Config;
use crate::git::{Git, LISTED_COMMITS};
use crate::plane::{self, Client};
use crate::session::made::{self, Made};
use crate::ticket::{now, BranchCommit, BranchState, Ticket, TicketId};

/// What a branch name keeps in a URL: the characters branch names are made of.
const IN_URL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'/')
    .remove(b'~');

/// The ticket's branch and the worktree it is checked out in, when it has one.
fn branch_of(ticket: &Ticket) -> Option<(&str, &str)> {
    let s = ticket.session.as_ref()?;
    Some((s.branch.as_deref()?, s.workdir.as_str()))
}

/// What plane-orch wrote down when it made the ticket's worktree.
fn made_for(config: &Config, id: &TicketId) -> Option<Made> {
    made::load(&made::path_for(&config.state.path))
        .ok()?
        .remove(id)
}

/// Looks at the ticket's branch now. `None` when it has no worktree branch, or git cannot
/// read it (logged: a missing report must not stop the ticket).
#[must_use]
pub fn look(config: &Config, ticket: &Ticket) -> Option<BranchState> {
    let (branch, workdir) = branch_of(ticket)?;
    match read_branch(config, ticket, branch, workdir) {
        Ok(state) => Some(state),
        Err(e) => {
            log::warn!("{}: cannot read its branch {branch}: {e:#}", ticket.id);
            None
        }
    }
}

fn read_branch(
    config: &Config,
    ticket: &Ticket,
    branch: &str,
    workdir: &str,
) -> Result<BranchState> {
    let repo = Git::at(&config.automation.repo_path);
    let full = format!("refs/heads/{branch}");
    let head = repo.commit_of(&full)?;
    let made = made_for(config, &ticket.id);
    let base_branch = made
        .as_ref()
        .and_then(|m| m.base_branch.clone())
        .or_else(|| repo.current_branch());
    let base = match made.as_ref().and_then(|m| m.base.clone()) {
        Some(b) => Some(b),
        None => repo
            .run(&["merge-base", "HEAD", &full])
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    };
    let (commits, commit_count, stat) = match (&base, &head) {
        (Some(b), Some(h)) => {
            let (commits, count) = repo.commits(b, h, LISTED_COMMITS)?;
            (commits, count, repo.diffstat(b, h)?)
        }
        _ => (Vec::new(), 0, crate::git::Diffstat::default()),
    };
    let worktree = Git::at(workdir);
    let changes = if std::path::Path::new(workdir).is_dir() {
        worktree.changes(&config.automation.worktree_copy)?
    } else {
        crate::git::Changes::default()
    };
    let unpushed = if repo.remotes()?.is_empty() {
        None
    } else {
        match &head {
            Some(h) => Some(repo.not_on_remotes(h)?.len()),
            None => Some(0),
        }
    };
    Ok(BranchState {
        name: branch.to_string(),
        base: base.clone(),
        head,
        commits: commits
            .into_iter()
            .map(|c| BranchCommit {
                sha: c.sha,
                subject: c.subject,
            })
            .collect(),
        commit_count,
        files_changed: stat.files,
        insertions: stat.insertions,
        deletions: stat.deletions,
        uncommitted: changes.modified.len(),
        untracked: changes.untracked.len(),
        unpushed,
        review_url: review_url(config, &ticket.id, branch, base_branch.as_deref()),
        checked_at: now(),
    })
}

/// `automation.review_url` with `{branch}`, `{id}` and `{base}` (the branch the work goes
/// into) filled in, each percent-encoded.
#[must_use]
pub fn review_url(
    config: &Config,
    id: &TicketId,
    branch: &str,
    base_branch: Option<&str>,
) -> Option<String> {
    let template = config.automation.review_url.as_deref()?;
    let enc = |s: &str| utf8_percent_encode(s, IN_URL).to_string();
    Some(
        template
            .replace("{branch}", &enc(branch))
            .replace("{id}", &enc(id.as_str()))
            .replace("{base}", &enc(base_branch.unwrap_or("main"))),
    )
}

/// Looks at the ticket's branch and records what it holds on the ticket; the ticket as it is
/// then. Nothing is recorded when it has no branch.
///
/// # Errors
/// The store cannot be written.
pub fn refresh(app: &App, ticket: Ticket) -> Result<Ticket> {
    let Some(state) = look(&app.config, &ticket) else {
        return Ok(ticket);
    };
    app.store.update_ticket(&ticket.id, |t| {
        t.branch = Some(Box::new(state));
        Ok(t.clone())
    })
}

/// Why the branch should not go to Plane as it is: no commits, or commits no remote has while
/// there is a remote and nothing will push them. Empty when all is well.
#[must_use]
pub fn warnings(config: &Config, ticket: &Ticket) -> Vec<String> {
    let Some(b) = &ticket.branch else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if b.commit_count == 0 {
        out.push(format!(
            "the branch {} has no commits: the reviewer will find nothing on it",
            b.name
        ));
    }
    if let Some(n) = b.unpushed.filter(|n| *n > 0) {
        if !config.automation.push && ticket.plane_sync.branch_pushed_at.is_none() {
            out.push(format!(
                "{n} commit(s) of {} are on no remote and automation.push is off: \
                 push the branch (or set automation.push: true)",
                b.name
            ));
        }
    }
    out
}

/// What goes to the work item's links: the review page, else (when the remote is an http(s)
/// repository) the remote's page with the branch named in the title; `None` when there is
/// neither, as a link needs a URL.
#[must_use]
pub fn link(config: &Config, ticket: &Ticket) -> Option<(String, String)> {
    let b = ticket.branch.as_ref()?;
    if let Some(url) = &b.review_url {
        return Some((url.clone(), format!("Review {}", b.name)));
    }
    let remote = &config.automation.remote;
    let url = Git::at(&config.automation.repo_path)
        .run(&["remote", "get-url", "--end-of-options", remote])
        .ok()?;
    let page = web_page_of(url.trim())?;
    Some((page, format!("Branch {} on {remote}", b.name)))
}

/// An http(s) remote URL as a web page: no credentials, no `.git`.
fn web_page_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    Some(format!("{scheme}://{host}/{path}"))
}

/// Pushes the ticket's branch to `automation.remote` (never forced).
///
/// # Errors
/// The push was refused or failed, with git's words.
pub fn push(config: &Config, branch: &str) -> Result<()> {
    Git::at(&config.automation.repo_path).push(&config.automation.remote, branch)
}

// ---- update-plane's recorded steps for the branch ----

/// Pushes the branch (never forced) unless its head was pushed already; a refusal stops
/// update-plane before anything is posted.
pub(super) fn push_step(app: &App, ticket: Ticket) -> Result<Ticket> {
    let Some(b) = ticket.branch.clone() else {
        return Ok(ticket);
    };
    if b.head.is_some() && ticket.plane_sync.branch_pushed_head == b.head {
        return Ok(ticket);
    }
    push(&app.config, &b.name)?;
    let remote = app.config.automation.remote.clone();
    super::update_plane::apply(app, &ticket.id, |t| {
        let at = now();
        t.plane_sync.branch_pushed_at = Some(at);
        t.plane_sync.branch_pushed_head.clone_from(&b.head);
        if let Some(state) = &mut t.branch {
            state.unpushed = Some(0);
        }
        t.record(
            at,
            "branch_pushed",
            Some(format!("{} pushed to {remote}", b.name)),
        );
    })
}

/// Adds the review link to the work item. Plane is asked first whether it has the link: a
/// run killed after Plane added it, before it was recorded, does not add it twice.
pub(super) fn link_step(
    app: &App,
    client: &Client,
    project: &str,
    issue: &str,
    ticket: Ticket,
) -> Result<Ticket> {
    let Some((url, title)) = link(&app.config, &ticket) else {
        return Ok(ticket);
    };
    let existing = client
        .links(project, issue)?
        .into_iter()
        .find(|(_, u)| *u == url);
    let posted = match existing {
        Some((id, _)) => plane::Posted {
            id: Some(id),
            already: true,
        },
        None => client.add_link(project, issue, &url, &title)?,
    };
    super::update_plane::apply(app, &ticket.id, |t| {
        let at = now();
        t.plane_sync.link_added_at = Some(at);
        t.plane_sync.link_id.clone_from(&posted.id);
        let detail = if posted.already {
            format!("the work item links to {url} already: not added again")
        } else {
            format!("link to {url} added to the work item")
        };
        t.record(at, "plane_link", Some(detail));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_url_is_filled_in_and_encoded() {
        let mut c = crate::config::parse(
            "automation:\n  review_url: https://github.com/acme/app/compare/{base}...{branch}?expand=1&t={id}\n",
            std::path::Path::new("/etc/p/config.yaml"),
        )
        .unwrap();
        let id = TicketId::parse("CSLOG-7").unwrap();
        assert_eq!(
            review_url(&c, &id, "claude/cslog-7", Some("main")).unwrap(),
            "https://github.com/acme/app/compare/main...claude/cslog-7?expand=1&t=CSLOG-7"
        );
        assert_eq!(
            review_url(&c, &id, "a b&c", None).unwrap(),
            "https://github.com/acme/app/compare/main...a%20b%26c?expand=1&t=CSLOG-7"
        );
        c.automation.review_url = None;
        assert!(review_url(&c, &id, "x", None).is_none());
        assert!(crate::config::parse(
            "automation:\n  review_url: https://x/{nope}\n",
            std::path::Path::new("/etc/p/config.yaml"),
        )
        .is_err());
    }

    #[test]
    fn a_remote_becomes_a_page_without_credentials() {
        assert_eq!(
            web_page_of("https://user:secret@github.com/acme/app.git").unwrap(),
            "https://github.com/acme/app"
        );
        assert!(web_page_of("git@github.com:acme/app.git").is_none());
        assert!(web_page_of("/srv/git/app.git").is_none());
    }
}
