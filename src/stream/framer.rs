//! Finds the boundaries of top-level elements in a never-ending XML stream.
//!
//! TCP hands us arbitrary slices of the `<stream:stream>` document. Re-parsing
//! the pending bytes on every read would cost O(n²) on a stanza trickled one
//! byte at a time, so this scanner keeps its lexical state between reads and
//! looks at each byte once. It only knows enough XML to find where elements
//! start and end (tags, quoted attribute values, CDATA); the full well-formedness
//! check happens when a complete element is parsed (see `builder`).
//!
//! The limits live here because this is the only place that sees bytes
//! before they are buffered without bound: stanza size, nesting depth, and
//! the restricted XML of RFC 6120 §11.1 (no DTD, comment or processing
//! instruction).

use super::error::StreamCondition;
use std::ops::Range;

/// Limits applied while framing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest top-level element, in bytes.
    pub max_stanza_size: usize,
    /// Deepest nesting inside a stanza (the stanza itself is depth 1).
    pub max_depth: usize,
}

/// The stream header is small; a larger one is an attack or garbage.
const MAX_HEADER_SIZE: usize = 4096;

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// The `<stream:stream ...>` open tag (with any XML declaration before it).
    Header(Range<usize>),
    /// One complete top-level element.
    Element(Range<usize>),
    /// `</stream:stream>`.
    End,
}

/// A framing failure, with the stream error it deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub condition: StreamCondition,
    pub text: &'static str,
}

fn err(condition: StreamCondition, text: &'static str) -> FrameError {
    FrameError { condition, text }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data between tags.
    Text,
    /// Just read `<`.
    TagOpen,
    /// Inside a start tag.
    StartTag,
    /// Inside a quoted attribute value.
    AttrValue(u8),
    /// Inside an end tag.
    EndTag,
    /// After `<!`, having matched this many bytes of `[CDATA[`.
    Bang(u8),
    /// Inside CDATA, having matched this many bytes of `]]>`.
    CData(u8),
    /// Inside the `<?xml ...?>` declaration; true after a `?`.
    Decl(bool),
}

/// Incremental scanner over one stream's bytes.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    buf: Vec<u8>,
    /// Next byte to scan.
    pos: usize,
    lex: Lex,
    /// Element depth: 0 before the stream header, 1 inside it, 2 inside a stanza.
    depth: usize,
    /// Where the current top-level element (or the header) began.
    start: Option<usize>,
    /// Where the tag being scanned began.
    tag_start: usize,
    header_seen: bool,
    /// Qualified names of the open elements: the stream header's, then the stanza's.
    open: Vec<Vec<u8>>,
}

impl Framer {
    /// A framer for a new stream (also after a stream restart).
    pub fn new(limits: Limits) -> Self {
        Framer {
            limits,
            buf: Vec::new(),
            pos: 0,
            lex: Lex::Text,
            depth: 0,
            start: None,
            tag_start: 0,
            header_seen: false,
            open: Vec::new(),
        }
    }

    /// A framer for elements standing alone, as inside a stream that is
    /// already open: each WebSocket message (RFC 7395) is one.
    pub fn inside_stream(limits: Limits) -> Self {
        let mut f = Framer::new(limits);
        f.depth = 1;
        f.header_seen = true;
        f.open.push(b"stream:stream".to_vec());
        f
    }

    /// Append bytes read from the peer.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether bytes are waiting that do not form a complete element yet.
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Whether everything waiting is whitespace (allowed between elements).
    pub fn pending_is_whitespace(&self) -> bool {
        self.buf
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    }

