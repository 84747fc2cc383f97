//! Tickets: their ids, statuses, the one transition function and the audit trail.
//! Pure data: no I/O happens here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{conflict, Error};
use crate::html;

/// The current time, to the millisecond: the precision every stored timestamp has.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A validated ticket id: `IDENT-SUFFIX`, upper case.
///
/// Only a `TicketId` reaches file names, tmux names, branches, URLs and commands, so an id
/// that could escape any of them is refused before it gets there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketId(String);

impl TicketId {
    /// Validates and upper-cases an id typed by a person or sent by a client.
    ///
    /// # Errors
    /// `Error::Invalid` naming the id and the expected form.
    pub fn parse(input: &str) -> Result<TicketId, Error> {
        let upper = input.to_ascii_uppercase();
        if is_valid_id(&upper) {
            Ok(TicketId(upper))
        } else {
            let shown: String = input.chars().take(40).collect();
            let more = if input.chars().count() > 40 {
                "…"
            } else {
                ""
            };
            Err(Error::Invalid(format!(
                "invalid ticket id {shown:?}{more}: expected PROJECT-NUMBER such as CSLOG-123 \
                 (a letter, up to 11 more letters or digits, a dash, 1 to 20 letters or digits)"
            )))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The project identifier part, before the dash.
    #[must_use]
    pub fn project_identifier(&self) -> &str {
        self.0.split_once('-').map_or(&*self.0, |(ident, _)| ident)
    }
}

fn is_valid_id(s: &str) -> bool {
    let Some((ident, suffix)) = s.split_once('-') else {
        return false;
    };
    let mut ident_chars = ident.bytes();
    let first_ok = ident_chars.next().is_some_and(|c| c.is_ascii_uppercase());
    first_ok
        && ident.len() <= 12
        && ident_chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && (1..=20).contains(&suffix.len())
        && suffix
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TicketId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TicketId::parse(s)
    }
}

impl TryFrom<String> for TicketId {
    type Error = Error;
    fn try_from(mut s: String) -> Result<Self, Self::Error> {
        // In place: every ticket read from a file comes this way.
        s.make_ascii_uppercase();
        if is_valid_id(&s) {
            Ok(TicketId(s))
        } else {
            TicketId::parse(&s)
        }
    }
}

impl From<TicketId> for String {
    fn from(id: TicketId) -> String {
        id.0
    }
}

/// Where a ticket is in the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Found in Plane, waiting for a person to approve.
    Pending,
    /// Approved; a session works on it.
    Active,
    /// A summary was recorded; waiting for a person to approve the Plane update.
    Completed,
    /// The summary was posted to Plane.
    Done,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pending,
        Status::Active,
        Status::Completed,
        Status::Done,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Completed => "completed",
            Status::Done => "done",
        }
    }

    /// The status's place in the workflow: pending 0, active 1, completed 2, done 3.
    #[must_use]
    pub fn rank(self) -> usize {
        self as usize
    }

    /// The one status this one may move to; `done` is final.
    #[must_use]
    pub fn next(self) -> Option<Status> {
        match self {
            Status::Pending => Some(Status::Active),
            Status::Active => Some(Status::Completed),
            Status::Completed => Some(Status::Done),
            Status::Done => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a ticket entered the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerType {
    /// Its Plane state is a trigger state.
    StatusChange,
    /// It carries a trigger label.
    Label,
    /// Added by hand (`add`, `POST /api/tickets`).
    Manual,
}

/// One line of a ticket's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub event: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// What the person approved: the text the agent is given. A field left out (`None`) is the
/// ticket's own, which an approved ticket keeps as it was approved (polling records later edits
/// in Plane as events), so the text is stored once; a change to the ticket's own text while a
/// snapshot refers to it copies the approved text in first ([`Ticket::freeze_snapshot`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_text: Option<String>,
    pub url: Option<String>,
}

/// What the person approved, with the ticket's own text where the snapshot refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Approved<'a> {
    pub title: &'a str,
    pub description_html: &'a str,
    pub description_text: &'a str,
    pub url: Option<&'a str>,
}

/// A ticket's plain text: kept only when it is not what its HTML gives (a ticket added by hand
/// keeps the person's own text); otherwise made from the HTML the first time it is asked for
/// and remembered. Equal when the kept text is: the made one follows from the HTML.
#[derive(Debug, Clone, Default)]
pub struct Text {
    kept: Option<String>,
    made: std::sync::OnceLock<String>,
}

