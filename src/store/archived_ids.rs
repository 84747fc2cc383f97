//! How the state file keeps the ids of archived tickets: by project, each project's ticket
//! numbers as one string of runs (`{"CSLOG":"1-4812,4815,4817-5003"}`). A team's tickets are
//! numbered one after another and most end up done, so a year of history is a few runs, where
//! a list of ids would grow the state file, and every command, by some 14 bytes a ticket.
//! Suffixes that are not plain numbers are listed as they are. An older file's list of ids is
//! read too.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ticket::TicketId;

/// Writes the set as runs by project.
///
/// # Errors
/// As the serializer's.
pub fn serialize<S: Serializer>(ids: &BTreeSet<TicketId>, s: S) -> Result<S::Ok, S::Error> {
    encode(ids).serialize(s)
}

/// Reads runs by project, or a list of ids (as an earlier plane-orch wrote).
///
/// # Errors
/// An id or a run that is not valid.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<TicketId>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Runs(BTreeMap<String, String>),
        List(BTreeSet<TicketId>),
    }
    match Either::deserialize(d)? {
        Either::List(ids) => Ok(ids),
        Either::Runs(runs) => {
            let mut out = BTreeSet::new();
            for (project, items) in &runs {
                for item in Items::new(items) {
                    let item = item.map_err(serde::de::Error::custom)?;
                    item.each(|suffix| {
                        let id = TicketId::parse(&format!("{project}-{suffix}"))
                            .map_err(serde::de::Error::custom)?;
                        out.insert(id);
                        Ok(())
                    })?;
                }
            }
            Ok(out)
        }
    }
}

/// The runs of each project.
#[must_use]
pub fn encode(ids: &BTreeSet<TicketId>) -> BTreeMap<String, String> {
    let mut by_project: BTreeMap<&str, (Vec<u64>, Vec<&str>)> = BTreeMap::new();
    for id in ids {
        let (project, suffix) = id.as_str().split_once('-').unwrap_or((id.as_str(), ""));
        let entry = by_project.entry(project).or_default();
        match plain_number(suffix) {
            Some(n) => entry.0.push(n),
            None => entry.1.push(suffix),
        }
    }
    by_project
        .into_iter()
        .map(|(project, (mut numbers, others))| {
            numbers.sort_unstable();
            let mut parts: Vec<String> = Vec::new();
            let mut i = 0;
            while i < numbers.len() {
                let start = numbers[i];
                let mut end = start;
                while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
                    i += 1;
                    end = numbers[i];
                }
                parts.push(if end == start {
                    start.to_string()
                } else {
                    format!("{start}-{end}")
                });
                i += 1;
            }
            parts.extend(others.into_iter().map(str::to_string));
            (project.to_string(), parts.join(","))
        })
        .collect()
}

/// How many ids the runs of one project hold.
///
/// # Errors
/// A run that is not valid.
pub fn count(items: &str) -> Result<usize, String> {
    Items::new(items).try_fold(0usize, |n, item| {
        let item = item?;
        Ok(n + match item {
            Item::Run(a, b) => usize::try_from(b - a + 1).unwrap_or(usize::MAX),
            Item::Other(_) => 1,
        })
    })
}

/// Whether the runs of one project hold `suffix`.
#[must_use]
pub fn holds(items: &str, suffix: &str) -> bool {
    let number = plain_number(suffix);
    Items::new(items).any(|item| match (item, number) {
        (Ok(Item::Run(a, b)), Some(n)) => (a..=b).contains(&n),
        (Ok(Item::Other(s)), None) => s == suffix,
        _ => false,
    })
}

/// A number as a ticket suffix writes it: digits, no leading zero (`007` is kept as it is).
fn plain_number(suffix: &str) -> Option<u64> {
    let plain = !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
        && (suffix == "0" || !suffix.starts_with('0'));
    plain.then(|| suffix.parse().ok()).flatten()
}

enum Item<'a> {
    Run(u64, u64),
    Other(&'a str),
}

impl Item<'_> {
    fn each<E>(&self, mut f: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        match *self {
            Item::Run(a, b) => (a..=b).try_for_each(|n| f(&n.to_string())),
            Item::Other(s) => f(s),
        }
    }
}

struct Items<'a> {
    parts: std::str::Split<'a, char>,
    empty: bool,
}

impl<'a> Items<'a> {
    fn new(items: &'a str) -> Items<'a> {
        Items {
            parts: items.split(','),
            empty: items.is_empty(),
        }
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<Item<'a>, String>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.empty {
            return None;
        }
        let part = self.parts.next()?;
        Some(match part.split_once('-') {
            Some((a, b)) => match (plain_number(a), plain_number(b)) {
                // A run is at most a million long: a damaged file cannot make a reader count
                // to the end of u64.
                (Some(a), Some(b)) if a <= b && b - a < 1_000_000 => Ok(Item::Run(a, b)),
                _ => Err(format!("{part:?} is not a run of ticket numbers")),
            },
            None => match plain_number(part) {
                Some(n) => Ok(Item::Run(n, n)),
                None if !part.is_empty() => Ok(Item::Other(part)),
                None => Err("an empty item in a run of ticket numbers".into()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<TicketId> {
        ids.iter().map(|i| TicketId::parse(i).unwrap()).collect()
    }

    #[test]
    fn ids_are_kept_as_runs_by_project_and_read_back() {
        let ids = set(&[
            "CSLOG-1", "CSLOG-2", "CSLOG-3", "CSLOG-5", "CSLOG-10", "CSLOG-9", "OPS-7", "OPS-A1",
            "OPS-007",
        ]);
        let runs = encode(&ids);
        assert_eq!(runs["CSLOG"], "1-3,5,9-10");
        assert_eq!(runs["OPS"], "7,007,A1");
        let json = serde_json::to_string(&runs).unwrap();
        #[derive(Deserialize)]
        struct W(#[serde(deserialize_with = "deserialize")] BTreeSet<TicketId>);
        let back: W = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0, ids);
        // The earlier list of ids reads too.
        let back: W = serde_json::from_str(r#"["CSLOG-1","OPS-7"]"#).unwrap();
        assert_eq!(back.0, set(&["CSLOG-1", "OPS-7"]));
        assert!(holds(&runs["CSLOG"], "2") && holds(&runs["CSLOG"], "10"));
        assert!(!holds(&runs["CSLOG"], "4") && !holds(&runs["CSLOG"], "02"));
        assert!(holds(&runs["OPS"], "007") && !holds(&runs["OPS"], "8"));
        assert_eq!(count(&runs["CSLOG"]), Ok(6));
        for bad in [
            r#"{"CSLOG":"5-1"}"#,
            r#"{"CSLOG":"1-99999999"}"#,
            r#"{"CSLOG":"1,,2"}"#,
        ] {
            assert!(serde_json::from_str::<W>(bad).is_err(), "{bad}");
        }
    }
}
