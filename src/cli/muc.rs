//! `jaseur muc ...`: conference rooms. With the server running, commands go
//! to the live service through the admin socket (occupants see a change at
//! once, and the service stores it); with the server stopped, they apply to
//! the stored (persistent) rooms.

use crate::admin;
use crate::config::Config;
use crate::muc::config::RoomConfig;
use crate::muc::{Affiliation, MucStore, RoomSummary, StoredAffiliation};
use crate::storage::Storage;
use anyhow::{Context, bail};
use jid::{BareJid, Jid};

/// The MUC service named by `domain`: a served domain, or its service itself.
pub fn service_for(config: &Config, domain: &str) -> anyhow::Result<String> {
    let domain = domain.trim().to_lowercase();
    if !config.muc.enabled {
        bail!("the MUC service is disabled (muc.enabled = false)");
    }
    if config.serves(&domain) {
        return config
            .muc_service(&domain)
            .context("the MUC service is disabled (muc.enabled = false)");
    }
    let services = services(config);
    if services.contains(&domain) {
        return Ok(domain);
    }
    bail!(
        "{domain} is neither a served domain nor one of its MUC services ({})",
        services.join(", ")
    )
}

fn services(config: &Config) -> Vec<String> {
    config
        .server
        .domains
        .iter()
        .filter_map(|d| config.muc_service(d))
        .collect()
}

/// Parse ROOM: a bare `name@SERVICE` where SERVICE is one of ours.
pub fn room_jid(config: &Config, s: &str) -> anyhow::Result<BareJid> {
    let room = BareJid::new(s.trim()).with_context(|| format!("{s:?} is not a valid room JID"))?;
    if room.node().is_none() {
        bail!("{s:?} has no room name: write name@SERVICE, e.g. salon@conference.example.org");
    }
    if !config.muc.enabled {
        bail!("the MUC service is disabled (muc.enabled = false)");
    }
    let services = services(config);
    if !services.iter().any(|d| d == room.domain().as_str()) {
        bail!(
            "{} is not a MUC service of this server ({})",
            room.domain(),
            services.join(", ")
        );
    }
    Ok(room)
}

/// Parse a user's bare JID (`user@domain`, no resource).
pub fn user_jid(s: &str) -> anyhow::Result<BareJid> {
    let jid = Jid::new(s.trim()).with_context(|| format!("{s:?} is not a valid JID"))?;
    if jid.resource().is_some() {
        bail!("{s:?} has a resource: affiliations are for bare JIDs (user@domain)");
    }
    let bare = jid.to_bare();
    if bare.node().is_none() {
        bail!("{s:?} has no user part: write user@domain");
    }
    Ok(bare)
}

/// `muc list DOMAIN`.
pub async fn list(config: &Config, domain: &str) -> anyhow::Result<()> {
    let service = service_for(config, domain)?;
    let rooms = match admin::request(config, &format!("muc-list {service}")).await? {
        Some(answer) => admin::muc::decode_rooms(&answer).map_err(anyhow::Error::msg)?,
        None => {
            eprintln!("(the server is stopped: persistent rooms from the database)");
            stored_rooms(&super::open_storage(config).await?, &service).await?
        }
    };
    print!("{}", table(&service, &rooms));
    Ok(())
}

/// The stored rooms of `service`, as a stopped server would list them.
async fn stored_rooms(storage: &Storage, service: &str) -> anyhow::Result<Vec<RoomSummary>> {
    let mut out = Vec::new();
    for room in storage.rooms(service).await? {
        let config = RoomConfig::from_text(&room.config);
        let owners = owners(&storage.affiliations(&room.jid).await?);
        out.push(RoomSummary {
            jid: room.jid,
            name: config.name,
            occupants: 0,
            persistent: true,
            public: config.public,
            owners,
        });
    }
    Ok(out)
}

fn owners(affiliations: &[StoredAffiliation]) -> Vec<BareJid> {
    affiliations
        .iter()
        .filter(|a| a.affiliation == Affiliation::Owner)
        .map(|a| a.jid.clone())
        .collect()
}

