//! Reading the archive: queries with their form fields and XEP-0059
//! paging (XEP-0313 §4-§5), the form itself, the archive's metadata
//! (`urn:xmpp:mam:2#extended`), and XEP-0441 preferences.

use super::store::{ArchiveStore, Archived, Filter, StoredPrefs};
use super::{NS, forwarded};
use crate::features::{IqRequest, IqResult};
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::forms::{self, DataForm, DataFormType, FieldType};
use crate::xmpp::stanza::{self, set_attr};
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::data_forms_validate::{Datatype, Method, Validate};
use xmpp_parsers::mam::{End, Fin, MetadataResponse, Query, Start};
use xmpp_parsers::mam_prefs::{DefaultPrefs, Prefs};
use xmpp_parsers::rsm::{First, SetQuery, SetResult};

/// The form fields a query may use; any other is `feature-not-implemented`
/// (XEP-0313 §4.1.2).
const FIELDS: [&str; 7] = [
    "FORM_TYPE",
    "with",
    "start",
    "end",
    "before-id",
    "after-id",
    "ids",
];

/// Addresses in one account's always and never lists together, at most.
const MAX_PREFS_JIDS: usize = 256;

fn bad(text: &str) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

fn storage_error(owner: &BareJid, e: &crate::storage::StorageError) -> StanzaError {
    StanzaError::internal("archive storage failed", Some(owner), e)
}

/// An archive id as the client gave it; what cannot be one names nothing.
fn parse_id(s: &str) -> Result<i64, StanzaError> {
    s.trim().parse::<i64>().map_err(|_| {
        StanzaError::new(Condition::ItemNotFound).with_text(format!("no archived message {s:?}"))
    })
}

/// A time of the query form, as an id bound (ids are microseconds).
fn parse_time(field: &str, s: &str) -> Result<i64, StanzaError> {
    crate::xmpp::parse_datetime(s)
        .ok_or_else(|| bad(&format!("{field}: not an XEP-0082 date and time")))
}

/// `id`, which must be in `owner`'s archive (`item-not-found` otherwise).
async fn known(req: &IqRequest<'_>, owner: &BareJid, s: &str) -> Result<i64, StanzaError> {
    let id = parse_id(s)?;
    match req.state.storage.has_archived(owner, id).await {
        Ok(true) => Ok(id),
        Ok(false) => Err(StanzaError::new(Condition::ItemNotFound)
            .with_text(format!("no archived message {s:?}"))),
        Err(e) => Err(storage_error(owner, &e)),
    }
}

/// The filter a query's form asks for.
async fn filter_of(
    req: &IqRequest<'_>,
    owner: &BareJid,
    form: Option<&DataForm>,
) -> Result<Filter, StanzaError> {
    let mut filter = Filter::default();
    let max_ids = req.state.config.archive.max_page;
    let Some(form) = form else {
        return Ok(filter);
    };
    for f in &form.fields {
        let Some(var) = f.var.as_deref() else {
            continue;
        };
        if !FIELDS.contains(&var) {
            return Err(StanzaError::new(Condition::FeatureNotImplemented)
                .with_text(format!("unknown query field {var}")));
        }
        let Some(value) = f.values.first().map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            continue;
        };
        match var {
            "FORM_TYPE" if value != NS => return Err(bad("FORM_TYPE is not urn:xmpp:mam:2")),
            "with" => {
                let with = Jid::new(value).map_err(|_| {
                    StanzaError::new(Condition::JidMalformed).with_text("with: not a JID")
                })?;
                filter.with_jid = Some(with.to_bare().to_string());
                filter.with_resource = with.resource().map(|r| r.to_string());
            }
            "start" => filter.from_id = Some(parse_time(var, value)?),
            "end" => {
                // XEP-0082 times here have at most millisecond precision:
                // the end includes its whole millisecond.
                filter.to_id = Some(parse_time(var, value)?.saturating_add(999))
            }
            "after-id" => filter.after = Some(known(req, owner, value).await?),
            "before-id" => filter.before = Some(known(req, owner, value).await?),
            "ids" => {
                // One page's worth at most: each id is a bound parameter.
                if f.values.len() > max_ids {
                    return Err(StanzaError::new(Condition::PolicyViolation)
                        .with_text(format!("at most {max_ids} ids in one query")));
                }
                let ids: Result<Vec<i64>, _> = f.values.iter().map(|v| parse_id(v)).collect();
                filter.ids = Some(ids?);
            }
            _ => {}
        }
    }
    Ok(filter)
}