    /// The bytes of a frame returned by `next_frame`.
    pub fn slice(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Forget everything up to `end` (the end of the last frame handled).
    pub fn consume(&mut self, end: usize) {
        let end = end.min(self.buf.len());
        self.buf.drain(..end);
        self.pos -= end.min(self.pos);
        self.tag_start = self.tag_start.saturating_sub(end);
        self.start = self.start.map(|s| s.saturating_sub(end));
        // An idle connection must not keep a large buffer alive.
        if self.buf.is_empty() {
            self.buf = Vec::new();
        } else if self.buf.capacity() > 16 * 1024 && self.buf.len() < self.buf.capacity() / 4 {
            self.buf.shrink_to_fit();
        }
    }

    /// Scan what has been fed; return the next complete frame, if any.
    ///
    /// The caller must `consume` the frame's end before calling again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            let at = self.pos;
            self.pos += 1;
            match self.lex {
                Lex::Text => {
                    if b == b'<' {
                        self.tag_start = at;
                        self.lex = Lex::TagOpen;
                    } else if self.depth <= 1 && self.start.is_none() {
                        if !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                            return Err(err(
                                StreamCondition::BadFormat,
                                "text outside of any stanza",
                            ));
                        }
                        // Whitespace keepalives between stanzas are dropped at once.
                        self.consume(self.pos);
                    }
                }
                Lex::TagOpen => match b {
                    b'/' => self.lex = Lex::EndTag,
                    b'!' => self.lex = Lex::Bang(0),
                    b'?' => {
                        if self.header_seen || self.depth > 0 {
                            return Err(err(
                                StreamCondition::RestrictedXml,
                                "processing instructions are not allowed",
                            ));
                        }
                        if self.start.is_none() {
                            self.start = Some(self.tag_start);
                        }
                        self.lex = Lex::Decl(false);
                    }
                    _ => {
                        if self.depth == 1 || (self.depth == 0 && self.start.is_none()) {
                            self.start = Some(self.tag_start);
                        }
                        self.lex = Lex::StartTag;
                    }
                },
                Lex::StartTag => match b {
                    b'"' | b'\'' => self.lex = Lex::AttrValue(b),
                    b'>' => {
                        self.lex = Lex::Text;
                        let empty = at > 0 && self.buf[at - 1] == b'/';
                        if !empty {
                            let name = tag_name(&self.buf[self.tag_start + 1..at]);
                            self.open.push(name.to_vec());
                        }
                        if self.depth == 0 {
                            let start = self.start.take().unwrap_or(0);
                            self.depth = 1;
                            self.header_seen = true;
                            if empty {
                                return Err(err(
                                    StreamCondition::NotWellFormed,
                                    "empty stream header",
                                ));
                            }
                            return Ok(Some(Frame::Header(start..self.pos)));
                        }
                        if !empty {
                            self.depth += 1;
                            if self.depth - 1 > self.limits.max_depth {
                                return Err(err(
                                    StreamCondition::PolicyViolation,
                                    "elements nested too deeply",
                                ));
                            }
                        }
                        if let Some(frame) = self.element_done() {
                            return Ok(Some(frame));
                        }
                    }
                    _ => {}
                },
                Lex::AttrValue(q) => {
                    if b == q {
                        self.lex = Lex::StartTag;
                    }
                }
                Lex::EndTag => {
                    if b == b'>' {
                        self.lex = Lex::Text;
                        let name = tag_name(&self.buf[self.tag_start + 2..at]);
                        if self.open.pop().as_deref() != Some(name) {
                            return Err(err(
                                StreamCondition::NotWellFormed,
                                "end tag does not match the open element",
                            ));
                        }
                        if self.depth <= 1 {
                            // Closing the stream itself.
                            self.depth = 0;
                            return Ok(Some(Frame::End));
                        }
                        self.depth -= 1;
                        if let Some(frame) = self.element_done() {
                            return Ok(Some(frame));
                        }
                    }
                }
                Lex::Bang(n) => {
                    const CDATA: &[u8] = b"[CDATA[";
                    if self.depth < 2 || b != CDATA[n as usize] {
                        return Err(err(
                            StreamCondition::RestrictedXml,
                            "comments and document type declarations are not allowed",
                        ));
                    }
                    self.lex = if n as usize + 1 == CDATA.len() {
                        Lex::CData(0)
                    } else {
                        Lex::Bang(n + 1)
                    };
                }
                Lex::CData(n) => {
                    self.lex = match (n, b) {
                        (0 | 1, b']') => Lex::CData(n + 1),
                        (2, b']') => Lex::CData(2),
                        (2, b'>') => Lex::Text,
                        _ => Lex::CData(0),
                    };
                }
                Lex::Decl(q) => {
                    self.lex = match (q, b) {
                        (true, b'>') => Lex::Text,
                        (_, b'?') => Lex::Decl(true),
                        _ => Lex::Decl(false),
                    };
                }
            }
            self.check_size()?;
        }
        self.check_size()?;
        Ok(None)
    }

    /// After a tag closed at depth 1, the top-level element is complete.
    fn element_done(&mut self) -> Option<Frame> {
        if self.depth == 1 {
            let start = self.start.take().unwrap_or(self.tag_start);
            return Some(Frame::Element(start..self.pos));
        }
        None
    }

    fn check_size(&self) -> Result<(), FrameError> {
        let pending = self.pos - self.start.unwrap_or(self.pos);
        if !self.header_seen {
            if self.buf.len() > MAX_HEADER_SIZE {
                return Err(err(
                    StreamCondition::PolicyViolation,
                    "stream header too large",
                ));
            }
        } else if pending > self.limits.max_stanza_size {
            return Err(err(StreamCondition::PolicyViolation, "stanza too large"));
        }
        Ok(())
    }
}

