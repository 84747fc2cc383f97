//! The outcomes that code branches on. Everything else travels as `anyhow::Error`; these are
//! found anywhere in an error's chain, so the command line and the HTTP API map a failure to
//! the same exit code and status.

use thiserror::Error;

/// A failure with a meaning for the caller: which exit code, which HTTP status.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad input from the user: an id, an argument, a request body (exit 2, HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The configuration cannot be used (exit 2).
    #[error("{0}")]
    Config(String),
    /// No ticket with that id (exit 3, HTTP 404).
    #[error("unknown ticket {0}: `plane-orch list --status all` shows the tickets there are")]
    NotFound(String),
    /// The ticket's status does not allow the request (exit 4, HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// Plane answered with an error or could not be reached (exit 1, HTTP 502).
    #[error("{0}")]
    Plane(String),
    /// Plane answered 404 for a work item it had: it was deleted there (exit 1, HTTP 502).
    #[error("{0}")]
    ItemDeleted(String),
    /// A session could not be started or reached (exit 1, HTTP 503).
    #[error("{0}")]
    Session(String),
}

/// What kind of failure an error is, for exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invalid,
    Config,
    NotFound,
    Conflict,
    Plane,
    Session,
    Other,
}

impl Kind {
    /// Finds the first classified error in the chain; anything unclassified is `Other`.
    #[must_use]
    pub fn of(err: &anyhow::Error) -> Kind {
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<Error>() {
                return match e {
                    Error::Invalid(_) => Kind::Invalid,
                    Error::Config(_) => Kind::Config,
                    Error::NotFound(_) => Kind::NotFound,
                    Error::Conflict(_) => Kind::Conflict,
                    Error::Plane(_) | Error::ItemDeleted(_) => Kind::Plane,
                    Error::Session(_) => Kind::Session,
                };
            }
            if cause.downcast_ref::<clap::Error>().is_some() {
                return Kind::Invalid;
            }
        }
        Kind::Other
    }

    /// The process exit code (0 ok, 1 failed, 2 usage or config, 3 unknown ticket, 4 conflict).
    #[must_use]
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Invalid | Kind::Config => 2,
            Kind::NotFound => 3,
            Kind::Conflict => 4,
            Kind::Plane | Kind::Session | Kind::Other => 1,
        }
    }

    /// The HTTP status and the API's error code.
    #[must_use]
    pub fn http(self) -> (u16, &'static str) {
        match self {
            Kind::Invalid => (400, "invalid"),
            // The config file is read once at start; what a request can still meet is Plane
            // set up wrongly (no workspace or key, a trigger or transition name Plane lacks).
            Kind::Config | Kind::Plane => (502, "plane_error"),
            Kind::NotFound => (404, "not_found"),
            Kind::Conflict => (409, "conflict"),
            Kind::Session => (503, "session_error"),
            Kind::Other => (500, "internal"),
        }
    }
}

/// Whether `err` says a Plane work item was deleted there.
#[must_use]
pub fn is_item_deleted(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|c| matches!(c.downcast_ref::<Error>(), Some(Error::ItemDeleted(_))))
}

/// Shorthand for returning a classified error through `anyhow`.
pub fn conflict(msg: impl Into<String>) -> anyhow::Error {
    Error::Conflict(msg.into()).into()
}

/// Shorthand for returning an invalid-input error through `anyhow`.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    Error::Invalid(msg.into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn kind_is_found_under_context() {
        let err = Err::<(), _>(conflict("no"))
            .context("approving X-1")
            .unwrap_err();
        assert_eq!(Kind::of(&err), Kind::Conflict);
        assert_eq!(Kind::of(&err).exit_code(), 4);
    }

    #[test]
    fn unclassified_errors_exit_one() {
        let err = anyhow::anyhow!("disk full");
        assert_eq!(Kind::of(&err).exit_code(), 1);
        assert_eq!(Kind::of(&err).http().0, 500);
    }
}