/// Narrow `bound` to also exclude beyond `id` (the tighter of the two wins).
fn tighten(bound: &mut Option<i64>, id: i64, keep_larger: bool) {
    *bound = Some(match *bound {
        Some(b) if keep_larger => b.max(id),
        Some(b) => b.min(id),
        None => id,
    });
}

/// A query (iq set): the result messages, then the iq result with `<fin/>`.
pub async fn query(req: &IqRequest<'_>) -> Result<Vec<Element>, StanzaError> {
    req.owner_only()?;
    let owner = req.from.to_bare();
    let q = Query::try_from(req.payload.clone()).map_err(|e| bad(&format!("query: {e}")))?;
    if q.node.is_some() {
        return Err(StanzaError::new(Condition::ItemNotFound).with_text("an account has no nodes"));
    }
    let mut filter = filter_of(req, &owner, q.form.as_ref()).await?;
    let cap = req.state.config.archive.max_page;
    let set = q.set.unwrap_or(SetQuery {
        max: None,
        after: None,
        before: None,
        index: None,
    });
    let max = set.max.unwrap_or(cap).min(cap);
    if let Some(after) = &set.after {
        let id = known(req, &owner, after).await?;
        tighten(&mut filter.after, id, true);
    }
    // RSM `<before/>`, empty: the last page; with an id: the page before it.
    let backwards = set.before.is_some();
    if let Some(before) = set.before.as_deref().filter(|b| !b.is_empty()) {
        let id = known(req, &owner, before).await?;
        tighten(&mut filter.before, id, false);
    }
    let limit = i64::try_from(max).unwrap_or(i64::MAX).saturating_add(1);
    let mut rows = req
        .state
        .storage
        .archived(&owner, &filter, backwards, limit)
        .await
        .map_err(|e| storage_error(&owner, &e))?;
    let mut complete = rows.len() <= max;
    rows.truncate(max);
    // A page must fit in the requester's queue with room to spare (a
    // session whose queue overflows is closed as too slow): past half of
    // it, the page ends early and says it is not complete.
    let budget = req.state.config.c2s.queue_bytes / 2;
    let mut bytes = 0usize;
    let mut fits = 0;
    for r in &rows {
        bytes = bytes.saturating_add(r.stanza.len() + 256);
        if bytes > budget && fits > 0 {
            complete = false;
            break;
        }
        fits += 1;
    }
    rows.truncate(fits);
    if backwards {
        rows.reverse();
    }
    let mut out = Vec::with_capacity(rows.len() + 1);
    for r in &rows {
        if let Some(m) = result_message(req, &owner, q.queryid.as_ref().map(|i| i.0.as_str()), r) {
            out.push(m);
        }
    }
    if q.flip_page {
        out.reverse();
    }
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) if q.flip_page => (Some(l.id), Some(f.id)),
        (Some(f), Some(l)) => (Some(f.id), Some(l.id)),
        _ => (None, None),
    };
    let fin = Fin {
        complete,
        set: SetResult {
            first: first.map(|id| First {
                index: None,
                item: id.to_string(),
            }),
            last: last.map(|id| id.to_string()),
            count: None,
        },
    };
    out.push(stanza::iq_result(req.iq, Some(Element::from(fin))));
    Ok(out)
}

/// One result message (XEP-0313 §5): the stored message forwarded.
fn result_message(
    req: &IqRequest<'_>,
    owner: &BareJid,
    queryid: Option<&str>,
    r: &Archived,
) -> Option<Element> {
    let stored: Element = match r.stanza.parse() {
        Ok(el) => el,
        Err(e) => {
            tracing::warn!(owner = %owner, id = r.id, error = %e, "an archived message cannot be read: left out");
            return None;
        }
    };
    let mut result = Element::bare("result", NS);
    set_attr(&mut result, "id", r.id.to_string());
    if let Some(q) = queryid {
        set_attr(&mut result, "queryid", q.to_owned());
    }
    result.append_child(forwarded(owner, r.id, stored));
    let mut m = Element::bare("message", crate::xmpp::ns::CLIENT);
    set_attr(&mut m, "from", owner.as_str());
    set_attr(&mut m, "to", req.from.to_string());
    set_attr(&mut m, "id", format!("mam-{}", r.id));
    m.append_child(result);
    Some(m)
}

