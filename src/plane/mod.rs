//! Plane's REST API: the client and the shapes of its answers. Knows no state file.

pub mod budget;
pub mod client;
pub mod types;

pub use client::{not_configured, Client};

use crate::error::Error;

/// The items whose name is `wanted`, compared without case and surrounding spaces: what
/// Plane's trigger and transition names are matched with.
pub fn named<'a, T>(items: &'a [T], name: impl Fn(&T) -> &str, wanted: &str) -> Vec<&'a T> {
    let lower = wanted.to_lowercase();
    items
        .iter()
        .filter(|i| name(i).trim().to_lowercase() == lower)
        .collect()
}

/// The one item whose name is `wanted`, compared case-insensitively.
///
/// # Errors
/// `Error::Config` naming the name, the kind and the project when nothing or more than one
/// thing has that name.
pub fn find_by_name<'a, T>(
    items: &'a [T],
    name: impl Fn(&T) -> &str,
    wanted: &str,
    kind: &str,
    project: &str,
    setting: &str,
) -> anyhow::Result<&'a T> {
    let matches = named(items, &name, wanted);
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<&str> = items.iter().map(&name).collect();
            Err(Error::Config(format!(
                "project {project} has no {kind} named {wanted:?} (it has: {}); fix {setting} \
                 or create the {kind} in Plane (a label list is empty when the key's user is not a \
                 member of the project)",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .into())
        }
        more => Err(Error::Config(format!(
            "project {project} has {} {kind}s named {wanted:?} (names are compared without case); \
             rename one in Plane so {setting} names exactly one",
            more.len()
        ))
        .into()),
    }
}

/// Plain text from Plane's `description_html`, as a person would read it: headings, lists and
/// code kept in a light markdown style, links as numbered footnotes with their URLs, tags
/// gone, entities decoded.
#[must_use]
pub fn html_to_text(html: &str) -> String {
    // Wide enough that paragraphs are not re-wrapped: the agent gets the author's lines.
    let text = html2text::config::plain()
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|_| html.to_string());
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_become_plain_text() {
        let html = "<div><h2>Background</h2><p>A <strong>long</strong> text &amp; \
                    <a href=\"https://example.com/spec\">a link</a> 日本語.</p>\
                    <ul><li><p>first</p></li><li><p>second</p></li></ul>\
                    <pre><code>fn main() {\n    x();\n}</code></pre><p></p></div>";
        let text = html_to_text(html);
        assert!(text.contains("Background"), "{text}");
        assert!(text.contains("long") && text.contains(" & "), "{text}");
        assert!(text.contains("日本語."), "{text}");
        assert!(text.contains("https://example.com/spec"), "{text}");
        assert!(text.contains("first") && text.contains("second"), "{text}");
        assert!(text.contains("    x();"), "{text}");
        assert!(!text.contains('<') && !text.contains("&amp;"), "{text}");
        assert_eq!(html_to_text("<p></p>"), "");
    }

    #[test]
    fn names_match_once_without_case() {
        let names = ["Backlog", "Ready for Claude", "ready FOR claude", "Done"];
        let find = |w| find_by_name(&names, |n| n, w, "state", "CSLOG", "plane.trigger.states");
        assert_eq!(*find("done").unwrap(), "Done");
        let err = find("ready for claude").unwrap_err().to_string();
        assert!(err.contains("2 states"), "{err}");
        let err = find("Doing").unwrap_err().to_string();
        assert!(err.contains("\"Doing\"") && err.contains("CSLOG"), "{err}");
    }
}