/// One line per room under a header, columns aligned.
fn table(service: &str, rooms: &[RoomSummary]) -> String {
    if rooms.is_empty() {
        return format!("no rooms on {service}\n");
    }
    let mut rows = vec![[
        "ROOM".to_owned(),
        "OCCUPANTS".to_owned(),
        "PERSISTENCE".to_owned(),
        "VISIBILITY".to_owned(),
        "OWNERS".to_owned(),
        "NAME".to_owned(),
    ]];
    for r in rooms {
        let owners: Vec<&str> = r.owners.iter().map(|o| o.as_str()).collect();
        rows.push([
            r.jid.to_string(),
            r.occupants.to_string(),
            if r.persistent {
                "persistent"
            } else {
                "temporary"
            }
            .to_owned(),
            if r.public { "public" } else { "hidden" }.to_owned(),
            if owners.is_empty() {
                "-".to_owned()
            } else {
                owners.join(",")
            },
            // A name is free text: keep the table one line per room.
            r.name.replace(['\r', '\n', '\t'], " "),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How an owner change is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerChange {
    /// JID becomes the only owner; the other owners become members.
    Sole,
    /// JID joins the owners.
    Add,
    /// JID stops being an owner (affiliation none); never the last one.
    Remove,
}

/// `muc set-owner ROOM JID`.
pub async fn set_owner(config: &Config, room: &str, jid: &str) -> anyhow::Result<()> {
    change_owner(config, room, jid, OwnerChange::Sole).await
}

/// `muc add-owner ROOM JID`.
pub async fn add_owner(config: &Config, room: &str, jid: &str) -> anyhow::Result<()> {
    change_owner(config, room, jid, OwnerChange::Add).await
}

/// `muc remove-owner ROOM JID`.
pub async fn remove_owner(config: &Config, room: &str, jid: &str) -> anyhow::Result<()> {
    change_owner(config, room, jid, OwnerChange::Remove).await
}

async fn change_owner(
    config: &Config,
    room: &str,
    jid: &str,
    change: OwnerChange,
) -> anyhow::Result<()> {
    let room = room_jid(config, room)?;
    let jid = user_jid(jid)?;
    let live = match change {
        OwnerChange::Sole => {
            admin::request(config, &format!("muc-affiliation {room} {jid} owner sole")).await?
        }
        OwnerChange::Add => {
            admin::request(config, &format!("muc-affiliation {room} {jid} owner")).await?
        }
        OwnerChange::Remove => live_remove_owner(config, &room, &jid).await?,
    };
    let done = match live {
        Some(_) => "",
        None => {
            stored_owner_change(&super::open_storage(config).await?, &room, &jid, change).await?;
            " (in the database: the server is stopped)"
        }
    };
    match change {
        OwnerChange::Sole => println!("{jid} is now the only owner of {room}{done}"),
        OwnerChange::Add => println!("{jid} is now an owner of {room}{done}"),
        OwnerChange::Remove => println!("{jid} is no longer an owner of {room}{done}"),
    }
    Ok(())
}

/// Remove an owner of a live room; None when no server runs. The service
/// only guards the last owner, so whether JID is an owner at all is checked
/// here: `remove-owner` must not silently drop a member's membership.
async fn live_remove_owner(
    config: &Config,
    room: &BareJid,
    jid: &BareJid,
) -> anyhow::Result<Option<String>> {
    let Some(answer) =
        admin::request(config, &format!("muc-list {}", room.domain().as_str())).await?
    else {
        return Ok(None);
    };
    let rooms = admin::muc::decode_rooms(&answer).map_err(anyhow::Error::msg)?;
    let Some(summary) = rooms.iter().find(|r| &r.jid == room) else {
        bail!("no room {room}");
    };
    check_removal(room, jid, &summary.owners)?;
    admin::request(config, &format!("muc-affiliation {room} {jid} none")).await
}

fn check_removal(room: &BareJid, jid: &BareJid, owners: &[BareJid]) -> anyhow::Result<()> {
    if !owners.contains(jid) {
        bail!("{jid} is not an owner of {room}");
    }
    if owners.len() == 1 {
        bail!(
            "{jid} is the last owner of {room}: add another owner first (jaseur muc add-owner), \
             or give the room to someone else (jaseur muc set-owner)"
        );
    }
    Ok(())
}

/// Apply an owner change to a stored room (the server is stopped).
async fn stored_owner_change(
    storage: &Storage,
    room: &BareJid,
    jid: &BareJid,
    change: OwnerChange,
) -> anyhow::Result<()> {
    require_stored(storage, room).await?;
    let owners = owners(&storage.affiliations(room).await?);
    let set = |who: &BareJid, affiliation| StoredAffiliation {
        jid: who.clone(),
        affiliation,
        reason: None,
    };
    match change {
        OwnerChange::Sole | OwnerChange::Add => {
            // The new owner first: the room has an owner at every step.
            storage
                .set_affiliation(room, &set(jid, Affiliation::Owner))
                .await?;
            if change == OwnerChange::Sole {
                for other in owners.iter().filter(|o| *o != jid) {
                    storage
                        .set_affiliation(room, &set(other, Affiliation::Member))
                        .await?;
                }
            }
        }
        OwnerChange::Remove => {
            check_removal(room, jid, &owners)?;
            storage
                .set_affiliation(room, &set(jid, Affiliation::None))
                .await?;
        }
    }
    Ok(())
}

async fn require_stored(storage: &Storage, room: &BareJid) -> anyhow::Result<()> {
    let rooms = storage.rooms(room.domain().as_str()).await?;
    if !rooms.iter().any(|r| &r.jid == room) {
        bail!(
            "no room {room} in the database (the server is stopped, and only persistent rooms are stored)"
        );
    }
    Ok(())
}

/// `muc destroy ROOM [--reason TEXT]`.
pub async fn destroy(config: &Config, room: &str, reason: Option<String>) -> anyhow::Result<()> {
    let room = room_jid(config, room)?;
    // The admin socket reads one line, and occupants see the reason as one.
    let reason = reason
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|r| !r.is_empty());
    let request = match &reason {
        Some(r) => format!("muc-destroy {room} {r}"),
        None => format!("muc-destroy {room}"),
    };
    if admin::request(config, &request).await?.is_some() {
        println!("destroyed {room}");
        return Ok(());
    }
    let storage = super::open_storage(config).await?;
    if !storage.delete_room(&room).await? {
        bail!(
            "no room {room} in the database (the server is stopped, and only persistent rooms are stored)"
        );
    }
    println!("destroyed {room} (in the database: the server is stopped)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::default();
        c.server.domains = vec!["example.org".into(), "other.org".into()];
        c
    }

    #[test]
    fn services_and_rooms_are_checked() {
        let c = config();
        assert_eq!(
            service_for(&c, "example.org").expect("domain"),
            "conference.example.org"
        );
        assert_eq!(
            service_for(&c, "conference.other.org").expect("service"),
            "conference.other.org"
        );
        assert!(service_for(&c, "elsewhere.org").is_err());
        assert!(room_jid(&c, "salon@conference.example.org").is_ok());
        assert!(room_jid(&c, "conference.example.org").is_err());
        assert!(room_jid(&c, "salon@example.org").is_err());
        assert!(room_jid(&c, "salon@conference.elsewhere.org").is_err());
        assert!(room_jid(&c, "salon@conference.example.org/nick").is_err());
    }

    #[test]
    fn user_jids_are_bare() {
        assert_eq!(
            user_jid("Bob@Example.org").expect("bare").as_str(),
            "bob@example.org"
        );
        assert!(user_jid("bob@example.org/phone").is_err());
        assert!(user_jid("example.org").is_err());
        assert!(user_jid("not a jid@").is_err());
    }

    #[test]
    fn the_last_owner_stays() {
        let room = BareJid::new("salon@conference.example.org").expect("room");
        let alice = BareJid::new("alice@example.org").expect("jid");
        let bob = BareJid::new("bob@example.org").expect("jid");
        assert!(check_removal(&room, &alice, std::slice::from_ref(&alice)).is_err());
        assert!(check_removal(&room, &bob, std::slice::from_ref(&alice)).is_err());
        assert!(check_removal(&room, &alice, &[alice.clone(), bob.clone()]).is_ok());
    }

    #[test]
    fn table_aligns_columns() {
        let rooms = vec![RoomSummary {
            jid: BareJid::new("salon@conference.example.org").expect("room"),
            name: "Le\nsalon".into(),
            occupants: 3,
            persistent: true,
            public: false,
            owners: vec![BareJid::new("alice@example.org").expect("jid")],
        }];
        let t = table("conference.example.org", &rooms);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("ROOM  "), "{t}");
        assert_eq!(lines[0].find("OCCUPANTS"), lines[1].find('3'), "{t}");
        assert!(lines[1].ends_with("alice@example.org  Le salon"), "{t}");
        assert_eq!(table("s", &[]), "no rooms on s\n");
    }
}