impl Text {
    /// Text the HTML does not give: kept.
    #[must_use]
    pub fn kept(text: String) -> Text {
        Text {
            kept: Some(text),
            made: std::sync::OnceLock::new(),
        }
    }

    /// Text made from the HTML when asked for.
    #[must_use]
    pub fn from_html() -> Text {
        Text::default()
    }

    /// Whether it is made from the HTML (and so not stored).
    #[must_use]
    pub fn is_from_html(&self) -> bool {
        self.kept.is_none()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.kept == other.kept
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.kept
            .as_deref()
            .unwrap_or_default()
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Text::kept)
    }
}

/// The session working on an active ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The tmux session's real name (`<tmux_prefix><ID>`).
    pub name: String,
    /// `tmux` or `service`.
    pub backend: String,
    pub workdir: String,
    #[serde(default)]
    pub branch: Option<String>,
    /// The agent's conversation id, resumed by `restart`.
    #[serde(default)]
    pub agent_session: Option<String>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
}

/// The session is waiting for the person (set by the Notification hook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub since: DateTime<Utc>,
    pub message: String,
    /// Claude Code's `notification_type` (`idle_prompt`, `permission_prompt`, ...).
    #[serde(default)]
    pub kind: Option<String>,
}

/// What the ticket's branch holds, as git said when it was last looked at (when the ticket
/// was completed, and again at update-plane).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchState {
    pub name: String,
    /// The commit the branch was made from.
    pub base: Option<String>,
    /// The commit the branch points at.
    pub head: Option<String>,
    /// Commits since `base`, newest first: the first ten.
    pub commits: Vec<BranchCommit>,
    /// How many commits there are since `base` in all.
    pub commit_count: usize,
    pub files_changed: u64,
    pub insertions: u64,
    pub deletions: u64,
    /// Tracked files with changes no commit holds.
    pub uncommitted: usize,
    /// Files git neither tracks nor ignores (the files plane-orch copied in aside).
    pub untracked: usize,
    /// Commits no remote has; null when the repository has no remote.
    pub unpushed: Option<usize>,
    /// The review page (`automation.review_url` filled in).
    pub review_url: Option<String>,
    pub checked_at: DateTime<Utc>,
}

/// One commit on a ticket's branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchCommit {
    pub sha: String,
    pub subject: String,
}

/// The Plane write-back steps already done, so a retry never repeats one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaneSync {
    /// When the summary comment was posted (or Plane said it already was).
    #[serde(default)]
    pub comment_posted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub comment_id: Option<String>,
    /// When the state was moved to `transitions.on_update`.
    #[serde(default)]
    pub state_updated_at: Option<DateTime<Utc>>,
    /// When the state was moved to `transitions.on_approve`.
    #[serde(default)]
    pub approve_state_set_at: Option<DateTime<Utc>>,
    /// The summary was corrected after the comment was posted: Plane holds the old text
    /// until the comment is edited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub comment_outdated: bool,
    /// When the branch was pushed (`automation.push`), and the commit pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_pushed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_pushed_head: Option<String>,
    /// When the review link was added to the work item's links (or found there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_added_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_id: Option<String>,
}

/// No Plane write-back step done yet: what [`Synced`] reads as until its first write.
static NOTHING_SYNCED: PlaneSync = PlaneSync {
    comment_posted_at: None,
    comment_id: None,
    state_updated_at: None,
    approve_state_set_at: None,
    comment_outdated: false,
    branch_pushed_at: None,
    branch_pushed_head: None,
    link_added_at: None,
    link_id: None,
};

/// A ticket's [`PlaneSync`], kept behind a pointer only once a step was done: most open
/// tickets have none, and a server keeping thousands of them decoded then holds 8 bytes
/// each instead of 136. It reads as the record itself (an empty one before the first step);
/// the first write through it makes the record. Encoded as the record is.
#[derive(Debug, Clone, Default)]
pub struct Synced(Option<Box<PlaneSync>>);

/// Equal when the records read the same, made or not.
impl PartialEq for Synced {
    fn eq(&self, other: &Synced) -> bool {
        **self == **other
    }
}

impl std::ops::Deref for Synced {
    type Target = PlaneSync;
    fn deref(&self) -> &PlaneSync {
        self.0.as_deref().unwrap_or(&NOTHING_SYNCED)
    }
}

