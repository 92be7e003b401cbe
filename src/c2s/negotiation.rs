//! Stream negotiation after TLS (RFC 6120 §4, §6, §7), the same on every
//! transport: the stream open and its checks, SASL, the stream restart,
//! resource binding. Ends with a bound session or a closed stream.

use super::session::Established;
use super::transport::{Connection, End, Open, Transport};
use super::{bind, sasl};
use crate::state::ServerState;
use crate::stream::error::{StreamCondition, StreamError};
use crate::stream::header::StreamHeader;
use crate::xmpp::ns;
use std::sync::Arc;

/// A fresh stream id.
pub fn stream_id() -> String {
    let bytes: [u8; 12] = rand::random();
    crate::xmpp::hex(&bytes)
}

/// Check a client's stream open: the domain it names (`to`, or the default
/// domain) must be served and, after a restart, the one named before
/// (`previous`); the namespace must be `jabber:client` and the version at
/// least 1.0. Returns the domain.
pub fn check_open(
    state: &ServerState,
    h: &StreamHeader,
    previous: Option<&str>,
) -> Result<String, StreamError> {
    let wanted =
        h.to.clone()
            .unwrap_or_else(|| state.config.default_domain().to_owned());
    let major_version = h
        .version
        .as_deref()
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    if previous.is_some_and(|p| p != wanted) {
        Err(StreamError::new(
            StreamCondition::HostUnknown,
            "the domain changed on restart",
        ))
    } else if !state.config.serves(&wanted) {
        Err(StreamError::new(
            StreamCondition::HostUnknown,
            "this server does not serve that domain",
        ))
    } else if h.default_ns.as_deref() != Some(ns::CLIENT) {
        Err(StreamError::new(
            StreamCondition::InvalidNamespace,
            "expected jabber:client",
        ))
    } else if major_version.unwrap_or(0) < 1 {
        Err(StreamError::new(
            StreamCondition::UnsupportedVersion,
            "version 1.0 is required",
        ))
    } else {
        Ok(wanted)
    }
}

/// A stream being negotiated.
struct Negotiating<T> {
    transport: T,
    /// The domain the client named (None before its first stream open).
    domain: Option<String>,
}

impl<T: Transport> Negotiating<T> {
    /// The domain we speak for on this stream.
    fn our_domain<'a>(&'a self, state: &'a ServerState) -> &'a str {
        self.domain
            .as_deref()
            .unwrap_or_else(|| state.config.default_domain())
    }

    /// Read the client's stream open, answer it, and send the features
    /// `features` makes for the domain; returns the client's open.
    async fn open(
        &mut self,
        state: &ServerState,
        features: impl FnOnce(&str) -> String,
    ) -> Result<StreamHeader, End> {
        let h = self.transport.read_open().await?;
        let checked = check_open(state, &h, self.domain.as_deref());
        if let Ok(d) = &checked {
            self.domain = Some(d.clone());
        }
        let id = stream_id();
        // RFC 6120 §4.9.1.1: our open goes out even when an error follows it.
        let from = self.our_domain(state).to_owned();
        self.transport.open(Open {
            from: &from,
            to: h.from.as_deref(),
            id: &id,
        });
        if let Err(e) = checked {
            return Err(End::Error(e));
        }
        let features = format!(
            "{}{}</stream:features>",
            self.transport.features_tag(),
            features(&from)
        );
        super::transport::send(&mut self.transport, features.as_bytes()).await?;
        Ok(h)
    }

    /// End the stream after a failure, saying why when that helps the peer.
    async fn fail(&mut self, end: End, state: &ServerState) {
        let error = match end {
            End::Error(e) => e,
            End::PeerClosed => {
                let domain = self.our_domain(state).to_owned();
                let _ = self.transport.close(None, &domain).await;
                return;
            }
            End::Closed | End::Io(_) => return,
        };
        tracing::info!(error = %error, "closing stream");
        let domain = self.our_domain(state).to_owned();
        let _ = self.transport.close(Some(&error), &domain).await;
    }
}

/// SASL, restart and bind on `transport`, whose TLS (if any) is done and
/// whose client named `domain` already (STARTTLS) or not yet (direct TLS,
/// WebSocket). None when the stream ended during negotiation.
pub async fn negotiate<T: Transport>(
    state: &Arc<ServerState>,
    transport: T,
    connection: Connection,
    domain: Option<String>,
) -> Option<Established<T>> {
    let mut s = Negotiating { transport, domain };
    let result = async {
        let cb = connection.channel_binding.clone();
        let mut mechs = Vec::new();
        s.open(state, |domain| {
            mechs = sasl::offered(state, domain, &cb, connection.secure);
            let mut features = sasl::features(&mechs, &cb);
            if let Some(register) = crate::features::register::stream_feature(state, domain) {
                features.push_str(register);
            }
            features
        })
        .await?;
        let cb = crate::sasl::scram::ChannelBinding {
            plus_advertised: mechs.iter().any(|m| m.is_plus()),
            ..cb
        };
        let domain = s.our_domain(state).to_owned();
        let user = sasl::negotiate(
            state,
            &mut s.transport,
            &domain,
            connection.peer.ip(),
            cb,
            &mechs,
        )
        .await?;
        s.transport.restart();
        let features = format!("{}{}", bind::features(), state.caps_feature);
        let header = s.open(state, |_| features).await?;
        let parts = bind::bind(state, &mut s.transport, user).await?;
        Ok((parts, header.lang))
    }
    .await;
    match result {
        Ok((parts, lang)) => Some(Established::new(s.transport, parts, lang)),
        Err(end) => {
            s.fail(end, state).await;
            None
        }
    }
}
