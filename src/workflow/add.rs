use anyhow::Result;

use crate::app::App;
use crate::error::{conflict, invalid};
use crate::ticket::{escape_html, now, text_to_html, NewTicket, Ticket, TicketId, TriggerType};

/// A ticket queued by hand (`add`, `POST /api/tickets`).
#[derive(Debug, Clone)]
pub struct AddRequest {
    pub id: TicketId,
    pub title: String,
    pub description: Option<String>,
    pub url: Option<String>,
}

/// Queues a ticket by hand as pending.
///
/// # Errors
/// An empty title or a URL that is not http(s) (invalid); the id exists already (conflict).
pub fn add(app: &App, req: AddRequest) -> Result<Ticket> {
    let title = req.title.trim().to_string();
    if title.is_empty() {
        return Err(invalid("the title must not be empty"));
    }
    if let Some(url) = &req.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!(
                "the url {url:?} must start with http:// or https://"
            )));
        }
    }
    let text = req.description.unwrap_or_default().trim().to_string();
    let description_html = if text.is_empty() {
        format!("<p>{}</p>", escape_html(""))
    } else {
        text_to_html(&text)
    };
    let ticket = Ticket::new(
        NewTicket {
            id: req.id,
            title,
            description_html,
            description_text: Some(text),
            url: req.url,
            trigger_type: TriggerType::Manual,
        },
        now(),
    );
    app.store.insert_new(&ticket, |existing| match existing {
        Some(existing) => conflict(format!(
            "{} exists already ({}): `plane-orch remove {}` first to replace it",
            existing.id, existing.status, existing.id
        )),
        None => conflict(format!(
            "{} exists already (done, in the archive): pick another id",
            ticket.id
        )),
    })?;
    log::info!("{}: queued by hand as pending", ticket.id);
    Ok(ticket)
}