/// The query form (iq get, XEP-0313 §4.1.1).
pub async fn form(req: &IqRequest<'_>) -> IqResult {
    req.owner_only()?;
    // §4.1.2: the list of ids is open to any value, and says so.
    let ids = forms::Field {
        validate: Some(Validate {
            datatype: Some(Datatype::String),
            method: Some(Method::Open),
            list_range: None,
        }),
        ..forms::field("ids", FieldType::ListMulti, "Archive ids")
    };
    let fields = vec![
        forms::field("with", FieldType::JidSingle, "With"),
        forms::field("start", FieldType::TextSingle, "From"),
        forms::field("end", FieldType::TextSingle, "Until"),
        forms::field("before-id", FieldType::TextSingle, "Before id"),
        forms::field("after-id", FieldType::TextSingle, "After id"),
        ids,
    ];
    let x = forms::to_element(DataForm::new(DataFormType::Form, NS, fields));
    let mut q = Element::bare("query", NS);
    q.append_child(x);
    Ok(Some(q))
}

/// The archive's first and last messages (`urn:xmpp:mam:2#extended`).
pub async fn metadata(req: &IqRequest<'_>) -> IqResult {
    req.owner_only()?;
    let owner = req.from.to_bare();
    let bounds = req
        .state
        .storage
        .archive_bounds(&owner)
        .await
        .map_err(|e| storage_error(&owner, &e))?;
    let stamp = |id: i64| crate::xmpp::datetime(id).parse().ok();
    let response = match bounds {
        Some((first, last)) => match (stamp(first), stamp(last)) {
            (Some(start), Some(end)) => MetadataResponse {
                start: Some(Start {
                    id: first.to_string(),
                    timestamp: start,
                }),
                end: Some(End {
                    id: last.to_string(),
                    timestamp: end,
                }),
            },
            _ => return Err(StanzaError::new(Condition::InternalServerError)),
        },
        // §7.1: an empty archive is an empty element.
        None => MetadataResponse {
            start: None,
            end: None,
        },
    };
    Ok(Some(Element::from(response)))
}

/// XEP-0441 preferences: read them, or replace them.
pub async fn prefs(req: &IqRequest<'_>) -> IqResult {
    req.owner_only()?;
    let owner = req.from.to_bare();
    let state = req.state;
    if req.set {
        let p = Prefs::try_from(req.payload.clone()).map_err(|e| bad(&format!("prefs: {e}")))?;
        // Kept in memory and scanned for every message: bounded.
        if p.always.len() + p.never.len() > MAX_PREFS_JIDS {
            return Err(StanzaError::new(Condition::NotAcceptable)
                .with_text(format!("at most {MAX_PREFS_JIDS} addresses in the lists")));
        }
        let stored = StoredPrefs {
            default_mode: match p.default_ {
                DefaultPrefs::Always => "always",
                DefaultPrefs::Never => "never",
                DefaultPrefs::Roster => "roster",
            }
            .to_owned(),
            always: p.always.iter().map(|j| j.to_string()).collect(),
            never: p.never.iter().map(|j| j.to_string()).collect(),
        };
        state
            .storage
            .set_archive_prefs(&owner, &stored)
            .await
            .map_err(|e| storage_error(&owner, &e))?;
        state.archiver.remember_prefs(&owner, stored.clone());
        return Ok(Some(prefs_element(&stored)));
    }
    let stored = state
        .archiver
        .prefs_of(&owner)
        .unwrap_or_else(|| StoredPrefs {
            default_mode: state.config.archive.default.as_str().to_owned(),
            always: Vec::new(),
            never: Vec::new(),
        });
    Ok(Some(prefs_element(&stored)))
}

fn prefs_element(p: &StoredPrefs) -> Element {
    let jids =
        |list: &[String]| -> Vec<Jid> { list.iter().filter_map(|j| Jid::new(j).ok()).collect() };
    Element::from(Prefs {
        default_: match p.default_mode.as_str() {
            "never" => DefaultPrefs::Never,
            "roster" => DefaultPrefs::Roster,
            _ => DefaultPrefs::Always,
        },
        always: jids(&p.always),
        never: jids(&p.never),
    })
}