impl std::ops::DerefMut for Synced {
    fn deref_mut(&mut self) -> &mut PlaneSync {
        self.0.get_or_insert_with(Box::default)
    }
}

impl Serialize for Synced {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PlaneSync::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Synced {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Synced, D::Error> {
        let sync = PlaneSync::deserialize(d)?;
        Ok(Synced((sync != NOTHING_SYNCED).then(|| Box::new(sync))))
    }
}

/// A time as plane-orch writes it (RFC 3339), read by chrono's RFC 3339 parser, a quarter of
/// the cost of the general one serde's `DateTime` uses; any other form by the general one.
fn utc<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    struct Rfc3339;
    impl serde::de::Visitor<'_> for Rfc3339 {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 time")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| s.parse::<DateTime<Utc>>())
                .map_err(E::custom)
        }
    }
    d.deserialize_str(Rfc3339)
}

/// [`utc`] for a time that may be null.
fn utc_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    struct Time(#[serde(deserialize_with = "utc")] DateTime<Utc>);
    Ok(Option::<Time>::deserialize(d)?.map(|t| t.0))
}

/// A ticket as kept in the state file.
///
/// Reading one (from the state file or the archive) cleans its description when it was kept
/// under older HTML rules than [`html::POLICY`], so no path can hand out HTML that was
/// stored before plane-orch cleaned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Ticket {
    // What a list shows comes first, and a list reads a ticket only up to `issue_id` (see
    // `Ticket::listed`); the bulky fields come last.
    pub id: TicketId,
    pub title: String,
    pub trigger_type: TriggerType,
    pub status: Status,
    pub queued_at: DateTime<Utc>,
    pub session: Option<Box<SessionInfo>>,
    pub last_error: Option<String>,
    /// Set when the session ended without a summary (flagged once by poll).
    #[serde(default)]
    pub session_lost_at: Option<DateTime<Utc>>,
    /// The operation under way on the ticket (or left by a process that died), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Box<Op>>,
    /// The ticket's own spend limit in USD (approve --budget, `budget`); else
    /// `automation.budget_usd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// Plane's work item UUID; null for a ticket added by hand until Plane is asked.
    pub issue_id: Option<String>,
    pub project_id: Option<String>,
    /// The version of the HTML rules the description was cleaned with (0: never cleaned).
    #[serde(default)]
    pub html_policy: u32,
    pub url: Option<String>,
    pub priority: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub plane_created_at: Option<DateTime<FixedOffset>>,
    pub plane_updated_at: Option<DateTime<FixedOffset>>,
    pub approved_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub waiting: Option<Box<Waiting>>,
    /// Set when Plane moved an active ticket to a completed or cancelled state group.
    #[serde(default)]
    pub plane_closed_at: Option<DateTime<Utc>>,
    /// A fresh id per approval: the Plane comment's `external_id` is built from it.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Plane's HTML after the allow-list sanitiser; for tickets added by hand, the escaped
    /// text in `<p>`.
    pub description_html: String,
    /// The plain text of `description_html`: what the agent is given. Read it with
    /// [`Ticket::description_text`]; stored only when the HTML does not give it.
    #[serde(default, skip_serializing_if = "Text::is_from_html")]
    pub description_text: Text,
    pub approved_snapshot: Option<Box<Snapshot>>,
    pub summary: Option<String>,
    #[serde(default)]
    pub plane_sync: Synced,
    /// What the session's branch holds (none without a worktree branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Box<BranchState>>,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// What an operation does to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Approve,
    Restart,
    UpdatePlane,
    MoveState,
    Remove,
}

