//! Shared roster groups from the directory: members of a configured LDAP
//! group (or of an `ou`) see each other in their rosters under the group's
//! name, with presence both ways, as ejabberd's shared roster LDAP module
//! does.
//!
//! The groups are read from the directory every `shared_group_refresh`
//! seconds into memory, so presence never waits on LDAP. Shared items are
//! not stored: they are merged into what the roster get, presence broadcast
//! and probe answers see. A user with shared items always gets the whole
//! roster (RFC 6121 §2.6.3 allows that for a versioned request), which
//! spares us versioning a list that changes outside the database; changes to
//! a group reach a user at the next roster get (next login).

use super::store::{RosterItem, Subscription};
use crate::state::ServerState;
use crate::supervise::CatchUnwind;
use jid::BareJid;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// One group as last read.
struct Group {
    name: String,
    members: Vec<(BareJid, Option<String>)>,
}

/// The groups of every domain, by member.
#[derive(Default)]
pub struct SharedRosters {
    by_domain: RwLock<HashMap<String, Arc<Groups>>>,
}

#[derive(Default)]
struct Groups {
    groups: Vec<Group>,
    of_member: HashMap<BareJid, Vec<usize>>,
}

impl SharedRosters {
    fn groups(&self, domain: &str) -> Option<Arc<Groups>> {
        let map = self.by_domain.read().unwrap_or_else(|p| p.into_inner());
        map.get(domain).cloned()
    }

    /// The contacts `user` gets from its groups (subscription both).
    pub fn items(&self, user: &BareJid) -> Vec<RosterItem> {
        let Some(g) = self.groups(user.domain().as_str()) else {
            return Vec::new();
        };
        let Some(mine) = g.of_member.get(user) else {
            return Vec::new();
        };
        let mut out: Vec<RosterItem> = Vec::new();
        for &i in mine {
            let Some(group) = g.groups.get(i) else {
                continue;
            };
            for (member, name) in &group.members {
                if member == user {
                    continue;
                }
                match out.iter_mut().find(|it| &it.contact == member) {
                    Some(it) => it.groups.push(group.name.clone()),
                    None => {
                        let mut it = RosterItem::new(member.clone());
                        it.name = name.clone();
                        it.subscription = Subscription::Both;
                        it.groups.push(group.name.clone());
                        out.push(it);
                    }
                }
            }
        }
        out
    }

    /// Whether `a` and `b` share a group.
    pub fn share(&self, a: &BareJid, b: &BareJid) -> bool {
        if a.domain() != b.domain() {
            return false;
        }
        let Some(g) = self.groups(a.domain().as_str()) else {
            return false;
        };
        match (g.of_member.get(a), g.of_member.get(b)) {
            (Some(x), Some(y)) => x.iter().any(|i| y.contains(i)),
            _ => false,
        }
    }

    /// Whether `user` has shared contacts.
    pub fn has(&self, user: &BareJid) -> bool {
        self.groups(user.domain().as_str())
            .is_some_and(|g| g.of_member.contains_key(user))
    }
}

/// Stored items with the shared ones merged in: a shared contact is `both`
/// and in the group, whatever the stored item says.
pub fn merge(mut stored: Vec<RosterItem>, shared: Vec<RosterItem>) -> Vec<RosterItem> {
    for s in shared {
        match stored.iter_mut().find(|it| it.contact == s.contact) {
            Some(it) => {
                it.subscription = Subscription::Both;
                it.ask = false;
                if it.name.is_none() {
                    it.name = s.name;
                }
                for g in s.groups {
                    if !it.groups.contains(&g) {
                        it.groups.push(g);
                    }
                }
            }
            None => stored.push(s),
        }
    }
    stored
}