/// The qualified name at the start of a tag's bytes (after `<` or `</`).
fn tag_name(tag: &[u8]) -> &[u8] {
    let end = tag
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .unwrap_or(tag.len());
    &tag[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_stanza_size: 1024,
        max_depth: 8,
    };

    /// Feed the input in chunks of `chunk` bytes; collect frames as strings.
    fn frames(input: &str, chunk: usize) -> Result<Vec<String>, FrameError> {
        let mut f = Framer::new(LIMITS);
        let mut out = Vec::new();
        for piece in input.as_bytes().chunks(chunk) {
            f.feed(piece);
            while let Some(frame) = f.next_frame()? {
                match frame {
                    Frame::Header(r) | Frame::Element(r) => {
                        out.push(String::from_utf8_lossy(f.slice(r.clone())).into_owned());
                        f.consume(r.end);
                    }
                    Frame::End => out.push("END".into()),
                }
            }
        }
        Ok(out)
    }

    const STREAM: &str = "<?xml version='1.0'?><stream:stream to='a' xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' version='1.0'> \n\
        <message to='b'><body a='&gt;/>'>x &lt; y<![CDATA[</message>]]></body></message>\n \
        <presence/><iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>";

    #[test]
    fn frames_regardless_of_chunking() {
        let whole = frames(STREAM, STREAM.len()).expect("valid");
        assert_eq!(whole.len(), 5, "{whole:?}");
        assert!(whole[0].starts_with("<?xml") && whole[0].ends_with("version='1.0'>"));
        assert!(whole[1].starts_with("<message") && whole[1].ends_with("</message>"));
        assert_eq!(whole[2], "<presence/>");
        assert_eq!(whole[4], "END");
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(
                frames(STREAM, chunk).expect("valid"),
                whole,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn rejects_restricted_xml() {
        let head = "<stream:stream>";
        for bad in ["<!-- hi -->", "<!DOCTYPE x [<!ENTITY a 'b'>]>", "<?pi x?>"] {
            let e = frames(&format!("{head}{bad}"), 3).expect_err(bad);
            assert_eq!(e.condition, StreamCondition::RestrictedXml, "{bad}");
        }
        let e = frames("<!DOCTYPE lolz [<!ENTITY lol 'lol'>]><stream:stream>", 5).expect_err("dtd");
        assert_eq!(e.condition, StreamCondition::RestrictedXml);
    }

    #[test]
    fn enforces_limits() {
        let big = format!("<stream:stream><message>{}</message>", "a".repeat(2000));
        assert_eq!(
            frames(&big, 100).expect_err("big").condition,
            StreamCondition::PolicyViolation
        );
        let deep = format!("<stream:stream>{}", "<a>".repeat(20));
        assert_eq!(
            frames(&deep, 1).expect_err("deep").condition,
            StreamCondition::PolicyViolation
        );
        let header = format!("<stream:stream a='{}'>", "b".repeat(5000));
        assert_eq!(
            frames(&header, 1000).expect_err("header").condition,
            StreamCondition::PolicyViolation
        );
        assert_eq!(
            frames("<stream:stream>hello", 4)
                .expect_err("text")
                .condition,
            StreamCondition::BadFormat
        );
    }

    #[test]
    fn end_tags_must_match() {
        for bad in [
            "<stream:stream><message><body></message>",
            "<stream:stream></message>",
        ] {
            let e = frames(bad, 3).expect_err(bad);
            assert_eq!(e.condition, StreamCondition::NotWellFormed, "{bad}");
        }
        assert!(frames("<stream:stream><a ><b/></a ></stream:stream>", 2).is_ok());
    }

    #[test]
    fn idle_buffer_is_released() {
        let mut f = Framer::new(LIMITS);
        f.feed(b"<stream:stream><presence/>");
        while let Some(frame) = f.next_frame().expect("valid") {
            if let Frame::Header(r) | Frame::Element(r) = frame {
                f.consume(r.end);
            }
        }
        assert!(!f.has_pending());
        assert_eq!(f.buf.capacity(), 0);
    }
}