impl OpKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Approve => "approve",
            OpKind::Restart => "restart",
            OpKind::UpdatePlane => "update_plane",
            OpKind::MoveState => "move_state",
            OpKind::Remove => "remove",
        }
    }

    /// "being approved", for conflicts.
    #[must_use]
    pub fn doing(self) -> &'static str {
        match self {
            OpKind::Approve => "being approved",
            OpKind::Restart => "being restarted",
            OpKind::UpdatePlane => "being updated in Plane",
            OpKind::MoveState => "having its Plane state moved",
            OpKind::Remove => "being removed",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of an operation that has landed (a network call made, a session started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpStep {
    pub step: String,
    pub at: DateTime<Utc>,
    /// What the step made: a comment id, a session name…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An operation on a ticket that spans network calls or sessions: written when it begins,
/// each landed step added as it lands, cleared when it finishes. One found while its lease is
/// free was left by a process that died, and the next command resumes it from its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub kind: OpKind,
    #[serde(flatten)]
    pub by: crate::lock::Holder,
    #[serde(default)]
    pub steps: Vec<OpStep>,
}

impl Op {
    /// The value of the last step named `step`, if it has landed (`Some(None)`: no value).
    #[must_use]
    pub fn step(&self, step: &str) -> Option<Option<&str>> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.step == step)
            .map(|s| s.value.as_deref())
    }

    /// Whether the step has landed.
    #[must_use]
    pub fn has(&self, step: &str) -> bool {
        self.step(step).is_some()
    }

    /// "update_plane after comment_posted" (or "update_plane before any step").
    #[must_use]
    pub fn describe(&self) -> String {
        match self.steps.last() {
            Some(s) => format!("{} after {}", self.kind, s.step.replace('_', " ")),
            None => format!("{} before any step", self.kind),
        }
    }
}

/// The fields a new ticket is made from.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub id: TicketId,
    pub title: String,
    pub description_html: String,
    /// The text as a person typed it; `None`: the HTML's own, made from it when asked for.
    pub description_text: Option<String>,
    pub url: Option<String>,
    pub trigger_type: TriggerType,
}

impl NewTicket {
    /// A ticket added by hand with only an id and a title.
    #[must_use]
    pub fn manual(id: TicketId, title: &str) -> NewTicket {
        NewTicket {
            id,
            title: title.to_string(),
            description_html: "<p></p>".into(),
            description_text: None,
            url: None,
            trigger_type: TriggerType::Manual,
        }
    }
}

impl Serialize for Ticket {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Ticket::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Ticket {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ticket = Ticket::deserialize(deserializer)?;
        if ticket.html_policy < html::POLICY {
            ticket.clean_description();
        }
        ticket.compact_snapshot();
        Ok(ticket)
    }
}

impl Ticket {
    /// Cleans the description and the approved snapshot with the current HTML rules and makes
    /// their text again from the cleaned HTML.
    pub fn clean_description(&mut self) {
        let snap_html = self.approved_snapshot.as_ref().map(|s| {
            s.description_html
                .clone()
                .unwrap_or_else(|| self.description_html.clone())
        });
        self.description_html = html::clean(&self.description_html);
        self.description_text = Text::from_html();
        if let (Some(snap), Some(html)) = (&mut self.approved_snapshot, snap_html) {
            let clean = html::clean(&html);
            // Still the ticket's own, cleaned the same way: it stays a reference.
            let same = clean == self.description_html;
            snap.description_html = (!same).then(|| clean.clone());
            snap.description_text = (!same).then(|| html::text_of(&clean));
        }
        self.html_policy = html::POLICY;
    }

    /// The plain text of the description: kept, or made from the HTML (once).
    #[must_use]
    pub fn description_text(&self) -> &str {
        match &self.description_text.kept {
            Some(text) => text,
            None => self
                .description_text
                .made
                .get_or_init(|| html::text_of(&self.description_html)),
        }
    }

