//! The admin socket's MUC requests: `jaseur muc ...` applied to the live
//! services, so that occupants see a change at once.
//!
//! - `muc-list SERVICE` answers `ok ROOM;ROOM;...`, each room
//!   `jid|occupants|persistent|public|owner,owner|name` where `persistent` is
//!   `persistent` or `temporary` and `public` is `public` or `hidden`;
//!   every field is escaped with [`escape`], as room names are free text
//!   and localparts may contain `|`, `;` and `,`.
//! - `muc-affiliation ROOM JID AFFILIATION [sole]`: set JID's affiliation
//!   (`owner`, `admin`, `member`, `none`, `outcast`); `sole` with `owner`
//!   turns the other owners into members. Answers `ok`.
//! - `muc-destroy ROOM [REASON...]`: the rest of the line is the reason.
//!   Answers `ok`.
//!
//! Errors (unknown room, no owner left, no such service) answer `error TEXT`.

use crate::muc::{Affiliation, Command, RoomSummary};
use crate::state::ServerState;
use jid::BareJid;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long an administrator waits for a service: it handles commands
/// between stanzas, so a longer wait means it is stuck, not busy.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Send a command to the service `service` and wait for its answer (also
/// used by the ad-hoc commands of `features::muc_admin`).
pub async fn ask<T>(
    state: &ServerState,
    service: &str,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, String> {
    let (tx, rx) = oneshot::channel();
    // The timeout covers the queueing too: a full queue is as bad as no answer.
    let exchange = async {
        state.muc.send(service, command(tx)).await?;
        rx.await
            .map_err(|_| format!("the MUC service {service} stopped before answering"))
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the MUC service {service} did not answer within {} s",
                ANSWER_TIMEOUT.as_secs()
            ))
        })
}

/// Answer one `muc-...` request line.
pub async fn execute(state: &ServerState, line: &str) -> String {
    match answer(state, line).await {
        Ok(detail) if detail.is_empty() => "ok".to_owned(),
        Ok(detail) => format!("ok {detail}"),
        // One answer is one line, whatever the service said.
        Err(e) => format!("error {}", e.replace(['\r', '\n'], " ")),
    }
}

async fn answer(state: &ServerState, line: &str) -> Result<String, String> {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match verb {
        "muc-list" => {
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err("usage: muc-list SERVICE".into());
            }
            let rooms = ask(state, rest, |reply| Command::List { reply }).await?;
            Ok(encode_rooms(&rooms))
        }
        "muc-affiliation" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let (room, jid, affiliation, sole) = match words.as_slice() {
                [r, j, a] => (*r, *j, *a, false),
                [r, j, a, "sole"] => (*r, *j, *a, true),
                _ => return Err("usage: muc-affiliation ROOM JID AFFILIATION [sole]".into()),
            };
            let room = room_jid(room)?;
            let jid = BareJid::new(jid).map_err(|e| format!("bad JID {jid:?}: {e}"))?;
            let affiliation = Affiliation::parse(affiliation)
                .ok_or_else(|| format!("unknown affiliation {affiliation:?}"))?;
            if sole && affiliation != Affiliation::Owner {
                return Err("`sole` goes with the owner affiliation only".into());
            }
            let service = room.domain().as_str().to_owned();
            ask(state, &service, |reply| Command::SetAffiliation {
                room,
                jid,
                affiliation,
                sole_owner: sole,
                reply,
            })
            .await??;
            Ok(String::new())
        }
        "muc-destroy" => {
            let (room, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let room = room_jid(room)?;
            let reason = Some(reason.trim().to_owned()).filter(|r| !r.is_empty());
            let service = room.domain().as_str().to_owned();
            ask(state, &service, |reply| Command::Destroy {
                room,
                reason,
                reply,
            })
            .await??;
            Ok(String::new())
        }
        _ => Err(format!("unknown request {line:?}")),
    }
}

fn room_jid(s: &str) -> Result<BareJid, String> {
    let room = BareJid::new(s).map_err(|e| format!("bad room JID {s:?}: {e}"))?;
    if room.node().is_none() {
        return Err(format!("{s:?} is not a room JID (name@service)"));
    }
    Ok(room)
}

/// Percent-escape what would break the list's framing: `%`, the three
/// separators, and whitespace and control characters (the answer is one line).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '|' | ';' | ',') || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Undo [`escape`]; None on a malformed escape.
pub fn unescape(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The `muc-list` answer for `rooms`.
pub fn encode_rooms(rooms: &[RoomSummary]) -> String {
    rooms
        .iter()
        .map(|r| {
            let owners: Vec<String> = r.owners.iter().map(|o| escape(o.as_str())).collect();
            format!(
                "{}|{}|{}|{}|{}|{}",
                escape(r.jid.as_str()),
                r.occupants,
                if r.persistent {
                    "persistent"
                } else {
                    "temporary"
                },
                if r.public { "public" } else { "hidden" },
                owners.join(","),
                escape(&r.name),
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Read a `muc-list` answer back.
pub fn decode_rooms(text: &str) -> Result<Vec<RoomSummary>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(';').map(decode_room).collect()
}

fn decode_room(text: &str) -> Result<RoomSummary, String> {
    let bad = || format!("malformed room in the server's list: {text:?}");
    let jid = |s: &str| {
        unescape(s)
            .and_then(|s| BareJid::new(&s).ok())
            .ok_or_else(bad)
    };
    let fields: Vec<&str> = text.split('|').collect();
    let [room, occupants, persistent, public, owners, name] = fields.as_slice() else {
        return Err(bad());
    };
    Ok(RoomSummary {
        jid: jid(room)?,
        name: unescape(name).ok_or_else(bad)?,
        occupants: occupants.parse().map_err(|_| bad())?,
        persistent: match *persistent {
            "persistent" => true,
            "temporary" => false,
            _ => return Err(bad()),
        },
        public: match *public {
            "public" => true,
            "hidden" => false,
            _ => return Err(bad()),
        },
        owners: owners
            .split(',')
            .filter(|o| !o.is_empty())
            .map(jid)
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).expect("jid")
    }

    #[test]
    fn room_list_round_trips_awkward_text() {
        let rooms = vec![
            RoomSummary {
                // Localparts may carry the separators.
                jid: jid("a|b;c,d%@conference.example.org"),
                name: "Café ; 100% | ouvert,\nà tous".into(),
                occupants: 12,
                persistent: true,
                public: false,
                owners: vec![jid("alice@example.org"), jid("x,y@example.org")],
            },
            RoomSummary {
                jid: jid("salon@conference.example.org"),
                name: String::new(),
                occupants: 0,
                persistent: false,
                public: true,
                owners: Vec::new(),
            },
        ];
        let text = encode_rooms(&rooms);
        assert!(!text.contains(['\n', ' ']), "{text}");
        assert_eq!(decode_rooms(&text), Ok(rooms));
        assert_eq!(decode_rooms(""), Ok(Vec::new()));
    }

    #[test]
    fn malformed_lists_are_errors() {
        for text in [
            "salon@conference.example.org|1|persistent|public|",
            "salon@conference.example.org|x|persistent|public||",
            "salon@conference.example.org|1|forever|public||",
            "salon@conference.example.org|1|persistent|public|%G1|",
            "salon@conference.example.org|1|persistent|public||%E2%82",
        ] {
            assert!(decode_rooms(text).is_err(), "{text}");
        }
    }
}