/// Read the groups now (so the first logins see them; bounded, so a
/// directory that is down delays the start by seconds at most), then every
/// `shared_group_refresh` seconds, for each domain that has some, until
/// shutdown, in tasks owned by `tasks`.
pub async fn start(state: &Arc<ServerState>, tasks: &TaskTracker) {
    for (domain, dir) in state.directories.iter() {
        if dir.config().shared_groups.is_empty() {
            continue;
        }
        let first = CatchUnwind(std::pin::pin!(refresh(state, domain, dir)));
        match tokio::time::timeout(Duration::from_secs(10), first).await {
            Ok(Ok(())) => {}
            Ok(Err(())) => panicked(domain),
            Err(_) => tracing::warn!(
                domain,
                "shared roster groups not read at start: the directory is slow"
            ),
        }
        let (state, domain, dir) = (state.clone(), domain.clone(), dir.clone());
        let name = format!("shared roster {domain}");
        crate::supervise::spawn(tasks, &name, async move {
            let every = Duration::from_secs(dir.config().shared_group_refresh.max(10));
            loop {
                tokio::select! {
                    _ = state.stopping.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                // A slow directory must not hold up the server's shutdown.
                let refreshed = tokio::select! {
                    _ = state.stopping.cancelled() => return,
                    r = CatchUnwind(std::pin::pin!(refresh(&state, &domain, &dir))) => r,
                };
                if refreshed.is_err() {
                    panicked(&domain);
                }
            }
        });
    }
}

/// A refresh panicked: the groups last read stay (`refresh` replaces them
/// only at its end), and the next refresh tries again.
fn panicked(domain: &str) {
    tracing::error!(
        domain,
        "reading the shared roster groups panicked: keeping the last ones read"
    );
}

async fn refresh(state: &ServerState, domain: &str, dir: &crate::auth::ldap::Directory) {
    let Ok(domain_part) = jid::DomainPart::new(domain) else {
        return;
    };
    let previous = state.shared_rosters.groups(domain);
    let mut groups = Vec::new();
    for g in &dir.config().shared_groups {
        let members = match dir.group_members(g).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                tracing::warn!(
                    group = %g.name,
                    max = dir.config().shared_group_max,
                    "shared roster group left out: more members than shared_group_max"
                );
                continue;
            }
            Err(e) => {
                // Keep what we had: a directory outage must not empty rosters.
                tracing::warn!(group = %g.name, error = %e, "cannot read a shared roster group; keeping the last one read");
                if let Some(old) = previous
                    .as_ref()
                    .and_then(|p| p.groups.iter().find(|o| o.name == g.name))
                {
                    groups.push(Group {
                        name: old.name.clone(),
                        members: old.members.clone(),
                    });
                }
                continue;
            }
        };
        let members = members
            .into_iter()
            .filter_map(|(uid, name)| {
                let node = jid::NodePart::new(&uid).ok()?;
                Some((BareJid::from_parts(Some(&node), &domain_part), name))
            })
            .collect();
        groups.push(Group {
            name: g.name.clone(),
            members,
        });
    }
    let mut of_member: HashMap<BareJid, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        for (m, _) in &g.members {
            of_member.entry(m.clone()).or_default().push(i);
        }
    }
    tracing::debug!(
        domain,
        groups = groups.len(),
        members = of_member.len(),
        "shared roster groups read"
    );
    let mut map = state
        .shared_rosters
        .by_domain
        .write()
        .unwrap_or_else(|p| p.into_inner());
    map.insert(domain.to_owned(), Arc::new(Groups { groups, of_member }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).expect("jid")
    }

    #[test]
    fn shared_items_merge_into_stored_ones() {
        let mut stored = RosterItem::new(jid("a@x"));
        stored.name = Some("Ami".into());
        stored.groups = vec!["Amis".into()];
        stored.ask = true;
        let mut shared = RosterItem::new(jid("a@x"));
        shared.name = Some("A. Dupont".into());
        shared.subscription = Subscription::Both;
        shared.groups = vec!["DSI".into()];
        let mut other = RosterItem::new(jid("b@x"));
        other.subscription = Subscription::Both;
        let merged = merge(vec![stored], vec![shared, other]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].name.as_deref(), Some("Ami"));
        assert_eq!(
            merged[0].groups,
            vec!["Amis".to_string(), "DSI".to_string()]
        );
        assert_eq!(merged[0].subscription, Subscription::Both);
        assert!(!merged[0].ask);
    }

    #[test]
    fn members_share_only_their_groups() {
        let rosters = SharedRosters::default();
        let groups = vec![
            Group {
                name: "DSI".into(),
                members: vec![(jid("a@x"), None), (jid("b@x"), Some("B".into()))],
            },
            Group {
                name: "Physique".into(),
                members: vec![(jid("c@x"), None), (jid("b@x"), None)],
            },
        ];
        let mut of_member: HashMap<BareJid, Vec<usize>> = HashMap::new();
        for (i, g) in groups.iter().enumerate() {
            for (m, _) in &g.members {
                of_member.entry(m.clone()).or_default().push(i);
            }
        }
        rosters
            .by_domain
            .write()
            .expect("lock")
            .insert("x".into(), Arc::new(Groups { groups, of_member }));
        assert!(rosters.share(&jid("a@x"), &jid("b@x")));
        assert!(!rosters.share(&jid("a@x"), &jid("c@x")));
        let b = rosters.items(&jid("b@x"));
        assert_eq!(b.len(), 2);
        let a = rosters.items(&jid("a@x"));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name.as_deref(), Some("B"));
        assert_eq!(a[0].groups, vec!["DSI".to_string()]);
        assert!(rosters.items(&jid("z@x")).is_empty());
    }
}