    /// What the person approved, the ticket's own text filled in; `None` before approval.
    #[must_use]
    pub fn approved(&self) -> Option<Approved<'_>> {
        let s = self.approved_snapshot.as_ref()?;
        Some(Approved {
            title: s.title.as_deref().unwrap_or(&self.title),
            description_html: s
                .description_html
                .as_deref()
                .unwrap_or(&self.description_html),
            description_text: s
                .description_text
                .as_deref()
                .unwrap_or_else(|| self.description_text()),
            url: s.url.as_deref(),
        })
    }

    /// Freezes what is approved now: a snapshot referring to the ticket's own text.
    pub fn approve_text(&mut self) {
        self.approved_snapshot = Some(Box::new(Snapshot {
            url: self.url.clone(),
            ..Snapshot::default()
        }));
    }

    /// Copies the ticket's own text into the snapshot where it refers to it: called before
    /// the ticket's own text changes, so the approved text stays what was approved.
    pub fn freeze_snapshot(&mut self) {
        let text = self.description_text().to_string();
        if let Some(s) = &mut self.approved_snapshot {
            s.title.get_or_insert_with(|| self.title.clone());
            s.description_html
                .get_or_insert_with(|| self.description_html.clone());
            s.description_text.get_or_insert(text);
        }
    }

    /// Drops from the snapshot what equals the ticket's own (a snapshot written before it
    /// referred to the ticket): comparing costs no text to be made.
    fn compact_snapshot(&mut self) {
        let Some(s) = &mut self.approved_snapshot else {
            return;
        };
        if s.title.as_ref() == Some(&self.title) {
            s.title = None;
        }
        let same_html = s.description_html.as_ref() == Some(&self.description_html);
        if same_html {
            s.description_html = None;
        }
        // The text: when it is the ticket's kept text. (Against a text made from the HTML,
        // only [`Ticket::compact_text`] can tell, by making it.)
        if s.description_text.is_some() && s.description_text == self.description_text.kept {
            s.description_text = None;
        }
    }

    /// Stores the text only where the HTML does not give it: a file of the earlier format kept
    /// every ticket's text; this makes it from the HTML once and drops it when equal.
    pub fn compact_text(&mut self) {
        if let Some(kept) = &self.description_text.kept {
            if *kept == html::text_of(&self.description_html) {
                let snap_text = self
                    .approved_snapshot
                    .as_ref()
                    .and_then(|s| s.description_text.as_ref());
                if snap_text == Some(kept) {
                    if let Some(s) = &mut self.approved_snapshot {
                        s.description_text = None;
                    }
                }
                self.description_text = Text::from_html();
            }
        }
    }

    /// Takes Plane's new description: cleaned, its text made from the cleaned HTML when asked
    /// for. Returns whether the text changed.
    pub fn set_description(&mut self, clean_html: String, text: &str) -> bool {
        let changed = text != self.description_text();
        self.freeze_snapshot();
        self.description_html = clean_html;
        self.description_text = Text::from_html();
        self.html_policy = html::POLICY;
        changed
    }

    /// A new pending ticket with a `queued` event.
    #[must_use]
    pub fn new(new: NewTicket, at: DateTime<Utc>) -> Ticket {
        // Typed text is kept only when the HTML does not give it back (it always does for
        // Plane's, which is why that is not made here only to be compared).
        let description_html = html::clean(&new.description_html);
        let description_text = match new.description_text {
            Some(typed) => {
                let text = html::strip_invisible(&typed);
                if html::text_of(&description_html) == text {
                    Text::from_html()
                } else {
                    Text::kept(text.into_owned())
                }
            }
            None => Text::from_html(),
        };
        let mut ticket = Ticket {
            id: new.id,
            issue_id: None,
            project_id: None,
            title: new.title,
            description_text,
            description_html,
            html_policy: html::POLICY,
            url: new.url,
            priority: None,
            labels: Vec::new(),
            trigger_type: new.trigger_type,
            status: Status::Pending,
            plane_created_at: None,
            plane_updated_at: None,
            queued_at: at,
            approved_at: None,
            completed_at: None,
            done_at: None,
            approved_snapshot: None,
            session: None,
            summary: None,
            last_error: None,
            waiting: None,
            session_lost_at: None,
            plane_closed_at: None,
            run_id: None,
            plane_sync: Synced::default(),
            op: None,
            branch: None,
            budget_usd: None,
            events: Vec::new(),
        };
        let how = match ticket.trigger_type {
            TriggerType::Manual => "added by hand",
            TriggerType::StatusChange => "found in Plane (trigger state)",
            TriggerType::Label => "found in Plane (trigger label)",
        };
        ticket.record(at, "queued", Some(how.to_string()));
        ticket
    }

    /// Appends to the audit trail.
    pub fn record(&mut self, at: DateTime<Utc>, event: &str, detail: Option<String>) {
        self.events.push(Event {
            at,
            event: event.to_string(),
            detail,
        });
    }

    /// The one place a status changes: only `pending → active → completed → done`.
    /// Anything else, a repeat included, is a conflict that changes nothing.
    ///
    /// # Errors
    /// `Error::Conflict` saying what the status is and what it would have to be.
    pub fn transition(
        &mut self,
        to: Status,
        at: DateTime<Utc>,
        detail: Option<String>,
    ) -> anyhow::Result<()> {
        if self.status.next() != Some(to) {
            return Err(conflict(transition_refusal(&self.id, self.status, to)));
        }
        self.status = to;
        match to {
            Status::Active => self.approved_at = Some(at),
            Status::Completed => self.completed_at = Some(at),
            Status::Done => self.done_at = Some(at),
            Status::Pending => {}
        }
        self.last_error = None;
        let event = match to {
            Status::Active => "approved",
            Status::Completed => "completed",
            Status::Done => "done",
            Status::Pending => "pending",
        };
        self.record(at, event, detail);
        Ok(())
    }

    /// The order of lists: by status in workflow order, then oldest first.
    #[must_use]
    pub fn list_order(&self, other: &Ticket) -> std::cmp::Ordering {
        (self.status.rank(), self.queued_at, &self.id).cmp(&(
            other.status.rank(),
            other.queued_at,
            &other.id,
        ))
    }

    /// A ticket decoded for a list's columns only: every other field (the description,
    /// approved snapshot, trail, Plane details) is passed over and left empty. Never write
    /// such a ticket back.
    ///
    /// # Errors
    /// The JSON is not a ticket.
    pub fn listed(raw: &[u8]) -> serde_json::Result<Ticket> {
        // Only what a list's columns show (ID, status, age, state, title, session and its
        // flags): any other field is passed over, as are the bulky ones.
        #[derive(Deserialize)]
        struct Listed {
            id: TicketId,
            title: String,
            trigger_type: TriggerType,
            status: Status,
            #[serde(deserialize_with = "utc")]
            queued_at: DateTime<Utc>,
            session: Option<ListedSession>,
            last_error: Option<String>,
            #[serde(default, deserialize_with = "utc_or_none")]
            session_lost_at: Option<DateTime<Utc>>,
            #[serde(default)]
            op: Option<Op>,
            #[serde(default)]
            budget_usd: Option<f64>,
        }
        /// Of a session, a list shows (and asks the backend about) its name only.
        #[derive(Deserialize)]
        struct ListedSession {
            name: String,
            backend: String,
        }
        // As plane-orch writes a ticket, every column comes before `issue_id`: the object up
        // to there is all a list reads. That byte run can only be the key (in a JSON string
        // every `"` is escaped). A ticket laid out otherwise is read whole.
        const REST: &[u8] = b",\"issue_id\":";
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(REST));
        let head = FINDER.find(raw).map(|at| {
            let mut head = Vec::with_capacity(at + 1);
            head.extend_from_slice(&raw[..at]);
            head.push(b'}');
            head
        });
        let l: Listed = match head.as_deref().map(serde_json::from_slice) {
            Some(Ok(l)) => l,
            _ => serde_json::from_slice(raw)?,
        };
        let session = l.session.map(|s| SessionInfo {
            name: s.name,
            backend: s.backend,
            workdir: String::new(),
            branch: None,
            agent_session: None,
            started_at: None,
        });
        Ok(Ticket {
            id: l.id,
            issue_id: None,
            project_id: None,
            title: l.title,
            html_policy: html::POLICY,
            url: None,
            priority: None,
            labels: Vec::new(),
            trigger_type: l.trigger_type,
            status: l.status,
            plane_created_at: None,
            plane_updated_at: None,
            queued_at: l.queued_at,
            approved_at: None,
            completed_at: None,
            done_at: None,
            session: session.map(Box::new),
            last_error: l.last_error,
            waiting: None,
            session_lost_at: l.session_lost_at,
            plane_closed_at: None,
            run_id: None,
            op: l.op.map(Box::new),
            budget_usd: l.budget_usd,
            description_html: String::new(),
            description_text: Text::kept(String::new()),
            approved_snapshot: None,
            summary: None,
            plane_sync: Synced::default(),
            branch: None,
            events: Vec::new(),
        })
    }

    /// The latest time anything happened to the ticket.
    #[must_use]
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.events.last().map_or(self.queued_at, |e| e.at)
    }
}

