//! Before and after a fix: which findings of BEFORE are gone, which
//! persist (and how they changed), which are new; counts side by side.

use crate::detect::Severity;
use crate::scan::{Counts, Digest, Finding, FindingKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One finding's subject, before and after.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub kind: FindingKind,
    pub subject: String,
    pub before: Option<Side>,
    pub after: Option<Side>,
    /// What else the AFTER capture says about the subject (the address a
    /// pod is now masqueraded as).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub severity: Severity,
    pub count: u64,
    pub details: Vec<String>,
}

impl Side {
    fn of(f: &Finding) -> Side {
        Side {
            severity: f.severity,
            count: f.count,
            details: f.details.clone(),
        }
    }
}

impl Change {
    /// Worse after than before: new, more severe, or more of it.
    pub fn worse(&self) -> bool {
        match (&self.before, &self.after) {
            (None, Some(_)) => true,
            (Some(b), Some(a)) => a.severity > b.severity || a.count > b.count,
            _ => false,
        }
    }
}

/// A count before and after.
#[derive(Debug, Clone, Serialize)]
pub struct CountChange {
    pub name: &'static str,
    pub before: u64,
    pub after: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub counts: Vec<CountChange>,
    /// In BEFORE, gone from AFTER.
    pub fixed: Vec<Change>,
    /// In both.
    pub persists: Vec<Change>,
    /// Only in AFTER.
    pub new: Vec<Change>,
    /// Every failure of BEFORE is gone and nothing got worse, in an AFTER
    /// that was judged whole.
    pub resolved: bool,
    /// Neither a failure left nor anything worse, but AFTER could not judge
    /// everything (its `not_judged`): the fix is not confirmed.
    pub unconfirmed: Vec<String>,
}

impl Diff {
    pub fn between(before: &Digest, after: &Digest) -> Diff {
        type Key = (FindingKind, String);
        let index = |d: &Digest| -> BTreeMap<Key, Side> {
            d.findings
                .iter()
                .map(|f| ((f.kind, f.subject.clone()), Side::of(f)))
                .collect()
        };
        let (mut b, mut a) = (index(before), index(after));
        let keys: std::collections::BTreeSet<Key> = b.keys().chain(a.keys()).cloned().collect();
        let (mut fixed, mut persists, mut new) = (Vec::new(), Vec::new(), Vec::new());
        for key in keys {
            let change = Change {
                note: note(&key, after),
                before: b.remove(&key),
                after: a.remove(&key),
                kind: key.0,
                subject: key.1,
            };
            match (&change.before, &change.after) {
                (Some(_), None) => fixed.push(change),
                (Some(_), Some(_)) => persists.push(change),
                _ => new.push(change),
            }
        }
        let failures_left = persists.iter().any(|c| {
            c.before
                .as_ref()
                .is_some_and(|s| s.severity == Severity::Failure)
        });
        let worse = persists.iter().chain(&new).any(Change::worse);
        let unconfirmed = if failures_left || worse {
            Vec::new()
        } else {
            after.not_judged.clone()
        };
        Diff {
            counts: count_changes(&before.counts, &after.counts),
            resolved: !failures_left && !worse && unconfirmed.is_empty(),
            unconfirmed,
            fixed,
            persists,
            new,
        }
    }
}

fn count_changes(before: &Counts, after: &Counts) -> Vec<CountChange> {
    before
        .labelled()
        .iter()
        .zip(after.labelled())
        .map(|((name, b), (_, a))| CountChange {
            name,
            before: *b,
            after: a,
        })
        .collect()
}

/// For a pod's egress: whether AFTER shows it masqueraded, and as what.
fn note((kind, subject): &(FindingKind, String), after: &Digest) -> Option<String> {
    if *kind != FindingKind::UnmasqueradedEgress {
        return None;
    }
    let pod: IpAddr = subject.parse().ok()?;
    let to = after.masqueraded.get(&pod)?;
    let list: Vec<String> = to.iter().map(|a| a.to_string()).collect();
    Some(format!("masqueraded as {} after", list.join(", ")))
}