fn transition_refusal(id: &TicketId, from: Status, to: Status) -> String {
    let verb = match to {
        Status::Active => "approve",
        Status::Completed => "complete",
        Status::Done => "update Plane for",
        Status::Pending => "re-queue",
    };
    let needed = Status::ALL
        .iter()
        .find(|s| s.next() == Some(to))
        .map_or("-", |s| s.as_str());
    if from == to {
        format!("{id} is already {from}: cannot {verb} it again")
    } else {
        format!("{id} is {from}: cannot {verb} it (it must be {needed})")
    }
}

/// Escapes text for HTML element content (`&`, `<`, `>`), for descriptions added by hand
/// and summaries sent to Plane. plane-orch never puts text in an attribute.
#[must_use]
pub fn escape_html(text: &str) -> String {
    html_escape::encode_text(text).into_owned()
}

/// Plain text as HTML paragraphs: one `<p>` per paragraph, line breaks kept.
#[must_use]
pub fn text_to_html(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape_html(p).replace('\n', "<br>")))
        .collect();
    if paragraphs.is_empty() {
        "<p></p>".to_string()
    } else {
        paragraphs.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plane_sync_record_is_made_at_its_first_step_and_encoded_as_before() {
        let mut t = Ticket::new(
            NewTicket::manual(TicketId::parse("A-1").unwrap(), "t"),
            now(),
        );
        assert!(t.plane_sync.0.is_none());
        let before = serde_json::to_string(&t).unwrap();
        assert!(
            before.contains(r#""plane_sync":{"comment_posted_at":null,"#),
            "{before}"
        );
        let again: Ticket = serde_json::from_str(&before).unwrap();
        assert!(again.plane_sync.0.is_none(), "an empty record is not kept");
        assert_eq!(serde_json::to_string(&again).unwrap(), before);
        t.plane_sync.link_id = Some("L".into());
        assert_eq!(t.plane_sync.link_id.as_deref(), Some("L"));
        let synced = serde_json::to_string(&t).unwrap();
        let back: Ticket = serde_json::from_str(&synced).unwrap();
        assert_eq!(back.plane_sync.link_id.as_deref(), Some("L"));
        assert_eq!(back, t);
        assert_eq!(serde_json::to_string(&back).unwrap(), synced);
        t.plane_sync.link_id = None;
        assert_eq!(t, again, "a record emptied again is no record");
    }

    #[test]
    fn times_read_by_the_rfc_3339_parser_are_the_times_serde_reads() {
        #[derive(Deserialize)]
        struct Fast(#[serde(deserialize_with = "utc")] DateTime<Utc>);
        for text in [
            "2026-11-01T10:00:00Z",
            "2026-11-01T10:00:00.123456Z",
            "2026-05-02T11:14:22.481920+02:00",
            "2026-11-01t10:00:00z",
            "2026-11-01 10:00:00Z",
            "2026-11-01T10:00:00",
            "yesterday",
        ] {
            let json = serde_json::to_string(text).unwrap();
            let general = serde_json::from_str::<DateTime<Utc>>(&json).ok();
            let fast = serde_json::from_str::<Fast>(&json).ok().map(|f| f.0);
            assert_eq!(fast, general, "{text}");
        }
    }

    #[test]
    fn ids_are_upper_cased() {
        assert_eq!(TicketId::parse("cslog-12").unwrap().as_str(), "CSLOG-12");
        assert_eq!(TicketId::parse("A-TEST").unwrap().as_str(), "A-TEST");
    }

    #[test]
    fn hostile_ids_are_refused() {
        let long = "A".repeat(200);
        for bad in [
            "",
            "../x",
            "A-1;rm -rf /",
            &long,
            "ÄB-1",
            "CSLOG-",
            "-12",
            "1A-2",
            "A-1-2",
            "A B-1",
            "ABCDEFGHIJKLM-1",
            "A-123456789012345678901",
            "A-1\n",
        ] {
            assert!(TicketId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn only_forward_transitions_are_allowed() {
        let at = now();
        let mut t = Ticket::new(NewTicket::manual(TicketId::parse("X-1").unwrap(), "t"), at);
        assert!(t.transition(Status::Completed, at, None).is_err());
        t.transition(Status::Active, at, None).unwrap();
        let err = t.transition(Status::Active, at, None).unwrap_err();
        assert!(err.to_string().contains("already active"), "{err}");
        t.transition(Status::Completed, at, None).unwrap();
        t.transition(Status::Done, at, None).unwrap();
        assert!(t.transition(Status::Pending, at, None).is_err());
        let names: Vec<_> = t.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["queued", "approved", "completed", "done"]);
    }

    #[test]
    fn text_becomes_escaped_paragraphs() {
        assert_eq!(
            text_to_html("a <b> & c\nd\n\ne"),
            "<p>a &lt;b&gt; &amp; c<br>d</p><p>e</p>"
        );
        assert_eq!(text_to_html("  "), "<p></p>");
    }

    fn from_plane(html: &str) -> Ticket {
        let clean = html::clean(html);
        Ticket::new(
            NewTicket {
                id: TicketId::parse("P-1").unwrap(),
                title: "t".into(),
                description_html: clean,
                description_text: None,
                url: Some("https://plane.example/P-1".into()),
                trigger_type: TriggerType::Label,
            },
            now(),
        )
    }

    #[test]
    fn a_description_is_stored_once_and_its_text_made_from_it() {
        let t = from_plane("<h2>Why</h2><p>Logs <b>grow</b>.</p><ul><li>rotate</li></ul>");
        let stored = serde_json::to_value(&t).unwrap();
        assert!(stored.get("description_text").is_none(), "{stored}");
        let back: Ticket = serde_json::from_value(stored).unwrap();
        assert_eq!(back.description_text(), html::text_of(&t.description_html));
        assert!(back.description_text().contains("rotate"));
        // Text the HTML does not give (added by hand) is kept as it was typed.
        let typed = "two  spaces\n\n\nand <angle> brackets";
        let manual = Ticket::new(
            NewTicket {
                description_html: text_to_html(typed),
                description_text: Some(typed.into()),
                ..NewTicket::manual(TicketId::parse("M-1").unwrap(), "t")
            },
            now(),
        );
        let stored = serde_json::to_value(&manual).unwrap();
        assert_eq!(stored["description_text"], typed);
        let back: Ticket = serde_json::from_value(stored).unwrap();
        assert_eq!(back.description_text(), typed);
    }

    #[test]
    fn the_approved_snapshot_refers_to_the_text_and_keeps_it_when_the_text_changes() {
        let mut t = from_plane("<p>approved text</p>");
        t.approve_text();
        let stored = serde_json::to_value(&t).unwrap();
        assert_eq!(
            stored["approved_snapshot"],
            serde_json::json!({"url": "https://plane.example/P-1"})
        );
        let approved = t.approved().unwrap();
        assert_eq!(approved.description_text, "approved text");
        assert_eq!(approved.title, "t");
        // Should the ticket's own text change, what was approved stays.
        let (clean, text) = html::admit("<p>edited text</p>");
        assert!(t.set_description(clean, &text));
        t.title = "edited".into();
        assert_eq!(t.description_text(), "edited text");
        let approved = t.approved().unwrap();
        assert_eq!(approved.description_text, "approved text");
        assert_eq!(approved.description_html, "<p>approved text</p>");
        assert_eq!(approved.title, "t");
        let back: Ticket = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back.approved(), t.approved());
    }

    #[test]
    fn a_ticket_of_the_earlier_format_is_compacted_without_changing_its_texts() {
        let t = from_plane("<p>one</p><p>two</p>");
        let text = t.description_text().to_string();
        // As the earlier format stored it: the text beside the HTML, a full snapshot.
        let mut old = serde_json::to_value(&t).unwrap();
        old["description_text"] = text.clone().into();
        old["approved_snapshot"] = serde_json::json!({
            "title": "t", "description_html": t.description_html,
            "description_text": text, "url": null
        });
        let mut back: Ticket = serde_json::from_value(old).unwrap();
        assert_eq!(back.approved().unwrap().description_text, text);
        back.compact_text();
        let stored = serde_json::to_value(&back).unwrap();
        assert!(stored.get("description_text").is_none(), "{stored}");
        assert_eq!(
            stored["approved_snapshot"],
            serde_json::json!({"url": null})
        );
        assert_eq!(back.description_text(), text);
        assert_eq!(back.approved().unwrap().description_text, text);
    }

    #[test]
    fn a_listed_ticket_has_every_column_of_the_whole_one() {
        let mut t = from_plane("<p>long text</p>");
        t.approve_text();
        t.transition(Status::Active, now(), None).unwrap();
        t.last_error = Some("boom".into());
        t.budget_usd = Some(2.5);
        let raw = serde_json::to_vec(&t).unwrap();
        let l = Ticket::listed(&raw).unwrap();
        assert_eq!(
            (
                &l.id,
                l.status,
                &l.title,
                l.queued_at,
                &l.session,
                &l.last_error
            ),
            (
                &t.id,
                t.status,
                &t.title,
                t.queued_at,
                &t.session,
                &t.last_error
            )
        );
        assert_eq!((&l.op, l.budget_usd), (&t.op, t.budget_usd));
        assert!(l.description_html.is_empty() && l.events.is_empty());
    }
}
